"""Stable per-item seeds.

Per-item seeds come from stable coordinates (seed, task, index …), never from loop order or ``hash()``
(salted per process). blake2b over the repr-free, type-tagged coordinates gives the same value in every
process and on every platform.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any mix of ints and strings, e.g. ``derive_seed(0, "game24", "train", 17)``."""
    h = hashlib.blake2b(digest_size=8, person=b"r1ci-seed")
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, (int, str)):
            raise TypeError(f"seed coordinates must be int or str, not {type(part).__name__}")
        tag = b"i" if isinstance(part, int) else b"s"
        data = str(part).encode()
        h.update(tag + len(data).to_bytes(4, "big") + data)
    return int.from_bytes(h.digest(), "big") >> 1


def derive_rng(*parts: object) -> random.Random:
    """A private ``random.Random`` seeded from stable coordinates (never the global RNG)."""
    return random.Random(derive_seed(*parts))


def stable_hash(text: str) -> int:
    """A 64-bit hash of a string that is the same in every process (for tie-breaking and partitions)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
