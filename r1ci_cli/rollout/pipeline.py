"""The data-pipeline side of a rollout job: which tasks a shard reads, which trajectories it keeps, their order.

* ``--shard i/n`` keeps the tasks at input positions ``p`` with ``p % n == i`` (0-based ``i``): balanced,
  and the same split on every node given the same input (SLURM array jobs use ``$SLURM_ARRAY_TASK_ID``).
* ``keep_filter`` applies ``--keep correct`` (drops wrong and sandbox-failed trajectories) and
  ``--max-per-task N`` (the first N kept trajectories of each task family, in output order; docs/paper.md "SFT":
  at most 70 per task), streaming. A family is the trajectory's ``task`` field (``records.task_family``),
  the same count ``sft --max-per-task`` makes.
* ``output_order`` sorts finished trajectories by their task's input position, then sample, so a resumed or
  parallel run writes the same bytes as an uninterrupted one. (Tasks are rebuilt from trajectories by
  ``records.task_from_trajectory``.)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task, Trajectory, is_infra_error, task_family

KEEP_CHOICES = ("all", "correct")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def selects(self, position: int) -> bool:
        return position % self.count == self.index


def parse_shard(text: str | None) -> Shard | None:
    """``"i/n"`` → Shard(i, n) with 0 ≤ i < n; None when no sharding was asked for."""
    if text is None or text == "":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"--shard must look like i/n (for example 0/4), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return Shard(index, count)


def shard_tasks(tasks: Iterable[Task], shard: Shard | None, positions: dict[str, int] | None = None) -> Iterator[Task]:
    """The tasks of one shard; ``positions`` (if given) records each kept task's input position."""
    for position, task in enumerate(tasks):
        if shard is None or shard.selects(position):
            if positions is not None:
                if task.id in positions:
                    raise R1ciError(f"task id {task.id!r} appears twice in the input")
                positions[task.id] = position
            yield task


def _get(row: Trajectory | dict[str, Any], name: str) -> Any:
    if isinstance(row, dict):
        return row.get(name)
    return getattr(row, name)


def keep_filter(rows: Iterable[Any], keep: str = "all", max_per_task: int | None = None) -> Iterator[Any]:
    """Trajectories (records or dicts) that pass ``--keep`` and ``--max-per-task``, in their given order."""
    if keep not in KEEP_CHOICES:
        raise ValueError(f"--keep must be one of {', '.join(KEEP_CHOICES)}")
    counts: Counter = Counter()
    for row in rows:
        if keep == "correct" and not (_get(row, "correct") is True and not is_infra_error(row)):
            continue
        family = task_family(row)
        if max_per_task is not None and counts[family] >= max_per_task:
            continue
        counts[family] += 1
        yield row


def output_order(positions: dict[str, int]):
    """Sort key for finished records: input position of the task, then sample index, then id."""
    def key(row: dict[str, Any]) -> tuple[int, int, int, str]:
        position = positions.get(str(row.get("task_id")))
        sample = row.get("sample_index")
        return (0 if position is not None else 1, position if position is not None else 0,
                sample if isinstance(sample, int) else 0, str(row.get("id")))
    return key
