"""Training checkpoints: written atomically, found again by ``--resume``.

Layout under a run directory ``OUT``::

    OUT/checkpoints/step-000040/   model (save_pretrained), tokenizer, engine state, trainer_state.json
    OUT/checkpoints/latest         the name of the newest complete checkpoint

Atomicity: every rank writes into ``OUT/checkpoints/.tmp-step-000040``; after a barrier rank 0 adds
``trainer_state.json``, renames the directory to its final name, then replaces ``latest`` (itself written to a
temporary file and renamed). A run killed at any instant therefore leaves ``latest`` pointing at a complete
checkpoint, or no ``latest`` at all; leftover ``.tmp-*`` directories are removed by the next save. Resume takes
the newest complete ``step-*`` directory, so a kill between the rename and the pointer's update loses nothing.

``trainer_state.json`` holds the optimizer step, the data position (derived from the step: epoch order is a
pure function of seed and epoch), the number of metrics rows written and a ``run_key``: a hash of everything
that decides the run's numbers (data, options, world size). Resuming with a different key is refused.

Not handled: checkpoints on storage without atomic rename (some object stores); keep OUT on a file system.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.settings import RUNTIME
from r1ci_cli.streams import write_bytes_atomic

log = logging.getLogger("r1ci.checkpoint")

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TRAINER_STATE = "trainer_state.json"


@dataclass(frozen=True)
class CheckpointOptions:
    """Where a training run lives and how often it is saved (the checkpoint options of sft and rl-stage); all
    ``runtime`` (``settings.py``): none of them changes the weights a run reaches."""

    output: str = field(metadata=RUNTIME)  # the run directory
    save_every: int = field(default=100, metadata=RUNTIME)  # optimizer steps between checkpoints (and the last)
    keep: int = field(default=2, metadata=RUNTIME)  # newest checkpoints kept
    resume: bool = field(default=False, metadata=RUNTIME)  # continue from the newest checkpoint


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None.

    A ``step-*`` directory only ever appears by the rename of a complete temporary one, so every such directory
    holding ``trainer_state.json`` is complete; the newest of them wins over ``latest``, which a kill between
    the rename and the pointer's update leaves one checkpoint behind (or absent after the first save).
    """
    root = out_dir / CHECKPOINTS
    pointer = root / LATEST
    named = None
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        if not (named / TRAINER_STATE).is_file():
            raise R1ciError(f"{pointer}: points at {named.name}, which is not a complete checkpoint")
    complete = sorted(p for p in root.glob("step-*") if (p / TRAINER_STATE).is_file()) if root.is_dir() else []
    newest = complete[-1] if complete else None
    if named is not None and (newest is None or named.name >= newest.name):
        return named
    if newest is not None:
        log.warning("%s: %s is newer than %s; resuming from it", root, newest.name,
                    f"what {LATEST} names ({named.name})" if named is not None else f"any {LATEST} pointer")
    return newest


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / TRAINER_STATE).read_text())


def save_checkpoint(out_dir: Path, step: int, engine: Any, trainer_state: dict[str, Any], keep: int,
                    extra_files: Any = None) -> Path:
    """Write checkpoint ``step`` atomically (collective: every rank calls it) and prune to ``keep`` newest.

    ``extra_files(directory)`` (rank 0 only) adds files such as the tokenizer before the rename.
    """
    root = out_dir / CHECKPOINTS
    final = root / checkpoint_name(step)
    tmp = root / f".tmp-{checkpoint_name(step)}"
    if engine.rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
    engine.barrier()
    engine.save(tmp)
    engine.barrier()
    if engine.rank == 0:
        if extra_files is not None:
            extra_files(tmp)
        write_bytes_atomic(str(tmp / TRAINER_STATE), json.dumps(trainer_state, indent=2).encode() + b"\n")
        _fsync_dir(tmp)
        if final.exists():  # a resumed run re-reaching a step it saved before the crash
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_bytes_atomic(str(root / LATEST), final.name.encode() + b"\n")
        _fsync_dir(root)
        _prune(root, keep, final.name)
        log.debug("checkpoint %s written", final)
    engine.barrier()
    return final


def _prune(root: Path, keep: int, newest: str) -> None:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for name in names[: max(0, len(names) - keep)]:
        if name != newest:
            shutil.rmtree(root / name, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_metrics(path: Path, num_rows: int) -> None:
    """Keep the first ``num_rows`` rows of ``metrics.jsonl`` (rows written after the checkpoint are redone)."""
    if not path.exists():
        if num_rows:
            raise R1ciError(f"{path}: missing, but the checkpoint says {num_rows} rows were written")
        return
    lines = path.read_bytes().splitlines(keepends=True)
    complete = [line for line in lines if line.endswith(b"\n")]
    if len(complete) < num_rows:
        raise R1ciError(f"{path}: holds {len(complete)} rows, the checkpoint expects {num_rows}")
    write_bytes_atomic(str(path), b"".join(complete[:num_rows]))
