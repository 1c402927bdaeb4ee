"""String Insertion (SymBench): apply one pass of pattern-triggered insertions to a string over A–E.

Rule ``i`` says: after every occurrence of the four-letter pattern ``P_i`` insert the letter ``L_i``. One
operation T finds all occurrences in the *original* string, scanning left to right, and inserts each letter
right after its pattern (the stored answers of the reference data follow this reading: 200/200).
The answer is unique, so the check is an exact match on the string.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_plain_string
from r1ci_cli.tasks.symbench.sampling import attempts, knob

ALPHABET = "ABCDE"
RULES = [["ABCD", "A"], ["BCDE", "B"], ["CDEA", "C"], ["DEAB", "D"], ["EABC", "E"]]


def insert_pass(text, rules):
    """One operation T: every pattern occurrence in ``text`` gets its letter inserted right after it."""
    inserts = {}
    for end in range(len(text)):
        for pattern, letter in rules:
            start = end - len(pattern) + 1
            if start >= 0 and text[start:end + 1] == pattern:
                inserts.setdefault(end, []).append(letter)
    out = []
    for i, ch in enumerate(text):
        out.append(ch)
        out.extend(inserts.get(i, []))
    return "".join(out)


def make_question(string: str) -> str:
    lines = [f"{i}. If there is a substring {p} in the string, insert the character {c} after that substring."
             for i, (p, c) in enumerate(RULES, 1)]
    return ("Given the string consisting of characters A, B, C, D, and E, define the T operation as follows:\n\n"
            + "\n".join(lines)
            + f"\n\nQuestion: Given the string {string}, what will the string be after one operation T? "
              "String insertion from left to right.\nReturn the answer with the format <<<a string>>>.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    length = knob(rng, knobs, "length")
    min_matches = knob(rng, knobs, "min_matches")
    for _ in attempts("string_insertion", knobs):
        # Plant some patterns so that the operation usually does something (random strings rarely match).
        chars = [rng.choice(ALPHABET) for _ in range(length)]
        for _ in range(min_matches):
            pattern = rng.choice(RULES)[0]
            at = rng.randint(0, length - len(pattern))
            chars[at:at + len(pattern)] = pattern
        string = "".join(chars)
        result = insert_pass(string, RULES)
        if len(result) - len(string) >= min_matches:
            return Instance(make_question(string), {"string": string, "rules": RULES}, result)


def verify(instance: Instance, answer: str) -> bool:
    return parse_plain_string(answer) == insert_pass(instance.check["string"], instance.check["rules"])


def reference_program(instance: Instance) -> str:
    return program([insert_pass], "print(insert_pass(string, rules))", string=instance.check["string"],
                   rules=instance.check["rules"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    string = instance.check["string"]
    out = [string, correct[:-1], correct + rng.choice(ALPHABET)]
    i = rng.randrange(len(correct))
    out.append(correct[:i] + ("A" if correct[i] != "A" else "B") + correct[i + 1:])
    return [w for w in dict.fromkeys(out) if w != correct]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    string = record["solution"]["original_string"]
    inst = Instance(record["question"], {"string": string, "rules": RULES}, insert_pass(string, RULES))
    return inst, record["solution"]["modified_string"]


FAMILY = TaskFamily(
    name="string_insertion", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"length": [14, 18], "min_matches": [1, 3]},
    description="Insert letters after A–E patterns in one left-to-right pass; exact string match.",
)
