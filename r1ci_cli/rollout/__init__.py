"""The multi-turn code-interpreter rollout: prompts, styles, reward, the loop, and the rollout job around it."""

from r1ci_cli.records import trajectory_id
from r1ci_cli.rollout.loop import RolloutOptions, RolloutStats, rollout
from r1ci_cli.rollout.prompts import STYLES
from r1ci_cli.rollout.reward import RewardOptions

__all__ = ["RewardOptions", "RolloutOptions", "RolloutStats", "STYLES", "rollout", "trajectory_id"]
