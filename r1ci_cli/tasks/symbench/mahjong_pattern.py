"""Mahjong Pattern (SymBench): judge the last card added to a hand of letter cards (Pass 0, Peng 1, Chi 2).

Rules as worded in the question: Peng when the hand already holds two cards equal to the new one; Chi
(only when the question has the Chi rule) when two cards of the hand and the new card are three
consecutive letters A–Z, in any position; Peng beats Chi. Each earlier round adds a card and then removes
one. The answer is one digit, unique, exact match.

Reference data: the stored answers follow the original generator's narrower Chi test, not the worded rule;
17/200 differ (see the data README's "Known oddities"), and those are reported as rejected.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.numbers import parse_exact
from r1ci_cli.tasks.symbench.parsers import to_int
from r1ci_cli.tasks.symbench.sampling import knob

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def judge(initial, rounds, chi_rule):
    """The result of the final round: 1 Peng, 2 Chi (when ``chi_rule``), else 0."""
    hand = list(initial)
    for step in rounds[:-1]:
        hand.append(step["add"])
        hand.remove(step["remove"])
    new = rounds[-1]["add"]
    if hand.count(new) >= 2:
        return 1
    if chi_rule and "A" <= new <= "Z":
        letters = set(c for c in hand if "A" <= c <= "Z")
        code = ord(new)
        for lo in (code - 2, code - 1, code):
            run = [chr(x) for x in range(lo, lo + 3)]
            if all("A" <= c <= "Z" for c in run) and all(c in letters for c in run if c != new):
                return 2
    return 0


RULES_PENG = (
    "3. When there are two identical cards in hand, and the newly added card is the same as these two cards, "
    "the result is determined as \"Peng,\" represented by the number 1.\n")
RULES_CHI = (
    "4. If two cards in hand and the new card can form a consecutive letter sequence, the result is "
    "determined as \"Chi,\" represented by the number 2. For example, ABC, OPQ, etc.\n"
    "5. If the new card does not meet the conditions of 3 and 4, the result is determined as \"Pass,\" "
    "represented by the number 0.\n6. \"Peng\" takes precedence over \"Chi.\"\n"
    "7. The card that is removed does not affect the result determination.\n")
RULES_PASS = (
    "4. If the newly added card does not meet the condition in rule 3, the result is determined as \"Pass,\" "
    "represented by the number 0.\n5. The removed card does not affect the result determination.\n")


def _question(initial: str, rounds: list[dict], chi_rule: bool) -> str:
    lines = []
    for i, step in enumerate(rounds, 1):
        tail = f" and remove a {step['remove']} card." if i < len(rounds) else " card"
        lines.append(f"Round {i}: Add a {step['add']} card{tail}")
    options = "0 for Pass, 1 for Peng, or 2 for Chi" if chi_rule else "0 for Pass, 1 for Peng"
    return ("There are several letter cards, and the game rules are as follows:\n1. Initially, there are 13 "
            "cards.\n2. Each time, a new card is added, and a result is determined. Then, one card is removed.\n"
            + RULES_PENG + (RULES_CHI if chi_rule else RULES_PASS)
            + f"Given the initial cards: {initial}\n\n" + "\n".join(lines)
            + "\n\nBased on the above information, determine the number judged in the final round.\n"
            f"Return your answer with the format <<<x>>>, where x is {options}.")


def _draw(rng: random.Random, n_rounds: int) -> tuple[str, list[dict]]:
    # A narrow random window of the alphabet makes repeats and runs (Peng, Chi) reasonably common.
    start = rng.randint(0, 26 - 10)
    pool = ALPHABET[start:start + rng.randint(8, 10)] if rng.random() < 0.5 else ALPHABET
    hand = [rng.choice(pool) for _ in range(13)]
    initial = "".join(hand)
    rounds = []
    for i in range(n_rounds):
        add = rng.choice(pool)
        if i == n_rounds - 1:
            rounds.append({"add": add})
            break
        hand.append(add)
        remove = rng.choice(hand)
        hand.remove(remove)
        rounds.append({"add": add, "remove": remove})
    return initial, rounds


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n_rounds = knob(rng, knobs, "rounds")
    chi_rule = bool(knob(rng, knobs, "chi_rule"))
    wanted = rng.choice([0, 1, 2] if chi_rule else [0, 1])  # balance the three outcomes
    for _ in range(500):
        initial, rounds = _draw(rng, n_rounds)
        if judge(initial, rounds, chi_rule) == wanted:
            break
    check = {"initial": initial, "rounds": rounds, "chi_rule": chi_rule}
    return Instance(_question(initial, rounds, chi_rule), check, judge(initial, rounds, chi_rule))


def verify(instance: Instance, answer: str) -> bool:
    c = instance.check
    value = parse_exact(answer.strip().strip("[]"))
    return value is not None and to_int(value) == judge(c["initial"], c["rounds"], c["chi_rule"])


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([judge], "print(judge(initial, rounds, chi_rule))", initial=c["initial"],
                   rounds=[dict(r) for r in c["rounds"]], chi_rule=c["chi_rule"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    c = instance.check
    want = judge(c["initial"], c["rounds"], c["chi_rule"])
    return [str(v) for v in (0, 1, 2, 3) if v != want]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    chi_rule = "Chi" in record["question"]
    check = {"initial": sol["initial_cards"], "rounds": sol["rounds"], "chi_rule": chi_rule}
    return (Instance(record["question"], check, judge(sol["initial_cards"], sol["rounds"], chi_rule)),
            str(sol["solution"]))


FAMILY = TaskFamily(
    name="mahjong_pattern", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"rounds": [1, 5], "chi_rule": [True, False]},
    description="Judge the final card of a letter-card hand: Pass/Peng/Chi as worded; exact.",
)
