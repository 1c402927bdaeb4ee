"""Exact numbers in SymBench answers: parsed as Fractions, compared with the answer's own rounding, printed.

Every parser returns ``None`` on text it cannot read and never raises: verifiers call them on arbitrary
model output.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from r1ci_cli.answer import parse_list, parse_number


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
