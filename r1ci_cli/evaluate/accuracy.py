"""Accuracy tables over trajectories: per task, per source, per split, overall — the paper's way. The one
definition of accuracy: ``eval``'s tables and reports and the README's ablation table all use it.

Contract:

* Accuracy of a task is the mean over its trajectories of ``correct`` (pass@1 with one sample per instance).
  Source, split and overall accuracies average the **task** accuracies (docs/paper.md "Headline results":
  averages over tasks), so a task with many instances does not dominate. ``overall_accuracy`` is the
  overall number.
* 95% intervals: Wilson score interval for a task; for an average over K tasks, a normal interval with
  variance Σ p_t(1−p_t)/n_t / K² (the tasks' binomial variances, independent). Deterministic, no bootstrap.
* With k samples per instance, ``pass@k`` uses the unbiased estimator 1 − C(n−c, k)/C(n, k) per instance,
  averaged over instances of a task; ``accuracy`` stays the mean over all samples.
* Behaviour: mean code calls, share of trajectories that run code, finish reasons, mean response tokens
  (token ids of model turns when stored, else the rollout's ``usage``, else whitespace words — text backends
  such as the reference teacher count no tokens), and the
  self-check rate: the share of trajectories that execute more code after the first execution result whose
  output already contains the final answer (the model checks a candidate it has already printed).
* Paired comparison of two models on the same instances (``paired``): an instance's score is its share of
  correct samples; wins/losses count the instances where one model scores higher/lower, and the exact two-sided
  sign test over them (ties dropped) says whether the difference is beyond noise. Intervals of two models'
  accuracies can overlap while the paired test is clear: both saw the same questions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from r1ci_cli.records import Trajectory

SOURCE_NAMES = {"symbench": "SymBench", "bbh": "BBH", "rgym": "Reasoning-Gym"}
Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one instance with n samples, c of them correct."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per instance, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def response_tokens(traj: Trajectory) -> int:
    model_turns = [t for t in traj.turns if t.role == "model"]
    if model_turns and all(t.ids is not None for t in model_turns):
        return sum(len(t.ids or ()) for t in model_turns)
    usage = traj.extra.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int) and usage["completion_tokens"] > 0:
        return usage["completion_tokens"]
    return sum(len(t.text.split()) for t in model_turns)


def self_checks(traj: Trajectory) -> bool:
    """True when code runs again after an execution result that already showed the final answer."""
    answer = (traj.answer or "").strip()
    if not answer:
        return False
    exec_turns = [i for i, t in enumerate(traj.turns) if t.role == "exec"]
    for position, index in enumerate(exec_turns):
        if answer in traj.turns[index].text:
            return position + 1 < len(exec_turns)
    return False


@dataclass
class Tally:
    """Counts over a set of trajectories (one task, usually)."""

    n: int = 0
    correct: int = 0
    code_calls: int = 0
    uses_code: int = 0
    tokens: int = 0
    self_check: int = 0
    finish: Counter = field(default_factory=Counter)
    per_instance: dict[str, list[int]] = field(default_factory=dict)

    def add(self, traj: Trajectory) -> None:
        self.n += 1
        self.correct += int(traj.correct)
        self.code_calls += traj.num_code_calls
        self.uses_code += int(traj.num_code_calls > 0)
        self.tokens += response_tokens(traj)
        self.self_check += int(self_checks(traj))
        self.finish[traj.finish] += 1
        counts = self.per_instance.setdefault(traj.task_id, [0, 0])
        counts[0] += 1
        counts[1] += int(traj.correct)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def pass_at(self, k: int) -> float:
        values = [pass_at_k(n, c, k) for n, c in self.per_instance.values()]
        return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class Row:
    """One line of a summary: a task, a source, a split or everything, for one model."""

    model: str
    level: str  # task | source | split | overall
    name: str
    num_tasks: int
    num_trajectories: int
    accuracy: float
    ci_low: float
    ci_high: float
    pass_at_k: float | None
    mean_code_calls: float
    code_use_rate: float
    self_check_rate: float
    mean_response_tokens: float
    finish: dict[str, int]

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _task_key(traj: Trajectory) -> tuple[str, str, str]:
    extra = traj.extra
    return (str(extra.get("source", "?")), str(extra.get("split", "?")), str(extra.get("task", traj.task_id)))


def summarize(trajectories: Iterable[Trajectory], model: str, k: int = 1) -> list[Row]:
    """Rows for every task, then per source, per split and overall (macro averages over tasks)."""
    tasks: dict[tuple[str, str, str], Tally] = {}
    for traj in trajectories:
        tasks.setdefault(_task_key(traj), Tally()).add(traj)
    rows = []
    for (source, split, name), tally in sorted(tasks.items(), key=lambda kv: kv[0]):
        low, high = wilson(tally.correct, tally.n)
        rows.append(_row(model, "task", name, [tally], k, (low, high)))
    groups: list[tuple[str, str, list[Tally]]] = []
    for source in sorted({key[0] for key in tasks}):
        groups.append(("source", SOURCE_NAMES.get(source, source), [t for key, t in tasks.items() if key[0] == source]))
    for split in sorted({key[1] for key in tasks}):
        groups.append(("split", split, [t for key, t in tasks.items() if key[1] == split]))
    groups.append(("overall", "all", list(tasks.values())))
    for level, name, tallies in groups:
        rows.append(_row(model, level, name, tallies, k, None))
    return rows


def instance_scores(trajectories: Iterable[Trajectory]) -> dict[str, float]:
    """Each instance's share of correct trajectories (its pass@1 estimate), by task id."""
    counts: dict[str, list[int]] = {}
    for traj in trajectories:
        n_c = counts.setdefault(traj.task_id, [0, 0])
        n_c[0] += 1
        n_c[1] += int(traj.correct)
    return {task_id: c / n for task_id, (n, c) in counts.items()}


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test: the probability of a split at least this uneven when wins and losses are
    equally likely (1.0 when there is nothing to compare)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / 2**n)


@dataclass(frozen=True)
class Paired:
    """``model`` against ``baseline`` on the instances both were evaluated on."""

    model: str
    baseline: str
    instances: int
    wins: int
    losses: int
    delta: float  # mean over those instances of the score difference (model - baseline)
    p_value: float


def paired(model: str, scores: dict[str, float], baseline: str, base_scores: dict[str, float]) -> Paired:
    common = sorted(scores.keys() & base_scores.keys())
    wins = sum(scores[i] > base_scores[i] for i in common)
    losses = sum(scores[i] < base_scores[i] for i in common)
    delta = sum(scores[i] - base_scores[i] for i in common) / len(common) if common else 0.0
    return Paired(model, baseline, len(common), wins, losses, delta, sign_test(wins, losses))


def overall_accuracy(trajectories: Iterable[Trajectory]) -> float:
    """The overall accuracy of a set of trajectories: the mean over tasks of each task's share of correct
    trajectories (``summarize``'s ``overall`` row); 0 for no trajectories."""
    return next(row.accuracy for row in summarize(trajectories, "") if row.level == "overall")


def _row(model: str, level: str, name: str, tallies: list[Tally], k: int,
         interval: tuple[float, float] | None) -> Row:
    accuracies = [t.accuracy for t in tallies]
    mean = sum(accuracies) / len(accuracies) if accuracies else 0.0
    if interval is None:
        variance = sum(t.accuracy * (1 - t.accuracy) / t.n for t in tallies if t.n) / max(len(tallies), 1) ** 2
        half = Z95 * math.sqrt(variance)
        interval = (max(0.0, mean - half), min(1.0, mean + half))
    n = sum(t.n for t in tallies)
    finish: Counter = Counter()
    for t in tallies:
        finish.update(t.finish)
    pass_k = sum(t.pass_at(k) for t in tallies) / len(tallies) if (k > 1 and tallies) else None
    return Row(model, level, name, len(tallies), n, mean, interval[0], interval[1], pass_k,
               sum(t.code_calls for t in tallies) / n if n else 0.0,
               sum(t.uses_code for t in tallies) / n if n else 0.0,
               sum(t.self_check for t in tallies) / n if n else 0.0,
               sum(t.tokens for t in tallies) / n if n else 0.0,
               dict(sorted(finish.items())))
