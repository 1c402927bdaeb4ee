"""GSM-Hard (SymBench's math word problems with large, odd numbers): loaded from a user-provided file.

The data is third-party and not shipped. ``load(data_dir)`` reads ``gsmhardv2.jsonl`` (1,319 rows of
``{"input", "code", "target"}``; ``target`` is a number) from the first of ``DATA_PATHS`` that exists under
``--data-dir`` and returns the rows in file order. The question is the original runner's: the problem
text, then the instruction to answer as ``<<<…>>>``. Verification is numeric (``_mathnorm``): the same
value, or a decimal correctly rounded and within 1e-3 relative (the runner's tolerance). The reference
program prints the stored target.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from r1ci_cli.errors import BadRecord, MissingData, R1ciError
from r1ci_cli.tasks.registry import Instance, TaskFamily, print_stored
from r1ci_cli.tasks.symbench import _mathnorm

FILE_NAME = "gsmhardv2.jsonl"
DATA_PATHS = (FILE_NAME, f"gsm_hard/{FILE_NAME}", f"gsm-hard/{FILE_NAME}", f"dataset_gather/{FILE_NAME}")
# The original runner's instruction, appended to every question verbatim.
ANSWER_FORMAT = ("\n\nOutput final answer with the format <<<answer>>> such as <<<123.42>>>, <<<125.0>>>, "
                 "<<<-9867>>>.\nYour answer: ")


def find_file(data_dir: Path | None, names: tuple[str, ...] = DATA_PATHS) -> Path:
    """The first of ``names`` under ``data_dir``; R1ciError naming what was looked for otherwise."""
    if data_dir is None:
        raise MissingData(f"gsm_hard needs data: pass --data-dir DIR holding {FILE_NAME}")
    for name in names:
        candidate = Path(data_dir) / name
        if candidate.is_file():
            return candidate
    raise MissingData(f"gsm_hard needs data: none of {', '.join(names)} under {data_dir}")


def question_text(problem: str) -> str:
    return problem + ANSWER_FORMAT


def instance_from_row(row: object, path: str, line: int) -> Instance:
    """One Instance from a parsed JSONL row; BadRecord naming the file, line and field otherwise."""
    if not isinstance(row, dict):
        raise BadRecord(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    problem = row.get("input")
    if not isinstance(problem, str) or not problem.strip():
        raise BadRecord(path, line, "input", "must be a non-empty string")
    target = row.get("target")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
        raise BadRecord(path, line, "target", f"must be a finite number, got {target!r}")
    check = {"target": target, "line": line}
    return Instance(question_text(problem), check, _mathnorm.format_number(target))


def load(data_dir: Path | None) -> list[Instance]:
    """Every row of the GSM-Hard file, in file order (blank lines skipped)."""
    path = find_file(data_dir)
    instances = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise BadRecord(str(path), line_no, None, f"bad JSON: {err.msg}") from None
            instances.append(instance_from_row(row, str(path), line_no))
    if not instances:
        raise R1ciError(f"{path}: no rows")
    return instances


def verify(instance: Instance, answer: str) -> bool:
    return _mathnorm.number_equivalent(answer, instance.check["target"])


def reference_program(instance: Instance) -> str:
    return print_stored(instance.answer)


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    """Off by one either way, and an order of magnitude: all outside any rounding tolerance."""
    target = instance.check["target"]
    wrong = [target + 1, target - 1, target * 10 if target else 10]
    return [_mathnorm.format_number(w) for w in wrong]


FAMILY = TaskFamily(
    name="gsm_hard", source="symbench", generate=None, load=load, verify=verify,
    reference_program=reference_program, reference_kind="stored", perturb=perturb,
    needs_data=f"{FILE_NAME} (GSM-Hard, 1,319 rows) at DATA_DIR/{FILE_NAME} or DATA_DIR/gsm_hard/{FILE_NAME}",
    description="GSM-Hard math word problems with large numbers (user-provided data); numeric answer.",
)
