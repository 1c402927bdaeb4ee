"""Letters (SymBench): count a letter in a word and list its 1-based positions.

The reference data stores words but no prompt; the question is built the way the original runner built it
(data README "Prompts that the runner builds"). Our generator makes pronounceable pseudo-words (no word
list ships with the project) with exactly the requested number of the letter. The answer is
``Count: N, Positions: [p1, p2, ...]``; the check is the count plus the set of positions, as the
original's, and additionally the positions must be listed once each.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.sampling import knob

VOWELS = "aeiou"
CONSONANTS = "bcdfghjklmnpqrstvwxyz"
_ANSWER_RE = re.compile(r"count\s*[:=]\s*(\d{1,6})\s*[,;]?\s*positions\s*[:=]\s*\[([\d,\s]*)\]", re.I)


def make_question(word: str, letter: str) -> str:
    return (f"How many '{letter}'s are in the word '{word}' and what are their positions? The position in the word "
            "counts from 1 not 0.\nSurround the answer with <<<content>>> in the form "
            "<<<Count: X, Positions: [Y, Z, ...]>>>.")


def count_letter(word, letter):
    """The answer text: how often ``letter`` occurs and where (1-based)."""
    positions = [i + 1 for i, ch in enumerate(word) if ch == letter]
    return "Count: %d, Positions: [%s]" % (len(positions), ", ".join(str(p) for p in positions))


def _pseudo_word(rng: random.Random, length: int) -> list[str]:
    out: list[str] = []
    while len(out) < length:
        out += [rng.choice(CONSONANTS), rng.choice(VOWELS)] + ([rng.choice(CONSONANTS)] if rng.random() < 0.4 else [])
    return out[:length]


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    length = knob(rng, knobs, "length")
    count = min(knob(rng, knobs, "count"), length)
    letter = rng.choice(knobs["letters"])
    chars = _pseudo_word(rng, length)
    pool = [c for c in (VOWELS + CONSONANTS) if c != letter]
    chars = [c if c != letter else rng.choice(pool) for c in chars]
    for i in rng.sample(range(length), count):
        chars[i] = letter
    word = "".join(chars)
    check = {"word": word, "letter": letter}
    return Instance(make_question(word, letter), check, count_letter(word, letter))


def parse_answer(answer: str) -> tuple[int, list[int]] | None:
    """``(count, positions)`` from ``Count: N, Positions: [..]``; None when the text has another shape."""
    match = _ANSWER_RE.fullmatch(answer.strip().strip("\"'`").rstrip(".").strip())
    if not match:
        return None
    inner = match.group(2).strip()
    try:
        positions = [int(p) for p in inner.split(",")] if inner else []
    except ValueError:
        return None
    return int(match.group(1)), positions


def verify(instance: Instance, answer: str) -> bool:
    got = parse_answer(answer)
    if got is None:
        return False
    word, letter = instance.check["word"], instance.check["letter"]
    want = [i + 1 for i, ch in enumerate(word) if ch == letter]
    count, positions = got
    return count == len(want) and len(positions) == len(set(positions)) and set(positions) == set(want)


def reference_program(instance: Instance) -> str:
    return program([count_letter], "print(count_letter(word, letter))", word=instance.check["word"],
                   letter=instance.check["letter"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    count, positions = parse_answer(correct)  # type: ignore[misc]
    shifted = [p + 1 for p in positions]
    out = [f"Count: {count + 1}, Positions: [{', '.join(map(str, positions))}]",
           f"Count: {count}, Positions: [{', '.join(map(str, shifted))}]",
           f"Count: {count}, Positions: [{', '.join(str(p - 1) for p in positions)}]",
           f"Count: {count}, Positions: [{', '.join(map(str, positions + [len(instance.check['word']) + 1]))}]"]
    return [w for w in dict.fromkeys(out) if w != correct]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    word, letter = record["word"], record["path_params"]["letter"]
    inst = Instance(make_question(word, letter), {"word": word, "letter": letter}, count_letter(word, letter))
    derived = record.get("derived") or {}
    if "count" not in derived:
        return inst, None
    return inst, f"Count: {derived['count']}, Positions: [{', '.join(map(str, derived['positions']))}]"


FAMILY = TaskFamily(
    name="letters", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"length": [10, 25], "count": [1, 5], "letters": "abcdefghijklmnopqrstuvwxyz"},
    description="Count a letter in a pseudo-word and give its 1-based positions; count + position set.",
)
