"""String Splitting (SymBench): dismantle machines A, B, C into parts X, Y, Z with five cyclic methods.

The methods are tried in a cycle 1, 2, 3, 4, 5, 1, …; a method that can run runs once, then the next
method is tried; the process ends when no method can run. This round-robin reading reproduces the stored
answers of the reference data (200/200). The answer is the six counts A, B, C, X, Y, Z as a list of
strings; exact match (numbers may be given with or without quotes).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_int_list
from r1ci_cli.tasks.symbench.sampling import knob

NAMES = ["A", "B", "C", "X", "Y", "Z"]
# (consumed, produced) as {index into NAMES (as str): count}.
METHODS = [
    [{"0": 1}, {"3": 2, "4": 1}],
    [{"1": 2}, {"3": 1}],
    [{"2": 2}, {"4": 1}],
    [{"1": 1, "2": 1}, {"0": 1}],
    [{"3": 1, "4": 1}, {"5": 1}],
]
# The original prompts word each method in one of three ways; we draw one per method.
WORDINGS = [
    ["Dismantling a single machine A yields two part X and one part Y each cycle.",
     "Each round, one machine A breaks down into two part X and one part Y.",
     "One unit of machine A can be dismantled into two units of part X and one unit of part Y per round."],
    ["Dismantling two machine B units produces one part X each cycle.",
     "Every round, dismantling two machines B results in one part X.",
     "Two units of machine B can be dismantled into one unit of part X per round."],
    ["Dismantling two machine C units yields one part Y each cycle.",
     "Each round, two machines C break down into one part Y.",
     "Two units of machine C can be dismantled into one unit of part Y per round."],
    ["Combining one machine B and one machine C results in one machine A each cycle.",
     "Every round, merging one machine B with one machine C creates one machine A.",
     "One unit of machine B and one unit of machine C can be combined into one unit of machine A per round."],
    ["Combining one part X with one part Y produces one part Z each cycle.",
     "Each round, one part X and one part Y merge to form one part Z.",
     "One unit of part X and one unit of part Y can be combined into one unit of part Z per round."],
]


def run_cycle(counts, methods):
    """Round-robin over the methods, each runnable one runs once per visit, until none can run."""
    counts = list(counts)
    i, idle = 0, 0
    while idle < len(methods):
        need, make = methods[i]
        if all(counts[int(k)] >= v for k, v in need.items()):
            for k, v in need.items():
                counts[int(k)] -= v
            for k, v in make.items():
                counts[int(k)] += v
            idle = 0
        else:
            idle += 1
        i = (i + 1) % len(methods)
    return counts


def make_question(a: int, b: int, c: int, wording: list[int]) -> str:
    lines = "\n".join(f"Method {i}: {WORDINGS[i - 1][w]}" for i, w in enumerate(wording, 1))
    return ("There is a dismantling engineer who has old machines A, B, and C. He discovered that he can obtain a "
            f"batch of new parts X, Y, and Z through the following methods:\n{lines}\n\n"
            "Xiao Li continuously cycles through these methods in the given order, executing one method at a time. "
            "After Method 5, start again from Method 1. Continue this cycle until no method can be executed. "
            f"Initially, there are {a} units of Machine A, {b} units of Machine B, and {c} units of Machine C. "
            "How many parts X, Y, and Z can Li ultimately obtain, and how many machines A, B, and C will remain?\n\n"
            "Generate the answer in the format <<<a string representing the outcome in the order of machines A, B, "
            "C, parts X, Y, Z>>>. For example, if Machine A has 1 unit, Machine B has 0 units, Machine C has 1 unit, "
            "Part X has 1 unit, Part Y has 1 unit, and Part Z has 1 unit, it should be represented as "
            "[\"1\", \"0\", \"1\", \"1\", \"1\", \"1\"].\nYour answer:")


def _answer(counts: list[int]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in counts) + "]"


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    a, b, c = (knob(rng, knobs, k) for k in ("num_a", "num_b", "num_c"))
    wording = [rng.randrange(3) for _ in METHODS]
    check = {"initial": [a, b, c, 0, 0, 0], "methods": METHODS}
    return Instance(make_question(a, b, c, wording), check, _answer(run_cycle(check["initial"], METHODS)))


def verify(instance: Instance, answer: str) -> bool:
    got = parse_int_list(answer)
    return got is not None and got == run_cycle(instance.check["initial"], instance.check["methods"])


def reference_program(instance: Instance) -> str:
    main = ("final = run_cycle(initial, methods)\n"
            "print('[' + ', '.join('\"%d\"' % v for v in final) + ']')")
    return program([run_cycle], main, initial=instance.check["initial"], methods=instance.check["methods"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    want = run_cycle(instance.check["initial"], instance.check["methods"])
    i = rng.randrange(6)
    bumped = list(want)
    bumped[i] += 1
    swapped = want[3:] + want[:3]
    out = [_answer(bumped), _answer(want[:5]), _answer(swapped)]
    return [w for w in dict.fromkeys(out) if parse_int_list(w) != want]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    import re

    q = record["question"]
    a, b, c = (int(re.search(rf"(\d+) units? of Machine {k}", q).group(1)) for k in "ABC")
    check = {"initial": [a, b, c, 0, 0, 0], "methods": METHODS}
    return Instance(q, check, _answer(run_cycle(check["initial"], METHODS))), _answer(
        [int(v) for v in record["solution"]["expected_answer"]])


FAMILY = TaskFamily(
    name="string_splitting", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"num_a": [1, 10], "num_b": [1, 10], "num_c": [1, 10]},
    description="Dismantle and combine machines/parts with five round-robin methods; six counts, exact match.",
)
