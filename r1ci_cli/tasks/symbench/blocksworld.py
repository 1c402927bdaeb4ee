"""Blocksworld (SymBench): rearrange lettered blocks between stacks to reach a goal configuration.

The answer is a plan, one ``Move X from stackI to stackJ`` per line. The verifier simulates it: every move
must take the top block of the named stack and put it on another existing stack; after the last move
every stack named in the goal must hold exactly its goal blocks (bottom to top) and every other stack must
be empty. Any valid plan passes, however long (up to ``MAX_MOVES``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.registry import Instance, TaskFamily, program
from r1ci_cli.tasks.symbench.sampling import attempts, knob

MAX_MOVES = 200
_MOVE_RE = re.compile(r"move\s+([A-Za-z])\s+from\s+(?:stack\s*)?(\d+)\s+to\s+(?:stack\s*)?(\d+)\.?", re.I)


def parse_plan(text: str) -> list[tuple[str, str, str]] | None:
    """Moves as (block, source stack, destination stack) names; None if any line is not a move."""
    if not isinstance(text, str) or len(text) > 40 * MAX_MOVES:
        return None
    moves = []
    for line in re.split(r"[\n;]+", text.replace("\\n", "\n")):
        line = line.strip().strip(",").strip()
        if not line:
            continue
        m = _MOVE_RE.fullmatch(line)
        if m is None:
            return None
        moves.append((m[1].upper(), f"stack{int(m[2])}", f"stack{int(m[3])}"))
    return moves if 0 < len(moves) <= MAX_MOVES else None


def plan_problem(initial: Mapping[str, list], goal: Mapping[str, list], text: str) -> str | None:
    """Why the plan fails (a short reason), or None when it reaches the goal legally."""
    if text.strip() == "" and _reached(initial, goal):
        return None  # nothing to do (one reference instance starts at its goal)
    moves = parse_plan(text)
    if moves is None:
        return "not a list of 'Move X from stackI to stackJ' lines"
    stacks = {name: list(blocks) for name, blocks in initial.items()}
    for k, (block, src, dst) in enumerate(moves, 1):
        if src not in stacks or dst not in stacks:
            return f"move {k}: no such stack"
        if src == dst:
            return f"move {k}: source and destination are the same"
        if not stacks[src] or stacks[src][-1] != block:
            return f"move {k}: {block} is not on top of {src}"
        stacks[dst].append(stacks[src].pop())
    return None if _reached(stacks, goal) else "the final state is not the goal"


def _reached(stacks: Mapping[str, list], goal: Mapping[str, list]) -> bool:
    return all(list(stacks.get(name, [])) == list(goal.get(name, [])) for name in set(stacks) | set(goal))


def plan_blocks(initial, goal):
    """A shortest plan by breadth-first search over states; lines 'Move X from stackI to stackJ'."""
    from collections import deque
    names = list(initial)
    start = tuple(tuple(initial[n]) for n in names)
    target = tuple(tuple(goal.get(n, [])) for n in names)
    parent = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state == target:
            break
        for i, src in enumerate(state):
            if not src:
                continue
            for j in range(len(state)):
                if j == i:
                    continue
                nxt = list(state)
                nxt[i] = src[:-1]
                nxt[j] = state[j] + (src[-1],)
                nxt = tuple(nxt)
                if nxt not in parent:
                    parent[nxt] = (state, f"Move {src[-1]} from {names[i]} to {names[j]}")
                    queue.append(nxt)
    lines = []
    state = target
    while parent[state] is not None:
        state, line = parent[state]
        lines.append(line)
    return "\n".join(reversed(lines))


def _show(state: Mapping[str, list]) -> str:
    return "\n".join(f"{name}: {' '.join(blocks)}" for name, blocks in state.items())


def make_question(initial: Mapping[str, list], goal: Mapping[str, list]) -> str:
    task = f"Initial State:\n{_show(initial)}\n\nGoal State:\n{_show(goal)}\n"
    return ("Blocksworld Task:\n\n" + task
            + "\nStacks are listed bottom to top. You may only move the top block of a stack, and you place it on "
              "top of another stack (an empty stack is fine). Stacks not listed in the goal state must end empty. "
              "Give a sequence of moves that turns the initial state into the goal state, one move per line, "
              "each written exactly as 'Move <block> from <source stack> to <destination stack>'.\n"
              "Return your plan in the format <<<Move B from stack1 to stack3\nMove A from stack2 to stack1>>>.")


def _spread(rng: random.Random, blocks: list[str], n_stacks: int) -> dict[str, list[str]]:
    stacks: dict[str, list[str]] = {f"stack{i}": [] for i in range(1, n_stacks + 1)}
    for block in blocks:
        stacks[f"stack{rng.randint(1, n_stacks)}"].append(block)
    return stacks


def generate(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    n_blocks = knob(rng, knobs, "blocks")
    n_initial = knob(rng, knobs, "initial_stacks")
    n_goal = min(knob(rng, knobs, "goal_stacks"), n_initial)
    blocks = [chr(65 + i) for i in range(n_blocks)]
    for _ in attempts("blocksworld"):
        initial = _spread(rng, rng.sample(blocks, n_blocks), n_initial)
        goal = _spread(rng, rng.sample(blocks, n_blocks), n_goal)
        if not _reached(initial, goal):
            return Instance(make_question(initial, goal), {"initial": initial, "goal": goal}, None)


def verify(instance: Instance, answer: str) -> bool:
    return plan_problem(instance.check["initial"], instance.check["goal"], answer) is None


def reference_program(instance: Instance) -> str:
    c = instance.check
    return program([plan_blocks], "print(plan_blocks(initial, goal))",
                   initial={k: list(v) for k, v in c["initial"].items()},
                   goal={k: list(v) for k, v in c["goal"].items()})


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    lines = [ln for ln in correct.splitlines() if ln.strip()]
    out = []
    if len(lines) > 1:
        out.append("\n".join(lines[:-1]))  # stops one move short
        out.append("\n".join(lines[1:] + lines[:1]))
    if lines:
        m = _MOVE_RE.fullmatch(lines[0].strip())
        stacks = list(instance.check["initial"])
        if m:  # move a block that is not on top / from the wrong stack
            wrong = next(s for s in stacks if s != f"stack{int(m[2])}")
            out.append("\n".join([f"Move {m[1]} from {wrong} to stack{int(m[3])}"] + lines[1:]))
    out.append("Move Z from stack1 to stack2")
    out.append("\n".join(lines) + "\nMove " + "X from stack9 to stack1")
    return [w for w in dict.fromkeys(out) if not verify(instance, w)]


def from_symbench(record: dict) -> tuple[Instance, str | None]:
    """The runner's question is not stored: build ours from the parsed states (no stored answer)."""
    initial, goal = record["initial_state"], record["goal_state"]
    return Instance(make_question(initial, goal), {"initial": initial, "goal": goal}, None), None


FAMILY = TaskFamily(
    name="blocksworld", source="symbench", generate=generate, verify=verify,
    reference_program=reference_program, perturb=perturb,
    knobs={"blocks": [2, 4], "initial_stacks": [3, 5], "goal_stacks": [2, 4]},
    description="Move blocks between stacks to reach a goal; the plan is simulated move by move.",
)
