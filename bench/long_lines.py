"""Reading one long JSONL line: ``streams.iter_lines`` against the accumulate-and-split loop it replaced.

Not a shipped command. Run from the repository root:

    .venv/bin/python bench/long_lines.py [--sizes-mb 1 5 20] [--zstd]

For each size one file holds a short record, one record with a string of that many MB, and another short
record. ``old`` is the previous reader (append every 64 KB chunk to one buffer, split the whole buffer
again): quadratic in the line's length. ``new`` is ``streams.iter_lines`` (pieces joined once). Both read
the same file in the same process, alternating; one JSON line per (size, reader) goes to stdout, with the
seconds per MB and the ratio old/new.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import zstandard

from r1ci_cli import streams


def old_iter_lines(path: str):
    """The reader before the fix, kept here as the baseline (same chunking, same zstd decoding)."""
    raw = streams._raw_input(path)
    line_no = 0
    try:
        buffer = b""
        for chunk, _clean in streams._chunks(raw, path):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                line_no += 1
                yield line_no, line
        if buffer:
            yield line_no + 1, buffer
    finally:
        raw.close()


def timed(reader, path: str) -> float:
    started = time.perf_counter()
    total = sum(len(line) for _, line in reader(path))
    assert total > 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1, 5, 20])
    parser.add_argument("--zstd", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes_mb:
            data = (b'{"id":"a"}\n{"id":"b","text":"' + b"x" * int(size * (1 << 20)) + b'"}\n{"id":"c"}\n')
            path = os.path.join(tmp, f"long-{size}.jsonl")
            with open(path, "wb") as handle:
                handle.write(zstandard.ZstdCompressor().compress(data) if args.zstd else data)
            best = {"old": float("inf"), "new": float("inf")}
            for _ in range(args.rounds):
                best["old"] = min(best["old"], timed(old_iter_lines, path))
                best["new"] = min(best["new"], timed(streams.iter_lines, path))
            for name, seconds in best.items():
                print(json.dumps({"size_mb": size, "reader": name, "zstd": args.zstd, "seconds": round(seconds, 4),
                                  "s_per_mb": round(seconds / size, 5),
                                  "old_over_new": round(best["old"] / best["new"], 1)}), flush=True)


if __name__ == "__main__":
    main()
