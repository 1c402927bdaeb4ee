"""Synthesis Decomposition (SymBench): a farm exchanges crops for products with round-robin methods.

Three method sets, by complexity as in the original: 1–2 use crops A, B and product X (2 methods); 3–4
add crop C (3 methods); 5 adds product Y (4 methods). Methods are tried in a cycle, a runnable one runs
once per visit, until none can run. The answer is the list the question asks for ([A, B, X], [A, B, C, X]
or [A, B, C, X, Y]); exact match. The reference data always stores five numbers [A, B, C, X, Y]
(README "Known oddities"); ``from_symbench`` maps them onto the asked-for list, as the original check did.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_int_list
from r1ci_cli.tasks.symbench.sampling import knob

ITEMS = ["A", "B", "C", "X", "Y"]
# Per variant: the methods as (consumed, produced) over item letters, the answer items, the count ranges.
VARIANTS = {
    "two_crops": {
        "methods": [[{"A": 1, "B": 1}, {"X": 1}], [{"A": 3}, {"X": 2}]],
        "answer": ["A", "B", "X"], "ranges": {"A": [3, 6], "B": [2, 4]}},
    "three_crops": {
        "methods": [[{"A": 1, "B": 1, "C": 1}, {"X": 1}], [{"A": 1, "B": 1}, {"C": 2}], [{"C": 2}, {"X": 1}]],
        "answer": ["A", "B", "C", "X"], "ranges": {"A": [4, 8], "B": [3, 6], "C": [2, 5]}},
    "two_products": {
        "methods": [[{"A": 2, "B": 1, "C": 1}, {"X": 3}], [{"A": 1, "B": 1}, {"C": 2}],
                    [{"C": 2, "X": 1}, {"Y": 1}], [{"A": 1, "X": 2}, {"Y": 1}]],
        "answer": ["A", "B", "C", "X", "Y"], "ranges": {"A": [5, 8], "B": [2, 4], "C": [4, 7]}},
}
KIND = {"A": "crop", "B": "crop", "C": "crop", "X": "product", "Y": "product"}


def exchange(initial, methods):
    """Round-robin over the methods (each runs at most once per visit) until none can run."""
    state = dict(initial)
    i, idle = 0, 0
    while idle < len(methods):
        need, make = methods[i]
        if all(state.get(k, 0) >= v for k, v in need.items()):
            for k, v in need.items():
                state[k] -= v
            for k, v in make.items():
                state[k] = state.get(k, 0) + v
            idle = 0
        else:
            idle += 1
        i = (i + 1) % len(methods)
    return state


def variant_of(complexity: int) -> str:
    return "two_crops" if complexity <= 2 else ("three_crops" if complexity <= 4 else "two_products")


def _units(n: int, what: str) -> str:
    return f"{n} unit{'s' if n != 1 else ''} of {KIND[what]} {what}"


def make_question(variant: str, initial: dict[str, int]) -> str:
    spec = VARIANTS[variant]
    crops = [k for k in initial]
    products = [k for k in spec["answer"] if KIND[k] == "product"]
    crop_list = " and ".join(crops) if len(crops) == 2 else ", ".join(crops[:-1]) + f", and {crops[-1]}"
    prod_text = (f"agricultural product {products[0]}" if len(products) == 1
                 else "agricultural products " + " and ".join(products))
    methods = []
    for i, (need, make) in enumerate(spec["methods"], 1):
        lhs = " and ".join(_units(v, k) for k, v in need.items())
        rhs = " and ".join(f"{v} unit{'s' if v != 1 else ''} of product {k}" for k, v in make.items())
        methods.append(f"Method {i}: {lhs} can be exchanged for {rhs}, and this can be done only once per cycle.")
    start = ", ".join(_units(v, k) for k, v in initial.items())
    names = ", ".join(f"remaining_{k}" if KIND[k] == "crop" else f"obtained_{k}" for k in spec["answer"])
    example = {"two_crops": "if there are 1 unit of crop A, 0 units of crop B, and 3 units of product X remaining, "
                            "output: <<<[1, 0, 3]>>>",
               "three_crops": "if there are 1 unit of crop A, 0 units of crop B, 2 units of crop C, and 3 units of "
                              "product X remaining, output: <<<[1, 0, 2, 3]>>>",
               "two_products": "if there are 1 unit of crop A, 0 units of crop B, 2 units of crop C, and 3 units of "
                               "product X, 1 unit of product Y remaining, output: <<<[1, 0, 2, 3, 1]>>>"}[variant]
    return (f"Xiao Li is a farm owner who grows {crop_list}. He can exchange these crops for {prod_text}. "
            "He has discovered the following methods to increase the farm's yield:\n\n"
            + "\n\n".join(methods)
            + f"\n\nXiao Li continuously cycles through these methods in the given order, executing one method at a "
              f"time. After Method {len(methods)}, start again from Method 1. Continue this cycle until no method "
              f"can be executed.\n\nInitially there are {start}.\n\nFirst output the entire reasoning process step "
              f"by step, showing each synthesis step's result. Then wrap your final answer in <<<>>> format as a "
              f"list showing [{names}]. For example, {example}")


def _expected(check: Mapping[str, Any]) -> list[int]:
    final = exchange(check["initial"], check["methods"])
    return [final.get(k, 0) for k in check["answer_items"]]


def _instance(question: str, variant: str, initial: dict[str, int]) -> Instance:
    spec = VARIANTS[variant]
    check = {"initial": initial, "methods": spec["methods"], "answer_items": spec["answer"]}
    return Instance(question, check, str(_expected(check)))


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    variant = variant_of(knob(rng, knobs, "complexity"))
    extra = knob(rng, knobs, "extra_units")
    initial = {k: rng.randint(lo, hi + extra) for k, (lo, hi) in VARIANTS[variant]["ranges"].items()}
    return _instance(make_question(variant, initial), variant, initial)


def verify(instance: Instance, answer: str) -> bool:
    got = parse_int_list(answer)
    return got is not None and got == _expected(instance.check)


def reference_program(instance: Instance) -> str:
    main = ("final = exchange(initial, methods)\n"
            "print('[' + ', '.join(str(final.get(k, 0)) for k in answer_items) + ']')")
    return program([exchange], main, initial=dict(instance.check["initial"]), methods=instance.check["methods"],
                   answer_items=instance.check["answer_items"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    want = _expected(instance.check)
    bumped = list(want)
    bumped[rng.randrange(len(want))] += 1
    out = [str(bumped), str(want[:-1]), str(want + [0]), str(list(instance.check["initial"].values()))]
    return [w for w in dict.fromkeys(out) if parse_int_list(w) != want]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    variant = variant_of(sol["complexity"])
    inst = _instance(record["question"], variant, dict(sol["initial_state"]))
    stored = dict(zip(ITEMS, (int(v) for v in sol["solution"]["answer"])))
    return inst, str([stored[k] for k in VARIANTS[variant]["answer"]])


FAMILY = TaskFamily(
    name="synthesis_decomposition", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"complexity": [1, 5], "extra_units": 0},
    description="Exchange crops for products with round-robin methods; list of remaining/obtained counts, exact.",
)
