"""BBH hyperbaton: which of two phrases puts its adjectives in English's conventional order?

The order is opinion, size, age, shape, colour, origin, material, purpose (BBH's rule). A phrase takes two to
four adjectives of distinct categories; one option lists them in order, the other in a shuffled order that differs,
so exactly one option is right. The reference program sorts each option's adjectives by the category table it
carries and picks the option that is already sorted.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.bbh._common import generated_family, option_instance, range_knob
from r1ci_cli.tasks.registry import Instance, program

CATEGORY_ORDER = ["opinion", "size", "age", "shape", "color", "origin", "material", "purpose"]
LEXICON = {
    "opinion": ["lovely", "terrible", "obnoxious", "good", "repulsive", "silly", "wonderful", "nice", "awful",
                "ridiculous", "mysterious", "adorable"],
    "size": ["big", "small", "little", "tiny", "enormous", "huge", "massive", "midsize", "large"],
    "age": ["old", "new", "ancient", "old-fashioned", "brand-new", "archaic"],
    "shape": ["square", "circular", "triangular", "rectangular", "spherical", "prismlike", "pyramidal"],
    "color": ["red", "blue", "green", "white", "black", "gray", "yellow", "purple", "pink", "brown", "tan",
              "aqua"],
    "origin": ["American", "Chinese", "German", "Japanese", "Mexican", "Brazilian", "Indian", "Filipino",
               "Egyptian", "Russian", "Nigerian", "Thai", "Turkish", "Vietnamese", "Ethiopian", "Iranian"],
    "material": ["rubber", "wool", "plastic", "paper", "glass", "steel", "leather", "cloth", "wood", "iron",
                 "fiberglass", "cardboard", "lead"],
    "purpose": ["smoking", "hiking", "driving", "walking", "typing", "exercise", "eating", "drinking",
                "snorkeling", "whittling"],
}
_NOUNS = ["ship", "knife", "sweater", "shoe", "car", "box", "chair", "dog", "cat", "canoe", "monkey", "computer",
          "bicycle", "shirt", "table", "baby", "motorcycle", "watch", "spoon", "match", "piano", "house"]


def generate_hyperbaton(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    count = rng.randint(*range_knob(knobs, "min_adjectives", "max_adjectives", 2, len(CATEGORY_ORDER)))
    categories = sorted(rng.sample(CATEGORY_ORDER, count), key=CATEGORY_ORDER.index)
    ordered = [rng.choice(LEXICON[c]) for c in categories]
    shuffled = list(ordered)
    while shuffled == ordered:
        rng.shuffle(shuffled)
    noun = rng.choice(_NOUNS)
    options = [" ".join(ordered + [noun]), " ".join(shuffled + [noun])]
    correct = rng.randrange(2)
    if correct:
        options.reverse()
    lexicon = {adj: cat for cat, adjs in LEXICON.items() for adj in adjs if adj in ordered}
    return option_instance("Which sentence has the correct adjective order:", options, correct, lexicon=lexicon,
                           order=CATEGORY_ORDER)


def correct_order(options, lexicon, order):
    """The option letter whose adjectives (every word but the last) follow the category order."""
    right = []
    for i, phrase in enumerate(options):
        ranks = [order.index(lexicon[word]) for word in phrase.split()[:-1]]
        if ranks == sorted(ranks):
            right.append(i)
    if len(right) != 1:
        raise ValueError(f"{len(right)} options are in order")
    return "(" + "AB"[right[0]] + ")"


def reference_hyperbaton(inst: Instance) -> str:
    """Rank each adjective by its category and find the sorted option."""
    c = inst.check
    return program([correct_order], "print(correct_order(options, lexicon, order))", options=c["options"],
                   lexicon=c["lexicon"], order=c["order"])


FAMILIES = [
    generated_family("hyperbaton", "option", generate_hyperbaton, reference_hyperbaton,
                     {"min_adjectives": 2, "max_adjectives": 4}, "Pick the phrase with the correct adjective order."),
]
