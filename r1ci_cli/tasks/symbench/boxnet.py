"""BoxNet (SymBench): a central planner moves coloured boxes onto same-coloured targets on a grid.

One agent sits in each 1×1 square (named by its centre, ``square[0.5, 1.5]``) and can only touch the boxes
in its own square: each step it may do one action, ``move(box_c, square[x, y])`` to an edge-adjacent square
or ``move(box_c, target_c)`` onto a same-coloured target in its square (box and target then disappear).
The answer is a list of steps, each a dict ``{"Agent[x, y]": "move(...)"}``. The verifier simulates it:
every action must be legal against the state at the start of its step, and in the end no box may remain.
Any valid plan passes (up to ``MAX_STEPS`` steps).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import safe_literal
from r1ci_cli.tasks.symbench.sampling import attempts, knob

MAX_STEPS = 200
COLOURS = ["red", "blue", "green", "purple", "orange"]
GRIDS = [[1, 2], [1, 3], [1, 4], [2, 2], [2, 3], [2, 4], [4, 4], [4, 8]]
_AGENT_RE = re.compile(r"\s*Agent\s*\[\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\]\s*")
_ACTION_RE = re.compile(r"\s*move\s*\(\s*box_(\w+)\s*,\s*(?:target_(\w+)|square\s*\[\s*(\d+(?:\.\d+)?)\s*,\s*"
                        r"(\d+(?:\.\d+)?)\s*\])\s*\)\s*")


def _cell(x: float, y: float) -> str:
    return f"{x:g}_{y:g}"  # "0.5_1.5", the reference data's key form


def plan_boxes(state):
    """A plan (list of {agent: action} dicts): each step, every agent with a box either matches one to a
    target in its square or moves one a square closer to the nearest target of its colour."""
    cells = {key: list(items) for key, items in state.items()}
    coords = {key: tuple(float(v) for v in key.split("_")) for key in cells}

    def name(key):
        x, y = coords[key]
        return f"[{x:g}, {y:g}]"

    steps = []
    while any(i.startswith("box_") for items in cells.values() for i in items):
        if len(steps) > 1000:
            return None
        step, arrivals = {}, []
        for key in sorted(cells):
            items = cells[key]
            boxes = [i for i in items if i.startswith("box_")]
            action = None
            for box in boxes:  # a match in place first
                colour = box[4:]
                if "target_" + colour in items:
                    items.remove(box)
                    items.remove("target_" + colour)
                    action = f"move({box}, target_{colour})"
                    break
            if action is None:
                for box in boxes:
                    colour = box[4:]
                    x, y = coords[key]
                    goals = [coords[k] for k, its in cells.items() if "target_" + colour in its]
                    if not goals:
                        continue
                    gx, gy = min(goals, key=lambda g: (abs(g[0] - x) + abs(g[1] - y), g))
                    nxt = (x + (gx > x) - (gx < x), y) if gx != x else (x, y + (gy > y) - (gy < y))
                    dest = next(k for k, c in coords.items() if c == nxt)
                    items.remove(box)
                    arrivals.append((dest, box))
                    action = f"move({box}, square{name(dest)})"
                    break
            if action is not None:
                step["Agent" + name(key)] = action
        for dest, box in arrivals:
            cells[dest].append(box)
        if not step:
            return None  # a box without any target of its colour
        steps.append(step)
    return steps


def parse_plan(text: str) -> list[dict[str, str]] | None:
    """The plan as a list of {agent: action} dicts (JSON or a Python literal); None otherwise."""
    if not isinstance(text, str) or len(text) > 200_000:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = safe_literal(text)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value or len(value) > MAX_STEPS:
        return None
    if not all(isinstance(s, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in s.items())
               for s in value):
        return None
    return value


def plan_problem(state: Mapping[str, list], text: str) -> str | None:
    """Why the plan fails (a short reason), or None when it matches every box legally."""
    plan = parse_plan(text)
    if plan is None:
        return "not a list of {\"Agent[x, y]\": \"move(...)\"} steps"
    cells = {tuple(float(v) for v in key.split("_")): Counter(items) for key, items in state.items()}
    for k, step in enumerate(plan, 1):
        start = {c: Counter(items) for c, items in cells.items()}
        taken: dict[tuple, Counter] = {}
        arrivals = []
        for agent, action in step.items():
            m, a = _AGENT_RE.fullmatch(agent), _ACTION_RE.fullmatch(action)
            if m is None or a is None:
                return f"step {k}: cannot read {agent!r}: {action!r}"
            here = (float(m[1]), float(m[2]))
            if here not in cells:
                return f"step {k}: no square {agent}"
            box = "box_" + a[1]
            used = taken.setdefault(here, Counter())
            if start[here][box] - used[box] <= 0:
                return f"step {k}: no {box} in {agent}'s square"
            used[box] += 1
            if a[2] is not None:
                target = "target_" + a[2]
                if a[2] != a[1]:
                    return f"step {k}: {box} cannot go to {target}"
                if start[here][target] - used[target] <= 0:
                    return f"step {k}: no {target} in {agent}'s square"
                used[target] += 1
            else:
                dest = (float(a[3]), float(a[4]))
                if dest not in cells or abs(dest[0] - here[0]) + abs(dest[1] - here[1]) != 1:
                    return f"step {k}: square[{a[3]}, {a[4]}] is not next to {agent}"
                arrivals.append((dest, box))
        for here, used in taken.items():
            cells[here].subtract(used)
        for dest, box in arrivals:
            cells[dest][box] += 1
    left = sum(n for items in cells.values() for i, n in items.items() if i.startswith("box_") and n > 0)
    return None if left == 0 else f"{left} boxes are not on a target"


def _agent_lines(state: Mapping[str, list]) -> list[str]:
    lines = []
    keys = list(state)
    coords = {k: tuple(float(v) for v in k.split("_")) for k in keys}
    for key in keys:
        x, y = coords[key]
        here = f"[{x:g}, {y:g}]"
        actions = []
        for item in state[key]:
            if not item.startswith("box_"):
                continue
            for other in keys:
                ox, oy = coords[other]
                if abs(ox - x) + abs(oy - y) == 1:
                    actions.append(f"move({item}, square[{ox:g}, {oy:g}])")
            if "target_" + item[4:] in state[key]:
                actions.append(f"move({item}, target_{item[4:]})")
        lines.append(f"Agent{here}: I am in square{here}, I can observe {list(state[key])}, "
                     f"I can do {sorted(dict.fromkeys(actions))}")
    return lines


def make_question(state: Mapping[str, list]) -> str:
    return ("You are a central planner directing agents in a grid-like field to move colored boxes. Each agent "
            "is assigned to a 1x1 square and can only interact with objects in its area. Agents can move a box "
            "to a neighboring square (sharing an edge) or onto a same-color target in their own square. Each "
            "square can contain many targets and boxes. The squares are identified by their center coordinates, "
            "e.g., square[0.5, 0.5]. Actions are like: move(box_red, target_red) or move(box_red, "
            "square[0.5, 0.5]). A box moved onto its target disappears together with the target.\n\n"
            "Your task is to instruct each agent to match all boxes to their color-coded targets. In each step "
            "an agent does at most one action, and all actions of a step happen at the same time, on the state "
            "at the start of the step (a box moved into a square can be handled there from the next step on). "
            "Include an agent in a step only if it has an action then.\n\n"
            "Specify your action plan as a list of steps in this format (JSON): [{\"Agent[0.5, 0.5]\": "
            "\"move(box_blue, square[0.5, 1.5])\", \"Agent[1.5, 0.5]\": \"move(box_red, target_red)\"}, "
            "{\"Agent[0.5, 1.5]\": \"move(box_blue, target_blue)\"}]\n\nThe current state:\n"
            + "\n".join(_agent_lines(state))
            + "\n\nReturn the whole plan in the format <<<[{...}, {...}]>>>.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    rows, cols = knob(rng, knobs, "grid")
    colours = rng.sample(COLOURS, min(knob(rng, knobs, "colours"), len(COLOURS)))
    keys = [_cell(r + 0.5, c + 0.5) for r in range(rows) for c in range(cols)]
    for _ in attempts("boxnet"):
        state: dict[str, list[str]] = {k: [] for k in keys}
        for colour in colours:
            for _ in range(knob(rng, knobs, "boxes_per_colour")):
                state[rng.choice(keys)].append("box_" + colour)
                state[rng.choice(keys)].append("target_" + colour)
        for items in state.values():
            rng.shuffle(items)
        if plan_boxes(state):  # not already solved, and solvable
            return Instance(make_question(state), {"state": state}, None)


def verify(instance: Instance, answer: str) -> bool:
    return plan_problem(instance.check["state"], answer) is None


def reference_program(instance: Instance) -> str:
    return program([plan_boxes], "import json\nprint(json.dumps(plan_boxes(state)))",
                   state={k: list(v) for k, v in instance.check["state"].items()})


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    plan = parse_plan(correct) or []
    out = [json.dumps(plan[:-1]) if len(plan) > 1 else "[{}]"]
    if plan:
        agent, action = next(iter(plan[0].items()))
        m = _AGENT_RE.fullmatch(agent)
        far = f"square[{float(m[1]) + 5:g}, {float(m[2]) + 5:g}]" if m else "square[9.5, 9.5]"
        bad = [dict(s) for s in plan]
        bad[0][agent] = re.sub(r"(target_\w+|square\[[^\]]*\])", far, action)  # not an adjacent square
        out.append(json.dumps(bad))
        swapped = [dict(s) for s in plan]
        swapped[0][agent] = action.replace("box_", "box_x", 1)  # a box that is not there
        out.append(json.dumps(swapped))
    out.append("move everything")
    return [w for w in dict.fromkeys(out) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    """The runner's question is not stored: build ours from the stored state (no stored answer)."""
    state = {k: list(v) for k, v in record["state"].items()}
    return Instance(make_question(state), {"state": state}, None), None


FAMILY = TaskFamily(
    name="boxnet", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"grid": GRIDS, "colours": [3, 5], "boxes_per_colour": [1, 3]},
    description="Move coloured boxes through a grid of agents onto targets; the plan is simulated.",
)
