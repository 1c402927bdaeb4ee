"""Crash-safe, resumable output for long generation jobs (rollout, eval).

Contract of ``ResumableOutput(path, resume, settings, recorded)`` for a file output:

* Every finished record is appended to ``<path>.partial`` as one JSON line and flushed at once, so a crash
  loses nothing that was finished (at most one torn last line, which is ignored on resume). The partial file
  is created with the first record: a run that fails before finishing one leaves none behind.
* Its first line is a header, ``{"r1ci_partial": 1, "settings": …}``: the settings that shape the records
  (``settings.py``; for rollouts the backend's and the rollout options' shaping fields and the shard). A
  resume with other settings is refused, naming the first one that differs; runtime settings (batch sizes,
  cohorts, the sandbox) may change. A finished output holds no header: its records' own fields named in
  ``recorded`` (e.g. ``temperature``, ``style``) are compared instead.
* ``done_ids`` holds the ids already in the partial file and, if it exists, in the finished output; the
  caller skips them; ``earlier`` holds those records. Without ``resume`` a stale partial file is removed
  (with a warning) and we start over.
* ``finish(order, keep)`` merges the finished output (if any) and the partial file, orders the records by
  ``order(record)`` (so a resumed run writes the same bytes as an uninterrupted one), applies ``keep`` (a
  filter over the ordered records, e.g. ``--keep correct``), writes the output atomically (zstd when the
  name ends in .zst) and removes the partial file. It buffers the raw lines of the run in memory.

stdout cannot be resumed; the command refuses ``--resume`` with ``-o -``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Record
from r1ci_cli.settings import first_difference
from r1ci_cli.streams import dumps, read_dicts, record_sink

log = logging.getLogger("r1ci.rollout")

HEADER = "r1ci_partial"


def partial_path(path: str) -> str:
    return f"{path}.partial"


def _read_partial(path: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header (None in a file written before headers existed) and the complete record lines of a partial
    file; a torn last line (the crash) is dropped."""
    rows: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        data = handle.read()
    lines = data.split(b"\n")
    if lines and lines[-1].strip():
        log.warning("%s: ignoring an incomplete last line (interrupted write)", path)
    for line_no, line in enumerate(lines[:-1], 1):
        if line.strip():
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as err:
                raise R1ciError(f"{path}:{line_no}: invalid JSON ({err}); remove the file to start over") from None
    header = rows.pop(0) if rows and HEADER in rows[0] else None
    return header, rows


class ResumableOutput:
    def __init__(self, path: str, resume: bool, settings: Mapping[str, Any] | None = None,
                 recorded: Mapping[str, Any] | None = None):
        if path == "-":
            raise R1ciError("--resume needs a file output (-o FILE): stdout cannot be resumed")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise R1ciError(f"{path}: directory {directory} does not exist")
        self.path = path
        self.partial = partial_path(path)
        self.settings = dict(settings or {})
        self.done_ids: set[str] = set()
        self.earlier: list[dict[str, Any]] = []
        if resume:
            if os.path.exists(path):
                finished = [row for _, row in read_dicts(path)]
                _check_recorded(path, finished, recorded or {})
                self._add_earlier(finished)
            if os.path.exists(self.partial):
                header, partial_rows = _read_partial(self.partial)
                self._check_header(header)
                self._rewrite_partial(header, partial_rows)
                self._add_earlier(partial_rows)
            if self.done_ids:
                log.info("resume: %d records already done", len(self.done_ids))
        elif os.path.exists(self.partial):
            log.warning("%s: removing a partial file from an earlier run (pass --resume to continue it)",
                        self.partial)
            os.unlink(self.partial)
        self._handle: Any = None  # opened with the first record

    def _add_earlier(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            key = str(row.get("id"))
            if key not in self.done_ids:
                self.done_ids.add(key)
                self.earlier.append(row)

    def _check_header(self, header: dict[str, Any] | None) -> None:
        if header is None:
            log.warning("%s: written without its settings (an older r1ci); they cannot be checked", self.partial)
            return
        difference = first_difference(header.get("settings", {}), self.settings)
        if difference is not None:
            name, before, now = difference
            raise R1ciError(f"{self.partial}: made with {name} = {before!r}, this command has {now!r}; resume "
                            "with the original flags, or remove the file (or use another -o) to start over")

    def _rewrite_partial(self, header: dict[str, Any] | None, rows: list[dict[str, Any]]) -> None:
        """Drop a torn last line before appending, so the file stays valid JSONL."""
        tmp = self.partial + ".tmp"
        with open(tmp, "wb") as handle:
            if header is not None:
                handle.write(orjson.dumps(header) + b"\n")
            for row in rows:
                handle.write(orjson.dumps(row) + b"\n")
        os.replace(tmp, self.partial)

    def write(self, record: Record | dict[str, Any]) -> None:
        if self._handle is None:
            fresh = not os.path.exists(self.partial)
            self._handle = open(self.partial, "ab")
            if fresh:
                self._handle.write(orjson.dumps({HEADER: 1, "settings": self.settings},
                                                option=orjson.OPT_SORT_KEYS) + b"\n")
        self._handle.write(dumps(record))
        self._handle.flush()

    def records(self) -> Iterator[dict[str, Any]]:
        """Everything finished so far: the earlier output, then the partial file (torn line dropped)."""
        if self._handle is not None:
            self._handle.flush()
        seen: set[str] = set()
        earlier = [row for _, row in read_dicts(self.path)] if os.path.exists(self.path) else []
        partial = _read_partial(self.partial)[1] if os.path.exists(self.partial) else []
        for row in earlier + partial:
            key = str(row.get("id"))
            if key not in seen:
                seen.add(key)
                yield row

    def finish(self, order: Callable[[dict[str, Any]], Any],
               keep: Callable[[Iterable[dict[str, Any]]], Iterable[dict[str, Any]]] = lambda rows: rows) -> int:
        """Write the ordered, filtered records to the output atomically; return how many were written."""
        rows = sorted(self.records(), key=order)
        self.close()
        with record_sink(self.path) as sink:
            count = sink.write_all(keep(rows))
        if os.path.exists(self.partial):
            os.unlink(self.partial)
        return count

    def close(self) -> None:
        """Leave the partial file in place (after a failure) for a later --resume; it exists only if it holds
        at least one finished record."""
        if self._handle is not None and not self._handle.closed:
            self._handle.close()


def _check_recorded(path: str, rows: list[dict[str, Any]], recorded: Mapping[str, Any]) -> None:
    """A finished output holds no header: compare the fields its records carry (the first record's)."""
    if not rows:
        return
    for name, now in recorded.items():
        before = rows[0].get(name)
        if before is not None and before != now:
            raise R1ciError(f"{path}: made with {name} = {before!r}, this command has {now!r}; resume with the "
                            "original flags, or use another -o")
