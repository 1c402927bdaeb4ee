"""Where a training run's metrics go besides ``metrics.jsonl``: TensorBoard and Weights & Biases.

Contract:

* ``ReportOptions.report_to`` is ``none`` or a comma-separated list of ``tensorboard`` and ``wandb``
  (``destinations``). Every option is runtime (``settings.py``): reporting never changes a run's numbers, and a
  resume may add or drop a destination.
* ``open_reporter(options, out, config, first_step, resume)`` (``train/run.py``'s ``Run.start``, rank 0) opens
  each destination through its own library: ``torch.utils.tensorboard.SummaryWriter`` writing under
  ``tensorboard_dir`` (default ``OUT/tb``), and ``wandb.init`` (project ``wandb_project``, else
  ``$WANDB_PROJECT``, else ``r1ci``; run name ``run_name``, else ``$WANDB_NAME``, else the run directory's
  name; the options as its config; wandb's own variables such as ``WANDB_MODE=offline``, ``WANDB_DIR``,
  ``WANDB_ENTITY`` apply). A missing package is a ``MissingDependency`` naming the extra
  (``pip install 'r1ci[tensorboard]'``).
* ``Reporter.log(row)`` sends every number of a metrics row at step ``row["step"]``, whatever its keys: a
  top-level number ``k`` as ``train/k``, a nested mapping ``m`` as ``m/<key>`` (``eval/accuracy``,
  ``finish/answer``), recursively; booleans count as 0/1; strings and ``None`` are not numbers and are skipped.
* ``Reporter.samples(step, trajectories, tag)``: a small table of trajectories (question, what the model wrote
  and what the sandbox answered, answer, reference, verdict, reward, finish): TensorBoard text (markdown) and a
  ``wandb.Table``.
* Resume: TensorBoard's ``purge_step`` (the first step this process writes) hides the events an earlier
  process wrote for the steps that are redone (a crash after the checkpoint, or an old run in a reused
  ``--tensorboard-dir``); W&B resumes the run whose id ``OUT/wandb-run-id`` holds (``resume="allow"``).

Not handled: several ranks (only rank 0 reports), other destinations (MLflow, Comet …).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1ci_cli.errors import MissingDependency, R1ciError
from r1ci_cli.settings import RUNTIME

log = logging.getLogger("r1ci.report")

DESTINATIONS = ("tensorboard", "wandb")
WANDB_ID_FILE = "wandb-run-id"
# What a table cell keeps of long text (a question, a transcript): the table is a glance, `r1ci show` the reader.
CELL_CHARS = 600
TRANSCRIPT_CHARS = 2000


@dataclass(frozen=True)
class ReportOptions:
    """The reporting options of sft and rl-stage (all runtime)."""

    report_to: str = field(default="none", metadata=RUNTIME)  # none | comma-separated tensorboard, wandb
    run_name: str | None = field(default=None, metadata=RUNTIME)  # None: $WANDB_NAME, else OUT's name
    tensorboard_dir: str | None = field(default=None, metadata=RUNTIME)  # None: OUT/tb
    wandb_project: str | None = field(default=None, metadata=RUNTIME)  # None: $WANDB_PROJECT, else r1ci
    samples_every: int = field(default=10, metadata=RUNTIME)  # rl-stage: a table of the step's rollouts; 0: never
    samples: int = field(default=4, metadata=RUNTIME)  # rows of a sample table

    @property
    def destinations(self) -> tuple[str, ...]:
        return destinations(self.report_to)

    def check(self) -> None:
        """Flag values (a usage error) and then the packages (a missing dependency), before any input."""
        chosen = self.destinations
        if self.samples < 0 or self.samples_every < 0:
            raise R1ciError("--report-samples and --report-samples-every must be >= 0")
        for name in chosen:
            require(name)


def destinations(value: str) -> tuple[str, ...]:
    """``none`` or a comma-separated list of ``tensorboard`` and ``wandb``, in the order given, each once."""
    names = [part.strip().lower() for part in (value or "none").split(",") if part.strip()]
    unknown = [n for n in names if n not in (*DESTINATIONS, "none")]
    if unknown:
        raise R1ciError(f"--report-to {value}: unknown destination {unknown[0]!r} (choose none, tensorboard, "
                        "wandb or a comma-separated list)")
    if "none" in names and len(names) > 1:
        raise R1ciError(f"--report-to {value}: 'none' cannot be combined with a destination")
    return tuple(dict.fromkeys(n for n in names if n != "none"))


def require(name: str) -> None:
    """Raise ``MissingDependency`` naming the extra when ``name``'s package is not installed."""
    import importlib.util

    try:  # each destination's package has the destination's name, and so has its extra
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingDependency(name, f"--report-to {name} needs it: pip install 'r1ci[{name}]'")


def flatten(row: Mapping[str, Any], prefix: str = "train") -> dict[str, float]:
    """The numbers of a metrics row as tags (module docstring); ``step`` itself is the x axis, not a tag."""
    out: dict[str, float] = {}

    def walk(value: Any, tag: str) -> None:
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(sub, f"{tag}/{key}")
        elif isinstance(value, bool):
            out[tag] = float(value)
        elif isinstance(value, (int, float)):
            out[tag] = float(value)

    for key, value in row.items():
        if key == "step":
            continue
        walk(value, str(key) if isinstance(value, Mapping) else f"{prefix}/{key}")
    return out


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more characters]"


def sample_rows(trajectories: Sequence[Any], limit: int) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of a sample table: the first ``limit`` trajectories (their order is the rollout's)."""
    columns = ["id", "task", "question", "transcript", "answer", "reference", "correct", "reward", "finish",
               "code_calls"]
    rows = []
    for traj in list(trajectories)[:limit]:
        transcript = "".join(turn.text for turn in traj.turns)
        rows.append([traj.id, str(traj.extra.get("task", "")), _cut(str(traj.extra.get("question", "")), CELL_CHARS),
                     _cut(transcript, TRANSCRIPT_CHARS), traj.answer or "", str(traj.extra.get("reference_answer", "")),
                     bool(traj.correct), float(traj.reward), traj.finish, int(traj.num_code_calls)])
    return columns, rows


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table TensorBoard's text plugin renders: pipes escaped, line breaks as ``<br>``."""

    def cell(value: Any) -> str:
        text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        return "<br>".join(text.splitlines())  # every line separator (\v, \x1c, \u2028 … too): one row per line

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class _TensorBoard:
    def __init__(self, log_dir: Path, first_step: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise MissingDependency("tensorboard", f"--report-to tensorboard needs it: pip install "
                                                   f"'r1ci[tensorboard]' ({err})") from None
        # Events an earlier process wrote at or after the first step this one writes are hidden (redone steps).
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=first_step)
        log.info("TensorBoard logs in %s (tensorboard --logdir %s)", log_dir, log_dir)

    def log(self, step: int, values: Mapping[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)

    def table(self, step: int, tag: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.writer.add_text(tag, markdown_table(columns, rows), global_step=step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _Wandb:
    def __init__(self, out: Path, options: ReportOptions, config: Mapping[str, Any], resume: bool):
        try:
            import wandb
        except ImportError as err:
            raise MissingDependency("wandb", f"--report-to wandb needs it: pip install 'r1ci[wandb]' ({err})") from None
        self.wandb = wandb
        id_file = out / WANDB_ID_FILE
        run_id = os.environ.get("WANDB_RUN_ID")
        if run_id is None and resume and id_file.is_file():
            run_id = id_file.read_text().strip() or None
        if run_id is None:  # a name, not a result: it need not (and should not) repeat across runs
            import secrets

            run_id = secrets.token_hex(4)
        id_file.write_text(run_id + "\n")
        kwargs: dict[str, Any] = {}
        if not os.environ.get("WANDB_DIR"):
            kwargs["dir"] = str(out)
        if not log.isEnabledFor(logging.INFO):  # -q: wandb's banner and summary stay quiet too
            kwargs["settings"] = wandb.Settings(silent=True)
        self.run = wandb.init(project=options.wandb_project or os.environ.get("WANDB_PROJECT") or "r1ci",
                              name=options.run_name or os.environ.get("WANDB_NAME") or out.resolve().name,
                              id=run_id, resume="allow", config=dict(config), **kwargs)
        log.info("W&B run %s (%s)", run_id, getattr(self.run, "dir", ""))

    def log(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(dict(values), step=step)

    def table(self, step: int, tag: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.run.log({tag: self.wandb.Table(columns=list(columns), data=[list(r) for r in rows])}, step=step)

    def flush(self) -> None:
        """wandb writes as it goes."""

    def close(self) -> None:
        self.run.finish()


class Reporter:
    """The open destinations of one run (none at all is a valid, silent reporter)."""

    def __init__(self, options: ReportOptions, sinks: Sequence[Any]):
        self.options, self.sinks = options, list(sinks)

    def log(self, row: Mapping[str, Any]) -> None:
        if not self.sinks:
            return
        step = int(row.get("step", 0))
        values = flatten(row)
        for sink in self.sinks:
            sink.log(step, values)

    def samples(self, step: int, trajectories: Sequence[Any], tag: str = "samples", due: bool = True) -> None:
        """A table of the first ``samples`` trajectories at ``step``; ``due=False`` applies ``samples_every``."""
        every = self.options.samples_every
        if not self.sinks or not trajectories or self.options.samples == 0:
            return
        if not due and (every == 0 or step % every):
            return
        columns, rows = sample_rows(trajectories, self.options.samples)
        for sink in self.sinks:
            sink.table(step, tag, columns, rows)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []


def open_reporter(options: ReportOptions | None, out: Path, config: Mapping[str, Any], first_step: int = 1,
                  resume: bool = False) -> Reporter:
    """The destinations of ``options`` for the run in ``out``; ``first_step``: the step this process logs first
    (a resumed run redoes the steps after its checkpoint); ``resume``: continue the W&B run of ``out``."""
    options = options or ReportOptions()
    sinks: list[Any] = []
    try:
        for name in options.destinations:
            if name == "tensorboard":
                sinks.append(_TensorBoard(Path(options.tensorboard_dir or out / "tb"), first_step))
            else:
                sinks.append(_Wandb(out, options, config, resume))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return Reporter(options, sinks)
