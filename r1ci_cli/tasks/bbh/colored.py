"""BBH reasoning_about_colored_objects: colours, positions and counts of things on a surface.

Question types, in BBH's phrasing: the colour of a named thing; the colour of the thing directly left or right of
one in a row; the colour of the left-most or right-most thing; how many non-<colour> things lie left or right of
one; how many of a kind remain after removing every thing of a colour; and "Is the <thing> <colour>?". Colour
questions list BBH's eighteen colours as options, counting questions the number words from zero, yes/no questions
(A) yes (B) no. Each named noun occurs once in a row (or once per colour in a heap), so every question has one
answer. The reference program answers from the scene's data.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.bbh._common import generated_family, int_knob, option_instance, range_knob
from r1ci_cli.tasks.registry import Instance, program

COLORS = ["red", "orange", "yellow", "green", "blue", "brown", "magenta", "fuchsia", "mauve", "teal", "turquoise",
          "burgundy", "silver", "gold", "black", "grey", "purple", "pink"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen"]
_THINGS = [("pencil", "pencils"), ("notebook", "notebooks"), ("mug", "mugs"), ("cup", "cups"),
           ("keychain", "keychains"), ("teddy bear", "teddy bears"), ("stress ball", "stress balls"),
           ("plate", "plates"), ("fidget spinner", "fidget spinners"), ("booklet", "booklets"),
           ("dog leash", "dog leashes"), ("pair of sunglasses", "pairs of sunglasses"), ("paperclip", "paperclips"),
           ("jug", "jugs"), ("puzzle", "puzzles"), ("necklace", "necklaces"), ("envelope", "envelopes"),
           ("bracelet", "bracelets"), ("crayon", "crayons"), ("sheet of paper", "sheets of paper"), ("pen", "pens"),
           ("textbook", "textbooks"), ("cat toy", "cat toys"), ("scrunchiephone charger", "scrunchiephone chargers")]
_SURFACES = ["desk", "floor", "table", "nightstand"]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _listing(parts: list[str]) -> str:
    return ", ".join(parts[:-1]) + ", and " + parts[-1] if len(parts) > 2 else " and ".join(parts)


def generate_colored(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    surface = rng.choice(_SURFACES)
    kind = rng.choice(["color_of", "neighbour", "end", "count_side", "remove", "is_color"])
    if kind == "remove":
        return _generate_heap(rng, knobs, surface)
    num_things = rng.randint(*range_knob(knobs, "min_things", "max_things", 1, 12))
    if kind in ("neighbour", "count_side"):
        num_things = max(num_things, 2)
    things = rng.sample(range(len(_THINGS)), num_things)
    colors = [rng.choice(COLORS) for _ in things]
    scene = [[colors[i], _THINGS[t][0]] for i, t in enumerate(things)]
    described = _listing([_a(f"{c} {n}") for c, n in scene])
    spec: dict[str, Any] = {"type": kind}
    if kind in ("color_of", "is_color"):
        text = f"On the {surface}, you see {described}. "
    else:
        text = f"On the {surface}, you see a bunch of things arranged in a row: {described}. "
    options = list(COLORS)
    if kind == "color_of":
        spec["thing"] = rng.randrange(num_things)
        text += f"What color is the {scene[spec['thing']][1]}?"
        answer = options.index(colors[spec["thing"]])
    elif kind == "is_color":
        spec["thing"] = rng.randrange(num_things)
        spec["color"] = colors[spec["thing"]] if rng.random() < 0.5 else rng.choice(COLORS)
        text += f"Is the {scene[spec['thing']][1]} {spec['color']}?"
        options = ["yes", "no"]
        answer = 0 if spec["color"] == colors[spec["thing"]] else 1
    elif kind == "neighbour":
        spec["side"] = rng.choice(["left", "right"])
        spec["thing"] = rng.randrange(1, num_things) if spec["side"] == "left" else rng.randrange(num_things - 1)
        text += f"What is the color of the thing directly to the {spec['side']} of the {scene[spec['thing']][1]}?"
        answer = options.index(colors[spec["thing"] - 1 if spec["side"] == "left" else spec["thing"] + 1])
    elif kind == "end":
        spec["side"] = rng.choice(["left", "right"])
        text += f"What is the color of the {spec['side']}-most thing?"
        answer = options.index(colors[0] if spec["side"] == "left" else colors[-1])
    else:
        spec["side"] = rng.choice(["left", "right"])
        spec["thing"] = rng.randrange(num_things)
        spec["color"] = rng.choice(colors)
        text += (f"How many non-{spec['color']} things do you see to the {spec['side']} of the "
                 f"{scene[spec['thing']][1]}?")
        options = NUMBER_WORDS[: max(7, num_things)]
        span = range(spec["thing"]) if spec["side"] == "left" else range(spec["thing"] + 1, num_things)
        answer = sum(1 for i in span if colors[i] != spec["color"])
    return option_instance(text, options, answer, scene=scene, question=spec)


def _generate_heap(rng: random.Random, knobs: Mapping[str, Any], surface: str) -> Instance:
    """Counts of (colour, noun) piles: 'If I remove all the <colour> things ..., how many <nouns> remain?'"""
    num_piles = rng.randint(*range_knob(knobs, "min_things", "max_things", 1, 12))
    nouns = [_THINGS[i] for i in rng.sample(range(len(_THINGS)), rng.randint(1, 3))]
    piles: dict[tuple[str, str], int] = {}
    total = 0
    for _ in range(num_piles):
        key = (rng.choice(COLORS[: int_knob(knobs, "heap_colors", 1, len(COLORS))]), rng.choice(nouns)[0])
        count = rng.randint(1, 3)
        if total + count > len(NUMBER_WORDS) - 1:  # every answer must be among the options (up to sixteen)
            break
        piles[key] = piles.get(key, 0) + count
        total += count
    scene = [[color, noun, count] for (color, noun), count in piles.items()]
    plural = dict(_THINGS)
    parts = [f"{NUMBER_WORDS[c]} {color} {plural[n]}" if c > 1 else _a(f"{color} {n}") for color, n, c in scene]
    spec = {"type": "remove", "color": rng.choice([s[0] for s in scene]), "noun": rng.choice([s[1] for s in scene])}
    text = (f"On the {surface}, I see {_listing(parts)}. If I remove all the {spec['color']} things from the "
            f"{surface}, how many {plural[spec['noun']]} remain on it?")
    remain = sum(c for color, noun, c in scene if noun == spec["noun"] and color != spec["color"])
    return option_instance(text, list(NUMBER_WORDS), remain, scene=scene, question=spec)


def colored_answer(scene, question, options):
    """The option letter answering ``question`` about ``scene`` ([colour, noun] in row order, or
    [colour, noun, count] piles for "remove" questions)."""
    numbers = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
               "twelve", "thirteen", "fourteen", "fifteen", "sixteen"]
    kind = question["type"]
    if kind == "color_of":
        answer = scene[question["thing"]][0]
    elif kind == "is_color":
        answer = "yes" if scene[question["thing"]][0] == question["color"] else "no"
    elif kind == "neighbour":
        answer = scene[question["thing"] + (-1 if question["side"] == "left" else 1)][0]
    elif kind == "end":
        answer = scene[0 if question["side"] == "left" else -1][0]
    elif kind == "count_side":
        i = question["thing"]
        side = scene[:i] if question["side"] == "left" else scene[i + 1:]
        answer = numbers[sum(1 for color, _ in side if color != question["color"])]
    elif kind == "remove":
        answer = numbers[sum(count for color, noun, count in scene
                             if noun == question["noun"] and color != question["color"])]
    else:
        raise ValueError(f"unknown question type {kind!r}")
    return "(" + "ABCDEFGHIJKLMNOPQR"[options.index(answer)] + ")"


def reference_colored(inst: Instance) -> str:
    """Look the answer up in the scene: positions, colours and counts."""
    c = inst.check
    return program([colored_answer], "print(colored_answer(scene, question, options))", scene=c["scene"],
                   question=c["question"], options=c["options"])


FAMILIES = [
    generated_family("reasoning_about_colored_objects", "option", generate_colored, reference_colored,
                     {"min_things": 3, "max_things": 6, "heap_colors": 6},
                     "Answer about the colours, positions and counts of things on a surface."),
]
