"""Trajectory → token ids + loss mask, the one place training turns records into tensors' worth of ids.

Contract:

* The loss mask is 1 on tokens the model wrote (``model`` turns, and the closing eos after a finished
  answer) and 0 on the prompt and on execution results (``exec`` turns): docs/paper.md "GRPO" — tokens returned by
  code execution get no gradient; the same rule is used for SFT.
* Stored ids are used when the trajectory carries them *and* its ``tokenizer`` fingerprint equals
  ``tokenizer_fingerprint(tokenizer)`` of the tokenizer we train with: then the prompt is ``prompt_ids``
  and each turn is its ``ids`` (token-in/token-out, no re-tokenisation of decoded text). Otherwise the
  prompt is rendered with the tokenizer's chat template from the trajectory's ``prompt`` messages (the
  rollout writes them; without them, the question as a lone user message) and each turn's text is
  tokenised on its own, exactly as the rollout appends an observation.
* Truncation is explicit: a sequence longer than ``max_seq_len`` keeps its first ``max_seq_len`` tokens and
  is counted in ``SequenceStats`` (sequences and tokens cut); a sequence left without any loss token is
  dropped and counted. Nothing is cut silently.
* Malformed extra fields (``prompt_ids`` that are not token ids, ``prompt`` that is not a message list)
  raise ``SequenceError`` (an ``R1ciError``; readers re-raise it as ``BadRecord`` with path and line).

Not handled: packing several trajectories into one row (the collator pads instead).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1ci_cli.backends.tokens import tokenizer_fingerprint
from r1ci_cli.errors import R1ciError
from r1ci_cli.models import chat_template_messages
from r1ci_cli.records import Trajectory

log = logging.getLogger("r1ci.sequences")


@dataclass(frozen=True)
class TokenSequence:
    """One training row: ``input_ids`` and a same-length 0/1 ``loss_mask``."""

    trajectory_id: str
    input_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    from_stored_ids: bool
    truncated: bool
    sampler_logprobs: tuple[float, ...] | None = None  # the sampler's log-prob of each id (NaN: none), stored ids only

    @property
    def num_loss_tokens(self) -> int:
        return sum(self.loss_mask)


@dataclass
class SequenceStats:
    """Counts the caller logs and writes to metrics: nothing is truncated or dropped silently."""

    num_sequences: int = 0
    num_from_stored_ids: int = 0
    num_truncated: int = 0
    num_tokens_cut: int = 0
    num_dropped_no_loss: int = 0
    num_tokens: int = 0
    num_loss_tokens: int = 0
    dropped_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "dropped_ids"}


class SequenceError(R1ciError):
    """A trajectory's extra fields cannot be turned into a sequence; readers add path and line."""

    def __init__(self, trajectory_id: str, field_name: str, problem: str):
        self.field, self.problem = field_name, f"trajectory {trajectory_id}: {problem}"
        super().__init__(f"field '{field_name}': {self.problem}")


def _token_ids(value: Any, where: str, traj: Trajectory) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                              for i in value):
        raise SequenceError(traj.id, where, "must be a list of non-negative token ids")
    return value


def prompt_messages(traj: Trajectory) -> list[dict[str, str]]:
    """The prompt messages stored by the rollout (``prompt``), or the question as a lone user message."""
    prompt = traj.extra.get("prompt")
    if prompt is None:
        question = traj.extra.get("question")
        if not isinstance(question, str):
            raise SequenceError(traj.id, "prompt", "needs 'prompt' messages or a 'question' string")
        return chat_template_messages(None, question)
    if not isinstance(prompt, list) or not prompt or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in prompt):
        raise SequenceError(traj.id, "prompt", "must be a non-empty list of {role, content} strings")
    return [{"role": m["role"], "content": m["content"]} for m in prompt]


class SequenceBuilder:
    """Builds TokenSequences for one tokenizer; keeps the running SequenceStats."""

    def __init__(self, tokenizer: Any, max_seq_len: int):
        if max_seq_len < 2:
            raise ValueError("max_seq_len must be at least 2")
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        self.fingerprint = tokenizer_fingerprint(tokenizer)
        self.eos_id = tokenizer.eos_token_id
        self.stats = SequenceStats()

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _uses_stored_ids(self, traj: Trajectory) -> bool:
        return (traj.extra.get("tokenizer") == self.fingerprint and traj.extra.get("prompt_ids") is not None
                and all(turn.ids is not None for turn in traj.turns))

    def pieces(self, traj: Trajectory) -> tuple[list[tuple[list[int], int]], bool]:
        """(ids, mask value) pieces in order, and whether they came from stored ids."""
        stored = self._uses_stored_ids(traj)
        if stored:
            prompt = _token_ids(traj.extra["prompt_ids"], "prompt_ids", traj)
            turns = [list(turn.ids or ()) for turn in traj.turns]
        else:
            text = self.tokenizer.apply_chat_template(prompt_messages(traj), add_generation_prompt=True,
                                                      tokenize=False)
            prompt = self._encode(text)
            turns = [self._encode(turn.text) for turn in traj.turns]
        pieces = [(prompt, 0)] + [(ids, int(turn.role == "model")) for ids, turn in zip(turns, traj.turns)]
        # A message the model ended (answer or stop) ends with eos so the model learns to stop; text backends
        # and the answer stop (--stop-at-answer) do not return it, hence it is added here (and learned)
        # unless already present.
        last_ids = turns[-1] if turns else []
        if (traj.finish in ("answer", "stop") and traj.turns[-1].role == "model" and self.eos_id is not None
                and (not last_ids or last_ids[-1] != self.eos_id)):
            pieces.append(([self.eos_id], 1))
        return pieces, stored

    def build(self, traj: Trajectory) -> TokenSequence | None:
        """The sequence of one trajectory, or None (counted) when truncation left it no loss token."""
        pieces, stored = self.pieces(traj)
        ids: list[int] = []
        mask: list[int] = []
        for piece_ids, value in pieces:
            ids.extend(piece_ids)
            mask.extend([value] * len(piece_ids))
        logprobs = _sampler_logprobs(traj, pieces) if stored else None
        truncated = len(ids) > self.max_seq_len
        if truncated:
            self.stats.num_truncated += 1
            self.stats.num_tokens_cut += len(ids) - self.max_seq_len
            ids, mask = ids[: self.max_seq_len], mask[: self.max_seq_len]
            logprobs = logprobs[: self.max_seq_len] if logprobs is not None else None
        # Position 0 is never predicted, so a loss token there does not count.
        if sum(mask[1:]) == 0:
            self.stats.num_dropped_no_loss += 1
            self.stats.dropped_ids.append(traj.id)
            return None
        self.stats.num_sequences += 1
        self.stats.num_from_stored_ids += int(stored)
        self.stats.num_tokens += len(ids)
        self.stats.num_loss_tokens += sum(mask)
        return TokenSequence(traj.id, tuple(ids), tuple(mask), stored, truncated,
                             tuple(logprobs) if logprobs is not None else None)

    def build_all(self, trajectories: Iterable[Trajectory]) -> list[TokenSequence]:
        out = [seq for traj in trajectories if (seq := self.build(traj)) is not None]
        if self.stats.num_truncated or self.stats.num_dropped_no_loss:
            log.warning("sequences: %d of %d truncated at %d tokens (%d tokens cut); %d dropped with no "
                        "model token left", self.stats.num_truncated,
                        self.stats.num_sequences + self.stats.num_dropped_no_loss, self.max_seq_len,
                        self.stats.num_tokens_cut, self.stats.num_dropped_no_loss)
        return out


def _sampler_logprobs(traj: Trajectory, pieces: list[tuple[list[int], int]]) -> list[float] | None:
    """The sampler's log-prob of every id of a stored-ids sequence, aligned with ``pieces`` (prompt, turns,
    maybe the eos training adds): a model turn's ``logprobs``, NaN elsewhere; None when no turn has any."""
    nan = float("nan")
    if not any(turn.logprobs for turn in traj.turns):
        return None
    out = [nan] * len(pieces[0][0])
    for turn, (piece_ids, _value) in zip(traj.turns, pieces[1:]):
        known = turn.role == "model" and turn.logprobs is not None and len(turn.logprobs) == len(piece_ids)
        out.extend(turn.logprobs if known else [nan] * len(piece_ids))
    for piece_ids, _value in pieces[1 + len(traj.turns):]:
        out.extend([nan] * len(piece_ids))
    return out


def collate(sequences: Sequence[TokenSequence], pad_id: int):
    """Right-padded tensors ``input_ids``, ``attention_mask`` and ``labels`` (-100 where no loss)."""
    import torch

    width = max(len(s.input_ids) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)  # (B, T)
    labels = torch.full((len(sequences), width), -100, dtype=torch.long)  # (B, T)
    for row, seq in enumerate(sequences):
        n = len(seq.input_ids)
        ids = torch.tensor(seq.input_ids, dtype=torch.long)
        input_ids[row, :n] = ids
        attention[row, :n] = 1
        labels[row, :n] = torch.where(torch.tensor(seq.loss_mask, dtype=torch.bool), ids, torch.tensor(-100))
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
