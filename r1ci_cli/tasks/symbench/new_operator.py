"""New Operator (SymBench): evaluate an expression built from newly defined binary operators.

Each symbol (``~ & @ % # $``) is defined on numbers a, b as ``k*a*b``, ``k*a+m*b`` or ``(a + b)/b``. The
expression applies the operators left to right, ``((x op y) op z) op w``; our questions write every
parenthesis so the order is stated. The answer is a single number, unique, compared exactly (a decimal
correctly rounded to two or more places also passes, since results such as 5/3 repeat).

Reference data: the original three-operator questions read ``(3~4)&5@6`` with no stated precedence, and
their stored answers follow neither left-to-right nor any fixed precedence (99 of the 100 differ from the
left-to-right value: they equal ``(3~4)&5`` or ``5@6`` alone). ``from_symbench`` checks against the
left-to-right value and returns the stored answer, so those 99 are reported as rejected.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.numbers import close, fmt_number, parse_exact
from r1ci_cli.tasks.symbench.sampling import knob

SYMBOLS = "~&@%#$"


def apply_op(definition, a, b):
    """The value of one operator definition (``"3*a*b"``, ``"2*a+5*b"``, ``"(a + b)/b"``) on Fractions."""
    from fractions import Fraction
    text = definition.replace(" ", "")
    if text == "(a+b)/b":
        return (a + b) / b
    left, _, right = text.partition("+")
    if right:  # k*a+m*b
        return Fraction(int(left.split("*")[0])) * a + Fraction(int(right.split("*")[0])) * b
    return Fraction(int(text.split("*")[0])) * a * b  # k*a*b


def evaluate(definitions, first, steps):
    """Left-to-right value: ``first`` is [x, op, y]; each step is [op, z]."""
    from fractions import Fraction
    x, op, y = first
    value = apply_op(definitions[op], Fraction(x), Fraction(y))
    for op, z in steps:
        value = apply_op(definitions[op], value, Fraction(z))
    return value


def show(value):
    """An integer, or a decimal rounded to 4 places (the verifier accepts correctly rounded decimals)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.4f}".rstrip("0").rstrip(".")


def _random_definition(rng: random.Random, coef_max: int) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"{rng.randint(1, coef_max)}*a*b"
    if kind == 1:
        return f"{rng.randint(1, coef_max)}*a+{rng.randint(1, coef_max)}*b"
    return "(a + b)/b"


def _question(definitions: Mapping[str, str], first: list, steps: list) -> str:
    symbols = list(definitions)
    lines = [f"Let a and b be numbers. Define a{s}b to be {d}." for s, d in definitions.items()]
    head = ""
    if len(symbols) > 1:
        names = ", ".join(symbols[:-1]) + " and " + symbols[-1]
        head = f"Let x and y represent two numbers. The new operations {names} are defined as follows:\n"
    expr = f"({first[0]}{first[1]}{first[2]})"
    for op, z in steps:
        expr = f"({expr}{op}{z})"
    expr = expr[1:-1]  # the outermost parenthesis adds nothing
    return (head + "\n".join(lines) + f"\nCalculate {expr}.\n"
            "Return your answer as a single number (an integer, or a decimal rounded to at least 2 places) "
            "with format <<<number>>>, e.g. <<<12.5>>>.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n_symbols = knob(rng, knobs, "symbols")
    n_steps = max(knob(rng, knobs, "applications"), n_symbols)
    coef_max, operand_max = knob(rng, knobs, "coef_max"), knob(rng, knobs, "operand_max")
    symbols = rng.sample(SYMBOLS, n_symbols)
    definitions = {s: _random_definition(rng, coef_max) for s in symbols}
    order = symbols + [rng.choice(symbols) for _ in range(n_steps - n_symbols)]
    order = [order[0]] + rng.sample(order[1:], len(order) - 1) if n_symbols > 1 else order
    operands = [rng.randint(1, operand_max) for _ in range(n_steps + 1)]
    first = [operands[0], order[0], operands[1]]
    steps = [[op, z] for op, z in zip(order[1:], operands[2:])]
    value = evaluate(definitions, first, steps)
    check = {"definitions": definitions, "first": first, "steps": steps}
    return Instance(_question(definitions, first, steps), check, show(value))


def _value(instance: Instance) -> Fraction:
    c = instance.check
    return evaluate(c["definitions"], c["first"], c["steps"])


def verify(instance: Instance, answer: str) -> bool:
    return close(parse_exact(answer), _value(instance))


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([apply_op, evaluate, show], "print(show(evaluate(definitions, first, steps)))",
                   definitions=dict(c["definitions"]), first=list(c["first"]),
                   steps=[list(s) for s in c["steps"]])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    value = _value(instance)
    c = instance.check
    wrong = {fmt_number(value + 1), fmt_number(value - 1), fmt_number(value * 2), fmt_number(-value)}
    if c["steps"]:  # a common slip: stop one application early
        wrong.add(fmt_number(evaluate(c["definitions"], c["first"], c["steps"][:-1])))
    return [w for w in wrong if not close(parse_exact(w), value)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    """The stored question, checked against the left-to-right value; the stored answer as text."""
    sol = record["solution"]
    expr = re.search(r"Calculate (.*)\.\s*\n", record["question"]).group(1).replace(" ", "")
    m = re.fullmatch(r"\((\d+)(\D)(\d+)\)((?:\D\d+)*)", expr)
    if m is None:
        raise ValueError(f"unexpected expression {expr!r}")
    first = [int(m[1]), m[2], int(m[3])]
    steps = [[op, int(z)] for op, z in re.findall(r"(\D)(\d+)", m[4])]
    check = {"definitions": dict(sol["operator_definitions"]), "first": first, "steps": steps}
    value = evaluate(check["definitions"], first, steps)
    stored = repr(float(sol["solution"])) if sol.get("solution") is not None else None
    return Instance(record["question"], check, show(value)), stored


FAMILY = TaskFamily(
    name="new_operator", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"symbols": [1, 3], "applications": [2, 3], "coef_max": 5, "operand_max": 9},
    description="Evaluate a left-to-right chain of newly defined binary operators; exact number.",
)
