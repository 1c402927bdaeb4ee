"""Combinatorial Calculation (SymBench): put + − × ÷ and parentheses between numbers (order fixed) to hit a target.

Many expressions can be right, so the verifier checks constraints: the answer is a token list such as
``[6, /, 2, +, 7]``; its numbers must be exactly the given ones in the given order (no concatenation, no
unary minus), parentheses balanced, and the expression must evaluate to the target in exact rational
arithmetic through a small recursive-descent parser (model text is never passed to ``eval``).

Generation plants a random expression and takes its value as the target, so every instance is solvable.
The reference program searches all bracketings and operators (interval dynamic programming over exact
fractions) for up to ``MAX_FULL_SEARCH`` numbers; for longer inputs (the original's 15- and 20-number
variants) instances are planted as sums of signed products of consecutive blocks and the program searches
that class of expressions, which contains the planted one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_token_list
from r1ci_cli.tasks.symbench.sampling import attempts, knob

MAX_FULL_SEARCH = 7
BLOCK_BOUND = 10_000  # the block search keeps partial sums within ±BLOCK_BOUND
OPS = "+-*/"


def evaluate_tokens(tokens):
    """Exact value of a token list (numbers, + - * /, parentheses); None if malformed or dividing by zero."""
    from fractions import Fraction

    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def expr():
        nonlocal pos
        value = term()
        while value is not None and peek() in ("+", "-"):
            op = tokens[pos]
            pos += 1
            rhs = term()
            if rhs is None:
                return None
            value = value + rhs if op == "+" else value - rhs
        return value

    def term():
        nonlocal pos
        value = atom()
        while value is not None and peek() in ("*", "/"):
            op = tokens[pos]
            pos += 1
            rhs = atom()
            if rhs is None or (op == "/" and rhs == 0):
                return None
            value = value * rhs if op == "*" else value / rhs
        return value

    def atom():
        nonlocal pos
        tok = peek()
        if tok == "(":
            pos += 1
            value = expr()
            if value is None or peek() != ")":
                return None
            pos += 1
            return value
        if tok is not None and tok.isdigit():
            pos += 1
            return Fraction(int(tok))
        return None

    if len(tokens) > 400:
        return None
    value = expr()
    return value if pos == len(tokens) else None


def solve_full(numbers, target):
    """Tokens of an expression over ``numbers`` (in order) equal to ``target``: every bracketing and operator."""
    from fractions import Fraction

    n = len(numbers)
    best = {}  # (i, j) -> {value: tokens}

    def wrap(tokens):
        return tokens if len(tokens) == 1 else ["("] + tokens + [")"]

    for i in range(n):
        best[(i, i + 1)] = {Fraction(numbers[i]): [str(numbers[i])]}
    for size in range(2, n + 1):
        for i in range(0, n - size + 1):
            j = i + size
            table = {}
            for k in range(i + 1, j):
                for a, ta in best[(i, k)].items():
                    for b, tb in best[(k, j)].items():
                        for op in "+-*/":
                            if op == "/" and b == 0:
                                continue
                            v = a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else a / b
                            if v not in table:
                                table[v] = wrap(ta) + [op] + wrap(tb)
            best[(i, j)] = table
    return best[(0, n)].get(Fraction(target))


def solve_blocks(numbers, target, bound=10000):
    """Tokens of ``±P1 ± P2 …`` (each P a product of consecutive numbers, the first one positive) equal to
    ``target``, searched over prefixes with partial sums kept within ±bound; None if there is none."""
    n = len(numbers)
    reach = [dict() for _ in range(n + 1)]  # prefix length -> {sum: (previous length, sign)}
    for j in range(1, n + 1):
        prod = 1
        for v in numbers[:j]:
            prod *= v
        if prod <= bound:
            reach[j][prod] = (0, 1)
    for i in range(1, n):
        for s in list(reach[i]):
            prod = 1
            for j in range(i + 1, n + 1):
                prod *= numbers[j - 1]
                if prod > 2 * bound:
                    break
                for sign in (1, -1):
                    t = s + sign * prod
                    if abs(t) <= bound and t not in reach[j]:
                        reach[j][t] = (i, sign)
    if target not in reach[n]:
        return None
    parts, j, s = [], n, target
    while j > 0:
        i, sign = reach[j][s]
        block = numbers[i:j]
        prod = 1
        for v in block:
            prod *= v
        parts.append((sign, block))
        s -= sign * prod
        j = i
    tokens = []
    for sign, block in reversed(parts):
        if tokens:
            tokens.append("+" if sign > 0 else "-")
        for k, v in enumerate(block):
            tokens += (["*"] if k else []) + [str(v)]
    return tokens


def make_question(numbers: list[int], target: int) -> str:
    return (f"Given {len(numbers)} integers between 1 and 9, perform arithmetic operations (addition, subtraction, "
            "multiplication, division, and parentheses) between these integers. Each number must be used exactly "
            f"once and only once, and the final result should be {target}. Note: The order of the numbers is "
            "determined by the input, and you cannot change the order of the numbers. You can only insert "
            "arithmetic operations or parentheses between the numbers.\nReturn the answer with a list of values and "
            "calculation symbols. Return your answer with the format <<<list of values and symbols>>>, like "
            "<<<[1, +, 3]>>> means 1+3, <<<[4, -, (, 6, *, 9, )]>>> means 4-(6*9). Now the input numbers are: "
            f"{', '.join(map(str, numbers))}, the target values is: {target}\n Your answer:")


def _random_tree(rng: random.Random, values: list[int]) -> tuple[Fraction, list[str]] | None:
    if len(values) == 1:
        return Fraction(values[0]), [str(values[0])]
    k = rng.randint(1, len(values) - 1)
    left, right = _random_tree(rng, values[:k]), _random_tree(rng, values[k:])
    if left is None or right is None:
        return None
    op = rng.choice(OPS)
    if op == "/" and right[0] == 0:
        return None
    a, b = left[0], right[0]
    value = a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else a / b
    return value, ["("] + left[1] + [op] + right[1] + [")"]


def _plant_blocks(rng: random.Random, numbers: list[int]) -> int | None:
    i, total = 0, 0
    while i < len(numbers):
        j = min(len(numbers), i + rng.choice((1, 1, 2, 2, 3)))
        prod = 1
        for v in numbers[i:j]:
            prod *= v
        total += prod if i == 0 or rng.random() < 0.6 else -prod
        if abs(total) > BLOCK_BOUND:
            return None
        i = j
    return total


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n = knob(rng, knobs, "num_numbers")
    if n < 2:
        raise R1ciError(f"combinatorial_calculation: num_numbers must be at least 2, not {n}")
    min_target, max_target = knob(rng, knobs, "min_target"), knob(rng, knobs, "max_target")
    for _ in attempts("combinatorial_calculation", knobs):
        numbers = [rng.randint(1, 9) for _ in range(n)]
        if n <= MAX_FULL_SEARCH:
            planted = _random_tree(rng, numbers)
            value = planted[0] if planted else None
        else:
            value = _plant_blocks(rng, numbers)
        if value is not None and value == int(value) and min_target <= value <= max_target:
            target = int(value)
            return Instance(make_question(numbers, target), {"numbers": numbers, "target": target}, None)


def _tokens(answer: str) -> list[str] | None:
    items = parse_token_list(answer)
    if items is None:
        return None
    out = []
    for item in items:
        item = item.replace("×", "*").replace("÷", "/").strip()
        if not re.fullmatch(r"\d+|[-+*/()]", item):
            return None
        out.append(item)
    return out


def verify(instance: Instance, answer: str) -> bool:
    tokens = _tokens(answer)
    if tokens is None:
        return False
    numbers = [int(t) for t in tokens if t.isdigit()]
    if numbers != list(instance.check["numbers"]):
        return False
    value = evaluate_tokens(tokens)
    return value is not None and value == instance.check["target"]


def reference_program(instance: Instance) -> str:
    numbers, target = instance.check["numbers"], instance.check["target"]
    if len(numbers) <= MAX_FULL_SEARCH:
        main = "tokens = solve_full(numbers, target)\nprint('[' + ', '.join(tokens) + ']')"
        return program([solve_full], main, numbers=numbers, target=target)
    main = "tokens = solve_blocks(numbers, target, bound)\nprint('[' + ', '.join(tokens) + ']')"
    return program([solve_blocks], main, numbers=numbers, target=target, bound=BLOCK_BOUND)


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    tokens = _tokens(correct) or []
    out = []
    ops = [i for i, t in enumerate(tokens) if t in OPS]
    if ops:
        i = rng.choice(ops)
        changed = list(tokens)
        changed[i] = {"+": "-", "-": "+", "*": "+", "/": "*"}[changed[i]]
        out.append(changed)
    nums = [i for i, t in enumerate(tokens) if t.isdigit()]
    if len(nums) >= 2 and tokens[nums[0]] != tokens[nums[1]]:
        swapped = list(tokens)
        swapped[nums[0]], swapped[nums[1]] = swapped[nums[1]], swapped[nums[0]]
        out.append(swapped)
    out.append(tokens[:-1])
    out.append(tokens + ["+", "1"])
    out.append(["("] + tokens)
    texts = ["[" + ", ".join(t) + "]" for t in out]
    return [w for w in dict.fromkeys(texts) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = {"numbers": [int(v) for v in sol["numbers"]], "target": int(sol["target"])}
    stored = sol.get("solution")
    answer = "[" + ", ".join(stored) + "]" if stored else None
    return Instance(record["question"], check, None), answer


FAMILY = TaskFamily(
    name="combinatorial_calculation", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"num_numbers": [3, 6], "min_target": 10, "max_target": 100},
    description="Insert operators/parentheses between ordered digits to reach a target; exact rational check.",
)
