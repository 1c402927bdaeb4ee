"""Number Multiply (SymBench): the exact product of a few signed integers of given digit lengths.

The answer is one integer (plain or comma-grouped); the check is exact integer equality (the original
looked for the target inside the answer text, which a bare-number check makes strict).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.answer import parse_number
from r1ci_cli.tasks.registry import Instance, TaskFamily, program

FORMAT_LINE = "\nReturn the final answer as one integer in the format <<<answer>>>."


def multiply(numbers):
    """The exact product (Python integers do not overflow)."""
    product = 1
    for v in numbers:
        product *= v
    return product


def _product_expr(numbers: list[int]) -> str:
    return "*".join(str(v) for v in numbers)


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    spec = knobs["digits"]
    # One digit list ([8, 8]) is used as given; a list of digit lists is a choice per instance.
    digits = spec if all(isinstance(d, int) for d in spec) else rng.choice(spec)
    negative = knobs["negative_prob"]
    numbers = []
    for d in digits:
        value = rng.randint(10 ** (d - 1) if d > 1 else 1, 10 ** d - 1)
        numbers.append(-value if rng.random() < negative else value)
    question = f"What is the result of {_product_expr(numbers)}?" + FORMAT_LINE
    return Instance(question, {"numbers": numbers}, str(multiply(numbers)))


def verify(instance: Instance, answer: str) -> bool:
    got = parse_number(answer)
    return got is not None and not isinstance(got, float) and got == multiply(instance.check["numbers"])


def reference_program(instance: Instance) -> str:
    return program([multiply], "print(multiply(numbers))", numbers=instance.check["numbers"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    value = int(correct)
    out = [str(value + 1), str(-value) if value else "1", str(value * 10), correct[:-1] or "0"]
    return [w for w in dict.fromkeys(out) if w != correct and parse_number(w) != value]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    numbers = [int(v) for v in record["input_value_list"]]
    # The stored question is exactly the runner's prompt; it is kept as is.
    return Instance(record["question"], {"numbers": numbers}, str(multiply(numbers))), record["solution"]


FAMILY = TaskFamily(
    name="number_multiply", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"digits": [[1, 2, 4], [1, 3, 4], [1, 2, 2, 4]], "negative_prob": 0.5},
    description="Exact product of signed integers with given digit counts; integer equality.",
)
