"""Game 24 (SymBench): combine the given numbers with + - * / and parentheses to reach the target.

The answer is an arithmetic expression. It is checked, not matched: parsed by a small AST walker (integer
literals, the four binary operators and parentheses only; no unary minus, no names, never ``eval``), the
multiset of its numbers must equal the given one, and its value, computed with exact fractions, must equal
the target. Any valid expression passes.

Reference data: 35 stored solutions (8/40/60/80-number sets) reach 24 only through float rounding and are
rejected by the exact check (see the data README's "Known oddities").
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.sampling import attempts, knob

MAX_EXPRESSION_CHARS = 2000
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b}


def evaluate_expression(text: str) -> tuple[Fraction, list[int]] | None:
    """(exact value, numbers used) of an arithmetic expression, or None when it is not one we accept."""
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        return None
    text = text.strip().replace("×", "*").replace("÷", "/").replace("−", "-").replace("\\times", "*")
    if "=" in text:  # "(...) = 24": keep the left side only
        text = text.split("=")[0]
    text = text.replace("[", "(").replace("]", ")")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    used: list[int] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
            used.append(node.value)
            return Fraction(node.value)
        raise ValueError("not allowed")

    try:
        return walk(tree.body), used
    except (ValueError, ZeroDivisionError, RecursionError, MemoryError):
        return None


def expression_problem(numbers: list[int], target: int, text: str) -> str | None:
    """Why ``text`` does not solve the puzzle, or None when it does."""
    result = evaluate_expression(text)
    if result is None:
        return "not an arithmetic expression of integers with + - * / and parentheses"
    value, used = result
    if Counter(used) != Counter(numbers):
        return f"uses {sorted(used)} instead of {sorted(numbers)}"
    if value != target:
        return f"evaluates to {value}, not {target}"
    return None


def solve24(numbers, target):
    """An expression over all ``numbers`` equal to ``target``, or None. Depth-first search over pairs in
    floats (fast; failed multisets memoised), each candidate then confirmed with exact fractions."""
    import ast
    from fractions import Fraction

    def exact(node):
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        a, b = exact(node.left), exact(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        return a / b  # a zero divisor raises ZeroDivisionError, caught below

    failed = set()
    goal = float(target)

    def search(items):
        if len(items) == 1:
            value, text = items[0]
            if abs(value - goal) < 1e-6:
                try:
                    if exact(ast.parse(text, mode="eval").body) == Fraction(target):
                        return text
                except ZeroDivisionError:
                    return None
            return None
        key = tuple(sorted(round(v, 9) for v, _ in items))
        if key in failed:
            return None
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (a, ea), (b, eb) = items[i], items[j]
                rest = [items[k] for k in range(len(items)) if k not in (i, j)]
                options = [(a + b, f"({ea} + {eb})"), (a * b, f"({ea} * {eb})"),
                           (a - b, f"({ea} - {eb})"), (b - a, f"({eb} - {ea})")]
                if b != 0:
                    options.append((a / b, f"({ea} / {eb})"))
                if a != 0:
                    options.append((b / a, f"({eb} / {ea})"))
                for value, text in options:
                    found = search(rest + [(value, text)])
                    if found is not None:
                        return found
        failed.add(key)
        return None

    found = search([(float(n), str(n)) for n in numbers])
    if found is not None and found.startswith("(") and found.endswith(")"):
        depth = 0
        for k, ch in enumerate(found):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and k < len(found) - 1:
                break
        else:
            found = found[1:-1]  # the outermost parentheses wrap the whole expression
    return found


def make_question(numbers: list[int], target: int) -> str:
    return ("Use the given numbers and basic arithmetic operations (+, -, *, /) to obtain the target number "
            f"{target}. Each number must be used exactly once, and no other numbers may be introduced; you may "
            "use parentheses to set the order of operations.\n\n"
            "Example: Input: 4 4 6 8 (target 24). Answer: <<<(4 + 8) * (6 - 4)>>>\n"
            "Example: Input: 1 3 4 6 (target 24). Answer: <<<6 / (1 - 3 / 4)>>>\n\n"
            f"Input: {' '.join(map(str, numbers))} (target {target})\n"
            "Output only the expression, in the format <<<expression>>>.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    count = knob(rng, knobs, "numbers")
    lo, hi = knobs["number_range"]
    for _ in attempts("game24"):
        target = knob(rng, knobs, "target")  # a target range is re-drawn with the numbers: some are unreachable
        numbers = sorted(rng.randint(lo, hi) for _ in range(count))
        if solve24(numbers, target) is not None:
            return Instance(make_question(numbers, target), {"numbers": numbers, "target": target}, None)


def verify(instance: Instance, answer: str) -> bool:
    return expression_problem(instance.check["numbers"], instance.check["target"], answer) is None


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([solve24], "print(solve24(numbers, target))",
                   numbers=list(c["numbers"]), target=c["target"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    numbers = instance.check["numbers"]
    out = [f"({correct}) + 1", f"({correct}) * 2", " * ".join(map(str, numbers)) + " * 0 + 1"]
    digits = [k for k, ch in enumerate(correct) if ch.isdigit() and (k + 1 == len(correct)
                                                                     or not correct[k + 1].isdigit())]
    if digits:  # bump one number: the multiset no longer matches
        k = rng.choice(digits)
        out.append(correct[:k] + str((int(correct[k]) + 1) % 10) + correct[k + 1:])
    out.append(correct.replace("+", "-", 1) if "+" in correct else correct.replace("*", "+", 1))
    return [w for w in dict.fromkeys(out) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    """The runner's question is not stored: build ours from ``numbers`` and ``target``."""
    numbers, target = list(record["numbers"]), int(record["target"])
    return Instance(make_question(numbers, target), {"numbers": numbers, "target": target}, None), record["solution"]


FAMILY = TaskFamily(
    name="game24", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"numbers": 4, "number_range": [1, 13], "target": 24},
    description="Reach the target with all given numbers and + - * /; exact-fraction expression check.",
)
