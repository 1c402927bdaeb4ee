"""Answer extraction and normalisation: one shared rule, no language model ever judges an answer.

The answer of a response is the content of its **last** ``<<<…>>>`` span (docs/paper.md "Interaction format").
Families then apply one of the normalisers below. Every parser returns ``None`` on text it cannot read;
none of them raises on any string (a property test feeds them garbage).
"""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction
from typing import Any

# The span ends at the last ``>>>`` of a run of ``>`` so that an answer ending in ``>`` (Dyck words such as
# ``] >``) keeps it: ``<<<] >>>>`` is ``] >``.
ANSWER_RE = re.compile(r"<<<(.*?)>>>(?!>)", re.DOTALL)
MAX_ANSWER_CHARS = 20_000
_QUOTES = "\"'`“”‘’"
_NUMBER_RE = re.compile(r"[-+]?(?:\d[\d,_]*)?\.?\d+(?:[eE][-+]?\d+)?(?:/\d+)?")


def extract_answer(text: str | None) -> str | None:
    """The stripped content of the last ``<<<…>>>`` span, or None. Over-long answers count as none."""
    if not text:
        return None
    matches = ANSWER_RE.findall(text)
    if not matches:
        return None
    answer = matches[-1].strip()
    if len(answer) > MAX_ANSWER_CHARS:
        return None
    return answer


def strip_wrapping(text: str) -> str:
    """Trim whitespace, surrounding quotes and a trailing full stop: ``" 'abc'. "`` → ``abc``."""
    text = text.strip()
    for _ in range(3):
        before = text
        if text.endswith(".") and not re.search(r"\d\.$", text[-2:]):
            text = text[:-1].rstrip()
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1].strip()
        if text == before:
            break
    return text


def normalize_text(text: str, case: bool = False) -> str:
    """Whitespace collapsed, wrapping quotes removed, lower-cased unless ``case``."""
    text = " ".join(strip_wrapping(text).split())
    return text if case else text.lower()


def parse_number(text: str) -> Fraction | float | None:
    """A single number: ``42``, ``-3.5``, ``1,234``, ``7/2``, ``1e3``, ``$12``, ``12%`` (→ 12). Exact when possible."""
    text = strip_wrapping(text).replace("$", "").replace("%", "").replace("\\", "").strip()
    text = re.sub(r"^(?:answer|result)\s*[:=]\s*", "", text, flags=re.I)
    if not text or len(text) > 200 or not _NUMBER_RE.fullmatch(text.replace(" ", "")):
        return None
    text = text.replace(" ", "").replace("_", "")
    if "," in text:
        if not re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
            return None
        text = text.replace(",", "")
    try:
        if "/" in text:
            num, den = text.split("/")
            return Fraction(Fraction(num), Fraction(den)) if Fraction(den) != 0 else None
        if "e" in text.lower():
            value = float(text)
            return value if math.isfinite(value) else None
        return Fraction(text)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def numbers_equal(got: Fraction | float | None, want: Fraction | float | int, rel_tol: float = 1e-6,
                  abs_tol: float = 1e-9) -> bool:
    """Exact for rationals, tolerant for floats."""
    if got is None:
        return False
    if isinstance(got, Fraction) and isinstance(want, (Fraction, int)):
        return got == want
    try:
        return math.isclose(float(got), float(want), rel_tol=rel_tol, abs_tol=abs_tol)
    except (OverflowError, ValueError):
        return False


def parse_literal(text: str) -> Any:
    """A Python/JSON literal (list, tuple, number, string, nested), or None. Never evaluates code."""
    text = strip_wrapping(text) if not text.strip().startswith(("[", "(", "{")) else text.strip()
    if len(text) > MAX_ANSWER_CHARS:
        return None
    text = text.replace("true", "True").replace("false", "False").replace("null", "None")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_list(text: str) -> list[Any] | None:
    """A flat or nested list: ``[1, 2]``, ``(1, 2)``, or bare ``1, 2`` / ``a b c`` forms."""
    value = parse_literal(text)
    if isinstance(value, (list, tuple)):
        return [list(v) if isinstance(v, tuple) else v for v in value]
    stripped = strip_wrapping(text).strip("[]() ")
    if not stripped:
        return [] if strip_wrapping(text).startswith(("[", "(")) else None
    parts = [p.strip().strip(_QUOTES) for p in re.split(r"\s*,\s*|\s+", stripped) if p.strip()]
    return parts or None


def parse_matrix(text: str) -> list[list[Any]] | None:
    """A rectangular matrix: a nested list literal, or one row per line with comma/space separators."""
    value = parse_literal(text)
    if isinstance(value, (list, tuple)) and value and all(isinstance(r, (list, tuple)) for r in value):
        rows = [list(r) for r in value]
    else:
        lines = [ln.strip().strip("[],") for ln in strip_wrapping(text).splitlines() if ln.strip().strip("[],")]
        if not lines:
            return None
        rows = [[c.strip(_QUOTES) for c in re.split(r"\s*,\s*|\s+", ln) if c.strip()] for ln in lines]
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        return None
    return rows


def parse_option(text: str, options: str = "ABCDEFGHIJKLMNOPQR") -> str | None:
    """An option letter from ``(C)``, ``C``, ``C)``, ``C.``, ``Option C`` or ``(C) the text``; else None."""
    text = strip_wrapping(text)
    match = re.fullmatch(r"(?:option\s+)?(?:\(([A-Za-z])\)|([A-Za-z])(?=$|[).:]))[).:]?(?:\s.*)?",
                         text, flags=re.I | re.S)
    if not match:
        return None
    letter = (match.group(1) or match.group(2)).upper()
    return letter if letter in options else None


def parse_yes_no(text: str) -> str | None:
    """``Yes``/``No`` (also True/False, valid/invalid left to the family)."""
    word = normalize_text(text)
    word = word.rstrip(".!")
    return {"yes": "Yes", "no": "No", "true": "Yes", "false": "No"}.get(word)
