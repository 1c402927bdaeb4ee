"""Pattern Recognition (SymBench): find the square block of one repeated character in a letter matrix.

Exactly one k×k block (k ≥ 3) of a single character is planted in random letters; the generator rejects
matrices where any other uniform 3×3 block appears, so the largest square is unique. The answer is the
0-based ``[row, column]`` of its bottom-right cell, exact match.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_int_list
from r1ci_cli.tasks.symbench.sampling import attempts, knob

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def square_corners(matrix):
    """(side, corners): the largest side of a uniform square block and the bottom-right cells where one ends."""
    rows, cols = len(matrix), len(matrix[0])
    size = [[1] * cols for _ in range(rows)]
    for r in range(1, rows):
        for c in range(1, cols):
            ch = matrix[r][c]
            if matrix[r - 1][c] == ch and matrix[r][c - 1] == ch and matrix[r - 1][c - 1] == ch:
                size[r][c] = 1 + min(size[r - 1][c], size[r][c - 1], size[r - 1][c - 1])
    best = max(max(row) for row in size)
    return best, [[r, c] for r in range(rows) for c in range(cols) if size[r][c] == best]


def _question(matrix: list[list[str]]) -> str:
    body = "\n".join(" ".join(row) for row in matrix)
    return ("Given a character matrix, your task is to identify the positions of all squares with a length of at "
            "least 3 and output the row and column numbers of the bottom-right corner of these squares. The "
            "squares are composed of the same character (every cell inside the square holds that character), "
            f"and each side has a length of at least 3.\n\nIf the matrix is\n\n{body}\n\n"
            "Please provide the row and column of the bottom-right vertex of the square in the character matrix "
            "with a side length of at least 3 (the answer is unique). Notice: All coordinates start from 0.  \n\n"
            "Your answer should be in the format <<<[row, column]>>>.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    rows, cols = knob(rng, knobs, "rows"), knob(rng, knobs, "cols")
    side = min(knob(rng, knobs, "side"), rows, cols)
    for _ in attempts("pattern_recognition"):
        matrix = [[rng.choice(LETTERS) for _ in range(cols)] for _ in range(rows)]
        top, left = rng.randint(0, rows - side), rng.randint(0, cols - side)
        ch = rng.choice(LETTERS)
        for r in range(top, top + side):
            for c in range(left, left + side):
                matrix[r][c] = ch
        best, corners = square_corners(matrix)
        # The planted block may grow by chance (a matching neighbour row); accept only a unique largest square.
        if best >= 3 and len(corners) == 1 and _count_uniform_3x3(matrix) == (best - 2) ** 2:
            return Instance(_question(matrix), {"matrix": matrix}, corners[0])


def _count_uniform_3x3(matrix: list[list[str]]) -> int:
    """How many 3×3 windows are a single character (a lone k×k square has exactly (k-2)² of them)."""
    rows, cols = len(matrix), len(matrix[0])
    return sum(len({matrix[r + i][c + j] for i in range(3) for j in range(3)}) == 1
               for r in range(rows - 2) for c in range(cols - 2))


def verify(instance: Instance, answer: str) -> bool:
    best, corners = square_corners(instance.check["matrix"])
    got = parse_int_list(answer)
    return best >= 3 and len(corners) == 1 and got == corners[0]


def reference_program(instance: Instance) -> str:
    return program([square_corners], "best, corners = square_corners(matrix)\nprint(corners[0])",
                   matrix=instance.check["matrix"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    r, c = square_corners(instance.check["matrix"])[1][0]
    return [f"[{r + 1}, {c}]", f"[{r}, {c - 1}]", f"[{c}, {r}]" if r != c else f"[{r}, {c + 2}]", f"[{r}]"]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    body = re.search(r"If the matrix is\s*\n\n(.*?)\n\n", record["question"], re.S).group(1)
    matrix = [line.split() for line in body.strip().splitlines()]
    sol = record["solution"]
    inst = Instance(record["question"], {"matrix": matrix}, square_corners(matrix)[1][0])
    return inst, f"[{sol['row']}, {sol['column']}]"


FAMILY = TaskFamily(
    name="pattern_recognition", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"rows": [6, 15], "cols": [6, 15], "side": [3, 6]},
    description="Locate the single uniform square (side ≥ 3) in a letter matrix; [row, column], exact.",
)
