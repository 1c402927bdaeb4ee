"""Path Plan (SymBench, own generator): plan a polyline through a 2-D region with obstacles and goal areas.

The original runner hard-codes its environments (no instance data exists), so this is a seeded generator in
its spirit: a W×H region, axis-aligned rectangular obstacles (borders included), rectangular goal areas,
a start and an end point. The answer is a list of waypoints ``[[x, y], ...]``. The verifier checks the
geometry with exact fractions: the first waypoint is the start, the last the end, every straight segment
stays inside the region and never touches an obstacle, and every goal area holds at least one waypoint
(borders count). Any valid path passes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from r1ci_cli.answer import parse_literal
from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.numbers import parse_exact
from r1ci_cli.tasks.symbench.sampling import attempts, knob

MAX_WAYPOINTS = 500


def segment_hits_box(p, q, box):
    """Whether the closed segment p–q meets the closed rectangle box = [x1, y1, x2, y2] (exact arithmetic)."""
    from fractions import Fraction
    lo, hi = Fraction(0), Fraction(1)
    for axis in (0, 1):
        start, delta = Fraction(p[axis]), Fraction(q[axis]) - Fraction(p[axis])
        low, high = Fraction(box[axis]), Fraction(box[axis + 2])
        if delta == 0:
            if not low <= start <= high:
                return False
            continue
        t1, t2 = (low - start) / delta, (high - start) / delta
        lo, hi = max(lo, min(t1, t2)), min(hi, max(t1, t2))
        if lo > hi:
            return False
    return True


def plan_path(width, height, obstacles, goals, start, end):
    """Waypoints from ``start`` through one lattice point of every goal area to ``end``: breadth-first search
    on the integer lattice (unit moves between free points never touch an integer-cornered obstacle), goal
    order chosen by total length, collinear points merged."""
    from collections import deque
    from itertools import permutations

    blocked = {(x, y) for b in obstacles for x in range(b[0], b[2] + 1) for y in range(b[1], b[3] + 1)}

    def free(x, y):
        return 0 <= x <= width and 0 <= y <= height and (x, y) not in blocked

    def bfs(src, targets):
        prev = {src: None}
        queue = deque([src])
        while queue:
            cur = queue.popleft()
            if cur in targets:
                path = []
                while cur is not None:
                    path.append(cur)
                    cur = prev[cur]
                return path[::-1]
            x, y = cur
            for nxt in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if nxt not in prev and free(*nxt):
                    prev[nxt] = cur
                    queue.append(nxt)
        return None

    areas = [{(x, y) for x in range(g[0], g[2] + 1) for y in range(g[1], g[3] + 1) if free(x, y)} for g in goals]
    best, best_stops = None, None
    for order in permutations(range(len(goals))):
        path, here, stops = [tuple(start)], tuple(start), set()
        for k in order:
            if here in areas[k]:
                stops.add(len(path) - 1)
                continue
            leg = bfs(here, areas[k])
            if leg is None:
                path = None
                break
            path += leg[1:]
            here = path[-1]
            stops.add(len(path) - 1)
        if path is None:
            continue
        leg = bfs(here, {tuple(end)})
        if leg is None:
            continue
        path += leg[1:]
        if best is None or len(path) < len(best):
            best, best_stops = path, stops
    if best is None:
        return None
    keep = [best[0]]
    for i in range(1, len(best) - 1):
        (ax, ay), (bx, by), (cx, cy) = keep[-1], best[i], best[i + 1]
        straight = (bx - ax) * (cy - by) == (by - ay) * (cx - bx) and (bx - ax) * (cx - bx) + (by - ay) * (cy - by) > 0
        if i in best_stops or not straight:  # goal visits and turns stay; straight runs are merged
            keep.append(best[i])
    if len(best) > 1:
        keep.append(best[-1])
    return [list(p) for p in keep]


def parse_waypoints(text: str) -> list[tuple[Fraction, Fraction]] | None:
    """``[[x, y], ...]`` (or tuples) as exact points; None if malformed."""
    if not isinstance(text, str) or len(text) > 50_000:
        return None
    value = parse_literal(text.strip())
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_WAYPOINTS:
        return None
    points = []
    for item in value:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            return None
        coords = []
        for v in item:
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                return None
            c = parse_exact(repr(v) if isinstance(v, float) else str(v))
            if c is None:
                return None
            coords.append(c)
        points.append((coords[0], coords[1]))
    return points


def path_problem(check: Mapping[str, Any], text: str) -> str | None:
    """Why the path fails (a short reason), or None when it is valid."""
    points = parse_waypoints(text)
    if points is None:
        return "not a list of [x, y] waypoints"
    if points[0] != tuple(map(Fraction, check["start"])):
        return "the path does not begin at the start"
    if points[-1] != tuple(map(Fraction, check["end"])):
        return "the path does not finish at the end"
    width, height = check["width"], check["height"]
    for x, y in points:
        if not (0 <= x <= width and 0 <= y <= height):
            return f"waypoint ({x}, {y}) is outside the region"
    for k, (p, q) in enumerate(zip(points, points[1:]), 1):
        for box in check["obstacles"]:
            if segment_hits_box(p, q, box):
                return f"segment {k} touches obstacle {box}"
    if len(points) == 1:
        for box in check["obstacles"]:
            if segment_hits_box(points[0], points[0], box):
                return "the only point is inside an obstacle"
    for g in check["goals"]:
        if not any(g[0] <= x <= g[2] and g[1] <= y <= g[3] for x, y in points):
            return f"goal area {g} is never visited"
    return None


def make_question(check: Mapping[str, Any]) -> str:
    obstacles = "\n".join(f"- obstacle {k}: x from {b[0]} to {b[2]}, y from {b[1]} to {b[3]}"
                          for k, b in enumerate(check["obstacles"], 1))
    goals = "\n".join(f"- area {k}: x from {g[0]} to {g[2]}, y from {g[1]} to {g[3]}"
                      for k, g in enumerate(check["goals"], 1))
    (sx, sy), (ex, ey) = check["start"], check["end"]
    return (f"A robot moves in a flat rectangular region with 0 <= x <= {check['width']} and 0 <= y <= "
            f"{check['height']}. It flies in straight lines between the waypoints you give. There are "
            "rectangular obstacles; the robot's path must never touch one, including its border:\n"
            f"{obstacles}\n\nThe robot must visit each of these areas, meaning at least one waypoint lies inside "
            f"the area (its border counts):\n{goals}\n\n"
            f"The robot starts at ({sx}, {sy}) and must end at ({ex}, {ey}); the first waypoint is the start and "
            "the last one is the end. Give the full list of waypoints as [x, y] pairs (numbers may be decimals).\n"
            f"Return your answer in the format <<<[[{sx}, {sy}], [x2, y2], ..., [{ex}, {ey}]]>>>.")


def _rect(rng: random.Random, width: int, height: int, max_side: int) -> list[int]:
    w, h = rng.randint(0, max_side), rng.randint(0, max_side)
    x, y = rng.randint(0, width - w), rng.randint(0, height - h)
    return [x, y, x + w, y + h]


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    width, height = knob(rng, knobs, "width"), knob(rng, knobs, "height")
    n_obstacles, n_goals = knob(rng, knobs, "obstacles"), knob(rng, knobs, "goals")
    for _ in attempts("path_plan"):
        obstacles = [_rect(rng, width, height, 3) for _ in range(n_obstacles)]
        # keep goal areas clear of obstacles so every goal can be reached inside the area
        goals = [g for g in (_rect(rng, width, height, 1) for _ in range(4 * n_goals))
                 if not any(segment_hits_box(g[:2], g[2:], b) or segment_hits_box([g[0], g[3]], [g[2], g[1]], b)
                            for b in obstacles)][:n_goals]
        start = [rng.randint(0, width), rng.randint(0, height)]
        end = [rng.randint(0, width), rng.randint(0, height)]
        if len(goals) < n_goals or start == end or any(
                segment_hits_box(point, point, b) for point in (start, end) for b in obstacles):
            continue
        path = plan_path(width, height, obstacles, goals, start, end)
        if path is None or len(path) < 3:
            continue  # unreachable, or a single straight line (too easy)
        check = {"width": width, "height": height, "obstacles": obstacles, "goals": goals,
                 "start": start, "end": end}
        return Instance(make_question(check), check, None)


def verify(instance: Instance, answer: str) -> bool:
    return path_problem(instance.check, answer) is None


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([plan_path], "print(plan_path(width, height, obstacles, goals, start, end))",
                   width=c["width"], height=c["height"], obstacles=[list(b) for b in c["obstacles"]],
                   goals=[list(g) for g in c["goals"]], start=list(c["start"]), end=list(c["end"]))


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    c = instance.check
    points = [list(p) for p in parse_literal(correct) or []]
    out = [str(points[1:]), str(points[:-1]), str([points[0], points[-1]])]
    b = c["obstacles"][0]
    centre = [Fraction(b[0] + b[2], 2), Fraction(b[1] + b[3], 2)]
    out.append(str(points[:1] + [[float(centre[0]), float(centre[1])]] + points[1:]))  # through an obstacle
    out.append(str(points[:1] + [[c["width"] + 1, 0]] + points[1:]))  # leaves the region
    return [w for w in dict.fromkeys(out) if not verify(instance, w)]


FAMILY = TaskFamily(
    name="path_plan", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"width": [8, 12], "height": [8, 12], "obstacles": [2, 5], "goals": [1, 3]},
    description="Plan waypoints around rectangular obstacles through goal areas; geometry checked exactly.",
)
