"""Shared helpers of the arithmetic, puzzle and planning SymBench families (knobs, strict parsers).

Every parser here returns ``None`` on text it cannot read and never raises: verifiers call them on
arbitrary model output.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from r1ci_cli.answer import MAX_ANSWER_CHARS, parse_list, parse_literal, parse_number, strip_wrapping


def knob(rng: random.Random, knobs: Mapping[str, Any], name: str) -> Any:
    """One knob's value for this instance: an integer ``[lo, hi]`` list is sampled inclusively with ``rng``,
    any other list is a choice among its items, a scalar is used as given."""
    value = knobs[name]
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"knob {name!r} is an empty list")
        if len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            lo, hi = sorted(value)
            return rng.randint(lo, hi)
        return rng.choice(list(value))
    return value


def as_int(value: Any) -> int | None:
    """An int from an int, an integral float/Fraction or a string of digits; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Fraction)) and value == int(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,40}\s*", value):
        return int(value)
    return None


def parse_ints(text: str) -> list[int] | None:
    """A flat list of integers: ``[1, 0, 2]``, ``1,0,2``, ``1 0 2`` or ``["1", "0"]``; None otherwise."""
    try:
        items = parse_list(text)
    except Exception:  # the shared parser should not raise; stay safe on hostile text anyway
        return None
    if not items:
        return None
    out = [as_int(v) if not isinstance(v, float) else None for v in items]
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def parse_letters(text: str) -> list[str] | None:
    """A flat list of single tokens such as letters: ``A,B,C``, ``[A, B]`` or ``['A', 'B']``."""
    try:
        items = parse_list(text)
    except Exception:
        return None
    if not items or any(isinstance(v, bool) or not isinstance(v, (str, int)) for v in items):
        return None
    return [str(v).strip() for v in items]


def parse_pairs(text: str) -> list[tuple[int, int]] | None:
    """Integer pairs: ``[[0, 1], [2, 3]]``, ``[(0,1), (2,3)]``, ``0 1, 2 3`` or ``(0,1), (2,3)``."""
    if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return None
    value = parse_literal(text)
    if isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) for p in value):
        pairs = [tuple(as_int(x) for x in p) for p in value]
    elif re.fullmatch(r"[\s\d,()\[\]-]*", strip_wrapping(text)):
        body = strip_wrapping(text).strip()
        if body.startswith("[") and body.endswith("]") and "(" not in body and body.count("[") == 1:
            body = body[1:-1]  # "[0 1, 2 3]"
        if "(" in body or "[" in body:
            groups = re.findall(r"[(\[]([^()\[\]]*)[)\]]", body)
        else:
            groups = [g for g in body.split(",") if g.strip()]
        pairs = [tuple(as_int(x) for x in re.split(r"[\s,]+", g.strip()) if x) for g in groups]
    else:
        return None
    if not pairs or any(len(p) != 2 or None in p for p in pairs):
        return None
    return pairs  # type: ignore[return-value]


def parse_exact(text: str) -> Fraction | None:
    """One number as an exact Fraction (floats from ``1e3`` forms are converted exactly); None otherwise."""
    try:
        value = parse_number(text)
    except Exception:
        return None
    if value is None:
        return None
    return value if isinstance(value, Fraction) else Fraction(value)


def close(got: Fraction | None, want: Fraction, min_places: int = 2) -> bool:
    """Equal to ``want``, or ``want`` correctly rounded to the answer's own number of decimals (at least
    ``min_places``): answers of repeating decimals like 1.6666… are usually written rounded (1.67, 1.6667)."""
    if got is None:
        return False
    if got == want or abs(got - want) <= Fraction(1, 10 ** 9) * max(1, abs(want)):
        return True  # float noise: 1.6666666666666665 for 5/3
    places = 0
    while (got * 10 ** places).denominator != 1:
        places += 1
        if places > 30:  # not a terminating decimal (e.g. 5/3 written as a fraction, already compared)
            return False
    return places >= min_places and abs(got - want) <= Fraction(1, 2 * 10 ** places)


def fmt_number(value: Fraction) -> str:
    """Canonical text of an exact result: an integer, or a decimal rounded to 4 places."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.4f}".rstrip("0").rstrip(".")


def safe_literal(text: str) -> Any:
    """``ast.literal_eval`` that never raises (None on failure)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_number_list(text: str) -> list[Fraction] | None:
    """Numbers as exact decimals, from a flat list (``1,2.5,3``) or a nested one (``[[1, 2.5], [3, 4]]``,
    flattened row by row); None when anything is not a number."""
    try:
        items = parse_list(text)
    except Exception:
        return None
    if not items:
        return None
    flat: list[Any] = []
    for item in items:
        flat.extend(item if isinstance(item, list) else [item])
    out = []
    for item in flat:
        if isinstance(item, bool):
            return None
        if isinstance(item, (int, float)):
            try:
                out.append(Fraction(repr(item)) if isinstance(item, float) else Fraction(item))
            except (ValueError, OverflowError):  # inf, nan
                return None
        elif isinstance(item, str):
            value = parse_exact(item)
            if value is None:
                return None
            out.append(value)
        else:
            return None
    return out


MAX_ATTEMPTS = 2000


def attempts(task: str, limit: int = MAX_ATTEMPTS):
    """Count rejection-sampling tries; raise a one-line R1ciError when the knobs make success unlikely
    (e.g. a Game 24 target no numbers reach, boxes heavier than all lifters together)."""
    from r1ci_cli.errors import R1ciError

    for k in range(limit):
        yield k
    raise R1ciError(f"{task}: no valid instance in {limit} tries; check the --difficulty knobs")
