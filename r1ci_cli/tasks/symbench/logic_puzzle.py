"""Logic Puzzle (SymBench): select k cells of a number grid under a row/column rule.

The selection must hold exactly k distinct cells, include the top-right cell (the stated first choice), and
satisfy the rule on every row and column: ``sum_le_4`` (the selected numbers of each row and of each column
sum to at most 4) or ``product_gt_0`` (their product is positive: no zero, an even number of negatives;
rows or columns with nothing selected are unconstrained). Many selections are valid; the verifier checks
the rule, so every valid one passes.

Reference data: 27/200 stored selections break the rule the question states (see the data README).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_pairs
from r1ci_cli.tasks.symbench.sampling import attempts, knob

# Cells to select per grid size in the original sets (sizes 2–3 use the sum rule, larger the product rule).
SELECT = {2: 3, 3: 4, 4: 6, 5: 9, 6: 12, 7: 16, 8: 18, 9: 20, 10: 25}


def rule_violation(grid, cells, count, rule):
    """Why a selection is invalid (a short reason), or None when it satisfies every condition."""
    n = len(grid)
    if len(cells) != count:
        return f"{len(cells)} cells selected, {count} required"
    if len(set(map(tuple, cells))) != len(cells):
        return "a cell is selected twice"
    if any(not (0 <= r < n and 0 <= c < len(grid[0])) for r, c in cells):
        return "a cell is outside the grid"
    if (0, len(grid[0]) - 1) not in set(map(tuple, cells)):
        return "the top-right cell is not selected"
    lines = {}
    for r, c in cells:
        lines.setdefault(("row", r), []).append(grid[r][c])
        lines.setdefault(("column", c), []).append(grid[r][c])
    for (kind, k), values in sorted(lines.items()):
        if rule == "sum_le_4" and sum(values) > 4:
            return f"{kind} {k} sums to {sum(values)} > 4"
        if rule == "product_gt_0":
            product = 1
            for v in values:
                product *= v
            if product <= 0:
                return f"{kind} {k} has product {product} <= 0"
    return None


def find_selection(grid, count, rule):
    """One valid selection (list of [row, col]) by depth-first search, or None."""
    n, m = len(grid), len(grid[0])
    order = [(r, c) for r in range(n) for c in range(m)]
    chosen = []
    row_sum, col_sum = [0] * n, [0] * m
    row_neg, col_neg = [0] * n, [0] * m
    neg_below = [[sum(1 for rr in range(r + 1, n) if grid[rr][c] < 0) for c in range(m)] for r in range(n)]

    def ok_include(r, c):
        v = grid[r][c]
        if rule == "sum_le_4":
            return row_sum[r] + v <= 4 and col_sum[c] + v <= 4
        return v != 0

    def row_done_ok(r):
        if rule == "product_gt_0":
            if row_neg[r] % 2:
                return False
            # a column left with an odd count of negatives needs a negative further down
            return all(col_neg[c] % 2 == 0 or neg_below[r][c] > 0 for c in range(m))
        return True

    def search(k):
        if len(chosen) == count:
            return all(row_neg[r] % 2 == 0 for r in range(n)) and all(col_neg[c] % 2 == 0 for c in range(m)) \
                if rule == "product_gt_0" else True
        if k == len(order) or len(order) - k < count - len(chosen):
            return False
        r, c = order[k]
        forced = (r, c) == (0, m - 1)
        positive_first = grid[r][c] > 0 or rule == "sum_le_4"
        for take in ((True, False) if positive_first else (False, True)):
            if forced and not take:
                continue
            if take and not ok_include(r, c):
                continue
            if take:
                chosen.append([r, c])
                row_sum[r] += grid[r][c]
                col_sum[c] += grid[r][c]
                row_neg[r] += grid[r][c] < 0
                col_neg[c] += grid[r][c] < 0
            finished = len(chosen) == count
            # a finished row (or a finished selection) must already satisfy the rule on that row
            if (c < m - 1 and not finished) or row_done_ok(r):
                if search(k + 1):
                    return True
            if take:
                chosen.pop()
                row_sum[r] -= grid[r][c]
                col_sum[c] -= grid[r][c]
                row_neg[r] -= grid[r][c] < 0
                col_neg[c] -= grid[r][c] < 0
        return False

    return [list(x) for x in chosen] if search(0) else None


def show(cells):
    return ", ".join(f"{r} {c}" for r, c in cells)


def _question(grid: list[list[int]], count: int, rule: str, lo: int, hi: int) -> str:
    n = len(grid)
    rule_text = ("The sum of the selected numbers in each row and each column should be less than or equal to 4."
                 if rule == "sum_le_4" else
                 "The product of each row and column of the selected number must be greater than 0 (rows and "
                 "columns with no selected number are not constrained).")
    body = "\n".join(", ".join(map(str, row)) for row in grid)
    return (f"Given a {n}*{n} grid where each cell contains a number (between {lo} to {hi}), you must select "
            f"{count} different numbers from these cells. {rule_text} The numbers in the same row are separated "
            "by ','. Positions are written as (row, column), 0-based, with (0,0) the top-left cell.\n"
            f"Using the number {grid[0][n - 1]} in the top-rightmost square (0,{n - 1}) as the first selected "
            f"number\n{body}\n\n"
            "Return your answer with the format <<<list of selected number positions>>>, where each position is "
            "given as row column (0-based indices). For example, <<<0 3, 1 0, 2 4>>> means numbers selected are "
            "at positions (0,3), (1,0), and (2,4).")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n = knob(rng, knobs, "size")
    count = knobs.get("select") or SELECT.get(n, max(3, n * n // 4))
    rule = "sum_le_4" if n <= 3 else "product_gt_0"
    lo, hi = (1, n + 1) if rule == "sum_le_4" else (-2 * n, 2 * n)
    for _ in attempts("logic_puzzle"):
        grid = [[rng.randint(lo, hi) for _ in range(n)] for _ in range(n)]
        found = find_selection(grid, count, rule)
        if found is not None:
            check = {"grid": grid, "count": count, "rule": rule}
            return Instance(_question(grid, count, rule, lo, hi), check, None)


def _violation(instance: Instance, answer: str) -> str | None:
    cells = parse_pairs(answer)
    if cells is None:
        return "unreadable answer"
    c = instance.check
    return rule_violation(c["grid"], [list(x) for x in cells], c["count"], c["rule"])


def verify(instance: Instance, answer: str) -> bool:
    return _violation(instance, answer) is None


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([find_selection, show], "print(show(find_selection(grid, count, rule)))",
                   grid=c["grid"], count=c["count"], rule=c["rule"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    cells = [list(x) for x in parse_pairs(correct) or []]
    c = instance.check
    n = len(c["grid"])
    without_corner = [x for x in cells if x != [0, n - 1]]
    spare = next(([r, k] for r in range(n) for k in range(n) if [r, k] not in cells), None)
    out = [show(cells[:-1]), show(cells + [cells[-1]])]
    if spare is not None:  # drop the required top-right cell, keep the count
        out.append(show(without_corner + [spare]))
    for _ in range(30):  # move one selected cell somewhere that breaks the rule
        moved = list(cells)
        moved[rng.randrange(len(moved))] = [rng.randrange(n), rng.randrange(n)]
        if not verify(instance, show(moved)):
            out.append(show(moved))
            break
    return [w for w in dict.fromkeys(out) if w and not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = {"grid": sol["grid"], "count": len(sol["solution"]), "rule": sol["constraints"]["type"]}
    return Instance(record["question"], check, None), show(sol["solution"])


FAMILY = TaskFamily(
    name="logic_puzzle", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"size": [2, 10], "select": None},
    description="Select k grid cells with row/column sum ≤ 4 or positive products; constraint check.",
)
