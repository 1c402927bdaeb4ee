"""Generic near-miss answers for wrapped datasets whose answer format we do not model.

Reasoning-Gym answers are numbers, words, lists, grids, move sequences, expressions … so the edits are
format-blind: bump a digit, drop or double a character, swap two neighbours, reverse the tokens, append a
token, flip a letter's case. Some edits leave an answer correct (reversing a palindrome, re-ordering a set
the scorer does not order, a second valid solution), so every candidate goes through ``is_wrong`` — the
real scorer — and only confirmed wrong ones are returned. Fixed fallbacks guarantee two when the edits are
not enough (an empty answer is never offered: it is trivially wrong and tests that say nothing).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

_FALLBACKS = ("0", "-1", "None", "[]", "no answer", "A", "1 2 3", "x" * 40)
_MAX_CANDIDATES = 24


def _bump_digit(text: str, rng: random.Random) -> str | None:
    spots = [i for i, c in enumerate(text) if c.isdigit()]
    if not spots:
        return None
    i = rng.choice(spots)
    return text[:i] + str((int(text[i]) + rng.randint(1, 9)) % 10) + text[i + 1:]


def _drop_char(text: str, rng: random.Random) -> str | None:
    spots = [i for i, c in enumerate(text) if not c.isspace()]
    if len(spots) < 2:
        return None
    i = rng.choice(spots)
    return text[:i] + text[i + 1:]


def _double_char(text: str, rng: random.Random) -> str | None:
    spots = [i for i, c in enumerate(text) if c.isalnum()]
    if not spots:
        return None
    i = rng.choice(spots)
    return text[:i + 1] + text[i:]


def _swap_neighbours(text: str, rng: random.Random) -> str | None:
    spots = [i for i in range(len(text) - 1) if text[i] != text[i + 1] and not text[i].isspace()
             and not text[i + 1].isspace()]
    if not spots:
        return None
    i = rng.choice(spots)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def _reverse_tokens(text: str, rng: random.Random) -> str | None:
    for sep in ("\n", ",", " "):
        parts = text.split(sep)
        if len(parts) > 1 and parts != parts[::-1]:
            return sep.join(parts[::-1])
    return text[::-1] if len(text) > 1 and text != text[::-1] else None


def _append_token(text: str, rng: random.Random) -> str | None:
    return text + rng.choice((" 0", " 1", ", x", " extra", "9"))


def _flip_case(text: str, rng: random.Random) -> str | None:
    spots = [i for i, c in enumerate(text) if c.isalpha() and c.swapcase() != c]
    if not spots:
        return None
    i = rng.choice(spots)
    return text[:i] + text[i].swapcase() + text[i + 1:]


def _change_word(text: str, rng: random.Random) -> str | None:
    words = list(re.finditer(r"[A-Za-z]{2,}", text))
    if not words:
        return None
    m = rng.choice(words)
    return text[:m.start()] + m.group()[::-1].swapcase() + "q" + text[m.end():]


_EDITS: tuple[Callable[[str, random.Random], str | None], ...] = (
    _bump_digit, _drop_char, _swap_neighbours, _reverse_tokens, _append_token, _double_char, _flip_case,
    _change_word,
)


def wrong_answers(correct: str, rng: random.Random, is_wrong: Callable[[str], bool], want: int = 3) -> list[str]:
    """Up to ``want`` (at least two) distinct edits of ``correct`` for which ``is_wrong`` holds."""
    correct = str(correct)
    found: list[str] = []
    tried = {correct, ""}
    order = list(_EDITS)
    rng.shuffle(order)
    candidates = [edit(correct, rng) for edit in order for _ in range(3)]
    candidates += list(_FALLBACKS)
    for candidate in candidates[:_MAX_CANDIDATES] + list(_FALLBACKS):
        if candidate is None or candidate in tried:
            continue
        tried.add(candidate)
        if is_wrong(candidate):
            found.append(candidate)
            if len(found) >= want:
                break
    return found
