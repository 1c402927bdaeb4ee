"""BBH dyck_languages, word_sorting and multistep_arithmetic_two: seeded generators and computed references.

dyck_languages: ``Complete the rest of the sequence, ... Input: [ { } (`` -> ``) ]``; the answer is the closing
brackets of the still-open ones, innermost first. word_sorting: ``Sort the following words alphabetically: List:
oven costume`` -> ``costume oven``. multistep_arithmetic_two: ``((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =`` ->
``24``; the reference program parses the expression itself (unary minus, ``*`` before ``+``/``-``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.bbh._common import generated_family, instance, int_knob, range_knob
from r1ci_cli.tasks.bbh._words import WORDS
from r1ci_cli.tasks.registry import Instance, program

# ---------------------------------------------------------------------------------------------- dyck

_PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def generate_dyck(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    unclosed = rng.randint(1, int_knob(knobs, "max_unclosed", 1, 20))
    length = rng.randint(*range_knob(knobs, "min_length", "max_length", 1, 200))
    length = max(length, unclosed)
    if (length - unclosed) % 2:
        length += 1
    tokens: list[str] = []
    stack: list[str] = []
    for step in range(length):
        remaining = length - step - 1
        can_open = abs(len(stack) + 1 - unclosed) <= remaining
        can_close = bool(stack) and abs(len(stack) - 1 - unclosed) <= remaining
        if can_open and (not can_close or rng.random() < 0.5):
            stack.append(rng.choice(list(_PAIRS)))
            tokens.append(stack[-1])
        else:
            tokens.append(_PAIRS[stack.pop()])
    target = "".join(_PAIRS[b] for b in reversed(stack))
    text = ("Complete the rest of the sequence, making sure that the parentheses are closed properly. "
            f"Input: {' '.join(tokens)}")
    return instance(text, "dyck", target, sequence=" ".join(tokens))


def close_dyck(sequence):
    """The closing brackets that complete a space-separated bracket sequence, innermost first."""
    pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
    stack = []
    for token in sequence.split():
        if token in pairs:
            stack.append(token)
        elif not stack or pairs[stack.pop()] != token:
            raise ValueError("the input is not a valid prefix")
    return " ".join(pairs[t] for t in reversed(stack))


def reference_dyck(inst: Instance) -> str:
    """Scan with a stack and close what is open."""
    return program([close_dyck], "print(close_dyck(sequence))", sequence=inst.check["sequence"])


# ---------------------------------------------------------------------------------------------- words


def generate_words(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    count = rng.randint(*range_knob(knobs, "min_words", "max_words", 1, 50))
    words = rng.sample(WORDS, count)
    text = f"Sort the following words alphabetically: List: {' '.join(words)}"
    return instance(text, "words", sorted(words), words=words)


def reference_words(inst: Instance) -> str:
    """Sort the words."""
    return program([], "print(' '.join(sorted(words)))", words=inst.check["words"])


# ---------------------------------------------------------------------------------------------- arithmetic


def _group_value(numbers: list[int], ops: list[str]) -> int:
    """Value of n0 op0 n1 op1 ... with * first, then + and - left to right."""
    terms, signs = [numbers[0]], []
    for op, number in zip(ops, numbers[1:]):
        if op == "*":
            terms[-1] *= number
        else:
            signs.append(op)
            terms.append(number)
    value = terms[0]
    for sign, term in zip(signs, terms[1:]):
        value = value + term if sign == "+" else value - term
    return value


def generate_arithmetic(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    size, top = int_knob(knobs, "terms_per_group", 1, 10), int_knob(knobs, "max_abs", 1, 99)
    groups, values = [], []
    for _ in range(int_knob(knobs, "num_groups", 1, 6)):
        numbers = [rng.randint(-top, top) for _ in range(size)]
        ops = [rng.choice("+-*") for _ in range(size - 1)]
        groups.append("(" + " ".join([str(numbers[0])] + [f"{o} {n}" for o, n in zip(ops, numbers[1:])]) + ")")
        values.append(_group_value(numbers, ops))
    outer = [rng.choice("+-*") for _ in groups[1:]]
    expression = "(" + " ".join([groups[0]] + [f"{o} {g}" for o, g in zip(outer, groups[1:])]) + ")"
    return instance(f"{expression} =", "number", _group_value(values, outer), expression=expression)


def eval_arithmetic(expression):
    """Evaluate integers with + - * and parentheses; a '-' directly before a number or '(' is unary."""
    import re

    tokens = re.findall(r"\d+|[-+*()]", expression)
    pos = [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take():
        pos[0] += 1
        return tokens[pos[0] - 1]

    def sum_():
        value = product()
        while peek() in ("+", "-"):
            op = take()
            right = product()
            value = value + right if op == "+" else value - right
        return value

    def product():
        value = unary()
        while peek() == "*":
            take()
            value = value * unary()
        return value

    def unary():
        token = take()
        if token == "-":
            return -unary()
        if token == "(":
            value = sum_()
            if take() != ")":
                raise ValueError("unbalanced parentheses")
            return value
        return int(token)

    result = sum_()
    if pos[0] != len(tokens):
        raise ValueError("trailing tokens")
    return result


def reference_arithmetic(inst: Instance) -> str:
    """Parse and evaluate the expression."""
    return program([eval_arithmetic], "print(eval_arithmetic(expression))", expression=inst.check["expression"])


FAMILIES = [
    generated_family("dyck_languages", "dyck", generate_dyck, reference_dyck,
                     {"min_length": 4, "max_length": 30, "max_unclosed": 4},
                     "Close the open brackets of a Dyck-language prefix."),
    generated_family("word_sorting", "words", generate_words, reference_words,
                     {"min_words": 3, "max_words": 16}, "Sort a list of words alphabetically."),
    generated_family("multistep_arithmetic_two", "number", generate_arithmetic, reference_arithmetic,
                     {"num_groups": 2, "terms_per_group": 4, "max_abs": 9},
                     "Evaluate a two-level integer expression with + - *."),
]
