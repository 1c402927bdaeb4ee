"""Drop the tasks of SRC whose question also appears in any EXCLUDE file; write the rest to OUT atomically.

Why: PAPER.md keeps the RL questions apart from the SFT questions. `gen-tasks --pool train` with two seeds
gives different instance sets, but an easy task (few words, short bracket strings) can draw the same
question twice; this removes those repeats. Order is kept, so the output is deterministic.

    python shell/disjoint.py SRC.jsonl.zst OUT.jsonl.zst EXCLUDE.jsonl.zst [EXCLUDE ...]

Logs how many were dropped on stderr; exits 1 (R1ciError) when nothing is left.
"""

from __future__ import annotations

import logging
import sys

from r1ci_cli.errors import R1ciError
from r1ci_cli.streams import read_dicts, record_sink


def disjoint(src: str, out: str, excludes: list[str]) -> tuple[int, int]:
    """Copy the records of ``src`` whose ``question`` is in none of ``excludes``; return (kept, dropped)."""
    seen = {row["question"] for path in excludes for _, row in read_dicts(path)}
    kept = dropped = 0
    with record_sink(out) as sink:
        for _, row in read_dicts(src):
            if row["question"] in seen:
                dropped += 1
                continue
            seen.add(row["question"])  # also drops repeats inside src itself
            sink.write(row)
            kept += 1
    if not kept:
        raise R1ciError(f"{src}: every question is also in {', '.join(excludes)}")
    return kept, dropped


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="disjoint: %(message)s")
    if len(argv) < 3:
        logging.error("usage: disjoint.py SRC OUT EXCLUDE [EXCLUDE ...]")
        return 2
    try:
        kept, dropped = disjoint(argv[0], argv[1], argv[2:])
    except R1ciError as exc:
        logging.error("%s", exc)
        return 1
    logging.info("%s: kept %d, dropped %d shared or repeated questions", argv[1], kept, dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
