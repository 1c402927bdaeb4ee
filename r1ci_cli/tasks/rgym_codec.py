"""A faithful JSON form for Reasoning-Gym entries.

Reasoning-Gym entries carry metadata that its ``score_answer`` reads back (boards, expected sets, solution
lists), and that metadata holds values JSON cannot: tuples, sets, dicts with non-string keys, numpy arrays
and scalars, NaN, integers beyond 64 bits (orjson refuses them). A Task record must be JSON, so ``encode``
turns an entry into plain JSON data, tagging every value JSON would change, and ``decode`` rebuilds an equal
object for the scorer. Round trip: ``decode(encode(x)) == x`` for every type handled, with one deliberate
loss: numpy *scalars* come back as Python ``int``/``float``/``bool`` (equal in value, and what every
scorer compares them with).

Tagged values are one-key-plus-payload dicts ``{"__rgym__": kind, ...}``. Sets are written in a canonical
order (sorted by their encoded JSON), so the bytes do not depend on ``PYTHONHASHSEED``. An entry already
holding the tag key, or a type not listed here, raises ``TypeError``: the survey (bench/rgym_survey.py)
would then show that dataset as not encodable rather than silently storing something lossy.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

TAG = "__rgym__"
_INT64 = 2**63


def encode(value: Any) -> Any:
    """Plain JSON data (dict/list/str/int/float/bool/None) from a Reasoning-Gym entry or any part of it."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else {TAG: "int", "text": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {TAG: "float", "text": repr(value)}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {TAG: "tuple", "items": [encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        items = sorted((encode(v) for v in value), key=_canonical)
        return {TAG: "frozenset" if isinstance(value, frozenset) else "set", "items": items}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            if TAG in value:
                raise TypeError(f"entry already holds the reserved key {TAG!r}")
            return {k: encode(v) for k, v in value.items()}
        return {TAG: "dict", "items": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, Fraction):
        return {TAG: "fraction", "items": [encode(value.numerator), encode(value.denominator)]}
    return _encode_numpy(value)


def decode(value: Any) -> Any:
    """The inverse of ``encode``."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(TAG)
    if kind is None:
        return {k: decode(v) for k, v in value.items()}
    if kind == "int":
        return int(value["text"])
    if kind == "float":
        return float(value["text"])
    if kind == "tuple":
        return tuple(decode(v) for v in value["items"])
    if kind == "set":
        return {decode(v) for v in value["items"]}
    if kind == "frozenset":
        return frozenset(decode(v) for v in value["items"])
    if kind == "dict":
        return {decode(k): decode(v) for k, v in value["items"]}
    if kind == "fraction":
        return Fraction(decode(value["items"][0]), decode(value["items"][1]))
    if kind == "ndarray":
        import numpy as np

        return np.array(decode(value["items"]), dtype=value["dtype"]).reshape(value["shape"])
    raise ValueError(f"unknown {TAG} tag {kind!r}")


def _encode_numpy(value: Any) -> Any:
    # numpy is only looked at when a value is none of the plain types, so plain entries never import it.
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("numpy arrays of Python objects are not encodable")
        return {TAG: "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "items": encode(value.ravel().tolist())}
    if isinstance(value, np.generic):
        return encode(value.item())
    raise TypeError(f"cannot encode {type(value).__module__}.{type(value).__name__} as JSON")


def _canonical(encoded: Any) -> str:
    return json.dumps(encoded, sort_keys=True, ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """One canonical JSON text for ``encode(value)`` (digests in tests and in the survey)."""
    return _canonical(encode(value))
