"""``eval`` jobs: roll out test tasks with one or several models (pass@1 at T = 0.6), then summarise.

* One model: trajectories go to ``output`` (``-`` = stdout). Several models (``--model A --model B``):
  ``output`` is a directory and each model's trajectories go to ``<output>/<name>.jsonl.zst``.
* When summary rows or a report are asked for and trajectories would also go to stdout, the trajectories
  go to a temporary file instead: stdout carries one kind of record.
* Rollouts are the rollout command's own (``rollout.job.run_rollout``), so ``--resume`` works the same way
  and the same seed gives the same trajectories on CPU.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from r1ci_cli.backends.base import BackendOptions
from r1ci_cli.errors import R1ciError
from r1ci_cli.evaluate.accuracy import Paired, Row, instance_scores, paired, summarize
from r1ci_cli.evaluate.report import plot, render_report
from r1ci_cli.model_source import resolve_model
from r1ci_cli.records import Trajectory
from r1ci_cli.rollout.job import RolloutJob, run_rollout
from r1ci_cli.rollout.loop import RolloutOptions
from r1ci_cli.rollout.sandbox import SandboxSettings
from r1ci_cli.streams import atomic_file, dumps, open_records

log = logging.getLogger("r1ci.eval")


@dataclass(frozen=True)
class EvalJob:
    """An eval run: ``backend`` says how to open every model of ``models`` (its own ``model`` is not used)."""

    src: str = "-"
    output: str = "-"
    models: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    backend: BackendOptions = field(default_factory=BackendOptions)
    rollout: RolloutOptions = field(default_factory=lambda: RolloutOptions(temperature=0.6))
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    resume: bool = False
    progress: bool = True
    summary: bool = False
    report: str | None = None
    stages: tuple[str, ...] = ()
    baseline: str | None = None


def model_names(models: Sequence[str], names: Sequence[str], backend: str) -> list[str]:
    if names and len(names) != len(models):
        raise R1ciError(f"--names gives {len(names)} names for {len(models)} models")
    if names:
        chosen = list(names)
    elif backend == "reference" and not models:
        chosen = ["reference"]
    else:
        chosen = [Path(m.rstrip("/")).name or m for m in models]
    if len(set(chosen)) != len(chosen):
        raise R1ciError(f"model names must differ ({', '.join(chosen)}): give --names")
    return chosen


def read_rows(path: str, name: str, samples: int) -> tuple[list[Row], dict[str, float]]:
    """A file's summary rows and its instances' scores (share of correct samples, by task id)."""
    with open_records(path, Trajectory) as rows:
        trajectories = list(rows)
    summary = summarize(trajectories, name, k=samples)
    if not any(row.num_trajectories for row in summary):
        raise R1ciError(f"{path}: no trajectories to summarise")
    return summary, instance_scores(trajectories)


def check_baseline(baseline: str | None, names: Sequence[str]) -> None:
    """``--baseline`` names one of the compared models (checked before any rollout or file is read)."""
    if baseline is not None and baseline not in names:
        raise R1ciError(f"--baseline {baseline}: not among the compared models ({', '.join(names)})")


def pairs_of(scores: dict[str, dict[str, float]], baseline: str | None) -> list[Paired]:
    """Each model against the one before it, and every other model against ``baseline`` when given (a pair
    already there the other way round is not repeated)."""
    names = list(scores)
    wanted = [(b, a) for a, b in zip(names, names[1:])]
    if baseline is not None:
        wanted += [(m, baseline) for m in names
                   if m != baseline and (m, baseline) not in wanted and (baseline, m) not in wanted]
    return [paired(m, scores[m], b, scores[b]) for m, b in wanted]


def emit(rows_by_model: dict[str, list[Row]], summary: bool, report: str | None, stages: Sequence[str],
         scores: dict[str, dict[str, float]] | None = None, baseline: str | None = None) -> None:
    """Summary rows on stdout (JSON lines) and the markdown report with its PNG beside it."""
    pairs = pairs_of(scores, baseline) if scores else []
    if summary:
        out = sys.stdout.buffer
        for rows in rows_by_model.values():
            for row in rows:
                out.write(dumps(row.to_dict()))
        out.flush()
    if report:
        image = str(Path(report).with_suffix(".png"))
        with atomic_file(image) as handle:
            plot(rows_by_model, handle, stages=list(stages) or None)
        text = render_report(rows_by_model, image=os.path.basename(image), pairs=pairs)
        with atomic_file(report, "w") as handle:
            handle.write(text)
        log.info("wrote %s and %s", report, image)


def run_eval(job: EvalJob) -> dict[str, list[Row]]:
    kind = job.backend.kind
    models = list(job.models) or ([""] if kind == "reference" else [])
    if not models:
        raise R1ciError(f"--backend {kind} needs --model")
    names = model_names(job.models, job.names, kind)
    if kind in ("hf", "vllm"):
        for model in models:  # every model is checked before the first one's rollout
            resolve_model(model)
    wants_rows = job.summary or job.report is not None
    several = len(models) > 1
    scratch = tempfile.mkdtemp(prefix="r1ci-eval-")
    try:
        src = job.src
        if src == "-" and several:  # every model reads the same tasks
            src = os.path.join(scratch, "tasks.jsonl")
            with open(src, "wb") as handle:
                shutil.copyfileobj(sys.stdin.buffer, handle)
        if several and job.output != "-":
            Path(job.output).mkdir(parents=True, exist_ok=True)
        rows_by_model: dict[str, list[Row]] = {}
        scores: dict[str, dict[str, float]] = {}
        check_baseline(job.baseline, names)
        for model, name in zip(models, names):
            if several:
                target = (os.path.join(job.output, f"{name}.jsonl.zst") if job.output != "-"
                          else os.path.join(scratch, f"{name}.jsonl.zst"))
            elif job.output == "-" and wants_rows:
                target = os.path.join(scratch, "trajectories.jsonl.zst")
            else:
                target = job.output
            log.info("eval: %s (%s)", name, kind)
            run_rollout(RolloutJob(src=src, output=target, backend=replace(job.backend, model=model or None),
                                   rollout=job.rollout, sandbox=job.sandbox, resume=job.resume and target != "-",
                                   progress=job.progress))
            if wants_rows:
                rows_by_model[name], scores[name] = read_rows(target, name, job.rollout.samples)
        emit(rows_by_model, job.summary, job.report, job.stages, scores, job.baseline)
        return rows_by_model
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def report_files(paths: Sequence[str], names: Sequence[str], samples: int, summary: bool, report: str | None,
                 stages: Sequence[str], baseline: str | None = None) -> dict[str, list[Row]]:
    """``eval report``: summarise existing trajectory files side by side."""
    chosen = list(names) if names else [Path(p).name.split(".")[0] for p in paths]
    if len(chosen) != len(paths):
        raise R1ciError(f"--names gives {len(chosen)} names for {len(paths)} files")
    if len(set(chosen)) != len(chosen):
        raise R1ciError(f"file names must differ ({', '.join(chosen)}): give --names")
    check_baseline(baseline, chosen)
    read = {name: read_rows(path, name, samples) for path, name in zip(paths, chosen)}
    rows_by_model = {name: rows for name, (rows, _) in read.items()}
    emit(rows_by_model, summary, report, stages, {name: sc for name, (_, sc) in read.items()}, baseline)
    return rows_by_model
