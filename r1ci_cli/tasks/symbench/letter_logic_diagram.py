"""Letter Logic Diagram (SymBench): complete a 7×7 Latin square of letters a–g whose minor diagonal is constant.

Puzzles may have several completions (84/200 reference puzzles do, README "Known oddities"), so the
verifier checks constraints: the givens kept, each row and column a permutation of a–g, and every cell
of the minor diagonal (top-right to bottom-left) the same letter. The answer is seven lines of seven
comma-separated letters (a nested list is read too).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_grid
from r1ci_cli.tasks.symbench.sampling import knob

N = 7
LETTERS = "abcdefg"


def complete(grid, order_seed=None):
    """A completion of ``grid`` (``""`` = blank) as a Latin square over a–g with a constant minor diagonal,
    or None. ``order_seed`` shuffles the letter order tried (random squares for the generator)."""
    import random as _random

    n = len(grid)
    letters = "abcdefg"[:n]
    cells = [list(row) for row in grid]
    diag = {cells[i][n - 1 - i] for i in range(n) if cells[i][n - 1 - i]}
    if len(diag) > 1:
        return None
    rng = _random.Random(order_seed) if order_seed is not None else None
    for d in (sorted(diag) if diag else list(letters)):
        trial = [list(row) for row in cells]
        for i in range(n):
            if trial[i][n - 1 - i] not in ("", d):
                break
            trial[i][n - 1 - i] = d
        else:
            rows = [set(v for v in row if v) for row in trial]
            cols = [set(trial[r][c] for r in range(n) if trial[r][c]) for c in range(n)]
            if any(len(rows[r]) != sum(1 for v in trial[r] if v) for r in range(n)):
                continue
            if any(len(cols[c]) != sum(1 for r in range(n) if trial[r][c]) for c in range(n)):
                continue
            blanks = [(r, c) for r in range(n) for c in range(n) if not trial[r][c]]

            def go(k):
                if k == len(blanks):
                    return True
                # Most constrained blank first keeps the search small.
                best, best_opts = k, None
                for m in range(k, len(blanks)):
                    r, c = blanks[m]
                    opts = [v for v in letters if v not in rows[r] and v not in cols[c]]
                    if best_opts is None or len(opts) < len(best_opts):
                        best, best_opts = m, opts
                        if len(opts) <= 1:
                            break
                blanks[k], blanks[best] = blanks[best], blanks[k]
                r, c = blanks[k]
                if rng is not None:
                    rng.shuffle(best_opts)
                for v in best_opts:
                    trial[r][c] = v
                    rows[r].add(v)
                    cols[c].add(v)
                    if go(k + 1):
                        return True
                    rows[r].discard(v)
                    cols[c].discard(v)
                    trial[r][c] = ""
                blanks[k], blanks[best] = blanks[best], blanks[k]
                return False

            if go(0):
                return trial
    return None


def make_question(grid: list[list[str]]) -> str:
    body = "\n".join(",".join(row) for row in grid)
    return ("Given a 7x7 grid of letters {a..g}, some cells are pre-filled. Fill the rest so that:\n"
            "1) Each row has exactly one of each letter {a..g}.\n2) Each column has exactly one of each letter "
            "{a..g}.\n3) All cells on the minor diagonal (top-right to bottom-left) contain the same letter.\n\n"
            "Here is the puzzle (each row on its own line, cells separated by commas, empty cells blank):\n\n"
            f"{body}\n\nReturn the answer with the format:\n<<<\nrow1\nrow2\n...  (7 rows total)\n>>>\n\n"
            "where each row has 7 letters separated by commas.\n")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    blanks = knob(rng, knobs, "num_blanks")
    empty = [[""] * N for _ in range(N)]
    empty[0][N - 1] = rng.choice(LETTERS)
    solution = complete(empty, rng.getrandbits(32))
    assert solution is not None  # a cyclic square always exists, so the search cannot fail
    puzzle = [list(row) for row in solution]
    for k in rng.sample(range(N * N), min(blanks, N * N)):
        puzzle[k // N][k % N] = ""
    return Instance(make_question(puzzle), {"grid": puzzle}, None)


def _parse(answer: str) -> list[list[str]] | None:
    rows = parse_grid(answer)
    if rows is None or len(rows) != N or any(len(r) != N for r in rows):
        return None
    rows = [[v.lower() for v in row] for row in rows]
    return rows if all(v in LETTERS and len(v) == 1 for row in rows for v in row) else None


def verify(instance: Instance, answer: str) -> bool:
    grid = _parse(answer)
    if grid is None:
        return False
    given = instance.check["grid"]
    if any(given[r][c] and given[r][c] != grid[r][c] for r in range(N) for c in range(N)):
        return False
    letters = set(LETTERS)
    if any(set(row) != letters for row in grid) or any({grid[r][c] for r in range(N)} != letters for c in range(N)):
        return False
    return len({grid[i][N - 1 - i] for i in range(N)}) == 1


def reference_program(instance: Instance) -> str:
    main = "print('\\n'.join(','.join(row) for row in complete(grid)))"
    return program([complete], main, grid=instance.check["grid"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    grid = _parse(correct) or [["a"] * N for _ in range(N)]
    out = []
    swapped = [list(row) for row in grid]
    r = rng.randrange(N)
    swapped[r][0], swapped[r][1] = swapped[r][1], swapped[r][0]  # breaks two columns
    out.append(swapped)
    rows_swapped = [list(row) for row in grid]
    rows_swapped[0], rows_swapped[1] = rows_swapped[1], rows_swapped[0]  # breaks the diagonal or a given
    out.append(rows_swapped)
    changed = [list(row) for row in grid]
    changed[N - 1][0] = "a" if changed[N - 1][0] != "a" else "b"
    out.append(changed)
    out.append(grid[:-1])
    texts = ["\n".join(",".join(row) for row in g) for g in out]
    return [w for w in dict.fromkeys(texts) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    grid = [[v or "" for v in row] for row in sol["grid"]]
    stored = sol.get("solution")
    answer = "\n".join(",".join(row) for row in stored) if stored else None
    return Instance(record["question"], {"grid": grid}, None), answer


FAMILY = TaskFamily(
    name="letter_logic_diagram", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"num_blanks": [15, 30]},
    description="Complete a 7x7 a–g Latin square with a constant minor diagonal; constraint check.",
)
