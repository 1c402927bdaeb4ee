"""BBH object_counting and penguins_in_a_table: seeded generators and computed references.

object_counting: ``I have a flute, two potatoes, ... How many vegetables do I have?`` -> ``3``. The reference
program reads each phrase's count word and looks the noun up in the category lexicon it is given.

penguins_in_a_table: BBH's table text (header, rows, the worked example line, an optional added or deleted
penguin) with a question about counts, extremes, alphabetical order or sums, and five lettered options. Values of
each column are distinct, so extremes are unique; options are distinct, so one is right. The reference program
applies the edit to the table and answers the question.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.bbh._common import generated_family, instance, int_knob, option_instance, range_knob
from r1ci_cli.tasks.registry import Instance, program

# ---------------------------------------------------------------------------------------------- objects

_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five"]
_LEXICON = {  # category -> (singular, plural) pairs
    "musical instruments": [("flute", "flutes"), ("piano", "pianos"), ("trombone", "trombones"),
                            ("violin", "violins"), ("accordion", "accordions"), ("clarinet", "clarinets"),
                            ("drum", "drums"), ("trumpet", "trumpets")],
    "fruits": [("apple", "apples"), ("banana", "bananas"), ("peach", "peaches"), ("plum", "plums"),
               ("grape", "grapes"), ("nectarine", "nectarines"), ("strawberry", "strawberries"),
               ("blackberry", "blackberries"), ("raspberry", "raspberries"), ("orange", "oranges")],
    "vegetables": [("potato", "potatoes"), ("cauliflower", "cauliflowers"), ("lettuce head", "lettuce heads"),
                   ("garlic", "garlics"), ("carrot", "carrots"), ("yam", "yams"), ("cabbage", "cabbages"),
                   ("onion", "onions"), ("stalk of celery", "stalks of celery"),
                   ("head of broccoli", "heads of broccoli")],
    "animals": [("bear", "bears"), ("frog", "frogs"), ("fish", "fish"), ("cat", "cats"), ("rabbit", "rabbits"),
                ("snake", "snakes"), ("mouse", "mice"), ("pig", "pigs"), ("goat", "goats"), ("cow", "cows"),
                ("duck", "ducks"), ("chicken", "chickens"), ("snail", "snails"), ("donkey", "donkeys")],
    "objects": [("chair", "chairs"), ("table", "tables"), ("couch", "couches"), ("car", "cars"),
                ("lamp", "lamps"), ("stove", "stoves"), ("oven", "ovens"), ("microwave", "microwaves"),
                ("bed", "beds"), ("toaster", "toasters"), ("fridge", "fridges")],
}


def _phrase(count: int, pair: tuple[str, str]) -> str:
    if count == 1:
        return ("an " if pair[0][0] in "aeiou" else "a ") + pair[0]
    return f"{_NUMBER_WORDS[count]} {pair[1]}"


def generate_objects(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    asked = rng.choice(sorted(_LEXICON))
    others = [c for c in sorted(_LEXICON) if c != asked]
    num_items = rng.randint(*range_knob(knobs, "min_items", "max_items", 1, 20))
    num_asked = rng.randint(1, num_items)
    chosen = [(asked, p) for p in rng.sample(_LEXICON[asked], min(num_asked, len(_LEXICON[asked])))]
    distractor = rng.choice(others)
    pool = [(c, p) for c in ([distractor] if rng.random() < 0.6 else others) for p in _LEXICON[c]]
    chosen += rng.sample(pool, min(num_items - len(chosen), len(pool)))
    rng.shuffle(chosen)
    top = int_knob(knobs, "max_count", 2, len(_NUMBER_WORDS) - 1)
    counts = [1 if rng.random() < 0.6 else rng.randint(2, top) for _ in chosen]
    phrases = [_phrase(k, pair) for k, (_, pair) in zip(counts, chosen)]
    listing = ", ".join(phrases[:-1]) + ", and " + phrases[-1] if len(phrases) > 2 else " and ".join(phrases)
    text = f"I have {listing}. How many {asked} do I have?"
    lexicon = {}
    for category, pair in chosen:
        lexicon[pair[0]] = lexicon[pair[1]] = category
    target = sum(k for k, (category, _) in zip(counts, chosen) if category == asked)
    return instance(text, "number", target, phrases=phrases, lexicon=lexicon, asked=asked)


def count_objects(phrases, lexicon, asked):
    """Sum the counts of the phrases whose noun belongs to the asked category."""
    words = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
    total = 0
    for phrase in phrases:
        count_word, noun = phrase.split(" ", 1)
        if lexicon[noun] == asked:
            total += words[count_word]
    return total


def reference_objects(inst: Instance) -> str:
    """Read each count word and classify each noun."""
    c = inst.check
    return program([count_objects], "print(count_objects(phrases, lexicon, asked))", phrases=c["phrases"],
                   lexicon=c["lexicon"], asked=c["asked"])


# ---------------------------------------------------------------------------------------------- penguins

_PENGUINS = ["Louis", "Bernard", "Vincent", "Gwen", "James", "Hugo", "Marie", "Otto", "Ruby", "Sofia", "Nina",
             "Oscar"]
_COLUMNS = {"age": (1, 15, "years old"), "height": (40, 100, "cm"), "weight": (5, 25, "kg")}
_EXTREMES = {("age", "max"): "Which penguin is the oldest?", ("age", "min"): "Which penguin is the youngest?",
             ("height", "max"): "Which penguin is the tallest?", ("height", "min"): "Which penguin is the shortest?",
             ("weight", "max"): "Which penguin is the heaviest?", ("weight", "min"): "Which penguin is the lightest?"}


def _count_question(column: str, op: str, value: int) -> str:
    if column == "age":
        return f"How many penguins are {'less' if op == 'lt' else 'more'} than {value} years old?"
    if column == "height":
        return f"How many penguins are {'shorter' if op == 'lt' else 'taller'} than {value} cm?"
    return f"How many penguins weigh {'less' if op == 'lt' else 'more'} than {value} kg?"


def generate_penguins(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    num_rows = int_knob(knobs, "num_rows", 3, len(_PENGUINS) - 1)
    names = rng.sample(_PENGUINS, num_rows + 1)
    values = {c: rng.sample(range(lo, hi + 1), num_rows + 1) for c, (lo, hi, _) in _COLUMNS.items()}
    rows = [[names[i], values["age"][i], values["height"][i], values["weight"][i]] for i in range(num_rows + 1)]
    table, extra = rows[:num_rows], rows[num_rows]
    edit = rng.choice(["none", "add", "delete"])
    text = ("Here is a table where the first line is a header and each subsequent line is a penguin:  name, age, "
            "height (cm), weight (kg) " + " ".join(", ".join(map(str, r)) for r in table) + "  For example: "
            f"the age of {table[0][0]} is {table[0][1]}, the weight of {table[-1][0]} is {table[-1][3]} kg, "
            f"the height of {table[1][0]} is {table[1][2]} cm.  ")
    edited = list(table)
    deleted = None
    if edit == "add":
        text += "We now add a penguin to the table:\n" + ", ".join(map(str, extra)) + "\n"
        edited.append(extra)
    elif edit == "delete":
        deleted = rng.choice(table)[0]
        text += f"We then delete the penguin named {deleted} from the table.\n"
        edited = [r for r in table if r[0] != deleted]
    kind = rng.choice(["count", "extreme", "alphabet", "sum", "rows"])
    column = rng.choice(list(_COLUMNS))
    spec: dict[str, Any] = {"type": kind, "column": column}
    index = ["name", "age", "height", "weight"].index(column)
    if kind == "count":
        spec["op"] = rng.choice(["lt", "gt"])
        spec["value"] = rng.choice([r[index] for r in edited]) + rng.choice([0, 1, -1])
        question = _count_question(column, spec["op"], spec["value"])
        answer: Any = sum((r[index] < spec["value"]) if spec["op"] == "lt" else (r[index] > spec["value"])
                          for r in edited)
    elif kind == "extreme":
        spec["op"] = rng.choice(["min", "max"])
        question = _EXTREMES[(column, spec["op"])]
        answer = (min if spec["op"] == "min" else max)(edited, key=lambda r: r[index])[0]
    elif kind == "alphabet":
        spec["rank"] = rng.choice(["first", "last", "second"])
        question = f"What is the name of the {spec['rank']} penguin sorted by alphabetic order?"
        ordered = sorted(r[0] for r in edited)
        answer = {"first": ordered[0], "second": ordered[1], "last": ordered[-1]}[spec["rank"]]
    elif kind == "sum":
        question = f"What is the cumulated {column} of the penguins?"
        answer = sum(r[index] for r in edited)
    else:
        question = "How many penguins are there in the table?"
        answer = len(edited)
    if isinstance(answer, str):
        others = [n for n in names if n != answer]
        others += [n for n in _PENGUINS if n not in names][: max(0, 4 - len(others))]
        options = [answer] + rng.sample(others, 4)
        rng.shuffle(options)
    else:
        low = max(0, answer - rng.randint(0, 4))
        options = list(range(low, low + 5))
    options = [str(o) for o in options]
    text += question
    return option_instance(text, options, options.index(str(answer)), rows=table, added=extra if edit == "add"
                           else None, deleted=deleted, question=spec)


def answer_penguins(rows, added, deleted, question, options):
    """Apply the edit to the table, answer the question, and return the matching option letter."""
    table = [list(r) for r in rows]
    if added is not None:
        table.append(list(added))
    if deleted is not None:
        table = [r for r in table if r[0] != deleted]
    column = ["name", "age", "height", "weight"].index(question["column"])
    kind = question["type"]
    if kind == "count":
        value = question["value"]
        answer = sum(1 for r in table if (r[column] < value if question["op"] == "lt" else r[column] > value))
    elif kind == "extreme":
        pick = min if question["op"] == "min" else max
        answer = pick(table, key=lambda r: r[column])[0]
    elif kind == "alphabet":
        names = sorted(r[0] for r in table)
        answer = {"first": names[0], "second": names[1], "last": names[-1]}[question["rank"]]
    elif kind == "sum":
        answer = sum(r[column] for r in table)
    else:
        answer = len(table)
    return "(" + "ABCDE"[options.index(str(answer))] + ")"


def reference_penguins(inst: Instance) -> str:
    """Edit the table and compute the asked quantity."""
    c = inst.check
    return program([answer_penguins], "print(answer_penguins(rows, added, deleted, question, options))",
                   rows=c["rows"], added=c["added"], deleted=c["deleted"], question=c["question"],
                   options=c["options"])


FAMILIES = [
    generated_family("object_counting", "number", generate_objects, reference_objects,
                     {"min_items": 4, "max_items": 10, "max_count": 4},
                     "Count the items of one category in a list of possessions."),
    generated_family("penguins_in_a_table", "option", generate_penguins, reference_penguins, {"num_rows": 4},
                     "Answer a question about a small table of penguins."),
]
