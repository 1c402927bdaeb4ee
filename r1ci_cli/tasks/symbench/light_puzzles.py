"""Light Puzzles (SymBench): press buttons that toggle sets of lights on an n×n grid; report the final grid.

A button lists the lights it controls as 1-based ``[row, column]`` pairs; pressing it toggles each of
them. The answer is the final grid flattened row by row as 0/1 values (``<<<0,1,1,0>>>``), unique, exact.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.parsers import parse_int_list
from r1ci_cli.tasks.symbench.sampling import knob


def press_all(initial, buttons, operations):
    """The flat 0/1 grid after pressing ``operations`` in order (each button toggles its 1-based cells)."""
    grid = [list(row) for row in initial]
    for name in operations:
        for row, col in buttons[name]:
            grid[row - 1][col - 1] ^= 1
    return [v for row in grid for v in row]


def _question(initial: list[list[int]], buttons: Mapping[str, list], operations: list[str]) -> str:
    n = len(initial)
    grid = "\n".join("".join(str(v) for v in row) for row in initial)
    lines = [f"Button {name} controls the lights at "
             + ", ".join(f"[\"{r}\", \"{c}\"]" for r, c in cells)
             for name, cells in buttons.items()]
    rounds = "\n".join(f"Round {i}: Button {name}" for i, name in enumerate(operations, 1))
    return (
        "There is an n*n grid with some lights randomly distributed. A lit light is represented by 1, and an "
        "unlit light is represented by 0. There are some buttons which can change the state of the lights in "
        "certain positions when they are pressed, like turning some lights on or off. Different buttons may "
        "control the state of the same light. Pressing a button toggles every light it controls; a light "
        "position is given as [\"row\", \"column\"], counted from 1 at the top-left corner.\n"
        f"Given n={n} and the number of buttons={len(buttons)}, the initial network is:\n{grid}\n\n"
        + "\n".join(lines) + f"\n\n{rounds}\n\n"
        "Please write the result after all rounds of operation based on the lights controlled by the button, "
        "row by row as one comma-separated list.\n"
        f"For example, <<<{','.join(['0'] * (n * n))}>>> represents a fully unlit light network.")


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n = knob(rng, knobs, "size")
    n_buttons = knob(rng, knobs, "buttons")
    n_rounds = knob(rng, knobs, "rounds")
    cells = [[r, c] for r in range(1, n + 1) for c in range(1, n + 1)]
    initial = [[rng.randint(0, 1) for _ in range(n)] for _ in range(n)]
    buttons = {chr(65 + i): rng.sample(cells, rng.randint(1, len(cells))) for i in range(n_buttons)}
    operations = [rng.choice(list(buttons)) for _ in range(n_rounds)]
    check = {"initial": initial, "buttons": buttons, "operations": operations}
    return Instance(_question(initial, buttons, operations), check,
                    ",".join(map(str, press_all(initial, buttons, operations))))


def _want(instance: Instance) -> list[int]:
    c = instance.check
    return press_all(c["initial"], c["buttons"], c["operations"])


def verify(instance: Instance, answer: str) -> bool:
    return parse_int_list(answer) == _want(instance)


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([press_all], "print(','.join(str(v) for v in press_all(initial, buttons, operations)))",
                   initial=c["initial"], buttons={k: [list(p) for p in v] for k, v in c["buttons"].items()},
                   operations=list(c["operations"]))


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    want = _want(instance)
    i = rng.randrange(len(want))
    flipped = list(want)
    flipped[i] ^= 1
    initial = [v for row in instance.check["initial"] for v in row]
    out = [flipped, want[:-1], [1 - v for v in want]]
    if initial != want:
        out.append(initial)
    return [",".join(map(str, w)) for w in out]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    sol = record["solution"]
    check = {"initial": sol["initial_state"], "buttons": sol["buttons"], "operations": sol["operations"]}
    want = press_all(check["initial"], check["buttons"], check["operations"])
    return Instance(record["question"], check, ",".join(map(str, want))), ",".join(map(str, sol["solution"]))


FAMILY = TaskFamily(
    name="light_puzzles", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"size": [2, 5], "buttons": [1, 3], "rounds": [1, 4]},
    description="Toggle lights with buttons over several rounds; final 0/1 grid, exact.",
)
