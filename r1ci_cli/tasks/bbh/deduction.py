"""BBH logical_deduction_{three,five,seven}_objects: order n objects from absolute and relative clues.

The generator hides a random order, then adds true clues (``The owl is the leftmost``, ``Ana finished above
Eve``), keeping only those that rule out some remaining order, until exactly one order is left; so every question
has a single answer and the paragraph is, as BBH says, logically consistent. The question asks which object holds
one position; the options name each object at that position. The reference program brute-forces all n! orders.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from r1ci_cli.tasks.bbh._common import float_knob, generated_family, option_instance
from r1ci_cli.tasks.registry import Instance, program

_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh"]
_COUNTS = {3: "three", 5: "five", 7: "seven"}


def _shelf_phrase(i: int, n: int, from_end: bool) -> str:
    if from_end:
        j = n - 1 - i
        return "the rightmost" if j == 0 else f"the {_ORDINALS[j]} from the right"
    return "the leftmost" if i == 0 else f"the {_ORDINALS[i]} from the left"


def _golf_phrase(i: int, n: int, from_end: bool) -> str:
    if from_end:
        j = n - 1 - i
        return "last" if j == 0 else f"{_ORDINALS[j]}-to-last"
    return _ORDINALS[i]


def _superlative(low: str, high: str):
    def phrase(i: int, n: int, from_end: bool) -> str:
        j, word = (n - 1 - i, high) if from_end else (i, low)
        if j == 0:
            return f"the {word}"
        return f"the {_ORDINALS[j]}-{word}"

    return phrase


# Each scene: intro, how an object is named, verb, position phrase, relation phrases (earlier, later).
_SCENES = [
    {"intro": "On a shelf, there are {n} books: {items}.", "pool": "red orange yellow green blue purple brown "
     "black white gray".split(), "name": "the {} book", "list": "{} book", "article": True, "verb": "is",
     "phrase": _shelf_phrase, "before": "is to the left of", "after": "is to the right of"},
    {"intro": "On a branch, there are {n} birds: {items}.", "pool": ["quail", "owl", "raven", "falcon", "robin",
     "hummingbird", "crow", "blue jay", "cardinal", "hawk"], "name": "the {}", "list": "{}", "article": True,
     "verb": "is", "phrase": _shelf_phrase, "before": "is to the left of", "after": "is to the right of"},
    {"intro": "In a golf tournament, there were {n} golfers: {items}.", "pool": "Ana Eve Ada Dan Rob Amy Joe Mel "
     "Mya Eli".split(), "name": "{}", "list": "{}", "verb": "finished", "phrase": _golf_phrase,
     "before": "finished above", "after": "finished below"},
    {"intro": "In an antique car show, there are {n} vehicles: {items}.", "pool": ["motorcyle", "bus", "tractor",
     "truck", "station wagon", "sedan", "minivan", "limousine", "convertible", "hatchback"], "name": "the {}",
     "list": "{}", "article": True, "verb": "is", "phrase": _superlative("oldest", "newest"), "before": "is older than",
     "after": "is newer than"},
    {"intro": "A fruit stand sells {n} fruits: {items}.", "pool": "apples peaches mangoes plums kiwis oranges "
     "loquats watermelons pears cantaloupes".split(), "name": "the {}", "list": "{}", "verb": "are",
     "phrase": _superlative("cheapest", "most expensive"), "before": "are cheaper than",
     "after": "are more expensive than"},
]


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _listing(items: list[str]) -> str:
    return ", ".join(items[:-1]) + ", and " + items[-1] if len(items) > 2 else " and ".join(items)


@lru_cache(maxsize=8)
def _orders(n: int) -> np.ndarray:
    """Every assignment object -> position, one per row ``pos[object]``: (n!, n). Read-only, shared."""
    orders = np.array(list(itertools.permutations(range(n))), dtype=np.int8)
    orders.flags.writeable = False
    return orders


def _holds(clue: tuple, orders: np.ndarray) -> np.ndarray:
    """Which rows of ``orders`` satisfy the clue: (rows,) bool."""
    if clue[0] == "pos":
        return orders[:, clue[1]] == clue[2]
    return orders[:, clue[1]] < orders[:, clue[2]]


def _generate(rng: random.Random, knobs: Mapping[str, Any], n: int) -> Instance:
    scene = rng.choice(_SCENES)
    objects = rng.sample(scene["pool"], n)
    hidden = list(range(n))
    rng.shuffle(hidden)  # hidden[object] = position
    # Vectorised over all n! orders: 7! = 5040 rows, and a rejected clue costs one comparison, not a Python loop.
    remaining = _orders(n)
    remaining = remaining[(remaining != np.array(hidden, dtype=np.int8)).any(axis=1)]  # all but the hidden order
    clues: list[tuple] = []
    while len(remaining):
        if rng.random() < float_knob(knobs, "absolute_clue_prob", 0.0, 1.0):
            obj = rng.randrange(n)
            clue: tuple = ("pos", obj, hidden[obj])
        else:
            a, b = rng.sample(range(n), 2)
            clue = ("rel", a, b) if hidden[a] < hidden[b] else ("rel", b, a)
        kept = remaining[_holds(clue, remaining)]
        if len(kept) < len(remaining) and clue not in clues:
            clues.append(clue)
            remaining = kept
    sentences = []
    for clue in clues:
        subject = scene["name"].format(objects[clue[1]])
        subject = subject[0].upper() + subject[1:]
        if clue[0] == "pos":
            from_end = clue[2] > (n - 1) / 2 or (clue[2] == (n - 1) / 2 and rng.random() < 0.5)
            sentences.append(f"{subject} {scene['verb']} {scene['phrase'](clue[2], n, from_end)}.")
        elif rng.random() < 0.5:
            sentences.append(f"{subject} {scene['before']} {scene['name'].format(objects[clue[2]])}.")
        else:
            other = scene["name"].format(objects[clue[2]])
            other = other[0].upper() + other[1:]
            sentences.append(f"{other} {scene['after']} {scene['name'].format(objects[clue[1]])}.")
    query = rng.randrange(n)
    query_phrase = scene["phrase"](query, n, query > (n - 1) / 2)
    options = []
    for name in objects:
        subject = scene["name"].format(name)
        options.append(f"{subject[0].upper() + subject[1:]} {scene['verb']} {query_phrase}")
    items = [scene["list"].format(o) for o in objects]
    items = [_article(item) for item in items] if scene.get("article") else items
    text = ("The following paragraphs each describe a set of {count} objects arranged in a fixed order. The "
            "statements are logically consistent within each paragraph. ").format(count=_COUNTS.get(n, str(n)))
    text += scene["intro"].format(n=_COUNTS.get(n, str(n)), items=_listing(items)) + " " + " ".join(sentences)
    correct = hidden.index(query)
    return option_instance(text, options, correct, num_objects=n, clues=[list(c) for c in clues],
                           query=query)


def solve_order(num_objects, clues, query):
    """The option letter of the object at position ``query`` in the only order satisfying every clue.

    A clue ["pos", a, i] says object a is at position i; ["rel", a, b] says a comes before b.
    """
    import itertools

    found = []
    for pos in itertools.permutations(range(num_objects)):
        if all(pos[c[1]] == c[2] if c[0] == "pos" else pos[c[1]] < pos[c[2]] for c in clues):
            found.append(pos)
    if len(found) != 1:
        raise ValueError(f"{len(found)} orders satisfy the clues")
    return "(" + "ABCDEFG"[found[0].index(query)] + ")"


def reference_order(inst: Instance) -> str:
    """Brute force over all orders."""
    c = inst.check
    return program([solve_order], "print(solve_order(num_objects, clues, query))", num_objects=c["num_objects"],
                   clues=c["clues"], query=c["query"])


def _variant(n: int):
    def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
        return _generate(rng, knobs, n)

    return generated_family(f"logical_deduction_{_COUNTS[n]}_objects", "option", generate, reference_order,
                            {"absolute_clue_prob": 0.3},
                            f"Deduce the order of {n} objects from clues and name the one at a position.")


FAMILIES = [_variant(3), _variant(5), _variant(7)]
