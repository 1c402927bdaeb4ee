"""Permutations & Combinations (SymBench): shelve lettered books so that every positional constraint holds.

Constraints: X adjacent to Y; X (anywhere) left / right of Y; X in / not in position p (1-based). Many
puzzles allow several arrangements (93/200 reference puzzles do), so the verifier checks that the answer
is a permutation of the books satisfying every constraint. Generation draws the constraints from one
random arrangement, so every instance is solvable. The answer is a list of letters, left to right.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_str_list
from r1ci_cli.tasks.symbench.sampling import attempts, knob

TEMPLATES = {
    "adjacent": "Book {a} must be adjacent to book {b}.",
    "left": "Book {a} must be to the left of book {b}.",
    "right": "Book {a} must be to the right of book {b}.",
    "not_at": "Book {a} cannot be placed in position {b}.",
    "at": "Book {a} must be placed in position {b}.",
}
_PATTERNS = [(kind, re.compile(re.escape(t).replace(r"\{a\}", r"([A-Z])").replace(r"\{b\}", r"([A-Z]|\d+)")))
             for kind, t in TEMPLATES.items()]


def holds(order, constraint):
    """Whether the arrangement ``order`` (list of letters) satisfies one ``[kind, a, b]`` constraint."""
    kind, a, b = constraint
    pos = {x: i + 1 for i, x in enumerate(order)}
    if kind == "adjacent":
        return abs(pos[a] - pos[b]) == 1
    if kind == "left":
        return pos[a] < pos[b]
    if kind == "right":
        return pos[a] > pos[b]
    if kind == "at":
        return pos[a] == b
    if kind == "not_at":
        return pos[a] != b
    raise ValueError(f"unknown constraint {kind}")


def arrange(items, constraints):
    """An arrangement satisfying every constraint (backtracking; a constraint is tested once its books are
    placed), or None."""
    n = len(items)
    order = []

    def placed_ok():
        pos = {x: i + 1 for i, x in enumerate(order)}
        for kind, a, b in constraints:
            if kind in ("at", "not_at"):
                if a in pos and (pos[a] == b) != (kind == "at"):
                    return False
                if kind == "at" and a not in pos and len(order) >= b:
                    return False
            elif a in pos and b in pos:
                if kind == "adjacent" and abs(pos[a] - pos[b]) != 1:
                    return False
                if kind == "left" and pos[a] > pos[b] or kind == "right" and pos[a] < pos[b]:
                    return False
        return True

    def go():
        if len(order) == n:
            return True
        for x in items:
            if x in order:
                continue
            order.append(x)
            if placed_ok() and go():
                return True
            order.pop()
        return False

    return list(order) if go() else None


def constraint_text(c: list[Any]) -> str:
    return TEMPLATES[c[0]].format(a=c[1], b=c[2])


def make_question(items: list[str], constraints: list[list[Any]]) -> str:
    n = len(items)
    lines = "\n".join(f"{i}. {constraint_text(c)}" for i, c in enumerate(constraints, 1))
    return (f"Xiao Wang is a librarian responsible for shelving {n} books labeled {', '.join(items)} on a shelf with "
            f"positions 1 to {n}.\n\nThe constraints are:\n{lines}\n\nQuestion:\nBased on the above conditions, "
            f"please arrange the {n} books from left to right on the bookshelf, i.e. positions 1 through {n}. Return "
            "your answer with the format <<< a list of strings >>>, one solution is enough.for example:\n"
            "<<<[\"A\", \"B\", \"C\"]>>>\nYour answer:\n")


def _random_constraint(rng: random.Random, order: list[str]) -> list[Any]:
    n = len(order)
    kind = rng.choice(["adjacent", "left", "right", "not_at", "not_at", "at"])
    if kind == "adjacent":
        i = rng.randrange(n - 1)
        pair = [order[i], order[i + 1]]
        rng.shuffle(pair)
        return ["adjacent", pair[0], pair[1]]
    if kind in ("left", "right"):
        i, j = sorted(rng.sample(range(n), 2))
        return ["left", order[i], order[j]] if kind == "left" else ["right", order[j], order[i]]
    i = rng.randrange(n)
    if kind == "at":
        return ["at", order[i], i + 1]
    return ["not_at", order[i], rng.choice([p for p in range(1, n + 1) if p != i + 1])]


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n = knob(rng, knobs, "num_books")
    if not 2 <= n <= 26:
        raise R1ciError(f"permutations_and_combinations: num_books must be 2..26, not {n}")
    count = n + knob(rng, knobs, "extra_constraints")
    items = [chr(ord("A") + i) for i in range(n)]
    order = list(items)
    rng.shuffle(order)
    constraints: list[list[Any]] = []
    for _ in attempts("permutations_and_combinations", knobs):
        c = _random_constraint(rng, order)
        if c not in constraints:
            constraints.append(c)
            if len(constraints) == count:
                break
    check = {"items": items, "constraints": constraints}
    return Instance(make_question(items, constraints), check, None)


def verify(instance: Instance, answer: str) -> bool:
    got = parse_str_list(answer)
    items = instance.check["items"]
    if got is None or sorted(got) != sorted(items):
        return False
    return all(holds(got, c) for c in instance.check["constraints"])


def reference_program(instance: Instance) -> str:
    main = "print('[' + ', '.join('\"%s\"' % x for x in arrange(items, constraints)) + ']')"
    return program([arrange], main, items=instance.check["items"], constraints=instance.check["constraints"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    got = parse_str_list(correct) or list(instance.check["items"])
    out = [got[:-1], got + [got[0]], list(reversed(got))]
    for c in instance.check["constraints"]:
        if c[0] in ("left", "right", "adjacent"):
            broken = list(got)
            i, j = broken.index(c[1]), broken.index(c[2])
            broken[i], broken[j] = broken[j], broken[i]
            out.append(broken)
            break
    texts = ["[" + ", ".join(f'"{x}"' for x in o) + "]" for o in out]
    return [w for w in dict.fromkeys(texts) if not verify(instance, w)]


def parse_constraints(text: str) -> list[list[Any]]:
    """Constraints from the numbered lines of ``constraints_text`` (the wording of TEMPLATES)."""
    out = []
    for line in text.splitlines():
        body = re.sub(r"^\s*\d+\.\s*", "", line).strip()
        if not body:
            continue
        for kind, pattern in _PATTERNS:
            m = pattern.fullmatch(body)
            if m:
                b = int(m.group(2)) if kind in ("at", "not_at") else m.group(2)
                out.append([kind, m.group(1), b])
                break
        else:
            raise ValueError(f"unrecognised constraint: {body!r}")
    return out


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = {"items": list(sol["items"]), "constraints": parse_constraints(sol["constraints_text"])}
    stored = sol.get("correct_solution")
    answer = "[" + ", ".join(f'"{x}"' for x in stored) + "]" if stored else None
    return Instance(record["question"], check, None), answer


FAMILY = TaskFamily(
    name="permutations_and_combinations", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"num_books": [6, 9], "extra_constraints": [1, 2]},
    description="Arrange lettered books under adjacency/order/position constraints; constraint check.",
)
