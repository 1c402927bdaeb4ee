"""rl-stage really learns: on a task set where a tiny SFT'd model is partly right, the training reward goes up.

The setup, all seeded and on CPU:

* 48 easy BBH ``boolean_expressions`` instances (at most two literals, at most one ``not``); a third of them
  are ``True``.
* A fresh ``tiny`` model is fine-tuned with ``sft`` for 40 steps on answer-only teacher trajectories (the short
  agent prompt, then ``<<<answer>>>`` from the task's stored answer): the session's ``learner`` (tests/conftest.py,
  tests/learner_model.py), which tests/test_rl.py's resume test starts from as well. That teaches the format but
  not the logic: the model then answers right a bit under half the time when sampling at temperature 1.0
  ("partly right").
* ``rl_stage`` then trains it for 16 GRPO steps (8 prompts × 4 samples, lr 1e-4, no KL, the short prompts) with
  the real rollout loop, sandbox and verifier.

The test asserts that the mean training reward of the last four steps exceeds that of the first four by a
margin. It fails when the policy gradient points the wrong way (a sign error in the advantages or the loss),
when masks leave the answer tokens out, or when the update does not reach the generator's weights. Measured
on the 2-core development machine under load ~6-8 (one torch thread): SFT ~45 s, RL ~90 s; the reward of the
first and last four steps went from 0.52 to 0.60 (accuracy 0.43 at the start). Broken on purpose, the same run
fails: with lr 0 the reward went 0.52 -> 0.51, with the advantages' sign flipped 0.51 -> 0.16. (With the paper's
agent prompt, three times as many tokens a step, it took ~2.5x as long: 0.50 -> 0.59.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from learner_model import NUM_TASKS, PROMPTS, learner_tasks
from r1ci_cli.records import Task

RL_STEPS = 16
WINDOW = 4


@pytest.mark.slow
def test_training_reward_rises_on_a_partly_right_model(tmp_path: Path, learner: dict[str, str], one_torch_thread):
    from r1ci_cli.sandbox import SandboxOptions, open_sandbox
    from r1ci_cli.rollout.loop import RolloutOptions
    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions
    from r1ci_cli.train.options import RlOptions
    from r1ci_cli.train.rl import rl_stage

    tasks = learner_tasks()
    assert len(tasks) == NUM_TASKS
    staged = [Task.from_dict({**task.to_dict(), "group": 1}) for task in tasks]
    opts = RlOptions(stage=1, model=learner["model"], checkpoint=CheckpointOptions(str(tmp_path / "rl"),
                                                                                     save_every=10**6),
                     batch_size=8, group_size=4, steps=RL_STEPS, kl_coef=0.0, generation_batch_size=32, seed=0,
                     rollout=RolloutOptions(max_new_tokens=16, max_total_tokens=32, max_code_calls=1, timeout_s=10.0,
                                            prompts=PROMPTS),
                     engine=EngineOptions(lr=1e-4, micro_batch_size=32, device="cpu", precision="fp32"))
    with open_sandbox(None, SandboxOptions(workers=1, timeout_s=10.0)) as box:
        rl_stage(staged, opts, box)

    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, RL_STEPS + 1))
    rewards = [r["reward_mean"] for r in rows]
    first = sum(rewards[:WINDOW]) / WINDOW
    last = sum(rewards[-WINDOW:]) / WINDOW
    start_accuracy = sum(r["accuracy"] for r in rows[:WINDOW]) / WINDOW
    curve = ", ".join(f"{x:.2f}" for x in rewards)
    # The premise: the SFT'd model is partly right, so groups have reward variance to learn from.
    assert 0.2 <= start_accuracy <= 0.8, f"SFT'd model not partly right (accuracy {start_accuracy:.2f}): {curve}"
    assert last > first + 0.05, f"training reward did not rise: first {first:.3f}, last {last:.3f}: {curve}"
