"""Improvement potential and the multi-stage curriculum (docs/paper.md "Multi-stage curriculum").

For each training instance, p is the share of correct answers among the SFT model's samples (paper: 4
styles × 5 temperatures = 20), and its improvement potential is Π = 4·p·(1−p): 1 at p = 0.5, 0 at p = 0
or 1, because with binary rewards the group-advantage variance is p(1−p)(1−1/G). Instances (not tasks)
are sorted by Π, highest first, ties broken by a stable hash of the instance id, and cut into ``groups``
equal parts; group 1 holds the highest Π. Stage s trains on groups 1..s (cumulative).

Scoring must see every sample of an instance before it can score it, so it buffers all trajectories'
(task id, correct) pairs and the first trajectory of each instance; it does not keep the turns. A trajectory
the infrastructure ended (``infra_error``: a sandbox or backend failure, a verifier exception) is no sample
of the model: it is not counted, and an instance left with fewer than ``min_samples`` valid samples is named
on stderr and not scored.

Online re-estimation (beyond the paper, which scores Π once from the SFT model). Every GRPO group of rl-stage
measures its instance's current pass rate for free; ``PassRates`` keeps a running p per instance (the latest
group's, or an exponential average starting from the static p) and rl-stage writes it to its output as a
Task-keyed stream (``STATS_FILE``: one object per instance, ``id`` the Task id). ``regroup`` re-sorts the
instances the earlier stages did not reach (group >= the next stage): an instance with a measured p keeps
it; the others take their static p shifted by the mean change (measured − static) of the trained instances
of the same task, clipped to [0, 1], so a task the policy got better at moves its untrained instances with
it. They are cut into the remaining groups (next stage .. last) by that Π; reached instances keep their
groups. ``rl-stage --regroup online`` does it when a stage starts; ``score-potential --update STATS`` as a
pipeline step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass

from r1ci_cli.errors import BadRecord, R1ciError
from r1ci_cli.records import Task, Trajectory, is_infra_error, task_from_trajectory
from r1ci_cli.seeds import stable_hash

log = logging.getLogger("r1ci.score-potential")


@dataclass(frozen=True)
class PotentialOptions:
    groups: int = 4  # docs/paper.md "Multi-stage curriculum": 4 equal groups
    min_samples: int = 4


@dataclass
class _Tally:
    first: Trajectory
    num_samples: int = 0  # valid samples (infra_error not counted)
    num_correct: int = 0
    num_infra_errors: int = 0


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
        if is_infra_error(traj):
            entry.num_infra_errors += 1
            continue
        entry.num_samples += 1
        entry.num_correct += int(traj.correct)
    return tallies


def score_groups(trajectories: Iterable[Trajectory], opts: PotentialOptions) -> list[Task]:
    """One Task per instance with ``num_samples, num_correct, p, potential, group``, highest Π first."""
    if opts.groups < 1:
        raise R1ciError("--groups must be at least 1")
    tallies = tally(trajectories)
    infra = sum(t.num_infra_errors for t in tallies.values())
    if infra:
        log.warning("%d infra_error trajectories (sandbox/backend failures, verifier exceptions) are not counted",
                    infra)
    too_few = sorted(tid for tid, t in tallies.items() if t.num_samples < opts.min_samples)
    if too_few:
        shown = ", ".join(f"{tid} ({tallies[tid].num_samples} valid"
                          + (f", {tallies[tid].num_infra_errors} infra_error" if tallies[tid].num_infra_errors else "")
                          + ")" for tid in too_few[:10])
        shown += f" … (+{len(too_few) - 10} more)" if len(too_few) > 10 else ""
        log.warning("not scored: %d instance(s) with fewer than %d valid samples: %s", len(too_few),
                    opts.min_samples, shown)
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


def read_staged(path: str) -> list[Task]:
    """Every Task of a score-potential output (rl-stage reads all first); one without a positive integer
    ``group`` is a BadRecord naming the file and line."""
    from r1ci_cli.streams import display_name, read_dicts

    if path != "-" and not os.path.exists(path):
        raise R1ciError(f"{path}: no such file")
    name = display_name(path)
    tasks = []
    for line_no, data in read_dicts(path):
        task = Task.from_dict(data, name, line_no)
        group = data.get("group")
        if not isinstance(group, int) or isinstance(group, bool) or group < 1:
            problem = "missing" if group is None else f"must be a positive integer, got {group!r}"
            raise BadRecord(name, line_no, "group", f"{problem} (run score-potential first: it adds the groups)")
        tasks.append(task)
    return tasks


def stage_filter(tasks: Iterable[Task], stage: int) -> Iterator[Task]:
    """The instances stage ``stage`` trains on: groups 1..stage (cumulative)."""
    for task in tasks:
        group = task.extra.get("group")
        if not isinstance(group, int) or isinstance(group, bool):
            raise R1ciError(f"task {task.id} has no integer 'group' (run score-potential first)")
        if group <= stage:
            yield task


# ------------------------------------------------------------------------------------ online re-estimation

STATS_FILE = "instance-stats.jsonl.zst"
P_UPDATES = ("latest", "ema")


@dataclass
class PassRate:
    """The running pass rate of one instance (one row of ``STATS_FILE``, keyed by the Task ``id``)."""

    id: str
    task: str | None  # the task family
    p: float  # the running estimate
    p_static: float | None  # score-potential's p (from the SFT model), when the Task had one
    num_groups: int = 0
    num_samples: int = 0  # valid samples over all groups (infra_error not counted)
    num_correct: int = 0
    stage: int = 0  # the last stage that measured it
    last_step: int = 0  # that stage's step (1-based)


class PassRates:
    """Running pass rates per instance id, updated from GRPO groups; ``state``/``from_state`` for checkpoints."""

    def __init__(self, mode: str = "latest", ema: float = 0.5, entries: Mapping[str, PassRate] | None = None):
        if mode not in P_UPDATES:
            raise R1ciError(f"--p-update must be one of {', '.join(P_UPDATES)}")
        if not 0.0 < ema <= 1.0:
            raise R1ciError("--p-ema must be in (0, 1]")
        self.mode, self.ema = mode, ema
        self.entries: dict[str, PassRate] = dict(entries or {})

    def update(self, task: Task, num_correct: int, num_valid: int, stage: int, step: int) -> None:
        """One group's outcome: ``num_correct`` of ``num_valid`` valid members right (``task``: its instance)."""
        if num_valid < 1:
            return
        rate = num_correct / num_valid
        entry = self.entries.get(task.id)
        if entry is None:
            static = task.extra.get("p")
            static = float(static) if isinstance(static, (int, float)) and not isinstance(static, bool) else None
            entry = self.entries[task.id] = PassRate(task.id, task.task, static if static is not None else rate,
                                                     static)
            if static is None or self.mode == "latest":
                entry.p = rate
            else:
                entry.p = (1 - self.ema) * static + self.ema * rate
        else:
            entry.p = rate if self.mode == "latest" else (1 - self.ema) * entry.p + self.ema * rate
        entry.num_groups += 1
        entry.num_samples += num_valid
        entry.num_correct += num_correct
        entry.stage, entry.last_step = stage, step

    def state(self) -> list[dict]:
        return [asdict(self.entries[key]) for key in sorted(self.entries)]

    @classmethod
    def from_state(cls, rows: Iterable[Mapping], mode: str = "latest", ema: float = 0.5) -> PassRates:
        return cls(mode, ema, {row["id"]: PassRate(**row) for row in rows})

    def records(self) -> list[dict]:
        """The Task-keyed rows of ``STATS_FILE``, by id."""
        return [{**row, "p": round(row["p"], 6)} for row in self.state()]


def read_stats(path: str) -> list[dict]:
    """Rows of a ``STATS_FILE``, validated; a bad one is a BadRecord naming the file and line."""
    from r1ci_cli.streams import display_name, read_dicts

    if not os.path.exists(path):
        raise R1ciError(f"{path}: no such file")
    name = display_name(path)
    fields = {f: t for f, t in PassRate.__annotations__.items()}
    rows = []
    for line_no, data in read_dicts(path):
        row = {}
        for key in fields:
            value = data.get(key)
            if key == "id":
                ok = isinstance(value, str)
            elif key in ("task",):
                ok = value is None or isinstance(value, str)
            elif key in ("p", "p_static"):
                ok = (value is None and key == "p_static") or (isinstance(value, (int, float))
                                                               and not isinstance(value, bool) and 0 <= value <= 1)
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            if not ok:
                raise BadRecord(name, line_no, key, f"invalid or missing in an instance-stats row: {value!r}")
            row[key] = float(value) if key in ("p", "p_static") and value is not None else value
        rows.append(row)
    return rows


def family_shifts(tasks: Iterable[Task], stats: Mapping[str, PassRate]) -> dict[str, tuple[float, int]]:
    """Per task family: the mean of (running p − static p) over its measured instances, and their number."""
    sums: dict[str, list[float]] = {}
    for task in tasks:
        entry = stats.get(task.id)
        if entry is not None and entry.p_static is not None:
            sums.setdefault(task.task, []).append(entry.p - entry.p_static)
    return {family: (sum(values) / len(values), len(values)) for family, values in sums.items()}


def regroup(tasks: list[Task], stats: Mapping[str, PassRate], next_stage: int) -> list[Task]:
    """Re-sort the instances of groups >= ``next_stage`` by their current Π and cut them into groups
    ``next_stage`` .. last (module docstring); every other instance keeps its group. Adds ``p_online`` and
    ``potential_online`` to the regrouped ones."""
    num_groups = max((int(t.extra["group"]) for t in tasks), default=0)
    rest = [t for t in tasks if int(t.extra["group"]) >= next_stage]
    if next_stage < 1 or not rest:
        return list(tasks)
    shifts = family_shifts(tasks, stats)
    scored = []
    for task in rest:
        entry = stats.get(task.id)
        static = task.extra.get("p")
        if entry is not None:
            p_now = entry.p
        elif isinstance(static, (int, float)) and not isinstance(static, bool):
            p_now = min(1.0, max(0.0, float(static) + shifts.get(task.task, (0.0, 0))[0]))
        else:
            raise R1ciError(f"task {task.id} has no 'p' (run score-potential first)")
        scored.append((potential(p_now), p_now, task))
    scored.sort(key=lambda row: (-row[0], stable_hash(row[2].id), row[2].id))
    new_group: dict[str, tuple[int, float, float]] = {}
    position = 0
    for offset, size in enumerate(group_sizes(len(scored), num_groups - next_stage + 1)):
        for pi, p_now, task in scored[position:position + size]:
            new_group[task.id] = (next_stage + offset, p_now, pi)
        position += size
    moved = sum(1 for t in rest if new_group[t.id][0] != t.extra["group"])
    shown = ", ".join(f"{family} {shift:+.3f} ({count} measured)" for family, (shift, count) in sorted(shifts.items()))
    log.info("online regroup for stage %d: %d unreached instance(s) re-sorted by their current p (%d measured; "
             "task shifts: %s); %d changed group", next_stage, len(rest), sum(t.id in stats for t in rest),
             shown or "none", moved)
    out = []
    for task in tasks:
        if task.id in new_group:
            group, p_now, pi = new_group[task.id]
            extra = {**task.extra, "group": group, "p_online": round(p_now, 6), "potential_online": round(pi, 6)}
            task = Task(**{**_fields(task), "extra": extra})
        out.append(task)
    return out


def next_stage_of(stats: Iterable[PassRate]) -> int:
    """The stage after the last one that measured any instance (1 when none did)."""
    return max((entry.stage for entry in stats), default=0) + 1
