"""String Synthesis (SymBench): combine nine kinds of blocks with six methods until nothing changes.

Blocks are ``[A] [B] [C] {A} {B} {C} (A) (B) (C)``. Each step applies the **first** method (in order) that
can run, then starts again from method 1, until none can; this reproduces the stored final counts of the
reference data (200/200). The answer is the nine counts in that order, space separated; exact match.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_int_list
from r1ci_cli.tasks.symbench.sampling import knob

BLOCKS = ["[A]", "[B]", "[C]", "{A}", "{B}", "{C}", "(A)", "(B)", "(C)"]
# Each method: (consumed counts by block index, produced counts by block index).
METHODS = [
    [{"0": 1, "1": 1, "2": 1}, {"3": 1}],
    [{"0": 1, "1": 1}, {"5": 1}],
    [{"1": 1, "2": 1}, {"4": 1}],
    [{"2": 2}, {"5": 1}],
    [{"3": 1, "5": 1}, {"6": 1, "7": 1}],
    [{"4": 2}, {"8": 1}],
]
METHOD_TEXT = [
    "One [A], one [B], and one [C] can be combined to form one {A}.",
    "One [A] and one [B] can be combined to form one {C}.",
    "One [B] and one [C] can be combined to form one {B}.",
    "Two [C] can be combined to form one {C}.",
    "One {A} and one {C} can be combined to form one (A) and one (B).",
    "Two {B} can be combined to form one (C).",
]


def synthesize(counts, methods):
    """Apply the first runnable method repeatedly; the final counts (every method consumes, so it ends)."""
    counts = list(counts)
    while True:
        for need, make in methods:
            if all(counts[int(k)] >= v for k, v in need.items()):
                for k, v in need.items():
                    counts[int(k)] -= v
                for k, v in make.items():
                    counts[int(k)] += v
                break
        else:
            return counts


def make_question(a: int, b: int, c: int) -> str:
    lines = "\n".join(f"{i}. {t}" for i, t in enumerate(METHOD_TEXT, 1))
    return ("There are nine different blocks [A], [B], [C], {A}, {B}, {C}, (A), (B), (C) that satisfy:\n"
            f"{lines}\n\nCycle through Methods 1..6 repeatedly until no more changes can be made.\n\n"
            f"Question: If we now have {a} [A], {b} [B], and {c} [C], what will the synthesized block be?\n\n"
            "Return your final answer with the exact format:\n<<<a string of the number of certain block>>>\n"
            "(the nine counts of [A], [B], [C], {A}, {B}, {C}, (A), (B), (C) in this order, separated by spaces, "
            "e.g. <<<1 0 0 0 1 0 0 0 2>>>)\nYour answer:\n")


def _check(a: int, b: int, c: int) -> dict:
    return {"initial": [a, b, c, 0, 0, 0, 0, 0, 0], "methods": METHODS}


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    a, b, c = knob(rng, knobs, "num_a"), knob(rng, knobs, "num_b"), knob(rng, knobs, "num_c")
    check = _check(a, b, c)
    return Instance(make_question(a, b, c), check, " ".join(map(str, synthesize(check["initial"], METHODS))))


def verify(instance: Instance, answer: str) -> bool:
    got = parse_int_list(answer)
    return got is not None and got == synthesize(instance.check["initial"], instance.check["methods"])


def reference_program(instance: Instance) -> str:
    return program([synthesize], "print(' '.join(map(str, synthesize(initial, methods))))",
                   initial=instance.check["initial"], methods=instance.check["methods"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    want = synthesize(instance.check["initial"], instance.check["methods"])
    i = rng.randrange(9)
    bumped = list(want)
    bumped[i] += 1
    out = [" ".join(map(str, bumped)), " ".join(map(str, want[:-1])),
           " ".join(map(str, instance.check["initial"]))]
    return [w for w in dict.fromkeys(out) if w != correct]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = _check(sol["A_count"], sol["B_count"], sol["C_count"])
    inst = Instance(record["question"], check, " ".join(map(str, synthesize(check["initial"], METHODS))))
    return inst, " ".join(map(str, sol["final_counts"]))


FAMILY = TaskFamily(
    name="string_synthesis", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"num_a": [1, 5], "num_b": [1, 8], "num_c": [1, 7]},
    description="Combine bracket blocks with six prioritised methods; nine counts, exact match.",
)
