"""Statistical Counting (SymBench): score the runs of repeated letters in a string.

The i-th letter (A, B, C, …) scores i points for every maximal run of two or more consecutive copies of
it, scanning the string once (a run of three counts once). The answer is one integer, unique, exact match.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.numbers import parse_exact
from r1ci_cli.tasks.symbench.parsers import to_int
from r1ci_cli.tasks.symbench.sampling import knob

LETTERS = "ABCDEFGHIJ"


def total_score(sequence, rules):
    """Sum of the rule's score over maximal runs of at least ``min_consecutive`` equal letters."""
    by_letter = {r["letter"]: r for r in rules}
    score, i = 0, 0
    while i < len(sequence):
        j = i
        while j < len(sequence) and sequence[j] == sequence[i]:
            j += 1
        rule = by_letter.get(sequence[i])
        if rule is not None and j - i >= rule["min_consecutive"]:
            score += rule["score"]
        i = j
    return score


def _question(sequence: str, rules: list[dict]) -> str:
    letters = [r["letter"] for r in rules]
    names = ", ".join(letters[:-1]) + " and " + letters[-1]
    lines = [f"{i}. If there are {'two' if r['min_consecutive'] == 2 else r['min_consecutive']} or more "
             f"consecutive {r['letter']}'s, add {r['score']} to the total score."
             for i, r in enumerate(rules, 1)]
    return ("The initial total score is 0. Given a string consisting of letters " + names
            + ", scan from front to back:\n\n" + "\n".join(lines)
            + "\n\nEach maximal block of consecutive equal letters counts once."
            + f"\nWhat is the total score of the string {sequence}?\n"
            "Return your answer with the format <<<number>>>, like <<<5>>> means the total score is 5.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n_letters = max(2, min(len(LETTERS), knob(rng, knobs, "letters")))
    length = knob(rng, knobs, "length")
    rules = [{"letter": LETTERS[i], "score": i + 1, "min_consecutive": 2} for i in range(n_letters)]
    sequence = "".join(rng.choice(LETTERS[:n_letters]) for _ in range(length))
    check = {"sequence": sequence, "rules": rules}
    return Instance(_question(sequence, rules), check, total_score(sequence, rules))


def verify(instance: Instance, answer: str) -> bool:
    value = parse_exact(answer)
    return value is not None and to_int(value) == total_score(instance.check["sequence"], instance.check["rules"])


def reference_program(instance: Instance) -> str:
    return program([total_score], "print(total_score(sequence, rules))", sequence=instance.check["sequence"],
                   rules=[dict(r) for r in instance.check["rules"]])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    want = total_score(instance.check["sequence"], instance.check["rules"])
    return [str(want + 1), str(want - 1), str(want + rng.randint(2, 5)), "abc"]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = {"sequence": sol["sequence"], "rules": sol["rules"]}
    return Instance(record["question"], check, total_score(sol["sequence"], sol["rules"])), str(sol["solution"])


FAMILY = TaskFamily(
    name="statistical_counting", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"letters": [2, 7], "length": [5, 65]},
    description="Score runs of repeated letters in a string; one integer, exact.",
)
