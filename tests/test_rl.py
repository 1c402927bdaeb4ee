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
    timing = ("generate_s", "sandbox_s", "rollout_s", "train_s", "tokens_per_s")
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
