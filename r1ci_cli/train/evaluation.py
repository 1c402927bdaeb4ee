"""Evaluation during training: pass@1 of the current policy on a held-out task file every N steps (``--eval-tasks
FILE --eval-every N`` on sft and rl-stage).

Contract:

* ``EvalOptions`` (all runtime: an evaluation never changes what training computes). ``every`` None means at
  every checkpoint (``--save-every``); the last step is always evaluated.
* ``Evaluator(options, base, save_every, world_size)`` reads the task file at once, before any model is loaded
  (a bad file stops the run before it trains). ``base`` is the rollout options the evaluation starts from
  (rl-stage: its training rollouts'; sft: rollout's defaults); the evaluation rolls out the agent style, one
  sample per instance, at ``temperature`` (0.6, docs/paper.md "Headline results", as ``eval run``) with its own
  ``seed`` (the same at every step: only the policy differs between two evaluations), and the token budgets and
  prompt set of ``options`` where given.
* ``start(run, generator, sandbox, model, total_steps)`` binds it to the run; ``after_step(step)`` evaluates when
  ``step`` is due and returns ``{"eval": {...}}`` for the step's metrics row (``accuracy`` — the one
  definition, ``evaluate.accuracy``: the mean over tasks —, its 95% interval, code calls, response tokens,
  the shares of finish reasons, ``wall_s``), else ``{}``. The trajectories go to ``OUT/eval/step-NNNNNN.jsonl.zst`` (written
  atomically) and a table of the first few to the ``--report-to`` destinations (``eval/samples``).
* The rollouts are ``eval run``'s: the rollout loop with the trainer's generator (the live policy, or vLLM
  synced to it) and the trainer's sandbox. Torch's, Python's and numpy's global random states and the model's
  train/eval mode are restored afterwards, so a run with evaluations reaches the same weights as one without
  (tested), and resume stays exact.

Not handled: several ranks (sft with ``WORLD_SIZE`` > 1 refuses it; evaluate the checkpoints with ``eval run``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task, Trajectory
from r1ci_cli.rollout.loop import RolloutOptions
from r1ci_cli.settings import RUNTIME

log = logging.getLogger("r1ci.train.eval")

EVAL_DIR = "eval"


@dataclass(frozen=True)
class EvalOptions:
    """Evaluation during training (all runtime)."""

    tasks: str | None = field(default=None, metadata=RUNTIME)  # held-out Task file; None: no evaluation
    every: int | None = field(default=None, metadata=RUNTIME)  # optimizer steps between evaluations; None: checkpoints
    temperature: float = field(default=0.6, metadata=RUNTIME)  # docs/paper.md "Headline results": pass@1 at T = 0.6
    seed: int = field(default=0, metadata=RUNTIME)
    max_new_tokens: int | None = field(default=None, metadata=RUNTIME)  # None: the base rollout options'
    max_total_tokens: int | None = field(default=None, metadata=RUNTIME)
    prompts: str | None = field(default=None, metadata=RUNTIME)
    batch_size: int = field(default=16, metadata=RUNTIME)  # trajectories in flight (sft's hf batch)

    def check(self) -> None:
        if self.tasks is None and self.every is not None:
            raise R1ciError("--eval-every needs --eval-tasks FILE (the held-out tasks)")


def eval_path(out: Path, step: int) -> Path:
    return Path(out) / EVAL_DIR / f"step-{step:06d}.jsonl.zst"


@contextlib.contextmanager
def preserved_state(model: Any) -> Iterator[None]:
    """Restore the global random states and the model's mode after the block (the training streams)."""
    import numpy as np

    from r1ci_cli.train.engine import rng_state, set_rng_state

    torch_state, py_state, np_state = rng_state(), random.getstate(), np.random.get_state()
    training = bool(getattr(model, "training", False))
    try:
        if model is not None:
            model.eval()
        yield
    finally:
        if model is not None:
            model.train(training)
        set_rng_state(torch_state)
        random.setstate(py_state)
        np.random.set_state(np_state)


class Evaluator:
    """See the module docstring. A disabled one (no ``tasks``) returns ``{}`` at every step."""

    def __init__(self, options: EvalOptions | None, base: RolloutOptions, save_every: int, world_size: int = 1):
        from r1ci_cli.streams import read_all

        self.options = options or EvalOptions()
        self.enabled = self.options.tasks is not None
        self.every = self.options.every or save_every
        self.tasks: list[Task] = []
        self.rollout = eval_rollout_options(self.options, base)
        self._bound: tuple[Any, ...] | None = None
        self.options.check()
        if not self.enabled:
            return
        if world_size > 1:
            raise R1ciError("--eval-tasks: evaluation during training runs in one process (WORLD_SIZE is "
                            f"{world_size}); evaluate the checkpoints with `r1ci eval run` instead")
        self.tasks = read_all(self.options.tasks, Task)
        if not self.tasks:
            raise R1ciError(f"--eval-tasks {self.options.tasks}: holds no tasks")

    def start(self, run: Any, generator: Any, sandbox: Any, model: Any, total_steps: int) -> None:
        if self.enabled and sandbox is None:
            raise R1ciError("--eval-tasks: evaluation needs a sandbox to run the model's code")
        self._bound = (run, generator, sandbox, model, total_steps)

    def due(self, step: int) -> bool:
        if not self.enabled or self._bound is None:
            return False
        return step % self.every == 0 or step == self._bound[4]

    def after_step(self, step: int) -> dict[str, Any]:
        if not self.due(step):
            return {}
        run, generator, sandbox, model, _total = self._bound
        began = time.perf_counter()
        with preserved_state(model):
            trajectories = evaluate(self.tasks, generator, sandbox, self.rollout)
        path = eval_path(run.out, step)
        if run.rank == 0:
            write_trajectories(path, trajectories)
        metrics = eval_metrics(trajectories)
        metrics["wall_s"] = round(time.perf_counter() - began, 3)
        log.info("eval at step %d: accuracy %.3f [%.3f, %.3f] on %d trajectories (%.1f s) -> %s", step,
                 metrics["accuracy"], metrics["ci_low"], metrics["ci_high"], metrics["num_trajectories"],
                 metrics["wall_s"], path)
        run.report_samples(step, trajectories, "eval/samples")
        return {"eval": metrics}


def eval_rollout_options(options: EvalOptions, base: RolloutOptions) -> RolloutOptions:
    """``eval run``'s rollouts (agent style, one sample, ``temperature``, its own seed) on ``base``'s limits."""
    return replace(base, style="agent", samples=1, temperature=options.temperature, seed=options.seed,
                   max_new_tokens=options.max_new_tokens or base.max_new_tokens,
                   max_total_tokens=options.max_total_tokens or base.max_total_tokens,
                   prompts=options.prompts or base.prompts, max_in_flight=options.batch_size)


def evaluate(tasks: list[Task], generator: Any, sandbox: Any, rollout_options: RolloutOptions) -> list[Trajectory]:
    from r1ci_cli.rollout.loop import rollout

    return list(rollout(tasks, generator, sandbox, rollout_options))


def write_trajectories(path: Path, trajectories: list[Trajectory]) -> None:
    from r1ci_cli.streams import record_sink

    path.parent.mkdir(parents=True, exist_ok=True)
    with record_sink(str(path)) as sink:
        sink.write_all(trajectories)


def eval_metrics(trajectories: list[Trajectory]) -> dict[str, Any]:
    """The overall row of ``evaluate.accuracy.summarize`` (the one accuracy) as metrics."""
    from r1ci_cli.evaluate.accuracy import summarize

    from r1ci_cli.records import FINISH_REASONS

    overall = next(row for row in summarize(trajectories, "") if row.level == "overall")
    n = max(overall.num_trajectories, 1)
    reasons = [*FINISH_REASONS, *sorted(set(overall.finish) - set(FINISH_REASONS))]
    return {"accuracy": round(overall.accuracy, 6), "ci_low": round(overall.ci_low, 6),
            "ci_high": round(overall.ci_high, 6), "num_trajectories": overall.num_trajectories,
            "mean_code_calls": round(overall.mean_code_calls, 6), "code_use_rate": round(overall.code_use_rate, 6),
            "mean_response_tokens": round(overall.mean_response_tokens, 6),
            "finish": {k: round(overall.finish.get(k, 0) / n, 6) for k in reasons}}
