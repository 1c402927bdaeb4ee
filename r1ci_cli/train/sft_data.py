"""SFT data: which trajectories train, in which order, split into which micro-batches.

* Selection (docs/paper.md "SFT"): only correct trajectories by default, at most ``max_per_task`` (70) per task
  family (``records.task_family``: the ``task`` field, else ``task_id``), as ``rollout --max-per-task``
  counts. Which ones survive the cap is decided by
  ``derive_seed(seed, trajectory id)``, so it does not depend on input order.
* Order: epoch ``e`` visits the sequences in ``torch.randperm`` order from a generator seeded with
  ``derive_seed(seed, "sft-epoch", e)``; global batches are consecutive slices, a last partial batch is
  left out of that epoch (it differs per epoch, so every sequence is still seen). The data position is thus
  a pure function of the optimizer step, which is what makes resume exact.
* Micro-batches: a global batch is sorted by length (less padding) and cut into ``world × accumulation``
  micro-batches; rank ``r`` takes every ``world``-th one starting at ``r``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from r1ci_cli.errors import BadRecord, R1ciError
from r1ci_cli.records import Trajectory, task_family
from r1ci_cli.seeds import derive_seed
from r1ci_cli.streams import display_name, read_dicts
from r1ci_cli.train.sequences import SequenceBuilder, SequenceError, TokenSequence

log = logging.getLogger("r1ci.sft")


@dataclass(frozen=True)
class Located:
    """A trajectory and where it was read (for error messages)."""

    trajectory: Trajectory
    path: str
    line: int


@dataclass(frozen=True)
class SelectionStats:
    num_read: int
    num_incorrect_skipped: int
    num_over_cap_skipped: int
    num_selected: int
    num_tasks: int


def read_trajectories(paths: Iterable[str]) -> list[Located]:
    """Every trajectory of every path (buffered: selection needs them all); BadRecord on malformed lines."""
    out = []
    for path in paths:
        name = display_name(path)
        for line_no, data in read_dicts(path):
            out.append(Located(Trajectory.from_dict(data, name, line_no), name, line_no))
    return out


def select(rows: Sequence[Located], only_correct: bool, max_per_task: int, seed: int
           ) -> tuple[list[Located], SelectionStats]:
    """Correct ones (unless ``only_correct`` is False), capped per task; input order is kept."""
    candidates = [r for r in rows if r.trajectory.correct or not only_correct]
    by_task: dict[str, list[Located]] = defaultdict(list)
    for row in candidates:
        by_task[task_family(row.trajectory)].append(row)
    keep: set[int] = set()
    for group in by_task.values():
        ranked = sorted(group, key=lambda r: (derive_seed(seed, "sft-cap", r.trajectory.id), r.line))
        keep.update(id(r) for r in ranked[:max_per_task])
    chosen = [r for r in candidates if id(r) in keep]
    stats = SelectionStats(len(rows), len(rows) - len(candidates), len(candidates) - len(chosen), len(chosen),
                           len(by_task))
    return chosen, stats


def build_sequences(rows: Sequence[Located], builder: SequenceBuilder) -> list[TokenSequence]:
    out = []
    for row in rows:
        try:
            seq = builder.build(row.trajectory)
        except SequenceError as err:
            raise BadRecord(row.path, row.line, err.field, err.problem) from None
        if seq is not None:
            out.append(seq)
    return out


def data_fingerprint(sequences: Sequence[TokenSequence]) -> str:
    h = hashlib.sha256()
    for seq in sequences:
        h.update(len(seq.input_ids).to_bytes(4, "big"))
        h.update(b"".join(i.to_bytes(4, "big") for i in seq.input_ids))
        h.update(bytes(seq.loss_mask))
    return h.hexdigest()


def steps_per_epoch(num_sequences: int, batch_size: int) -> int:
    if num_sequences < batch_size:
        raise R1ciError(f"only {num_sequences} training sequences for --batch-size {batch_size}; "
                        "lower --batch-size or give more trajectories")
    return num_sequences // batch_size


def epoch_order(seed: int, epoch: int, num_sequences: int) -> list[int]:
    import torch

    generator = torch.Generator().manual_seed(derive_seed(seed, "sft-epoch", epoch))
    return torch.randperm(num_sequences, generator=generator).tolist()


def global_batch(order: Sequence[int], batch_index: int, batch_size: int) -> list[int]:
    return list(order[batch_index * batch_size:(batch_index + 1) * batch_size])


def rank_micro_batches(batch: Sequence[int], sequences: Sequence[TokenSequence], micro_batch_size: int,
                       world_size: int, rank: int) -> list[list[int]]:
    """This rank's micro-batches of one global batch (see the module docstring)."""
    by_length = sorted(batch, key=lambda i: (len(sequences[i].input_ids), i))
    micro = [by_length[k:k + micro_batch_size] for k in range(0, len(by_length), micro_batch_size)]
    return micro[rank::world_size]


def predicted_loss_tokens(seq: TokenSequence) -> int:
    """Loss tokens that are predicted (position 0 never is)."""
    return sum(seq.loss_mask[1:])
