"""BBH tracking_shuffled_objects_{three,five,seven}_objects: follow pairwise swaps of held items.

n people each hold a distinct item; n swaps of two people's items follow; the question asks what one person
holds at the end, with the n items (in their starting order) as options. Items are distinct, so exactly one option
is right. The reference program replays the swaps.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.bbh._common import generated_family, int_knob, option_instance
from r1ci_cli.tasks.registry import Instance, program

_PEOPLE = ["Alice", "Bob", "Claire", "Dave", "Eve", "Fred", "Gertrude"]
_COUNTS = {3: "three", 5: "five", 7: "seven"}

# Each scene: opening, how a holding is stated, the swap sentence, the closing question, the item pool.
_SCENES = [
    {"open": "{people} are playing a game. At the start of the game, they are each holding a ball: {holdings}.",
     "hold": "{p} has a {x}", "intro": "As the game progresses, pairs of players trade balls.",
     "swap": "{a} and {b} swap balls", "ask": "At the end of the game, {p} has the",
     "option": "{x}", "pool": [f"{c} ball" for c in "pink white red blue green yellow orange purple black brown "
                               "gray".split()]},
    {"open": "{people} are on the same team in a soccer match. At the start of the match, they are each assigned "
     "to a position: {holdings}.", "hold": "{p} is playing {x}",
     "intro": "As the game progresses, pairs of players occasionally swap positions.",
     "swap": "{a} and {b} trade positions", "ask": "At the end of the match, {p} is playing", "option": "{x}",
     "pool": ["goalkeeper", "left winger", "right midfielder", "striker", "center midfielder", "benchwarmer",
              "fullback", "cheerleader", "left midfielder", "right winger", "sweeper"]},
    {"open": "{people} are dancers at a square dance. At the start of a song, they each have a partner: "
     "{holdings}.", "hold": "{p} is dancing with {x}",
     "intro": "Throughout the song, the dancers often trade partners.", "swap": "{a} and {b} switch partners",
     "ask": "At the end of the dance, {p} is dancing with", "option": "{x}",
     "pool": ["Izzi", "Melissa", "Lola", "Patrick", "Sam", "Rodrigo", "Jamie", "Ophelia", "Karl", "Helga",
              "Lola", "Rodrigo", "Sam", "Jamie", "Ophelia"]},
    {"open": "{people} are friends and avid readers who occasionally trade books. At the start of the semester, "
     "they each buy one new book: {holdings}.", "hold": "{p} gets {x}",
     "intro": "As the semester proceeds, they start trading around the new books.", "swap": "{a} and {b} swap books",
     "ask": "At the end of the semester, {p} has", "option": "{x}",
     "pool": ["Ulysses", "Frankenstein", "Lolita", "Moby Dick", "The Odyssey", "Catch-22", "The Pearl",
              "Hound of the Baskervilles", "The Fellowship of the Ring", "The Great Gatsby", "Frankenstein"]},
    {"open": "{people} are holding a white elephant gift exchange. At the start of the event, they are each "
     "holding a present of a different color: {holdings}.", "hold": "{p} has a {x}",
     "intro": "As the event progresses, pairs of people swap gifts.", "swap": "{a} and {b} swap their gifts",
     "ask": "At the end of the event, {p} has the", "option": "{x}",
     "pool": [f"{c} present" for c in "black green yellow white blue red purple orange brown".split()]
     + ["pink ball", "red ball"]},
]


def _listing(items: list[str]) -> str:
    return ", ".join(items[:-1]) + ", and " + items[-1] if len(items) > 2 else " and ".join(items)


def _generate(rng: random.Random, knobs: Mapping[str, Any], n: int) -> Instance:
    scene = rng.choice(_SCENES)
    people = _PEOPLE[:n]
    items = rng.sample(sorted(set(scene["pool"])), n)
    swaps = [rng.sample(range(n), 2) for _ in range(int_knob(knobs, "num_swaps", 0, 50) or n)]
    holding = list(range(n))  # holding[person] = item index
    for a, b in swaps:
        holding[a], holding[b] = holding[b], holding[a]
    asked = rng.randrange(n)
    holdings = _listing([scene["hold"].format(p=p, x=x) for p, x in zip(people, items)])
    steps = []
    for k, (a, b) in enumerate(swaps):
        lead = "First" if k == 0 else ("Finally" if k == len(swaps) - 1 else "Then")
        steps.append(f"{lead}, {scene['swap'].format(a=people[a], b=people[b])}.")
    text = (scene["open"].format(people=_listing(people), holdings=holdings) + "\n\n" + scene["intro"] + " "
            + " ".join(steps) + " " + scene["ask"].format(p=people[asked]))
    options = [scene["option"].format(x=x) for x in items]
    return option_instance(text, options, holding[asked], num_objects=n, swaps=swaps, asked=asked)


def track_swaps(num_objects, swaps, asked):
    """The option letter of the item person ``asked`` holds after the swaps (person i starts with item i)."""
    holding = list(range(num_objects))
    for a, b in swaps:
        holding[a], holding[b] = holding[b], holding[a]
    return "(" + "ABCDEFG"[holding[asked]] + ")"


def reference_swaps(inst: Instance) -> str:
    """Replay the swaps."""
    c = inst.check
    return program([track_swaps], "print(track_swaps(num_objects, swaps, asked))", num_objects=c["num_objects"],
                   swaps=c["swaps"], asked=c["asked"])


def _variant(n: int):
    def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
        return _generate(rng, knobs, n)

    # BBH makes as many swaps as there are people; num_swaps 0 means that default.
    return generated_family(f"tracking_shuffled_objects_{_COUNTS[n]}_objects", "option", generate, reference_swaps,
                            {"num_swaps": 0}, f"Track {n} items through pairwise swaps.")


FAMILIES = [_variant(3), _variant(5), _variant(7)]
