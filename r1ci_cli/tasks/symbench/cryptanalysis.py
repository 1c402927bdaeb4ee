"""Cryptanalysis (SymBench): deduce a two-digit, two-letter password from guesses with feedback.

Feedback for each half (digits, letters) of a guess says how many symbols are right and in place, right but
misplaced, and wrong; a wrong symbol is "too large"/"too small" (too late/early in the alphabet) when it is
beyond *both* password symbols of that half, and for two wrong symbols only when both go the same way. This
rule reproduces all 754 feedback lines of the reference data. The halves are independent, which keeps the
search small (90 digit pairs, 650 letter pairs). Generated puzzles have exactly one solution; the verifier
checks the answer against every condition (so it equals an exact match on unique puzzles).
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_str_list
from r1ci_cli.tasks.symbench.sampling import attempts, knob

DIGITS = string.digits
LETTERS = string.ascii_uppercase


def half_feedback(guess, secret, kind):
    """Feedback phrases for one half: ``guess`` and ``secret`` are two distinct symbols each."""
    big, small = ("too large", "too small") if kind == "number" else (
        "too late in the alphabet", "too early in the alphabet")

    def side(ch):
        if all(ch > s for s in secret):
            return big
        if all(ch < s for s in secret):
            return small
        return None

    right = [i for i in range(2) if guess[i] == secret[i]]
    moved = [i for i in range(2) if guess[i] != secret[i] and guess[i] in secret]
    wrong = [i for i in range(2) if guess[i] not in secret]
    out = []
    if len(right) == 2:
        out.append(f"both {kind}s are correct and in the correct positions")
    elif right:
        out.append(f"one {kind} is correct and in the correct position")
    if len(moved) == 2:
        out.append(f"both {kind}s are correct but in the wrong positions")
    elif moved:
        out.append(f"one {kind} is correct but in the wrong position")
    if len(wrong) == 2:
        a, b = side(guess[wrong[0]]), side(guess[wrong[1]])
        out.append(f"both {kind}s are incorrect" + (f" and {a}" if a and a == b else ""))
    elif wrong:
        out.append(f"one {kind} is incorrect and " + (side(guess[wrong[0]]) or "incorrect"))
    return out


def feedback(guess, secret):
    """The full feedback line for a four-symbol guess (two digits, then two letters)."""
    return "; ".join(half_feedback(guess[:2], secret[:2], "number") + half_feedback(guess[2:], secret[2:], "letter"))


def solve(conditions):
    """Every password consistent with all ``[guess, feedback]`` conditions, as 4-character strings.

    The digit half and the letter half are solved separately: each feedback phrase names its half.
    """
    import itertools
    import string as strings

    def half_solutions(kind, alphabet, lo):
        wanted = [(guess[lo:lo + 2], [p for p in text.split("; ") if (" " + kind) in p]) for guess, text in conditions]
        return ["".join(pair) for pair in itertools.permutations(alphabet, 2)
                if all(half_feedback(g, "".join(pair), kind) == want for g, want in wanted)]

    return [d + w for d in half_solutions("number", strings.digits, 0)
            for w in half_solutions("letter", strings.ascii_uppercase, 2)]


def make_question(conditions: list[list[str]]) -> str:
    lines = "\n".join(f"{i}. Guess: {g}, Feedback: {f}." for i, (g, f) in enumerate(conditions, 1))
    return (f"Please deduce the correct password based on the following {len(conditions)} known conditions:\n"
            "A certain combination lock consists of two numbers and two letters, with neither the numbers nor the "
            f"letters repeating.\n{lines}\nPlease provide your answer in the format "
            "<<< [\"X\", \"Y\", \"Z\", \"W\"] >>> where X and Y are the numbers and Z and W are the letters of the "
            "password.\n")


def _random_half(rng: random.Random, alphabet: str, secret: str, hit_prob: float) -> str:
    chars: list[str] = []
    for i in range(2):
        pool = [c for c in alphabet if c not in chars]
        if rng.random() < hit_prob:
            hits = [c for c in secret if c not in chars]
            chars.append(rng.choice(hits) if hits else rng.choice(pool))
        else:
            chars.append(rng.choice(pool))
    return "".join(chars)


def _pairs(alphabet: str) -> list[str]:
    return [a + b for a in alphabet for b in alphabet if a != b]


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    max_conditions = knob(rng, knobs, "max_conditions")
    hit_prob = knobs["hit_prob"]
    for _ in attempts("cryptanalysis", knobs, 1000):
        secret = "".join(rng.sample(DIGITS, 2)) + "".join(rng.sample(LETTERS, 2))
        conditions: list[list[str]] = []
        # Candidates of each half, narrowed by every new guess (the halves are independent).
        nums, lets = _pairs(DIGITS), _pairs(LETTERS)
        while len(conditions) < max_conditions:
            guess = _random_half(rng, DIGITS, secret[:2], hit_prob) + _random_half(rng, LETTERS, secret[2:], hit_prob)
            num_fb = half_feedback(guess[:2], secret[:2], "number")
            let_fb = half_feedback(guess[2:], secret[2:], "letter")
            nums = [c for c in nums if half_feedback(guess[:2], c, "number") == num_fb]
            lets = [c for c in lets if half_feedback(guess[2:], c, "letter") == let_fb]
            conditions.append([guess, feedback(guess, secret)])
            if len(nums) == 1 and len(lets) == 1:
                answer = "[" + ", ".join(f'"{c}"' for c in secret) + "]"
                return Instance(make_question(conditions), {"conditions": conditions}, answer)


def _parse(answer: str) -> str | None:
    items = parse_str_list(answer)
    if items is None or len(items) != 4 or any(len(c) != 1 for c in items):
        return None
    word = "".join(items)
    if not (word[:2].isdigit() and word[2:].isalpha() and word[2:].isupper()):
        return None
    return word if word[0] != word[1] and word[2] != word[3] else None


def verify(instance: Instance, answer: str) -> bool:
    word = _parse(answer)
    return word is not None and all(feedback(g, word) == f for g, f in instance.check["conditions"])


def reference_program(instance: Instance) -> str:
    main = ("found = solve(conditions)\n"
            "print('[' + ', '.join('\"%s\"' % c for c in found[0]) + ']')")
    return program([half_feedback, solve], main, conditions=instance.check["conditions"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    word = _parse(correct) or "0000"
    swapped_digits = word[1] + word[0] + word[2:]
    swapped_letters = word[:2] + word[3] + word[2]
    other_digit = word[0] + next(d for d in DIGITS if d not in word[:2]) + word[2:]
    out = ["[" + ", ".join(f'"{c}"' for c in w) + "]" for w in (swapped_digits, swapped_letters, other_digit)]
    return [w for w in out if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    conditions = [[m.group(1), m.group(2)] for m in
                  re.finditer(r"^\d+\. Guess: (\w+), Feedback: (.*?)\.?$", record["question"], flags=re.M)]
    stored = record["solution"]["answer"]
    answer = "[" + ", ".join(f'"{c}"' for c in stored) + "]"
    return Instance(record["question"], {"conditions": conditions}, answer), answer


FAMILY = TaskFamily(
    name="cryptanalysis", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"max_conditions": 20, "hit_prob": 0.3},
    description="Deduce a 2-digit/2-letter password from guess feedback (unique); checked against every clue.",
)
