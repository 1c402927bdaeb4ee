"""BoxLift (SymBench): lift every box with a team of lifters within a step limit.

Each step assigns groups of lifters to boxes: a lifter works on at most one box per step, a group's
capacities must add up to at least the box's weight, and each box is lifted once. The answer is a plan of
lines ``Step i: [(weight, [lifter indices]), ...]``; the verifier simulates it and requires every box lifted
within the limit K of the question. Any valid plan passes.

The limit K comes from a greedy planner (``greedy_lift``, also the reference program), as the original
runner derived its limit from its own greedy estimate (stored in the data as ``derived.step_limit``).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import safe_literal, to_int
from r1ci_cli.tasks.symbench.sampling import attempts, knob

MAX_STEPS = 100


def greedy_lift(boxes, lifters):
    """A short plan (list of steps, each a list of (weight, [lifter ids])), or None when some box is heavier
    than all lifters together. Each step serves boxes in a fixed order, giving each the free lifter team
    whose capacity exceeds its weight the least; four orders are tried and the shortest plan is kept."""
    from itertools import combinations

    def best_team(weight, free):
        best = None
        for size in range(1, len(free) + 1):
            for team in combinations(sorted(free), size):
                total = sum(lifters[i] for i in team)
                if total >= weight and (best is None or (total - weight, size) < best[0]):
                    best = ((total - weight, size), list(team))
        return None if best is None else best[1]

    def run(order):
        remaining = list(order)
        steps = []
        while remaining:
            free = set(range(len(lifters)))
            step, left = [], []
            for weight in remaining:
                team = best_team(weight, free) if free else None
                if team is None:
                    left.append(weight)
                    continue
                free -= set(team)
                step.append((weight, team))
            if not step:
                return None
            steps.append(step)
            remaining = left
        return steps

    heavy_first = sorted(boxes, reverse=True)
    orders = [heavy_first, heavy_first[::-1], heavy_first[::2] + heavy_first[1::2],
              [w for pair in zip(heavy_first, heavy_first[::-1]) for w in pair][:len(boxes)]]
    plans = [p for p in (run(o) for o in orders) if p is not None]
    return min(plans, key=len) if plans else None


def show_plan(steps):
    return "\n".join(f"Step {k}: " + "[" + ", ".join(f"({w}, {ids})" for w, ids in step) + "]"
                     for k, step in enumerate(steps, 1))


def parse_steps(text: str) -> list[list[tuple[int, list[int]]]] | None:
    """``Step i: [(w, [ids]), ...]`` lines in order as lists of (weight, lifter ids); None if malformed."""
    if not isinstance(text, str) or len(text) > 20_000:
        return None
    found = re.findall(r"step\s*(\d+)\s*:\s*(\[.*?\])\s*(?=step\s*\d+\s*:|$)", text.strip(), re.I | re.S)
    rest = re.sub(r"step\s*(\d+)\s*:\s*(\[.*?\])\s*(?=step\s*\d+\s*:|$)", "", text.strip(), flags=re.I | re.S)
    if not found or rest.strip(" \n,;"):
        return None
    steps = []
    for k, (number, body) in enumerate(found, 1):
        value = safe_literal(body)
        if int(number) != k or not isinstance(value, (list, tuple)):
            return None
        step = []
        for item in value:
            if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[1], (list, tuple)):
                return None
            weight, ids = to_int(item[0]), [to_int(i) for i in item[1]]
            if weight is None or None in ids or isinstance(item[0], str):
                return None
            step.append((weight, ids))
        steps.append(step)
    return steps


def plan_problem(boxes: list[int], lifters: list[int], limit: int, text: str) -> str | None:
    """Why the plan fails (a short reason), or None when it lifts every box within ``limit`` steps."""
    steps = parse_steps(text)
    if steps is None:
        return "not a list of 'Step i: [(weight, [lifter ids]), ...]' lines"
    if len(steps) > limit:
        return f"{len(steps)} steps, more than the limit {limit}"
    left = Counter(boxes)
    for k, step in enumerate(steps, 1):
        used: set[int] = set()
        for weight, ids in step:
            if left[weight] <= 0:
                return f"step {k}: no remaining box of weight {weight}"
            if not ids or any(not 0 <= i < len(lifters) for i in ids) or len(set(ids)) != len(ids):
                return f"step {k}: bad lifter indices {ids}"
            if used & set(ids):
                return f"step {k}: a lifter is used twice"
            if sum(lifters[i] for i in ids) < weight:
                return f"step {k}: lifters {ids} cannot lift {weight}"
            used |= set(ids)
            left[weight] -= 1
    missing = sum(left.values())
    return None if missing == 0 else f"{missing} boxes are never lifted"


def make_question(boxes: list[int], lifters: list[int], limit: int) -> str:
    return (f"Task: BoxLift\n\nThere are {len(boxes)} boxes with the following weights: {boxes}\n"
            f"There are {len(lifters)} lifters with the following maximum lifting capacities: {lifters}\n\n"
            "Your goal is to lift all the boxes in as few steps as possible, under these rules:\n"
            "1. In each step, each lifter can work on at most one box.\n"
            "2. Several lifters can lift one box together; their combined capacity must be at least the box's "
            "weight.\n3. Each box is lifted exactly once; a lifted box is done.\n"
            f"4. You must lift all the boxes in at most {limit} steps.\n\n"
            "Lifters are numbered from 0 in the order listed. Write each step on its own line as "
            "'Step i: [(box weight, [lifter indices]), ...]', for example:\n"
            "<<<Step 1: [(150, [0, 2]), (90, [1])]\nStep 2: [(120, [0, 1])]>>>\n"
            "Return your whole plan inside <<<...>>>.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n_boxes, n_lifters = knob(rng, knobs, "boxes"), knob(rng, knobs, "lifters")
    (box_lo, box_hi), (lift_lo, lift_hi) = knobs["box_weight"], knobs["lifter_capacity"]
    for _ in attempts("boxlift"):
        boxes = [rng.randint(box_lo, box_hi) for _ in range(n_boxes)]
        lifters = [rng.randint(lift_lo, lift_hi) for _ in range(n_lifters)]
        plan = greedy_lift(boxes, lifters)
        if plan is not None:
            limit = len(plan) + knob(rng, knobs, "slack_steps")
            check = {"boxes": boxes, "lifters": lifters, "step_limit": limit}
            return Instance(make_question(boxes, lifters, limit), check, None)


def verify(instance: Instance, answer: str) -> bool:
    c = instance.check
    return plan_problem(c["boxes"], c["lifters"], c["step_limit"], answer) is None


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([greedy_lift, show_plan], "print(show_plan(greedy_lift(boxes, lifters)))",
                   boxes=list(c["boxes"]), lifters=list(c["lifters"]))


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    steps = parse_steps(correct) or []
    c = instance.check
    out = []
    if steps:
        out.append(show_plan(steps[:-1]) if len(steps) > 1 else "Step 1: []")  # boxes left over
        first = steps[0]
        w, ids = first[0]
        out.append(show_plan([[(w + 1000, ids)] + first[1:]] + steps[1:]))  # a box that does not exist
        weakest = min(range(len(c["lifters"])), key=lambda i: c["lifters"][i])
        heaviest = max(c["boxes"])
        if c["lifters"][weakest] < heaviest:  # one weak lifter for the heaviest box
            out.append(show_plan([[(heaviest, [weakest])]] + steps))
        out.append(show_plan(steps + [[]] * (c["step_limit"] + 1 - len(steps))))  # too many steps
    out.append("lift everything")
    return [x for x in dict.fromkeys(out) if not verify(instance, x)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    """The runner's question is not stored: build ours with the runner's step limit (no stored answer)."""
    boxes, lifters, limit = list(record["boxes"]), list(record["lifters"]), int(record["derived"]["step_limit"])
    check = {"boxes": boxes, "lifters": lifters, "step_limit": limit}
    return Instance(make_question(boxes, lifters, limit), check, None), None


FAMILY = TaskFamily(
    name="boxlift", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"boxes": [10, 25], "lifters": [3, 6], "box_weight": [10, 400], "lifter_capacity": [30, 200],
           "slack_steps": 0},
    description="Assign lifter teams to boxes step by step within a step limit; the plan is simulated.",
)
