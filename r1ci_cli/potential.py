"""Improvement potential and the multi-stage curriculum (docs/paper.md "Multi-stage curriculum").

For each training instance, p is the share of correct answers among the SFT model's samples (paper: 4
styles × 5 temperatures = 20), and its improvement potential is Π = 4·p·(1−p): 1 at p = 0.5, 0 at p = 0
or 1, because with binary rewards the group-advantage variance is p(1−p)(1−1/G). Instances (not tasks)
are sorted by Π, highest first, ties broken by a stable hash of the instance id, and cut into ``groups``
equal parts; group 1 holds the highest Π. Stage s trains on groups 1..s (cumulative).

Scoring must see every sample of an instance before it can score it, so it buffers all trajectories'
(task id, correct) pairs and the first trajectory of each instance; it does not keep the turns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task, Trajectory, task_from_trajectory
from r1ci_cli.seeds import stable_hash

log = logging.getLogger("r1ci.score-potential")


@dataclass(frozen=True)
class PotentialOptions:
    groups: int = 4  # docs/paper.md "Multi-stage curriculum": 4 equal groups
    min_samples: int = 4


@dataclass
class _Tally:
    first: Trajectory
    num_samples: int = 0
    num_correct: int = 0


def potential(p: float) -> float:
    """Π = 4·p·(1−p)."""
    return 4.0 * p * (1.0 - p)


def group_sizes(count: int, groups: int) -> list[int]:
    """Equal parts; when ``count`` does not divide evenly, the first groups get one more."""
    base, rest = divmod(count, groups)
    return [base + (1 if g < rest else 0) for g in range(groups)]


def tally(trajectories: Iterable[Trajectory]) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = {}
    for traj in trajectories:
        entry = tallies.get(traj.task_id)
        if entry is None:
            entry = tallies[traj.task_id] = _Tally(traj)
        entry.num_samples += 1
        entry.num_correct += int(traj.correct)
    return tallies


def score_groups(trajectories: Iterable[Trajectory], opts: PotentialOptions) -> list[Task]:
    """One Task per instance with ``num_samples, num_correct, p, potential, group``, highest Π first."""
    if opts.groups < 1:
        raise R1ciError("--groups must be at least 1")
    tallies = tally(trajectories)
    too_few = sorted(tid for tid, t in tallies.items() if t.num_samples < opts.min_samples)
    if too_few:
        shown = ", ".join(too_few[:10]) + (f" … (+{len(too_few) - 10} more)" if len(too_few) > 10 else "")
        log.warning("dropping %d instance(s) with fewer than %d samples: %s", len(too_few), opts.min_samples, shown)
    kept = [(tid, t) for tid, t in tallies.items() if t.num_samples >= opts.min_samples]
    if not kept:
        raise R1ciError(f"no instance has at least --min-samples {opts.min_samples} trajectories")
    scored = []
    for tid, t in kept:
        p = t.num_correct / t.num_samples
        scored.append((potential(p), p, tid, t))
    scored.sort(key=lambda row: (-row[0], stable_hash(row[2]), row[2]))
    if scored[0][0] == 0.0:
        wrong = sum(1 for _pi, p, _tid, _t in scored if p == 0.0)
        log.warning("every instance has potential 0 (%d always wrong, %d always right): the groups are an "
                    "arbitrary split and GRPO on them has no advantage to learn from; sample more or other "
                    "instances, or check the rollouts", wrong, len(scored) - wrong)
    tasks: list[Task] = []
    position = 0
    for group, size in enumerate(group_sizes(len(scored), opts.groups), start=1):
        for pi, p, _tid, t in scored[position:position + size]:
            task = task_from_trajectory(t.first)
            extra = {**task.extra, "num_samples": t.num_samples, "num_correct": t.num_correct,
                     "p": round(p, 6), "potential": round(pi, 6), "group": group}
            tasks.append(Task(**{**_fields(task), "extra": extra}))
        position += size
    return tasks


def _fields(task: Task) -> dict:
    return {"id": task.id, "source": task.source, "task": task.task, "split": task.split, "seed": task.seed,
            "question": task.question, "check": task.check, "answer": task.answer}


def histogram(tasks: list[Task], bins: int = 10, width: int = 40) -> str:
    """A text histogram of Π and the Π range of each group, for stderr."""
    counts = [0] * bins
    for task in tasks:
        counts[min(int(task.extra["potential"] * bins), bins - 1)] += 1
    peak = max(counts) or 1
    lines = ["potential histogram (Π = 4p(1-p)):"]
    for i, count in enumerate(counts):
        lo, hi = i / bins, (i + 1) / bins
        lines.append(f"  [{lo:.1f}, {hi:.1f}{']' if i == bins - 1 else ')'} {'#' * round(width * count / peak):<{width}} {count}")
    by_group: dict[int, list[float]] = {}
    for task in tasks:
        by_group.setdefault(task.extra["group"], []).append(task.extra["potential"])
    for group in sorted(by_group):
        values = by_group[group]
        lines.append(f"  group {group}: {len(values)} instances, Π in [{min(values):.2f}, {max(values):.2f}]")
    return "\n".join(lines)


def stage_filter(tasks: Iterable[Task], stage: int) -> Iterator[Task]:
    """The instances stage ``stage`` trains on: groups 1..stage (cumulative)."""
    for task in tasks:
        group = task.extra.get("group")
        if not isinstance(group, int) or isinstance(group, bool):
            raise R1ciError(f"task {task.id} has no integer 'group' (run score-potential first)")
        if group <= stage:
            yield task
