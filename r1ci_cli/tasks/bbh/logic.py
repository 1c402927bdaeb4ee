"""BBH boolean_expressions and web_of_lies: seeded generators in BBH's phrasing, computed references.

boolean_expressions: ``not ( True ) and ( False or True ) is`` -> ``True``. The generator builds an expression
tree and renders it with exactly the parentheses Python's precedence needs (``not`` > ``and`` > ``or``), so the
tree's value is the text's value; the reference program re-parses the text with its own recursive-descent parser.

web_of_lies: ``Question: A lies. B says A tells the truth. ... Does E tell the truth?`` -> ``Yes``/``No``; the
reference program walks the chain of claims.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.bbh._common import generated_family, instance, int_knob, range_knob
from r1ci_cli.tasks.registry import Instance, program

# ---------------------------------------------------------------------------------------------- boolean


def _bool_tree(rng: random.Random, num_literals: int, max_nots: int) -> tuple:
    """A random tree: ("lit", bool) | ("not", child) | (op, left, right) with op in and/or."""
    if num_literals == 1:
        node: tuple = ("lit", rng.random() < 0.5)
    else:
        split = rng.randint(1, num_literals - 1)
        op = rng.choice(("and", "or"))
        node = (op, _bool_tree(rng, split, max_nots), _bool_tree(rng, num_literals - split, max_nots))
    for _ in range(rng.choice([0] * 6 + list(range(1, max_nots + 1)))):
        node = ("not", node)
    return node


def _bool_value(node: tuple) -> bool:
    if node[0] == "lit":
        return node[1]
    if node[0] == "not":
        return not _bool_value(node[1])
    left, right = _bool_value(node[1]), _bool_value(node[2])
    return (left and right) if node[0] == "and" else (left or right)


def _bool_text(node: tuple, rng: random.Random) -> str:
    """Render with the parentheses precedence requires, plus a few redundant ones as BBH has."""
    if node[0] == "lit":
        text = str(node[1])
        return f"( {text} )" if rng.random() < 0.15 else text
    if node[0] == "not":
        inner = _bool_text(node[1], rng)
        needs = node[1][0] in ("and", "or")
        return f"not ( {inner} )" if needs else f"not {inner}"
    parts = []
    for child in node[1:]:
        text = _bool_text(child, rng)
        # "and" binds tighter than "or": an "or" child of "and" needs parentheses; redundant ones sometimes.
        if (node[0] == "and" and child[0] == "or") or (child[0] in ("and", "or") and rng.random() < 0.3):
            text = f"( {text} )"
        parts.append(text)
    return f"{parts[0]} {node[0]} {parts[1]}"


def generate_boolean(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    num_literals = rng.randint(*range_knob(knobs, "min_literals", "max_literals", 1, 12))
    tree = _bool_tree(rng, num_literals, int_knob(knobs, "max_nots", 0, 4))
    expression = _bool_text(tree, rng)
    return instance(f"{expression} is", "truth", str(_bool_value(tree)), expression=expression)


def eval_boolean(expression):
    """Evaluate a space-separated True/False/not/and/or/( ) expression with Python's precedence."""
    tokens = expression.split()
    pos = [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take():
        pos[0] += 1
        return tokens[pos[0] - 1]

    def disjunction():
        value = conjunction()
        while peek() == "or":
            take()
            right = conjunction()
            value = value or right
        return value

    def conjunction():
        value = negation()
        while peek() == "and":
            take()
            right = negation()
            value = value and right
        return value

    def negation():
        if peek() == "not":
            take()
            return not negation()
        token = take()
        if token == "(":
            value = disjunction()
            if take() != ")":
                raise ValueError("unbalanced parentheses")
            return value
        return {"True": True, "False": False}[token]

    result = disjunction()
    if pos[0] != len(tokens):
        raise ValueError("trailing tokens")
    return result


def reference_boolean(inst: Instance) -> str:
    """Parse and evaluate the expression."""
    return program([eval_boolean], "print(eval_boolean(expression))", expression=inst.check["expression"])


# ---------------------------------------------------------------------------------------------- web of lies

_NAMES = ("Sherrie Vernell Alexis Michaela Elanor Fidel Jerry Raymond Millicent Delfina Jamey Kandi Leda Ka "
          "Lorine Rashida Shenna Shaunda Antwan Jim Jaymie Crista Ryan Gwenn Alejandro Kristian Helene Bernita "
          "Andree Tamika Yoland Christie Phoebe Inga Conception Sal Willian Audrie Maybelle Amberly Osvaldo Millie "
          "Teressa Delbert Ryan Yoland Fletcher Ka Kristian Vina Sima Dallas Jaymie Tamika Gwenn").split()


def generate_web(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    names = rng.sample(sorted(set(_NAMES)), int_knob(knobs, "num_people", 2, 40))
    first_truthful = rng.random() < 0.5
    truthful = first_truthful
    sentences = [f"{names[0]} {'tells the truth' if first_truthful else 'lies'}."]
    claims = []
    for previous, name in zip(names, names[1:]):
        claim = rng.random() < 0.5  # True: "says <previous> tells the truth"
        claims.append([name, previous, claim])
        sentences.append(f"{name} says {previous} {'tells the truth' if claim else 'lies'}.")
        truthful = claim == truthful
    text = f"Question: {' '.join(sentences)} Does {names[-1]} tell the truth?"
    return instance(text, "yesno", "Yes" if truthful else "No", first=[names[0], first_truthful], claims=claims,
                    asked=names[-1])


def solve_web(first, claims, asked):
    """Who tells the truth, given the first person's honesty and each 'X says Y lies/tells the truth'."""
    honest = {first[0]: first[1]}
    pending = list(claims)
    while pending:
        rest = []
        for speaker, about, says_truthful in pending:
            if about in honest:
                honest[speaker] = honest[about] == says_truthful
            else:
                rest.append([speaker, about, says_truthful])
        if len(rest) == len(pending):
            raise ValueError("claims do not connect to the first statement")
        pending = rest
    return "Yes" if honest[asked] else "No"


def reference_web(inst: Instance) -> str:
    """Resolve each claim from the person it is about."""
    c = inst.check
    return program([solve_web], "print(solve_web(first, claims, asked))", first=c["first"], claims=c["claims"],
                   asked=c["asked"])


FAMILIES = [
    generated_family("boolean_expressions", "truth", generate_boolean, reference_boolean,
                     {"min_literals": 2, "max_literals": 5, "max_nots": 2},
                     "Evaluate a Boolean expression of True/False with not/and/or."),
    generated_family("web_of_lies", "yesno", generate_web, reference_web, {"num_people": 5},
                     "Follow a chain of people saying who lies."),
]
