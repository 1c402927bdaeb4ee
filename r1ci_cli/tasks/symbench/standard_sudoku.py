"""Standard Sudoku (SymBench): fill a 9×9 grid; every generated puzzle has exactly one solution.

The verifier checks constraints, as the original did: givens kept and every row, column and 3×3 box a
permutation of 1–9 (on our unique puzzles that equals an exact match). The answer is a 9×9 matrix, as a
nested list or one row per line.

Generation: a random solved grid (a canonical pattern relabelled and shuffled by rows within bands, bands,
columns within stacks, stacks and transposition), then cells are emptied in random order. A removal is
kept only when a bitmask backtracking solver finds no completion with another digit in that cell (so the
puzzle stays unique), until the requested number of blanks is reached (restarting if it gets stuck).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_grid, to_int
from r1ci_cli.tasks.symbench.sampling import attempts, knob


def count_solutions(grid, limit=2, want_solution=False, forbid=None):
    """Number of completions of ``grid`` (0 = blank), counting up to ``limit``; with ``want_solution`` also
    the first completion found (or None). ``forbid=(cell index, digit)`` excludes one digit from one blank
    cell. Bitmask candidates, most-constrained cell first."""
    cells = [v for row in grid for v in row]
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9
    for i, v in enumerate(cells):
        if v:
            r, c, b = i // 9, i % 9, (i // 27) * 3 + (i % 9) // 3
            bit = 1 << v
            if rows[r] & bit or cols[c] & bit or boxes[b] & bit:
                return (0, None) if want_solution else 0
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
    empty = [i for i, v in enumerate(cells) if not v]
    found = [0, None]
    full = 0b1111111110

    def search():
        best, best_mask, best_count = -1, 0, 10
        for i in empty:
            if cells[i]:
                continue
            r, c, b = i // 9, i % 9, (i // 27) * 3 + (i % 9) // 3
            mask = full & ~(rows[r] | cols[c] | boxes[b])
            if forbid is not None and i == forbid[0]:
                mask &= ~(1 << forbid[1])
            n = bin(mask).count("1")
            if n < best_count:
                best, best_mask, best_count = i, mask, n
                if n <= 1:
                    break
        if best < 0:
            found[0] += 1
            if found[1] is None:
                found[1] = [cells[k * 9:(k + 1) * 9] for k in range(9)]
            return found[0] >= limit
        r, c, b = best // 9, best % 9, (best // 27) * 3 + (best % 9) // 3
        mask = best_mask
        while mask:
            bit = mask & -mask
            mask ^= bit
            cells[best] = bit.bit_length() - 1
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            stop = search()
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            cells[best] = 0
            if stop:
                return True
        return False

    search()
    return (found[0], found[1]) if want_solution else found[0]


def solve(grid):
    """The completed grid (the puzzle's unique solution)."""
    return count_solutions(grid, 1, True)[1]


def _solved_grid(rng: random.Random) -> list[list[int]]:
    digits = list(range(1, 10))
    rng.shuffle(digits)
    bands, stacks = [0, 1, 2], [0, 1, 2]
    rng.shuffle(bands)
    rng.shuffle(stacks)
    rows = [b * 3 + r for b in bands for r in rng.sample(range(3), 3)]
    cols = [s * 3 + c for s in stacks for c in rng.sample(range(3), 3)]
    # Canonical pattern: (3*(r%3) + r//3 + c) % 9 is a valid solved Sudoku.
    grid = [[digits[(3 * (r % 3) + r // 3 + c) % 9] for c in cols] for r in rows]
    if rng.random() < 0.5:
        grid = [list(col) for col in zip(*grid)]
    return grid


def make_question(puzzle: list[list[int]]) -> str:
    body = "\n".join(",".join(str(v) if v else " " for v in row) for row in puzzle)
    return ("Given a 9*9 Sudoku grid, each cell must be filled with a number between 1 and 9. No number may appear "
            "more than once in the same row, column, or 3*3 subgrid. Some cells are pre-filled. Please fill the "
            f"remaining empty cells.\n{body}\n\nReturn your answer in the format: <<<a 9*9 matrix>>> (nine rows, "
            "one per line, numbers separated by commas).")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    blanks = knob(rng, knobs, "num_blanks")
    if not 0 <= blanks <= 64:
        raise R1ciError(f"standard_sudoku: num_blanks must be 0..64 (a unique puzzle keeps 17+ givens), not {blanks}")
    for _ in attempts("standard_sudoku", knobs, 200):
        solution = _solved_grid(rng)
        puzzle = [list(r) for r in solution]
        order = list(range(81))
        rng.shuffle(order)
        removed = 0
        for i in order:
            if removed == blanks:
                break
            r, c = divmod(i, 9)
            keep = puzzle[r][c]
            puzzle[r][c] = 0
            # The puzzle was unique before, so it stays unique iff no completion puts another digit here
            # (a cheaper search than counting to two).
            if count_solutions(puzzle, 1, forbid=(i, keep)) == 0:
                removed += 1
            else:
                puzzle[r][c] = keep
        if removed == blanks:
            return Instance(make_question(puzzle), {"puzzle": puzzle}, solution)


def _parse(answer: str) -> list[list[int]] | None:
    rows = parse_grid(answer)
    if rows is None or len(rows) != 9 or any(len(r) != 9 for r in rows):
        return None
    out = [[to_int(v) for v in row] for row in rows]
    return None if any(v is None for row in out for v in row) else out  # type: ignore[return-value]


def verify(instance: Instance, answer: str) -> bool:
    grid = _parse(answer)
    if grid is None:
        return False
    puzzle = instance.check["puzzle"]
    if any(puzzle[r][c] and puzzle[r][c] != grid[r][c] for r in range(9) for c in range(9)):
        return False
    digits = set(range(1, 10))
    units = [grid[r] for r in range(9)] + [[grid[r][c] for r in range(9)] for c in range(9)]
    units += [[grid[br + r][bc + c] for r in range(3) for c in range(3)] for br in (0, 3, 6) for bc in (0, 3, 6)]
    return all(set(u) == digits for u in units)


def reference_program(instance: Instance) -> str:
    main = "print('\\n'.join(','.join(str(v) for v in row) for row in solve(puzzle)))"
    return program([count_solutions, solve], main, puzzle=instance.check["puzzle"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    grid = _parse(correct) or [[0] * 9 for _ in range(9)]
    puzzle = instance.check["puzzle"]
    out = []
    blanks = [(r, c) for r in range(9) for c in range(9) if not puzzle[r][c]]
    r, c = rng.choice(blanks)
    changed = [list(row) for row in grid]
    changed[r][c] = changed[r][c] % 9 + 1
    out.append(changed)
    same_row = [cc for cc in range(9) if not puzzle[r][cc] and cc != c]
    if same_row:
        swapped = [list(row) for row in grid]
        c2 = same_row[0]
        swapped[r][c], swapped[r][c2] = swapped[r][c2], swapped[r][c]  # breaks two columns
        out.append(swapped)
    out.append(puzzle)
    out.append(grid[:8])
    texts = ["\n".join(",".join(str(v) for v in row) for row in g) for g in out]
    return [w for w in dict.fromkeys(texts) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    stored = sol.get("solution")
    answer = "\n".join(",".join(str(v) for v in row) for row in stored) if stored else None
    return Instance(record["question"], {"puzzle": sol["puzzle"]}, stored), answer


FAMILY = TaskFamily(
    name="standard_sudoku", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"num_blanks": [51, 55]},
    description="Fill a 9x9 Sudoku with a unique solution; givens + row/column/box check.",
)
