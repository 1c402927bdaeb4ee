"""Crash-safe, resumable output for long generation jobs (rollout, eval).

Contract of ``ResumableOutput(path, resume)`` for a file output:

* Every finished record is appended to ``<path>.partial`` as one JSON line and flushed at once, so a crash
  loses nothing that was finished (at most one torn last line, which is ignored on resume).
* ``done_ids`` holds the ids already in the partial file and, if it exists, in the finished output; the
  caller skips them. Without ``resume`` a stale partial file is removed (with a warning) and we start over.
* ``finish(order, keep)`` merges the finished output (if any) and the partial file, orders the records by
  ``order(record)`` (so a resumed run writes the same bytes as an uninterrupted one), applies ``keep`` (a
  filter over the ordered records, e.g. ``--keep correct``), writes the output atomically (zstd when the
  name ends in .zst) and removes the partial file. It buffers the raw lines of the run in memory.

stdout cannot be resumed; the command refuses ``--resume`` with ``-o -``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Record
from r1ci_cli.streams import dumps, read_dicts, record_sink

log = logging.getLogger("r1ci.rollout")


def partial_path(path: str) -> str:
    return f"{path}.partial"


def _read_partial(path: str) -> list[dict[str, Any]]:
    """The complete lines of a partial file; a torn last line (the crash) is dropped."""
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.split(b"\n")
    if lines and lines[-1].strip():
        log.warning("%s: ignoring an incomplete last line (interrupted write)", path)
    for line in lines[:-1]:
        if line.strip():
            rows.append(orjson.loads(line))
    return rows


class ResumableOutput:
    def __init__(self, path: str, resume: bool):
        if path == "-":
            raise R1ciError("--resume needs a file output (-o FILE): stdout cannot be resumed")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise R1ciError(f"{path}: directory {directory} does not exist")
        self.path = path
        self.partial = partial_path(path)
        self.done_ids: set[str] = set()
        if resume:
            if os.path.exists(path):
                self.done_ids.update(str(row.get("id")) for _, row in read_dicts(path))
            if os.path.exists(self.partial):
                partial_rows = _read_partial(self.partial)
                self._rewrite_partial(partial_rows)
                self.done_ids.update(str(row.get("id")) for row in partial_rows)
            if self.done_ids:
                log.info("resume: %d records already done", len(self.done_ids))
        elif os.path.exists(self.partial):
            log.warning("%s: removing a partial file from an earlier run (pass --resume to continue it)",
                        self.partial)
            os.unlink(self.partial)
        self._handle = open(self.partial, "ab")

    def _rewrite_partial(self, rows: list[dict[str, Any]]) -> None:
        """Drop a torn last line before appending, so the file stays valid JSONL."""
        tmp = self.partial + ".tmp"
        with open(tmp, "wb") as handle:
            for row in rows:
                handle.write(orjson.dumps(row) + b"\n")
        os.replace(tmp, self.partial)

    def write(self, record: Record | dict[str, Any]) -> None:
        self._handle.write(dumps(record))
        self._handle.flush()

    def records(self) -> Iterator[dict[str, Any]]:
        """Everything finished so far: the earlier output, then the partial file (torn line dropped)."""
        self._handle.flush()
        seen: set[str] = set()
        earlier = [row for _, row in read_dicts(self.path)] if os.path.exists(self.path) else []
        for row in earlier + _read_partial(self.partial):
            key = str(row.get("id"))
            if key not in seen:
                seen.add(key)
                yield row

    def finish(self, order: Callable[[dict[str, Any]], Any],
               keep: Callable[[Iterable[dict[str, Any]]], Iterable[dict[str, Any]]] = lambda rows: rows) -> int:
        """Write the ordered, filtered records to the output atomically; return how many were written."""
        rows = sorted(self.records(), key=order)
        self._handle.close()
        with record_sink(self.path) as sink:
            count = sink.write_all(keep(rows))
        os.unlink(self.partial)
        return count

    def close(self) -> None:
        """Leave the partial file in place (after a failure) for a later --resume."""
        if not self._handle.closed:
            self._handle.close()
