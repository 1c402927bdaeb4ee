"""The reward of a finished trajectory (docs/paper.md "GRPO"), each term a flag.

+``correct_reward`` when the task's verifier accepts the answer; +``format_reward`` when every turn is well
formed (each model turn ends in a complete code block, the last one gives the answer), else
−``format_reward``; −``turn_penalty`` when there are more than ``max_free_turns`` model turns. A trajectory
that ended on a sandbox failure is not scored here: the rollout loop gives it 0 and marks it, never counting
the infrastructure's failure as the model's mistake.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RewardOptions:
    """docs/paper.md "GRPO": +1 correct; ±0.1 format; −0.1 beyond 6 turns. Set a term to 0 to switch it off."""

    correct_reward: float = 1.0
    format_reward: float = 0.1
    turn_penalty: float = 0.1
    max_free_turns: int = 6


def well_formed(model_turn_stops: list[str | None], finish: str) -> bool:
    """Every model turn ends in a complete code block except the last, which gives an answer.

    ``model_turn_stops`` holds, per model turn, what ended it: ``code``, ``answer`` or None (end of text,
    token limit). A trajectory that ran out of calls or tokens is not well formed.
    """
    if finish != "answer" or not model_turn_stops or model_turn_stops[-1] != "answer":
        return False
    return all(kind == "code" for kind in model_turn_stops[:-1])


def reward(correct: bool, formed: bool, num_model_turns: int, opts: RewardOptions) -> float:
    """The scalar reward of one finished trajectory (not for sandbox failures: those get 0, see loop)."""
    value = opts.correct_reward if correct else 0.0
    value += opts.format_reward if formed else -opts.format_reward
    if num_model_turns > opts.max_free_turns:
        value -= opts.turn_penalty
    return round(value, 10)
