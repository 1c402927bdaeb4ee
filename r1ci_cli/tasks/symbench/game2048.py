"""2048 (SymBench): move one number through a sequence of single steps on a grid of powers of two.

Each step moves the tracked number one cell: into an empty cell it moves; onto an equal number the two
merge (the target doubles, the source empties) and the merged number is tracked on; onto a different number
or off the grid it stays. The answer is the final grid, one row per line with ", " between cells; exact
match on the numbers. The reference data stores answers that follow this rule (200/200); 101 of its
instances start on an empty cell (README "Known oddities"), which our generator avoids.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_grid, to_int
from r1ci_cli.tasks.symbench.sampling import knob

STEPS = {"u": (-1, 0), "d": (1, 0), "l": (0, -1), "r": (0, 1)}


def slide(grid, start, moves):
    """The grid after moving the number at ``start`` (0-based [row, col]) through ``moves``."""
    steps = {"u": (-1, 0), "d": (1, 0), "l": (0, -1), "r": (0, 1)}
    grid = [list(row) for row in grid]
    r, c = start
    for m in moves:
        dr, dc = steps[m]
        nr, nc = r + dr, c + dc
        if not (0 <= nr < len(grid) and 0 <= nc < len(grid[0])):
            continue
        if grid[nr][nc] == 0:
            grid[nr][nc], grid[r][c] = grid[r][c], 0
        elif grid[nr][nc] == grid[r][c]:
            grid[nr][nc], grid[r][c] = 2 * grid[r][c], 0
        else:
            continue
        r, c = nr, nc
    return grid


def render(grid) -> str:
    return "\n".join(", ".join(str(v) for v in row) for row in grid)


def make_question(grid: list[list[int]], start: list[int], moves: str) -> str:
    n = len(grid)
    return (f"In an {n}x{n} grid, there are several squares containing powers of 2. We define the '2048' game: "
            "The numbers in the grid can move in any direction. When they encounter a number that is the same "
            "power of 2, they can combine to form a larger number that is the next power of 2. For example: "
            "2 meets 2 -> 4; 4 meets 4 -> 8; 16 meets 16 -> 32. When they encounter a different number, they "
            "remain unchanged.\nu: represents moving up one step\nd: represents moving down one step\n"
            "l: represents moving left one step\nr: represents moving right one step\n\n"
            f"Now, in the following matrix, move the number in position ({start[0] + 1}, {start[1] + 1}) using the "
            f"sequence '{moves}':\n{render(grid)}\n\nWhat is the matrix after moving?\n"
            f"Return your answer with format <<<matrix>>>, one row per line with the numbers separated by \", \" "
            f"(the same layout as the matrix above).")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n = knob(rng, knobs, "size")
    num_moves = knob(rng, knobs, "num_moves")
    max_exp = knob(rng, knobs, "max_exponent")
    empty = knobs["empty_fraction"]
    grid = [[0 if rng.random() < empty else 2 ** rng.randint(1, max_exp) for _ in range(n)] for _ in range(n)]
    start = [rng.randrange(n), rng.randrange(n)]
    if grid[start[0]][start[1]] == 0:
        grid[start[0]][start[1]] = 2 ** rng.randint(1, max_exp)
    moves = "".join(rng.choice("udlr") for _ in range(num_moves))
    check = {"grid": grid, "start": start, "moves": moves}
    return Instance(make_question(grid, start, moves), check, render(slide(grid, start, moves)))


def _parse(answer: str) -> list[list[int]] | None:
    rows = parse_grid(answer)
    if rows is None:
        return None
    out = [[to_int(v) for v in row] for row in rows]
    return None if any(v is None for row in out for v in row) else out  # type: ignore[return-value]


def verify(instance: Instance, answer: str) -> bool:
    c = instance.check
    return _parse(answer) == slide(c["grid"], c["start"], c["moves"])


def reference_program(instance: Instance) -> str:
    c = instance.check
    main = "print('\\n'.join(', '.join(str(v) for v in row) for row in slide(grid, start, moves)))"
    return program([slide], main, grid=c["grid"], start=c["start"], moves=c["moves"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    c = instance.check
    want = slide(c["grid"], c["start"], c["moves"])
    out = []
    bumped = [list(r) for r in want]
    i, j = rng.randrange(len(want)), rng.randrange(len(want))
    bumped[i][j] = bumped[i][j] * 2 if bumped[i][j] else 2
    out.append(render(bumped))
    flipped = [list(reversed(r)) for r in want]
    out.append(render(flipped) if flipped != want else render([r + [0] for r in want]))
    out.append(render(want[:-1]))
    return [w for w in dict.fromkeys(out) if _parse(w) != want]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = {"grid": sol["grid"], "start": list(sol["start_pos"]), "moves": sol["moves"]}
    return Instance(record["question"], check, render(slide(**check))), sol["solution"]


FAMILY = TaskFamily(
    name="game2048", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"size": [2, 5], "num_moves": [2, 6], "max_exponent": 5, "empty_fraction": 0.3},
    description="Move one tile of a 2048 grid through single steps with merging; final grid, exact match.",
)
