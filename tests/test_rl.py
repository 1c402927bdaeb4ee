"""rl-stage: the sampler, batches with masks, the update against a reference, and exact resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from r1ci_cli.records import Task, Trajectory, Turn
from r1ci_cli.train import rl


def _task(i: int, group: int = 1) -> Task:
    return Task(id=f"t{i}", source="bbh", task="navigate", split="train", seed=i, question=f"q{i}?",
                check={"kind": "yesno", "target": "Yes"}, answer="Yes", extra={"group": group})


def test_sample_batch_is_a_pure_function_of_the_step_and_covers_each_epoch():
    pool = [_task(i) for i in range(5)]
    first = [t.id for t in rl.sample_batch(pool, seed=3, stage=1, step=0, batch_size=5)]
    assert first == [t.id for t in rl.sample_batch(pool, seed=3, stage=1, step=0, batch_size=5)]
    assert sorted(first) == sorted(t.id for t in pool)
    second = [t.id for t in rl.sample_batch(pool, seed=3, stage=1, step=1, batch_size=5)]
    assert sorted(second) == sorted(first) and second != first  # reshuffled per epoch
    assert rl.sample_batch(pool, 3, 1, 1, 2) == rl.sample_batch(pool, 3, 1, 0, 4)[2:]


def test_stage_pool_is_cumulative_and_sorted():
    tasks = [_task(3, 2), _task(1, 1), _task(2, 3)]
    assert [t.id for t in rl.stage_pool(tasks, 2)] == ["t1", "t3"]
    with pytest.raises(Exception, match="group <= 1"):
        rl.stage_pool([_task(0, 2)], 1)


def _trajectory(tokenizer, fingerprint: str) -> Trajectory:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "q?"}], add_generation_prompt=True,
                                           tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    turns = (Turn("model", "```python\nprint(1)\n```", ids=tuple(tokenizer.encode("```python\nprint(1)\n```"))),
             Turn("exec", "Code Execution Results:\n1\n", ids=tuple(tokenizer.encode("Code Execution Results:\n1\n"))),
             Turn("model", "<<<Yes>>>", ids=tuple(tokenizer.encode("<<<Yes>>>"))))
    return Trajectory(id="t0/agent/t1/s0", task_id="t0", style="agent", temperature=1.0, model="m", turns=turns,
                      answer="Yes", correct=True, reward=1.1, num_code_calls=1, finish="answer",
                      extra={"prompt_ids": list(prompt_ids), "tokenizer": fingerprint, "question": "q?"})


def test_batch_masks_prompt_and_observation_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    from r1ci_cli.backends.tokens import tokenizer_fingerprint

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    traj = _trajectory(tok, tokenizer_fingerprint(tok))
    batch = rl.make_batch([traj], [1.0], tok, 4096, pad_id=0)
    n_prompt = len(traj.extra["prompt_ids"])
    n_code, n_obs, n_answer = (len(t.ids) for t in traj.turns)
    mask = batch.loss_mask[0].tolist()  # position t predicts token t+1
    assert mask[: n_prompt - 1] == [0.0] * (n_prompt - 1)
    assert mask[n_prompt - 1: n_prompt - 1 + n_code] == [1.0] * n_code
    assert mask[n_prompt - 1 + n_code: n_prompt - 1 + n_code + n_obs] == [0.0] * n_obs
    assert sum(mask) == n_code + n_answer + 1  # + the eos that ends an answered trajectory
    assert batch.input_ids[0, n_prompt: n_prompt + n_code].tolist() == list(traj.turns[0].ids)


def test_update_against_an_identical_reference_has_zero_kl(tiny_model_dir):
    import torch
    from transformers import AutoTokenizer

    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions, TorchEngine, load_model
    from r1ci_cli.backends.tokens import tokenizer_fingerprint

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    engine = TorchEngine(tiny_model_dir, EngineOptions(lr=1e-3, total_steps=1, warmup_steps=0, device="cpu"))
    ref = load_model(tiny_model_dir, gradient_checkpointing=False).eval()
    traj = _trajectory(tok, tokenizer_fingerprint(tok))
    batch = rl.make_batch([traj, traj], [1.0, -1.0], tok, 4096, pad_id=0)
    before = [p.detach().clone() for p in engine.model.parameters()]
    opts = rl.RlOptions(stage=1, model=tiny_model_dir, checkpoint=CheckpointOptions(output="x"), kl_coef=0.5)
    stats = rl._update(engine, ref, batch, opts)
    assert stats["kl"] == pytest.approx(0.0, abs=1e-7)
    assert stats["clip_fraction"] == 0.0
    # Opposite advantages on the same sequence cancel and the k3 KL has zero slope at the reference.
    assert stats["grad_norm"] < 1e-5
    batch = rl.make_batch([traj], [1.0], tok, 4096, pad_id=0)
    rl._update(engine, ref, batch, opts)
    assert not all(torch.allclose(a, b) for a, b in zip(before, engine.model.parameters()))


def _rl_cmd(model: str, out: Path, tasks: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "r1ci_cli", "rl-stage", str(tasks), "--stage", "1", "--model", model, "-o", str(out),
            "--batch-size", "2", "--group-size", "2", "--steps", str(steps), "--max-new-tokens", "24",
            "--max-total-tokens", "48", "--save-every", "1", "--lr", "1e-3", "--kl-coef", "0.01", "--device", "cpu",
            "--seed", "5", *extra]


def _metrics(out: Path) -> list[dict]:
    timing = ("generate_s", "sandbox_s", "rollout_s", "train_s")
    return [{k: v for k, v in json.loads(line).items() if k not in timing}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_run(tiny_model_dir, tmp_path):
    tasks = tmp_path / "staged.jsonl"
    tasks.write_bytes(b"".join(orjson.dumps(_task(i).to_dict()) + b"\n" for i in range(3)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(_rl_cmd(tiny_model_dir, whole, tasks, 3), check=True, env=env, timeout=600,
                   capture_output=True)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_rl_cmd(tiny_model_dir, cut, tasks, 3), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (cut / "checkpoints" / "step-000001").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "model.safetensors").exists(), "the run finished before it could be killed"
    subprocess.run(_rl_cmd(tiny_model_dir, cut, tasks, 3, "--resume"), check=True, env=env, timeout=600,
                   capture_output=True)
    assert (whole / "model.safetensors").read_bytes() == (cut / "model.safetensors").read_bytes()
    assert _metrics(whole) == _metrics(cut) and len(_metrics(cut)) == 3
    flags = json.loads((cut / "resolved_config.json").read_text())["flags"]  # train/run.py, as for sft
    assert flags["lr"] == {"value": 1e-3, "source": "commandline"} and flags["clip"]["source"] == "default"


def test_deepspeed_needs_one_micro_batch_per_step_before_anything_runs(tmp_path):
    """DeepSpeed's accumulation steps are fixed and rl-stage's batches are not: refused up front (it used to
    fail with a RuntimeError after the first rollout)."""
    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions

    opts = rl.RlOptions(stage=1, model="m", checkpoint=CheckpointOptions(str(tmp_path / "out")), batch_size=2,
                        group_size=2, engine=EngineOptions(deepspeed_config="zero2.json", micro_batch_size=2))
    with pytest.raises(Exception, match="--micro-batch-size >= --batch-size x --group-size"):
        rl.rl_stage([_task(0)], opts, sandbox=None)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------ outcomes and groups


class GroupScript:
    """Test double for loop logic: a code turn, then an answer that depends on the sample (``/s{k}`` of the
    trajectory id): ``answers[k % len(answers)]``, so a group's members differ the same way in every run."""

    model_name = "scripted"
    tokenizer_fingerprint = None

    def __init__(self, answers=("<<<True>>>", "<<<False>>>", "<<<True>>>", "no answer")):
        self.answers = answers

    def encode_prompt(self, messages):
        return None

    def encode_text(self, text):
        return None

    def generate(self, requests):
        from r1ci_cli.backends.base import Completion

        out = []
        for request in requests:
            if not any(role == "exec" for role, _text in request.turns):
                out.append(Completion("```python\nprint(not False)\n```", "stop"))
            else:
                sample = int(request.key.rsplit("/s", 1)[1])
                out.append(Completion(self.answers[sample % len(self.answers)], "stop"))
        return out

    def close(self):
        pass


@pytest.fixture(scope="module")
def sandbox():
    from r1ci_cli.sandbox import SandboxOptions, open_sandbox

    with open_sandbox(None, SandboxOptions(workers=2, timeout_s=10.0)) as box:
        yield box


def _staged(n: int) -> list[Task]:
    from test_rollout_loop import boolean_task  # answer True

    return [Task.from_dict({**boolean_task(seed).to_dict(), "group": 1, "p": 0.5}) for seed in range(0, 10 * n, 10)]


def _opts(**kw) -> rl.RlOptions:
    from r1ci_cli.rollout.loop import RolloutOptions
    from r1ci_cli.train.checkpoint import CheckpointOptions

    rollout = RolloutOptions(max_code_calls=2, timeout_s=10.0, infra_retries=kw.pop("infra_retries", 0))
    values = {"batch_size": 4, "group_size": 4, **kw}
    return rl.RlOptions(stage=1, model="m", checkpoint=CheckpointOptions("out"), rollout=rollout, **values)


def test_infra_errors_leave_the_surviving_members_advantages_as_without_them(sandbox):
    """A sandbox that fails every third call: the members it broke are out of the groups, and the others get
    the advantages of a run in which those members never existed."""
    from sandbox_helpers import FailingSandbox

    from r1ci_cli.train.grpo import group_advantages

    pool, opts = _staged(4), _opts()
    clean = rl.rollout_step(pool, GroupScript(), sandbox, opts, step=0)
    failing = FailingSandbox(sandbox, every=3)
    broken = rl.rollout_step(pool, GroupScript(), failing, opts, step=0)
    lost = {t.id for t in clean.trajectories} - {t.id for t in broken.trajectories}
    assert len(lost) == failing.failed == broken.counts.num_infra_errors == 5
    survivors = [t for t in clean.trajectories if t.id not in lost]
    assert [t.to_dict() for t in broken.trajectories] == [t.to_dict() for t in survivors]
    expected = group_advantages([t.reward for t in survivors], [t.task_id for t in survivors])
    assert broken.advantages == pytest.approx(expected)
    # The lost members did change the statistics: counted as zero-reward members, the advantages would differ.
    as_zeros = group_advantages([0.0 if t.id in lost else t.reward for t in clean.trajectories],
                                [t.task_id for t in clean.trajectories])
    assert [a for t, a in zip(clean.trajectories, as_zeros) if t.id not in lost] != pytest.approx(expected)
    metrics = rl.rollout_metrics(broken.trajectories, broken.counts)
    assert metrics["infra_error_share"] == pytest.approx(5 / 16)
    assert metrics["accuracy"] == pytest.approx(sum(t.correct for t in survivors) / len(survivors))


def test_a_group_that_loses_all_members_is_skipped_and_logged(sandbox, caplog):
    from sandbox_helpers import FailingSandbox

    pool = _staged(2)
    doomed = pool[0].id
    failing = FailingSandbox(sandbox, only=lambda request_id: request_id.startswith(doomed + "#"))
    with caplog.at_level("WARNING", logger="r1ci.rl-stage"):
        step = rl.rollout_step(pool, GroupScript(), failing, _opts(batch_size=2), step=0)
    assert failing.failed == 4 and step.counts.num_skipped == 1 and step.counts.num_groups == 2
    assert {rl.instance_id(t.task_id) for t in step.trajectories} == {pool[1].id}
    assert f"group {doomed}#0.0." in caplog.text and "skipped: 0 of its members valid" in caplog.text
    assert rl.rollout_metrics(step.trajectories, step.counts)["groups_skipped"] == 1
    # The retries of the loop replay a broken member; only a failure that outlives them is an infra_error.
    flaky = FailingSandbox(sandbox, every=3)
    step = rl.rollout_step(pool, GroupScript(), flaky, _opts(batch_size=2, infra_retries=2), step=0)
    assert flaky.failed > 0 and step.counts.num_infra_errors == 0 and len(step.trajectories) == 8


def _member(group: str, k: int, correct: bool, reward: float) -> Trajectory:
    return Trajectory(id=f"{group}/agent/t1/s{k}", task_id=group, style="agent", temperature=1.0, model="m",
                      turns=(Turn("model", "x"),), answer=None, correct=correct, reward=reward, num_code_calls=0,
                      finish="answer")


def test_zero_variance_is_decided_on_correctness_or_on_reward():
    trajs = [_member("all-wrong", 0, False, -0.1), _member("all-wrong", 1, False, 0.1),  # format differs
             _member("mixed", 0, True, 1.1), _member("mixed", 1, False, 0.1),
             _member("all-right", 0, True, 1.1), _member("all-right", 1, True, 1.1)]
    _kept, zero = rl.select_groups(trajs, "correct")
    assert zero == {"all-wrong", "all-right"}
    _kept, zero = rl.select_groups(trajs, "reward")
    assert zero == {"all-right"}


@pytest.mark.parametrize("filter_on", ["correct", "reward"])
def test_filter_zero_variance_drops_by_correctness_by_default(sandbox, filter_on):
    """Groups whose members are all wrong but differ in format: dropped on correctness, kept on reward."""
    assert rl.RlOptions(stage=1, model="m", checkpoint=None).filter_on == "correct"
    script = GroupScript(answers=("<<<False>>>", "no answer"))  # never right; formed and not formed
    opts = _opts(batch_size=2, filter_zero_variance="drop", filter_on=filter_on)
    step = rl.rollout_step(_staged(2), script, sandbox, opts, step=0)
    assert len({t.task_id for t in step.trajectories}) == (0 if filter_on == "correct" else 2)
    assert step.counts.num_zero_variance == (2 if filter_on == "correct" else 0)
