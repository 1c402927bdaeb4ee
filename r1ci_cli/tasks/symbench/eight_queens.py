"""Eight Queens (SymBench): complete an N-queens placement around placed queens and forbidden cells.

Many placements can be right, so the verifier checks constraints, as the original did: exactly N distinct
queens on the board, none on an ``X`` cell, every pre-placed queen included, and no two sharing a row,
column or diagonal. The answer is ``r c, r c, …`` (0-based); a literal list of pairs is read too.
Generation blocks cells outside one random full solution, so every instance is solvable.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from r1ci_cli.answer import parse_literal
from r1ci_cli.errors import R1ciError
from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import to_int
from r1ci_cli.tasks.symbench.sampling import knob


def place_queens(n, placed, blocked, order=None):
    """A full placement (list of [row, col], sorted by row) keeping ``placed`` and avoiding ``blocked``;
    None if there is none. ``order`` optionally lists the columns to try first (for random solutions)."""
    fixed = {r: c for r, c in placed}
    banned = {(r, c) for r, c in blocked}
    cols, diag, anti = set(), set(), set()
    for r, c in placed:
        cols.add(c)
        diag.add(r - c)
        anti.add(r + c)
    if len(cols) != len(placed) or len(diag) != len(placed) or len(anti) != len(placed) or len(fixed) != len(placed):
        return None
    chosen = dict(fixed)
    try_cols = list(order) if order else list(range(n))

    def go(row):
        if row == n:
            return True
        if row in fixed:
            return go(row + 1)
        for c in try_cols:
            if c in cols or (row - c) in diag or (row + c) in anti or (row, c) in banned:
                continue
            cols.add(c)
            diag.add(row - c)
            anti.add(row + c)
            chosen[row] = c
            if go(row + 1):
                return True
            cols.discard(c)
            diag.discard(row - c)
            anti.discard(row + c)
            del chosen[row]
        return False

    return [[r, chosen[r]] for r in range(n)] if go(0) else None


def render(n: int, placed: list[list[int]], blocked: list[list[int]]) -> list[str]:
    rows = [["0"] * n for _ in range(n)]
    for r, c in placed:
        rows[r][c] = "1"
    for r, c in blocked:
        rows[r][c] = "X"
    return ["".join(row) for row in rows]


def make_question(n: int, board: list[str]) -> str:
    return (f"Given an {n}*{n} grid, cells marked with 1 have a queen placed, and cells marked with 0 are empty. "
            f"A total of {n} queens need to be placed such that no two queens can attack each other, meaning no two "
            "queens can be in the same row, column, or diagonal. Additionally, positions marked with X are not "
            "allowed for placing queens. Please help me complete the placement of the remaining queens on the "
            "partially filled board.\n\n" + "\n".join(board)
            + f"\n\nReturn your answer with the format <<<list of queen positions>>>, where each position is given "
              f"as row column (0-based indices). List all {n} queens, including the ones already placed. For "
              "example, <<<0 3, 1 0, 2 4>>> means queens are placed at positions (0,3), (1,0), and (2,4).")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n = knob(rng, knobs, "size")
    if not 4 <= n <= 40:
        raise R1ciError(f"eight_queens: size must be 4..40 (smaller boards have no solution), not {n}")
    num_placed = min(knob(rng, knobs, "num_placed"), n)
    num_blocked = knob(rng, knobs, "num_blocked")
    order = list(range(n))
    rng.shuffle(order)
    full = place_queens(n, [], [], order)
    assert full is not None  # N-queens has solutions for every N >= 4
    placed = sorted(rng.sample(full, num_placed))
    queens = {(r, c) for r, c in full}
    free = [[r, c] for r in range(n) for c in range(n) if (r, c) not in queens]
    blocked = sorted(rng.sample(free, min(num_blocked, len(free))))
    check = {"size": n, "placed": placed, "blocked": blocked}
    return Instance(make_question(n, render(n, placed, blocked)), check, None)


def parse_positions(answer: str) -> list[tuple[int, int]] | None:
    """Queen positions from ``0 3, 1 0`` or a literal list of pairs; None on any other shape."""
    value = parse_literal(answer) if answer.strip()[:1] in "[(" else None
    pairs = []
    if isinstance(value, (list, tuple)) and value and all(isinstance(p, (list, tuple)) for p in value):
        for p in value:
            if len(p) != 2:
                return None
            r, c = to_int(p[0]), to_int(p[1])
            if r is None or c is None:
                return None
            pairs.append((r, c))
        return pairs
    text = answer.strip().strip("[]")
    if not text or len(text) > 5000:
        return None
    for part in text.split(","):
        match = re.fullmatch(r"\s*\(?\s*(\d{1,3})\s+(\d{1,3})\s*\)?\s*", part)
        if not match:
            return None
        pairs.append((int(match.group(1)), int(match.group(2))))
    return pairs


def verify(instance: Instance, answer: str) -> bool:
    pairs = parse_positions(answer)
    if pairs is None:
        return False
    n = instance.check["size"]
    queens = set(pairs)
    if len(pairs) != n or len(queens) != n:
        return False
    if any(not (0 <= r < n and 0 <= c < n) for r, c in queens):
        return False
    if any((r, c) in queens for r, c in instance.check["blocked"]):
        return False
    if any((r, c) not in queens for r, c in instance.check["placed"]):
        return False
    return all(len({f(r, c) for r, c in queens}) == n
               for f in (lambda r, c: r, lambda r, c: c, lambda r, c: r - c, lambda r, c: r + c))


def reference_program(instance: Instance) -> str:
    c = instance.check
    main = ("queens = place_queens(size, placed, blocked)\n"
            "print(', '.join('%d %d' % (r, c) for r, c in queens))")
    return program([place_queens], main, size=c["size"], placed=c["placed"], blocked=c["blocked"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    pairs = parse_positions(correct) or []
    n = instance.check["size"]
    out = [pairs[:-1], pairs + [pairs[0]]]
    if len(pairs) >= 2:
        (r1, c1), (r2, c2) = pairs[0], pairs[1]
        out.append([(r1, c2), (r2, c1)] + pairs[2:])  # swapped columns: a diagonal clash or a repeat
    moved = list(pairs)
    r, c = moved[-1]
    moved[-1] = (r, (c + 1) % n)
    out.append(moved)
    texts = [", ".join(f"{r} {c}" for r, c in p) for p in out]
    return [w for w in dict.fromkeys(texts) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    n = len(sol["initial_board"])
    check = {"size": n, "placed": [list(p) for p in sol["placed_queens"]],
             "blocked": [list(p) for p in sol["blocked_positions"]]}
    stored = sol.get("solution")
    answer = ", ".join(f"{r} {c}" for r, c in stored) if stored else None
    return Instance(record["question"], check, None), answer


FAMILY = TaskFamily(
    name="eight_queens", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"size": 8, "num_placed": [0, 3], "num_blocked": [0, 4]},
    description="Complete an N-queens board around placed queens and X cells; constraint check.",
)
