"""Shared helpers of the string, board and puzzle SymBench families (strict answer parsers; ``knob`` is
``_common_a``'s, re-exported).

Every parser here returns ``None`` on text it cannot read and never raises: a verifier calls it on
arbitrary model output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from r1ci_cli.answer import parse_list, parse_literal, parse_matrix, strip_wrapping
from r1ci_cli.tasks.symbench._common_a import knob  # noqa: F401 - re-exported: one knob rule for all SymBench

ANSWER_TAIL = "<<<"  # every question ends by asking for the <<<...>>> span, as the original prompts do


def to_int(value: Any) -> int | None:
    """An int from an int or a string of digits (``"3"``, ``" -2 "``); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,40}\s*", value):
        return int(value)
    return None


def parse_int_list(text: str) -> list[int] | None:
    """A flat list of integers: ``[1, 0, 2]``, ``["1", "0"]``, ``1 0 2`` or ``1, 0, 2``; None otherwise."""
    try:
        items = parse_list(text)
    except Exception:  # the shared parser is meant not to raise; stay safe on hostile text anyway
        return None
    if not items:
        return None
    out = [to_int(v) for v in items]
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def parse_str_list(text: str) -> list[str] | None:
    """A flat list of short strings: ``["A", "B"]``, ``[A, B]`` or ``A, B``; None otherwise."""
    try:
        items = parse_list(text)
    except Exception:
        return None
    if not items:
        return None
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            return None
        out.append(str(v).strip())
    return out


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


def attempts(name: str, knobs: Mapping[str, Any], limit: int = 10_000):
    """Yield attempt numbers for a rejection-sampling loop; after ``limit`` tries the knobs are taken to
    ask for something impossible (or very rare), which is the user's ``--difficulty`` to fix."""
    from r1ci_cli.errors import R1ciError

    yield from range(limit)
    raise R1ciError(f"{name}: no instance found in {limit} attempts with knobs {dict(knobs)}; "
                    "relax --difficulty")
