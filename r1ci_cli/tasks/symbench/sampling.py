"""How the SymBench generators draw an instance: one knob rule and one rejection-sampling budget.

``knob`` reads a difficulty knob for one instance (a ``[lo, hi]`` integer range is sampled, any other list is
a choice, a scalar is used as given). ``attempts`` counts the tries of a rejection-sampling loop and turns
knobs that make success impossible (or very rare) into one line that tells the user to relax
``--difficulty``. The budget only decides when to give up: the instances drawn do not depend on it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

MAX_ATTEMPTS = 10_000


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


def attempts(task: str, knobs: Mapping[str, Any] | None = None, limit: int = MAX_ATTEMPTS) -> Iterator[int]:
    """Yield try numbers for a rejection-sampling loop; after ``limit`` tries raise a one-line R1ciError
    (e.g. a Game 24 target no numbers reach, boxes heavier than all lifters together)."""
    from r1ci_cli.errors import R1ciError

    yield from range(limit)
    shown = f" with knobs {dict(knobs)}" if knobs is not None else ""
    raise R1ciError(f"{task}: no valid instance in {limit} tries{shown}; relax --difficulty")
