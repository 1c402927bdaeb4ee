"""The one small interface every model backend implements (``open_generator`` in ``backends/__init__.py``
picks one; this module knows none of them).

A backend continues many assistant messages at once, each until its turn ends (see
``interaction.find_stop``), the model ends its message, or the turn's token budget runs out.

Contract of ``Generator``:

* ``encode_prompt(messages)`` returns the token ids of the chat prompt (system + user, with the
  generation prompt that opens the assistant message), or None for backends that do not work in tokens
  (openai, reference).
* ``encode_text(text)`` tokenises an observation once, when it is appended (token-in/token-out); None
  for text backends.
* ``generate(requests)`` returns one ``Completion`` per request, in order. For token backends the
  context is ``request.context_ids`` exactly (never re-tokenised text) and ``Completion.ids`` are the
  sampled ids, ending at the token that completed the stop. Sampling is seeded per request from
  ``request.seed``, so the result does not depend on which other requests share the batch. With
  ``request.logprobs`` a token backend also returns ``Completion.logprobs``: the log-probability of each
  sampled id under the distribution it was drawn from, i.e. after the temperature scaling of the logits (and
  the nucleus cut, renormalised, when ``top_p`` < 1); greedy decoding (temperature 0) gives 0.0.
* An infrastructure failure of one request (a server error that outlived its retries) is a ``Completion``
  with ``finish="error"`` and ``error`` saying why, not an exception: the rollout loop ends that trajectory
  as ``infra_error`` (and retries it) while the rest of the batch goes on.
* ``close()`` frees the model.
* Optional: ``watch(tasks, sandbox) -> (tasks, sandbox)``. The rollout loop passes its task stream and its
  sandbox through it once, before the first request, and uses what it returns. A generator that must know
  more than the conversation keeps it this way (the reference teacher: each task, and each execution's
  full output); the requests stay the same for every backend.

``model_name`` goes into every trajectory; ``tokenizer_fingerprint`` (token backends) lets training
refuse ids made by another tokenizer.

vllm is imported only inside its module: ``r1ci --help`` and every CPU path stay import-clean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from r1ci_cli.errors import R1ciError
from r1ci_cli.settings import RUNTIME

BACKENDS = ("reference", "hf", "vllm", "openai")


@dataclass(frozen=True)
class GenRequest:
    """One assistant message to continue.

    ``key`` is the trajectory's id; ``messages`` is the chat prompt (system + user); ``turns`` the (role,
    text) pairs of the assistant message so far (model turns and observations); ``context_ids`` the exact
    token ids of prompt + turns (token backends only). ``allow_code`` is False for the text style (fences do
    not end a turn); ``stop_at_answer`` ends the turn at an answer span too (``interaction.find_stop``).
    """

    key: str
    messages: tuple[Mapping[str, str], ...]
    turns: tuple[tuple[str, str], ...]
    max_new_tokens: int
    temperature: float
    seed: int
    top_p: float = 1.0
    allow_code: bool = True
    context_ids: tuple[int, ...] | None = None
    stop_at_answer: bool = False
    logprobs: bool = False  # token backends: return the sampler's log-prob of every sampled id


@dataclass(frozen=True)
class Completion:
    """The text of one model turn. ``finish`` is ``stop`` (a code block or answer), ``eos`` (the model
    ended its message), ``length`` (the turn's token budget ran out), ``context`` (the model's context
    length ran out: nothing more fits) or ``error`` (the backend failed on this request; ``error`` says why).
    ``logprobs``: the sampler's log-prob of each id, when requested."""

    text: str
    finish: str
    ids: tuple[int, ...] | None = None
    num_prompt_tokens: int = 0
    num_new_tokens: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    logprobs: tuple[float, ...] | None = None
    error: str | None = None


class Generator(Protocol):
    model_name: str
    tokenizer_fingerprint: str | None

    def encode_prompt(self, messages: Sequence[Mapping[str, str]]) -> tuple[int, ...] | None: ...

    def encode_text(self, text: str) -> tuple[int, ...] | None: ...

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendOptions:
    """Which backend generates (``kind``: reference, hf, vllm, openai) and what opening it needs.

    ``kind``, ``model``, ``dtype``, ``base_url``, ``max_model_len`` and ``text_share`` (the reference teacher's
    share of direct text answers) decide what generates; the rest is ``runtime`` (``settings.py``).
    ``api_key_env`` names the variable holding the key (never the key)."""

    kind: str = "hf"
    model: str | None = None
    dtype: str = "auto"
    base_url: str | None = None
    max_model_len: int | None = None
    text_share: float = 0.0
    device: str = field(default="auto", metadata=RUNTIME)
    batch_size: int = field(default=16, metadata=RUNTIME)
    gpu_memory_utilization: float = field(default=0.85, metadata=RUNTIME)
    api_key_env: str = field(default="OPENAI_API_KEY", metadata=RUNTIME)
    concurrency: int = field(default=8, metadata=RUNTIME)
    max_retries: int = field(default=5, metadata=RUNTIME)
    request_timeout_s: float = field(default=600.0, metadata=RUNTIME)

    def check(self) -> None:
        """Flag combinations, before any input is read (``R1ciError`` naming the flags)."""
        if not 0.0 <= self.text_share <= 1.0:
            raise R1ciError(f"--text-share {self.text_share}: must be between 0 and 1")
        if self.text_share and self.kind != "reference":
            raise R1ciError(f"--text-share is the reference teacher's; --backend {self.kind} has none")
