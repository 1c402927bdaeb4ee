"""Strict answer parsers of the SymBench verifiers: integers, lists, pairs, grids, token lists, plain strings.

Every parser returns ``None`` on text it cannot read and never raises: verifiers call them on arbitrary
model output. Exact numbers (decimals, rounding) are in ``numbers.py``.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction
from typing import Any

from r1ci_cli.answer import MAX_ANSWER_CHARS, parse_list, parse_literal, parse_matrix, strip_wrapping


def to_int(value: Any) -> int | None:
    """An int from an int, an integral float or Fraction, or a string of digits (``"3"``, ``" -2 "``);
    None for anything else (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Fraction)) and value == int(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,40}\s*", value):
        return int(value)
    return None


def safe_literal(text: str) -> Any:
    """``ast.literal_eval`` that never raises (None on failure)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_int_list(text: str) -> list[int] | None:
    """A flat list of integers: ``[1, 0, 2]``, ``["1", "0"]``, ``1 0 2`` or ``1, 0, 2``; None otherwise
    (a float item such as ``1.0`` included)."""
    try:
        items = parse_list(text)
    except Exception:  # the shared parser is meant not to raise; stay safe on hostile text anyway
        return None
    if not items:
        return None
    out = [None if isinstance(v, float) else to_int(v) for v in items]
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def parse_str_list(text: str) -> list[str] | None:
    """A flat list of short strings such as letters: ``["A", "B"]``, ``[A, B]`` or ``A, B``; None otherwise."""
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
        pairs = [tuple(to_int(x) for x in p) for p in value]
    elif re.fullmatch(r"[\s\d,()\[\]-]*", strip_wrapping(text)):
        body = strip_wrapping(text).strip()
        if body.startswith("[") and body.endswith("]") and "(" not in body and body.count("[") == 1:
            body = body[1:-1]  # "[0 1, 2 3]"
        if "(" in body or "[" in body:
            groups = re.findall(r"[(\[]([^()\[\]]*)[)\]]", body)
        else:
            groups = [g for g in body.split(",") if g.strip()]
        pairs = [tuple(to_int(x) for x in re.split(r"[\s,]+", g.strip()) if x) for g in groups]
    else:
        return None
    if not pairs or any(len(p) != 2 or None in p for p in pairs):
        return None
    return pairs  # type: ignore[return-value]


def parse_grid(text: str) -> list[list[str]] | None:
    """A rectangular grid of cells as strings (a nested list literal or one row per line)."""
    try:
        rows = parse_matrix(text)
    except Exception:
        return None
    if rows is None:
        return None
    out = []
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                return None
            cells.append(str(v).strip())
        out.append(cells)
    return out


def parse_plain_string(text: str) -> str:
    """The answer as one bare string: surrounding quotes/whitespace and a trailing full stop removed."""
    return strip_wrapping(text)


def parse_token_list(text: str) -> list[str] | None:
    """A list of tokens where unquoted symbols are allowed: ``[6, /, 2, +, 7]`` or ``['6', '/', '2']``."""
    text = text.strip()
    value = parse_literal(text)
    if isinstance(value, (list, tuple)):
        items = list(value)
        if all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in items):
            return [str(v).strip() for v in items]
        return None
    inner = text
    if inner.startswith("[") or inner.endswith("]"):
        if not (inner.startswith("[") and inner.endswith("]")):
            return None
        inner = inner[1:-1]
    elif "," not in inner:
        return None
    parts = [p.strip().strip("\"'") for p in inner.split(",")]
    if not parts or any(not p or "[" in p or "]" in p for p in parts):
        return None
    return parts
