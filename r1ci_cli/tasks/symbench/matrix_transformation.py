"""Matrix Transformation (SymBench): rotate a matrix of characters 90 degrees clockwise.

The answer is the rotated matrix written flat row by row (``<<<A,B,C,D>>>``; a nested list is read the
same way). It is unique: exact match, cell by cell.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from r1ci_cli.answer import parse_literal, strip_wrapping
from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.sampling import knob

CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456789!@#$%^&*"


def rotate_clockwise(matrix):
    """The matrix turned 90 degrees clockwise: the first column read bottom-up becomes the first row."""
    rows, cols = len(matrix), len(matrix[0])
    return [[matrix[rows - 1 - r][c] for r in range(rows)] for c in range(cols)]


def _question(matrix: list[list[str]]) -> str:
    body = "\n".join(" ".join(row) for row in matrix)
    return ("Given a 2D array of strings, which represents a letter matrix. Your task is to rotate this matrix "
            f"90 degrees clockwise and output the result.\nIf the matrix is \n{body}.\nWhat is the result?\n"
            "Return your answer with format <<<list of values and symbols>>>, written row by row and separated "
            "by commas. For example, <<<A,B,C,D>>> represents a 2D array.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    rows, cols = knob(rng, knobs, "rows"), knob(rng, knobs, "cols")
    pool = CHARS if knob(rng, knobs, "symbols") else CHARS[:26]
    matrix = [[rng.choice(pool) for _ in range(cols)] for _ in range(rows)]
    want = rotate_clockwise(matrix)
    return Instance(_question(matrix), {"matrix": matrix}, ",".join(v for row in want for v in row))


def _cells(text: str) -> list[str] | None:
    """Flat cells from ``A,B,C``, ``[A, B, C]``, ``[['A','B'],['C','D']]`` or rows on separate lines.

    Cells are single characters that may be ``#`` or quotes-free symbols, so unquoted text is split on
    commas and whitespace directly (a Python literal parser would read ``#`` as a comment)."""
    if not isinstance(text, str) or len(text) > 10_000:
        return None
    body = strip_wrapping(text)
    if "'" in body or '"' in body:
        value = parse_literal(text.strip())
        if not isinstance(value, (list, tuple)):
            value = parse_literal("[" + text.strip() + "]")  # '"A", "B"' without brackets
        if not isinstance(value, (list, tuple)):
            return None
        flat: list[Any] = []
        for item in value:
            flat.extend(item if isinstance(item, (list, tuple)) else [item])
        if any(not isinstance(v, str) for v in flat):
            return None
        cells = [v.strip() for v in flat]
    else:
        cells = [c for c in re.split(r"[\s,]+", body.replace("[", " ").replace("]", " ")) if c]
    return cells if cells and all(len(c) == 1 for c in cells) else None


def verify(instance: Instance, answer: str) -> bool:
    want = [v for row in rotate_clockwise(instance.check["matrix"]) for v in row]
    return _cells(answer) == want


def reference_program(instance: Instance) -> str:
    return program([rotate_clockwise], "print(','.join(v for row in rotate_clockwise(matrix) for v in row))",
                   matrix=instance.check["matrix"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    matrix = instance.check["matrix"]
    want = [v for row in rotate_clockwise(matrix) for v in row]
    counter = [v for row in rotate_clockwise(rotate_clockwise(rotate_clockwise(matrix))) for v in row]
    out = [counter, want[:-1], want[::-1], [v for row in matrix for v in row]]
    i = rng.randrange(len(want))
    out.append(want[:i] + ["Q" if want[i] != "Q" else "R"] + want[i + 1:])
    return [",".join(w) for w in out if w != want]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    want = rotate_clockwise(sol["matrix"])
    return (Instance(record["question"], {"matrix": sol["matrix"]}, ",".join(v for row in want for v in row)),
            sol["formatted_solution"])


FAMILY = TaskFamily(
    name="matrix_transformation", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"rows": [2, 4], "cols": [2, 4], "symbols": [True, False]},
    description="Rotate a character matrix 90° clockwise; flat list, exact.",
)
