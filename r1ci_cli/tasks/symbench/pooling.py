"""Pooling (SymBench): max or average pooling of an N×N integer matrix with an n×n window, stride 1.

The answer is the pooled (N-n+1)×(N-n+1) matrix, written flat row by row (``<<<a,b,c,d>>>``; a nested
list is read the same way). It is unique: max pooling is compared exactly, averages exactly or correctly
rounded to two or more decimals.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.numbers import close, fmt_number, parse_number_list
from r1ci_cli.tasks.symbench.sampling import knob


def pool(matrix, window, kind):
    """The pooled matrix (stride 1) as a list of rows of Fractions."""
    from fractions import Fraction
    size = len(matrix)
    out = []
    for r in range(size - window + 1):
        row = []
        for c in range(size - window + 1):
            cells = [matrix[r + i][c + j] for i in range(window) for j in range(window)]
            row.append(Fraction(max(cells)) if kind == "max" else Fraction(sum(cells), len(cells)))
        out.append(row)
    return out


def show_flat(rows):
    """Flat comma-separated text; non-integers as decimals rounded to 4 places."""
    def one(v):
        return str(v.numerator) if v.denominator == 1 else f"{float(v):.4f}".rstrip("0").rstrip(".")
    return ",".join(one(v) for row in rows for v in row)


def _question(matrix: list[list[int]], window: int, kind: str) -> str:
    what = "finding the maximum value" if kind == "max" else "calculating the average value"
    value = "maximum" if kind == "max" else "average"
    out_size = len(matrix) - window + 1
    example = ",".join(["0"] * (out_size * out_size))
    rows = "\n".join(", ".join(str(v) for v in row) for row in matrix)
    return (
        "In an N*N grid, there are N^2 numbers, with numbers in the same row separated by commas. We define "
        f"the \"{kind} pooling\" operation: suppose that there is an n*n (n<N) sliding window, which slides "
        f"from left to right or from top to bottom in the matrix (one cell at a time), {what} in each "
        f"sliding window. Then, the {value} values are arranged according to their original positions to "
        "form a new matrix for output.\n"
        f"Now, please perform {kind} pooling on the following matrix by using a {window}*{window} sliding "
        f"window:\n{rows}\n"
        "Write the resulting matrix row by row as one comma-separated list (non-integer averages as decimals "
        f"rounded to at least 2 places). For example, <<<{example}>>> represents a "
        f"{out_size}*{out_size} 2D array.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    size = knob(rng, knobs, "size")
    window = min(knob(rng, knobs, "window"), size - 1)
    kind = knob(rng, knobs, "pooling")
    lo, hi = knobs["value_range"]
    matrix = [[rng.randint(lo, hi) for _ in range(size)] for _ in range(size)]
    check = {"matrix": matrix, "window": window, "kind": kind}
    return Instance(_question(matrix, window, kind), check, show_flat(pool(matrix, window, kind)))


def _want(instance: Instance) -> list[Fraction]:
    c = instance.check
    return [v for row in pool(c["matrix"], c["window"], c["kind"]) for v in row]


def verify(instance: Instance, answer: str) -> bool:
    got, want = parse_number_list(answer), _want(instance)
    return got is not None and len(got) == len(want) and all(close(g, w) for g, w in zip(got, want))


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([pool, show_flat], "print(show_flat(pool(matrix, window, kind)))",
                   matrix=c["matrix"], window=c["window"], kind=c["kind"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    want = _want(instance)
    i = rng.randrange(len(want))
    bumped = list(want)
    bumped[i] += 1
    other_kind = "average" if instance.check["kind"] == "max" else "max"
    other = [v for row in pool(instance.check["matrix"], instance.check["window"], other_kind) for v in row]
    out = [",".join(fmt_number(v) for v in bumped), ",".join(fmt_number(v) for v in want[:-1]),
           ",".join(fmt_number(v) for v in want[::-1])]
    if other != want:
        out.append(",".join(fmt_number(v) for v in other))
    return [w for w in dict.fromkeys(out) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = {"matrix": sol["matrix"], "window": sol["window_size"], "kind": sol["pooling_type"]}
    stored = ",".join(repr(v) for row in sol["solution"] for v in row)
    return Instance(record["question"], check, show_flat(pool(sol["matrix"], sol["window_size"],
                                                              sol["pooling_type"]))), stored


FAMILY = TaskFamily(
    name="pooling", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"size": [3, 6], "window": [2, 3], "pooling": ["max", "average"], "value_range": [-10, 20]},
    description="Max/average pooling (stride 1) of an integer matrix; exact values, flat list.",
)
