"""BBH navigate and geometric_shapes: seeded generators and computed references.

navigate: ``If you follow these instructions, do you return to the starting point? Always face forward. Take 1
step backward. ...`` -> ``Yes``/``No``. Half the items return (the generator appends the moves that undo the
displacement); half are near misses (one of those moves off by one step) or random walks. The reference program
parses the sentences and walks them.

geometric_shapes: ``This SVG path element <path d="M ... L ..."/> draws a`` with BBH's ten options (circle,
heptagon, hexagon, kite, line, octagon, pentagon, rectangle, sector, triangle). Polygons are star-shaped around a
centre with well-separated angles, so no vertex is collinear with its neighbours and the vertex count is the shape;
rectangles are never squares and kites never rectangles. The reference program parses the path and classifies it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.tasks.bbh._common import float_knob, generated_family, instance, int_knob, option_instance, range_knob
from r1ci_cli.tasks.registry import Instance, program

# ---------------------------------------------------------------------------------------------- navigate

_HEADINGS = [(0, 1), (1, 0), (0, -1), (-1, 0)]  # north, east, south, west: a right turn adds 1
_FORWARD_DIRS = {"forward": (0, 1), "backward": (0, -1), "left": (-1, 0), "right": (1, 0)}


def _steps(count: int, direction: str = "") -> str:
    return f"Take {count} step{'s' if count != 1 else ''}{' ' + direction if direction else ''}."


def generate_navigate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    face_forward = rng.random() < 0.5
    count = rng.randint(*range_knob(knobs, "min_instructions", "max_instructions", 1, 30))
    top = int_knob(knobs, "max_steps", 1, 100)
    x = y = heading = 0
    instructions = ["Always face forward."] if face_forward else []
    for _ in range(count):
        if face_forward:
            name = rng.choice(list(_FORWARD_DIRS))
            k = rng.randint(1, top)
            x, y = x + k * _FORWARD_DIRS[name][0], y + k * _FORWARD_DIRS[name][1]
            instructions.append(_steps(k, name))
        elif rng.random() < 0.35:
            turn = rng.choice(["Turn left.", "Turn right.", "Turn around."])
            heading = (heading + {"Turn left.": 3, "Turn right.": 1, "Turn around.": 2}[turn]) % 4
            instructions.append(turn)
        else:
            k = rng.randint(1, top)
            x, y = x + k * _HEADINGS[heading][0], y + k * _HEADINGS[heading][1]
            instructions.append(_steps(k))
    mode = rng.choice(["return", "return", "near_miss", "random"])
    if mode != "random":
        closing = []
        for axis_step, length in ((-x, "x"), (-y, "y")):
            if axis_step == 0:
                continue
            want = {("x", True): 1, ("x", False): 3, ("y", True): 0, ("y", False): 2}[(length, axis_step > 0)]
            if not face_forward:
                turn = (want - heading) % 4
                if turn:
                    closing.append(["", "Turn right.", "Turn around.", "Turn left."][turn])
                heading = want
            direction = ["forward", "right", "backward", "left"][want] if face_forward else ""
            left = abs(axis_step)
            while left:  # in chunks of at most max_steps, as BBH's steps are
                k = min(left, rng.randint(1, top))
                closing.append(_steps(k, direction))
                left -= k
        if mode == "near_miss" and closing:
            i = max(i for i, s in enumerate(closing) if s.startswith("Take"))
            k = int(closing[i].split()[1])
            direction = " ".join(closing[i].rstrip(".").split()[3:])
            closing[i] = _steps(k + rng.choice([-1, 1]) if 1 < k < top else (k - 1 if k > 1 else 2), direction)
        instructions += closing
    returns = walk(instructions)
    text = ("If you follow these instructions, do you return to the starting point? " + " ".join(instructions)
            + "\nOptions:\n- Yes\n- No")
    return instance(text, "yesno", "Yes" if returns else "No", instructions=instructions)


def walk(instructions):
    """True when the instructions end where they started. Headings: 0 north, 1 east, 2 south, 3 west."""
    moves = {"forward": 0, "right": 1, "backward": 2, "left": 3}
    x = y = heading = 0
    fixed = False
    for sentence in instructions:
        words = sentence.rstrip(".").split()
        if sentence == "Always face forward.":
            fixed = True
        elif words[0] == "Turn":
            heading = (heading + {"left": 3, "right": 1, "around": 2}[words[1]]) % 4
        elif words[0] == "Take":
            count = int(words[1])
            direction = heading
            if len(words) > 3:
                direction = (moves[words[3]] + (0 if fixed else heading)) % 4
            dx, dy = [(0, 1), (1, 0), (0, -1), (-1, 0)][direction]
            x, y = x + count * dx, y + count * dy
        else:
            raise ValueError(f"unknown instruction {sentence!r}")
    return x == 0 and y == 0


def reference_navigate(inst: Instance) -> str:
    """Walk the instructions."""
    return program([walk], "print('Yes' if walk(instructions) else 'No')", instructions=inst.check["instructions"])


# ---------------------------------------------------------------------------------------------- shapes

SHAPES = ["circle", "heptagon", "hexagon", "kite", "line", "octagon", "pentagon", "rectangle", "sector", "triangle"]
_SIDES = {"triangle": 3, "pentagon": 5, "hexagon": 6, "heptagon": 7, "octagon": 8}


def _pt(x: float, y: float) -> str:
    return f"{x:.2f},{y:.2f}"


def _place(rng: random.Random, points: list[tuple[float, float]], top: float) -> list[tuple[float, float]]:
    """Rotate by a random angle and move into the [0, top] square."""
    angle = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(angle), math.sin(angle)
    turned = [(x * c - y * s, x * s + y * c) for x, y in points]
    min_x, min_y = min(p[0] for p in turned), min(p[1] for p in turned)
    span = max(max(p[0] for p in turned) - min_x, max(p[1] for p in turned) - min_y)
    shift_x, shift_y = rng.uniform(0, max(top - span, 0)), rng.uniform(0, max(top - span, 0))
    return [(x - min_x + shift_x, y - min_y + shift_y) for x, y in turned]


def _polygon_path(points: list[tuple[float, float]]) -> str:
    return "M " + " L ".join(_pt(*p) for p in points + points[:1])


def _shape_path(rng: random.Random, shape: str, top: float) -> str:
    if shape in ("circle", "sector"):
        r = rng.uniform(0.1, 0.3) * top
        cx, cy = rng.uniform(r, top - r), rng.uniform(r, top - r)
        a = rng.uniform(0, 2 * math.pi)
        p1 = (cx + r * math.cos(a), cy + r * math.sin(a))
        if shape == "circle":
            p2 = (2 * cx - p1[0], 2 * cy - p1[1])
            return f"M {_pt(*p1)} A {r:.2f},{r:.2f} 0.00 1,0 {_pt(*p2)} A {r:.2f},{r:.2f} 0.00 1,0 {_pt(*p1)}"
        b = a + rng.uniform(0.4, 2.0)
        p2 = (cx + r * math.cos(b), cy + r * math.sin(b))
        return f"M {_pt(cx, cy)} L {_pt(*p1)} A {r:.2f},{r:.2f} 0.00 0,1 {_pt(*p2)} L {_pt(cx, cy)}"
    if shape == "line":
        points = _place(rng, [(0, 0), (rng.uniform(0.2, 0.9) * top, 0)], top)
        return f"M {_pt(*points[0])} L {_pt(*points[1])}"
    if shape == "rectangle":
        w = rng.uniform(0.2, 0.6) * top
        h = w * rng.choice([rng.uniform(0.3, 0.75), rng.uniform(1.3, 1.6)])
        return _polygon_path(_place(rng, [(0, 0), (w, 0), (w, h), (0, h)], top))
    if shape == "kite":
        w = rng.uniform(0.1, 0.25) * top
        a, c = rng.uniform(0.1, 0.2) * top, rng.uniform(0.35, 0.6) * top
        return _polygon_path(_place(rng, [(0, a), (-w, 0), (0, -c), (w, 0)], top))
    n = _SIDES[shape]
    # Angles spread around the centre with a minimum gap, radii varied but bounded: a simple polygon whose
    # every vertex turns by a clear angle, so the reference counts exactly n corners.
    gaps = [rng.uniform(0.7, 1.3) for _ in range(n)]
    total = sum(gaps)
    angles, acc = [], rng.uniform(0, 2 * math.pi)
    for gap in gaps:
        angles.append(acc)
        acc += 2 * math.pi * gap / total
    radius = 0.4 * top
    points = [(radius * rng.uniform(0.85, 1.0) * math.cos(t), radius * rng.uniform(0.85, 1.0) * math.sin(t))
              for t in angles]
    return _polygon_path(_place(rng, points, top))


def generate_shape(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    allowed = knobs.get("shapes")
    if not isinstance(allowed, list) or not allowed or any(s not in SHAPES for s in allowed):
        raise R1ciError(f"difficulty knob shapes={allowed!r}: expected a non-empty list drawn from {SHAPES}")
    shape = rng.choice([s for s in SHAPES if s in allowed])
    path = _shape_path(rng, shape, float_knob(knobs, "max_coord", 10.0, 1000.0))
    text = f'This SVG path element <path d="{path}"/> draws a'
    return option_instance(text, list(SHAPES), SHAPES.index(shape), path=path)


def classify_path(path, options):
    """The option letter of the shape an SVG path (M, L and A commands only) draws."""
    import math
    import re

    tokens = re.findall(r"[MLA]|-?\d+(?:\.\d+)?", path)
    commands = [t for t in tokens if t in "MLA"]
    if "A" in commands:
        shape = "sector" if "L" in commands else "circle"
    else:
        numbers = [float(t) for t in tokens if t not in "MLA"]
        points = list(zip(numbers[0::2], numbers[1::2]))
        closed = len(points) > 2 and math.dist(points[0], points[-1]) < 1e-6
        if not closed:
            shape = "line" if len(points) == 2 else None
        else:
            corners = []
            ring = points[:-1]
            for i, p in enumerate(ring):
                before, after = ring[i - 1], ring[(i + 1) % len(ring)]
                ax, ay = p[0] - before[0], p[1] - before[1]
                bx, by = after[0] - p[0], after[1] - p[1]
                cross = ax * by - ay * bx
                if abs(cross) > 0.05 * math.hypot(ax, ay) * math.hypot(bx, by):  # not a straight-through point
                    corners.append(p)
            n = len(corners)
            names = {3: "triangle", 5: "pentagon", 6: "hexagon", 7: "heptagon", 8: "octagon"}
            if n == 4:
                sides = [math.dist(corners[i], corners[(i + 1) % 4]) for i in range(4)]

                def near(u, v):
                    return abs(u - v) <= 0.03 * max(u, v)

                right = all(abs((corners[i][0] - corners[i - 1][0]) * (corners[(i + 1) % 4][0] - corners[i][0])
                                + (corners[i][1] - corners[i - 1][1]) * (corners[(i + 1) % 4][1] - corners[i][1]))
                            <= 0.03 * sides[i - 1] * sides[i] for i in range(4))
                if right:
                    shape = "rectangle"
                elif (near(sides[0], sides[1]) and near(sides[2], sides[3])) or (
                        near(sides[1], sides[2]) and near(sides[3], sides[0])):
                    shape = "kite"
                else:
                    shape = None
            else:
                shape = names.get(n)
    if shape not in options:
        raise ValueError(f"cannot classify the path as one of the options: {shape}")
    return "(" + "ABCDEFGHIJ"[options.index(shape)] + ")"


def reference_shape(inst: Instance) -> str:
    """Parse the path, count its corners, test right angles and equal adjacent sides."""
    c = inst.check
    return program([classify_path], "print(classify_path(path, options))", path=c["path"], options=c["options"])


FAMILIES = [
    generated_family("navigate", "yesno", generate_navigate, reference_navigate,
                     {"min_instructions": 3, "max_instructions": 7, "max_steps": 10},
                     "Decide whether a list of steps and turns returns to the start."),
    generated_family("geometric_shapes", "option", generate_shape, reference_shape,
                     {"shapes": list(SHAPES), "max_coord": 100.0},
                     "Name the shape an SVG path draws."),
]
