"""The multi-turn code-interpreter rollout: protocol (prompts, stops, observations, reward), styles, the loop."""

from r1ci_cli.rollout.loop import RolloutOptions, RolloutStats, rollout, trajectory_id
from r1ci_cli.rollout.protocol import STYLES, RewardOptions

__all__ = ["RewardOptions", "RolloutOptions", "RolloutStats", "STYLES", "rollout", "trajectory_id"]
