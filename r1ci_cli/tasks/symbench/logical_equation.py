"""Logical Equation (SymBench): assign distinct numbers from a given set to letters under equations.

Constraints are ``X + Y = n``, ``X - Y = n``, ``X > Y`` and ``X = r·Y`` (r with one decimal). The answer is
the list of values for A, B, C, …; the check is the constraints themselves (values a permutation of the
given set, every constraint holds), so any valid assignment passes. Like the original sets (111/150 of the
reference puzzles have several valid assignments), our puzzles need not be unique; the knob ``unique``
adds constraints until one assignment remains.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_int_list
from r1ci_cli.tasks.symbench.sampling import attempts, knob

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
def _smooth(limit: int) -> list[int]:
    """Numbers with prime factors 2, 3, 5, 7 (times at most one 11): many pairs then have ratios with one
    decimal (1.5, 2.4, 3.2 …), as in the original sets."""
    out = []
    for n in range(1, limit + 1):
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        if m in (1, 11):
            out.append(n)
    return out


POOL = _smooth(225)


def holds(constraint, values):
    """Whether one constraint [kind, i, j, n] holds for a full or partial value list (None = unknown)."""
    from fractions import Fraction
    kind, i, j, n = constraint
    a, b = values[i], values[j]
    if a is None or b is None:
        return True
    if kind == "+":
        return a + b == n
    if kind == "-":
        return a - b == n
    if kind == ">":
        return a > b
    return Fraction(a) == Fraction(n) * b  # "*": X = n·Y, n a decimal string


def solve_assignments(count, numbers, constraints, limit):
    """Up to ``limit`` assignments (lists of values, letter order) satisfying all constraints, values distinct
    from ``numbers``. Backtracking that always branches on the letter with the fewest candidates."""
    from fractions import Fraction

    touching = [[c for c in constraints if v in (c[1], c[2])] for v in range(count)]

    def partner(kind, n, x, var_is_left):
        """The value the other letter needs when this one is ``x`` (None for ``>``)."""
        if kind == "+":
            return n - x
        if kind == "-":
            return x - n if var_is_left else x + n
        if kind == "*":
            return Fraction(x) / Fraction(n) if var_is_left else Fraction(n) * x
        return None

    def candidates(var, values, free):
        opts = []
        for x in sorted(free):
            values[var] = x
            good = True
            for kind, i, j, n in touching[var]:
                other = j if i == var else i
                if values[other] is not None:
                    if not holds([kind, i, j, n], values):
                        good = False
                        break
                elif kind != ">":
                    # forward check: the partner's required value must still be free (and not x itself)
                    want = partner(kind, n, x, i == var)
                    if want == x or want not in free:
                        good = False
                        break
            values[var] = None
            if good:
                opts.append(x)
        return opts

    found = []

    def search(values, free):
        if len(found) >= limit:
            return
        open_vars = [v for v in range(count) if values[v] is None]
        if not open_vars:
            found.append(list(values))
            return
        best, best_opts = None, None
        for var in open_vars:
            opts = candidates(var, values, free)
            if best_opts is None or len(opts) < len(best_opts):
                best, best_opts = var, opts
            if not opts:
                return
        for x in best_opts:
            values[best] = x
            free.discard(x)
            search(values, free)
            free.add(x)
            values[best] = None

    search([None] * count, set(numbers))
    return found


def _text(constraint: list, letters: str) -> str:
    kind, i, j, n = constraint
    if kind == ">":
        return f"{letters[i]} > {letters[j]}"
    if kind == "*":
        return f"{letters[i]} = {n}{letters[j]}"
    return f"{letters[i]} {kind} {letters[j]} = {n}"


def _question(count: int, numbers: list[int], constraints: list) -> str:
    letters = LETTERS[:count]
    lines = "\n".join(f"{k}. {_text(c, letters)}" for k, c in enumerate(constraints, 1))
    return ("Calculate the number for each letter based on the range and set of inequalities that the given "
            f"letter represents. There are {count} letters {', '.join(letters)}, each representing one of the "
            f"numbers {', '.join(map(str, sorted(numbers)))} (each number is used exactly once). The system of "
            f"inequalities is satisfied as follows:\n{lines}\n\n"
            "Return the answers in alphabetical order starting with A, and each element in the list represents "
            "the value of the corresponding letter. Return your answer with the format <<<list of values>>>, "
            "like <<<[1, 2, 3]>>> means that A represents 1, B represents 2, and C represents 3.")


def _random_constraint(rng: random.Random, values: list[int], covered: set[int]) -> list:
    count = len(values)
    fresh = [v for v in range(count) if v not in covered]
    for _ in range(50):
        i = rng.choice(fresh) if fresh else rng.randrange(count)
        j = rng.choice([v for v in range(count) if v != i])
        a, b = values[i], values[j]
        kind = rng.choices("+-*>", weights=[4, 4, 3, 1])[0]
        if kind == "*":
            if a <= b or (Fraction(a, b) * 10).denominator != 1 or Fraction(a, b) > 5:
                continue
            return ["*", i, j, f"{a / b:.1f}"]
        if kind == ">":
            return [">", i, j, None] if a > b else [">", j, i, None]
        return [kind, i, j, a + b if kind == "+" else a - b]
    return ["-", i, j, a - b]


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    """Exactly ``letters - constraint_gap`` random constraints true for a hidden assignment (solvable by construction);
    with ``unique`` true, more are added until only that assignment remains (slower, ~10/s)."""
    count = knob(rng, knobs, "letters")
    n_constraints = count - knob(rng, knobs, "constraint_gap")  # the original sets use letters-2 .. letters-1
    unique = bool(knob(rng, knobs, "unique"))
    for _ in attempts("logical_equation"):
        numbers = sorted(rng.sample(POOL, count))
        values = rng.sample(numbers, count)
        constraints: list = []
        covered: set[int] = set()
        while len(constraints) < max(n_constraints, 1) or (
                unique and len(solve_assignments(count, numbers, constraints, 2)) > 1):
            c = _random_constraint(rng, values, covered)
            if c in constraints:
                continue
            constraints.append(c)
            covered.update((c[1], c[2]))
            if len(constraints) > count + 6:
                break
        if not unique or len(solve_assignments(count, numbers, constraints, 2)) == 1:
            check = {"numbers": numbers, "constraints": constraints}
            return Instance(_question(count, numbers, constraints), check, values)


def verify(instance: Instance, answer: str) -> bool:
    numbers, constraints = instance.check["numbers"], instance.check["constraints"]
    got = parse_int_list(answer)
    if got is None or sorted(got) != sorted(numbers):
        return False
    return all(holds(c, got) for c in constraints)


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([holds, solve_assignments],
                   "print(solve_assignments(len(numbers), numbers, constraints, 1)[0])",
                   numbers=c["numbers"], constraints=[list(x) for x in c["constraints"]])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    want = parse_int_list(correct) or list(instance.answer)
    out = []
    for _ in range(20):
        i, j = rng.sample(range(len(want)), 2)
        swapped = list(want)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        if not verify(instance, str(swapped)):
            out.append(str(swapped))
        if len(out) >= 2:
            break
    out += [str(want[:-1]), str([want[0] + 1] + want[1:])]
    return [w for w in dict.fromkeys(out) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    q = record["question"]
    count = len(re.search(r"There are \d+ letters ([A-Z, ]+), each", q).group(1).split(", "))
    numbers = [int(x) for x in re.search(r"numbers ([\d, ]+)\. The", q).group(1).split(", ")]
    constraints = []
    for line in re.findall(r"^\d+\. (.*)$", q, re.M):
        line = line.strip()
        if m := re.fullmatch(r"([A-Z]) ([+-]) ([A-Z]) = (-?\d+)", line):
            constraints.append([m[2], ord(m[1]) - 65, ord(m[3]) - 65, int(m[4])])
        elif m := re.fullmatch(r"([A-Z]) > ([A-Z])", line):
            constraints.append([">", ord(m[1]) - 65, ord(m[2]) - 65, None])
        elif m := re.fullmatch(r"([A-Z]) = (\d+(?:\.\d+)?)([A-Z])", line):
            constraints.append(["*", ord(m[1]) - 65, ord(m[3]) - 65, m[2]])
        else:
            raise ValueError(f"unknown constraint {line!r}")
    solution = record["solution"]
    return (Instance(q, {"numbers": numbers, "constraints": constraints}, solution),
            str(solution) if solution is not None else None)


FAMILY = TaskFamily(
    name="logical_equation", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"letters": [9, 15], "constraint_gap": [1, 2], "unique": False},
    description="Assign distinct numbers to letters under sum/difference/ratio/order constraints; checked.",
)
