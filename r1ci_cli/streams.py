"""Record streams: JSON Lines, plain or zstandard, from and to files or stdin/stdout.

Contract:

* ``open_records(path, kind)`` yields records one at a time (it never slurps). ``-`` is stdin. Input is
  zstd when its first bytes are the zstd magic number, whatever its name; concatenated frames are read
  as one stream. A malformed line (bad JSON, a wrong field) or a truncated zstd frame raises ``BadRecord``
  naming ``PATH:LINE`` and the field. Blank lines are skipped. A line over ``MAX_LINE_BYTES`` (32 MiB) is
  refused the same way; reading is linear in the input, however long its lines.
* ``record_sink(path)`` writes records. ``-`` is stdout. Output is zstd when the name ends in ``.zst``
  (or ``compress=True``). A file is written under a temporary name in the target directory and renamed
  only when the ``with`` block ends without an exception; on failure the temporary file is removed, so
  no partial output is ever left behind. stdout cannot be taken back: pipelines run with ``pipefail``.
* A closed downstream pipe (``| head``) surfaces as ``BrokenPipeError``; the command layer ends quietly.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, TypeVar

import orjson
import zstandard

from r1ci_cli.errors import BadRecord, R1ciError
from r1ci_cli.records import Record

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_LEVEL = 3
_CHUNK = 1 << 16
# One record per line; a longer line is refused (file:line) instead of being read into memory whole. Records
# are a few KB (a trajectory with its token ids tens of KB), so 32 MiB leaves room for anything real.
MAX_LINE_BYTES = 32 << 20

R = TypeVar("R", bound=Record)


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _raw_input(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise R1ciError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise R1ciError(f"{path}: is a directory, expected a JSONL or JSONL.zst file") from None
    except PermissionError:
        raise R1ciError(f"{path}: permission denied") from None


def _chunks(raw: BinaryIO, name: str) -> Iterator[tuple[bytes, bool]]:
    """Yield (decompressed chunk, finished cleanly). The last item says whether a zstd frame was cut."""
    first = raw.read(_CHUNK)
    if not first.startswith(ZSTD_MAGIC):
        if first:
            yield first, True
        while chunk := raw.read(_CHUNK):
            yield chunk, True
        return
    pending = first
    decoder = zstandard.ZstdDecompressor().decompressobj()
    in_frame = False
    while pending:
        try:
            out = decoder.decompress(pending)
        except zstandard.ZstdError as err:
            raise BadRecord(name, 0, None, f"corrupt zstd data ({err})") from None
        in_frame = True
        if out:
            yield out, True
        if decoder.eof:
            in_frame = False
            rest = decoder.unused_data
            decoder = zstandard.ZstdDecompressor().decompressobj()
            pending = rest or raw.read(_CHUNK)
        else:
            pending = raw.read(_CHUNK)
    if in_frame:
        yield b"", False


def iter_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line bytes) of a plain or zstd JSONL source, without the newline.

    Linear in the input: a line that spans many chunks is kept as a list of pieces and joined once (appending
    to one growing buffer and splitting it again per chunk was quadratic in the line's length). A line longer
    than ``MAX_LINE_BYTES`` is refused with its file and line number.
    """
    raw = _raw_input(path)
    name = display_name(path)
    line_no = 0
    try:
        pieces: list[bytes] = []  # the start of the current line, from earlier chunks
        size = 0
        for chunk, clean in _chunks(raw, name):
            if not clean:
                raise BadRecord(name, line_no + 1, None, "truncated zstd frame (the input ends mid-frame)")
            if b"\n" not in chunk:
                pieces.append(chunk)
                size += len(chunk)
                _check_length(name, line_no + 1, size)
                continue
            parts = chunk.split(b"\n")
            first = b"".join((*pieces, parts[0])) if pieces else parts[0]
            for line in (first, *parts[1:-1]):
                line_no += 1
                _check_length(name, line_no, len(line))
                yield line_no, line
            pieces = [parts[-1]] if parts[-1] else []
            size = len(parts[-1])
            _check_length(name, line_no + 1, size)
        if pieces:
            yield line_no + 1, b"".join(pieces)
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def _check_length(name: str, line_no: int, size: int) -> None:
    if size > MAX_LINE_BYTES:
        raise BadRecord(name, line_no, None, f"line longer than {MAX_LINE_BYTES} bytes (the limit for one record)")


def _parse(name: str, line_no: int, line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise BadRecord(name, line_no, None, f"invalid JSON ({err.args[0] if err.args else err})") from None


def read_dicts(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) pairs; blank lines skipped, non-objects rejected."""
    name = display_name(path)
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        data = _parse(name, line_no, line)
        if not isinstance(data, dict):
            raise BadRecord(name, line_no, None, f"expected a JSON object, got {type(data).__name__}")
        yield line_no, data


@contextmanager
def open_records(path: str, kind: type[R] | None = None) -> Iterator[Iterator[Any]]:
    """A lazily read stream of records: typed ``kind`` objects, or plain dicts when ``kind`` is None."""
    name = display_name(path)

    def gen() -> Iterator[Any]:
        for line_no, data in read_dicts(path):
            yield data if kind is None else kind.from_dict(data, name, line_no)

    if path != "-" and not os.path.exists(path):
        raise R1ciError(f"{path}: no such file")
    stream = gen()
    try:
        yield stream
    finally:
        stream.close()


def dumps(record: Record | dict[str, Any]) -> bytes:
    data = record.to_dict() if isinstance(record, Record) else record
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


class RecordSink:
    """Writes records as JSON lines to a binary stream, optionally through a zstd frame."""

    def __init__(self, raw: BinaryIO, compress: bool):
        self._raw = raw
        self._zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw, closefd=False) if compress else None
        self._out: Any = self._zstd if self._zstd is not None else raw
        self.count = 0

    def write(self, record: Record | dict[str, Any]) -> None:
        self._out.write(dumps(record))
        self.count += 1

    def write_all(self, records: Iterable[Record | dict[str, Any]]) -> int:
        for record in records:
            self.write(record)
        return self.count

    def flush(self) -> None:
        """Push what was written so far to the reader (a complete zstd block, readable downstream)."""
        if self._zstd is not None:
            self._zstd.flush(zstandard.FLUSH_BLOCK)
        self._raw.flush()

    def close(self) -> None:
        if self._zstd is not None:
            self._zstd.flush(zstandard.FLUSH_FRAME)
            self._zstd.close()
        self._raw.flush()


def wants_zstd(path: str, compress: bool | None) -> bool:
    if compress is not None:
        return compress
    return path.endswith(".zst")


@contextmanager
def atomic_file(path: str, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; rename it to ``path`` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise R1ciError(f"{path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=directory)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def record_sink(path: str, compress: bool | None = None) -> Iterator[RecordSink]:
    """A sink for records; see the module docstring for the atomic-rename and zstd rules."""
    if path == "-":
        sink = RecordSink(sys.stdout.buffer, wants_zstd(path, compress))
        yield sink
        sink.close()
        return
    with atomic_file(path) as handle:
        sink = RecordSink(handle, wants_zstd(path, compress))
        yield sink
        sink.close()


def read_all(path: str, kind: type[R] | None = None) -> list[Any]:
    """Read every record (for commands that must buffer; they say so in their help)."""
    with open_records(path, kind) as rows:
        return list(rows)


def write_bytes_atomic(path: str, data: bytes) -> None:
    with atomic_file(path) as handle:
        handle.write(data)


__all__ = [
    "RecordSink", "atomic_file", "display_name", "dumps", "iter_lines", "open_records", "read_all",
    "read_dicts", "record_sink", "wants_zstd", "write_bytes_atomic",
]
