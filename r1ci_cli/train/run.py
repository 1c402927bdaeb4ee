"""A training run's directory, one for sft and rl-stage: opened and validated, resumed from its newest
checkpoint, its metrics appended, its checkpoints saved, its final model exported.

Layout of ``OUT`` (``CheckpointOptions.output``)::

    OUT/resolved_config.json  every flag with its value and source, the options, derived numbers, the run key
    OUT/metrics.jsonl         one row per optimizer step, appended as the run goes
    OUT/tb/, OUT/wandb/       TensorBoard events and W&B's files when --report-to asks (train/report.py)
    OUT/eval/step-NNNNNN.jsonl.zst   evaluation trajectories of --eval-every (train/evaluation.py)
    OUT/checkpoints/          step-NNNNNN/ and latest (train/checkpoint.py)
    OUT/config.json, model.safetensors, tokenizer files   the final model (save_pretrained layout), at the end

Contract:

* ``check_output(options)``, before any input is read: without ``resume`` an ``OUT`` that holds anything is
  refused (a new run never mixes with an old one's files), and so is a path under a file. Missing parent
  directories are created with ``OUT`` (``-o ckpt/sft`` without ``ckpt/``).
* ``open_run(options, key)`` writes nothing: with ``resume`` it finds the newest checkpoint (``run.checkpoint``,
  ``run.start_step``) and refuses one made with another run ``key`` (other data or settings:
  ``settings.fingerprint``); ``resume`` without a checkpoint starts from step 0.
* ``run.start(flags, options, derived)``, once the engine exists (under DeepSpeed every rank has then passed
  ``check_output``): rank 0 creates ``OUT``, cuts ``metrics.jsonl`` back to the rows the checkpoint had
  written (the steps after it are redone, never counted twice), writes ``resolved_config.json`` and opens
  the ``--report-to`` destinations (``train/report.py``; ``options.report``).
* ``append(row)`` writes one metrics row, flushes it and sends it to every destination (whatever its keys);
  ``append(row, samples=trajectories)`` also sends a table of the step's trajectories every
  ``--report-samples-every`` steps; ``report_samples`` sends one at once (evaluations). ``save(step, engine,
  tokenizer, state)`` makes the rows durable, then writes the checkpoint atomically with the step, the row
  count and the key.
* ``export(engine, tokenizer)`` puts the final model and tokenizer at the top of ``OUT``, each file moved in by
  rename. ``save`` and ``export`` are collective (every rank calls them); rank 0 writes files.
* Leaving the ``with run:`` block on an exception before any metrics row or checkpoint was written removes the
  ``OUT`` this run created: a start that failed leaves nothing to refuse the next, plain, command.

Not handled: two runs in one ``OUT`` at the same time (nothing locks it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.settings import first_difference, settings
from r1ci_cli.streams import write_bytes_atomic
from r1ci_cli.train.checkpoint import (CheckpointOptions, latest_checkpoint, read_trainer_state, save_checkpoint,
                                       truncate_metrics)

log = logging.getLogger("r1ci.train")

METRICS = "metrics.jsonl"
RESOLVED_CONFIG = "resolved_config.json"


class Run:
    """An open run directory. ``start_step`` and ``checkpoint`` say where training continues."""

    def __init__(self, options: CheckpointOptions, key: str, rank: int, checkpoint: Path | None,
                 state: Mapping[str, Any], material: Mapping[str, Any] | None = None):
        self.options, self.key, self.rank = options, key, rank
        self.material = dict(material or {})
        self.out = Path(options.output)
        self.checkpoint = checkpoint
        self.state = dict(state)
        self.start_step = int(state.get("step", 0))
        self.rows = int(state.get("metrics_rows", 0))
        self._handle: Any = None
        self._created = False  # whether start() made OUT (a failure before anything was written removes it)
        self.reporter: Any = None

    def start(self, flags: Mapping[str, Any], options: Any, derived: Mapping[str, Any]) -> None:
        """Rank 0 prepares the directory: metrics cut back to the checkpoint's rows, and resolved_config.json
        (the flags as click resolved them, value and source; every option; what the trainer derived)."""
        if self.rank != 0:
            return
        self._created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        truncate_metrics(self.out / METRICS, self.rows)
        data = {"flags": dict(flags), "options": settings(options, runtime=True), "derived": dict(derived),
                "run_key": self.key}
        log.debug("resolved config %s", json.dumps(data, default=str))
        write_bytes_atomic(str(self.out / RESOLVED_CONFIG), json.dumps(data, indent=2, default=str).encode() + b"\n")
        self._handle = open(self.out / METRICS, "ab")
        from r1ci_cli.train.report import open_reporter

        self.reporter = open_reporter(getattr(options, "report", None), self.out, data["options"],
                                      first_step=self.start_step + 1, resume=self.options.resume)

    def append(self, row: Mapping[str, Any], samples: Sequence[Any] = ()) -> None:
        self.rows += 1
        if self._handle is not None:
            self._handle.write(json.dumps(row).encode() + b"\n")
            self._handle.flush()
        if self.reporter is not None:
            self.reporter.log(row)
            if samples:
                self.reporter.samples(int(row.get("step", 0)), samples, due=False)

    def report_samples(self, step: int, trajectories: Sequence[Any], tag: str) -> None:
        if self.reporter is not None:
            self.reporter.samples(step, trajectories, tag=tag)

    def due(self, step: int, total_steps: int) -> bool:
        """Whether step ``step`` (1-based) ends with a checkpoint: every ``save_every`` steps and the last."""
        return step % self.options.save_every == 0 or step == total_steps

    def save(self, step: int, engine: Any, tokenizer: Any, state: Mapping[str, Any] | None = None) -> Path:
        if self._handle is not None:
            os.fsync(self._handle.fileno())
        if self.reporter is not None:
            self.reporter.flush()
        trainer_state = {"step": step, **(state or {}), "metrics_rows": self.rows, "run_key": self.key}
        if self.material:
            trainer_state["run_settings"] = self.material
        return save_checkpoint(self.out, step, engine, trainer_state, self.options.keep,
                               extra_files=tokenizer.save_pretrained)

    def export(self, engine: Any, tokenizer: Any) -> None:
        """The final model and tokenizer at the top of the run directory (collective)."""
        tmp = self.out / ".tmp-export"
        if self.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
        engine.barrier()
        engine.export(tmp)
        if self.rank == 0:
            tokenizer.save_pretrained(tmp)
            for path in tmp.iterdir():
                os.chmod(path, 0o644)
                os.replace(path, self.out / path.name)
            tmp.rmdir()
        engine.barrier()

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        if self.reporter is not None:
            self.reporter.close()
            self.reporter = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        self.close()
        if exc_type is not None and self._created and self.rows == 0 and not (self.out / "checkpoints").exists():
            shutil.rmtree(self.out, ignore_errors=True)
            log.info("removed %s: the run failed before writing anything", self.out)


def check_output(options: CheckpointOptions) -> None:
    """The run directory's checks that need no data: call before reading any input."""
    out = Path(options.output)
    if not options.resume and out.exists() and any(out.iterdir()):
        raise R1ciError(f"{out}: exists and is not empty; use --resume to continue it, or another -o")
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise R1ciError(f"{out}: {ancestor} is not a directory")


def open_run(options: CheckpointOptions, key: str, rank: int = 0, material: Mapping[str, Any] | None = None) -> Run:
    """The run in ``options.output``: a fresh one, or the newest checkpoint's (module docstring). ``material``
    (what the ``key`` hashes, as ``settings()`` dicts) is kept in every checkpoint, so a refused resume can name
    the first setting that differs."""
    out = Path(options.output)
    checkpoint = latest_checkpoint(out) if options.resume else None
    state: dict[str, Any] = {}
    if checkpoint is not None:
        state = read_trainer_state(checkpoint)
        if state.get("run_key") != key:
            raise R1ciError(f"{checkpoint}: made with {_what_differs(state.get('run_settings'), material)}; "
                            "rerun with the original flags, or start a fresh -o")
        log.info("resuming from %s (step %d)", checkpoint, state["step"])
    elif options.resume:
        log.info("--resume given but %s has no checkpoint; starting from step 0", out)
    return Run(options, key, rank, checkpoint, state, material)


def _what_differs(before: Mapping[str, Any] | None, now: Mapping[str, Any] | None) -> str:
    """The first differing setting of two runs' material, in words (a checkpoint without it: in general)."""
    difference = first_difference(before, now) if before and now else None
    if difference is None:
        return "other data or settings than this command"
    name, old, new = difference
    if name.split(".")[0] == "data":
        return "other training data (another selection or tokenisation of the input)"
    return f"{name.removeprefix('options.')} = {old!r}, this command has {new!r}"
