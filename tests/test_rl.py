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
from learner_model import PROMPTS
from test_rollout_loop import ScriptedGenerator


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


def _metrics(out: Path) -> list[dict]:
    timing = ("generate_s", "sandbox_s", "rollout_s", "train_s", "tokens_per_s")
    return [{k: v for k, v in json.loads(line).items() if k not in timing}
            for line in (out / "metrics.jsonl").read_text().splitlines()]


def _learner_cmd(model: str, out: Path, tasks: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "r1ci_cli", "rl-stage", str(tasks), "--stage", "1", "--model", model, "-o", str(out),
            "--batch-size", "4", "--group-size", "4", "--steps", "3", "--max-new-tokens", "16", "--max-total-tokens",
            "32", "--max-code-calls", "1", "--save-every", "1", "--keep-checkpoints", "10", "--lr", "1e-4",
            "--kl-coef", "0.01", "--device", "cpu", "--seed", "5", "--prompts", PROMPTS, *extra]


def _engine_state(checkpoint: Path) -> dict:
    import torch

    return torch.load(checkpoint / "engine_state.pt", weights_only=False)


def _same_tensors(a, b) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_run(learner, tmp_path):
    """From a model that learns (its weights move at every step), a run SIGKILLed after its first checkpoint and
    resumed reaches the uninterrupted run's weights, optimizer and scheduler state, metrics (the step after the
    resume included) and running pass rates."""
    model, tasks = learner["model"], Path(learner["staged"])  # the session's learner (conftest.py), read-only
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(_learner_cmd(model, whole, tasks), check=True, env=env, timeout=900, capture_output=True)
    rows = _metrics(whole)
    assert any(row["zero_variance_share"] < 1.0 for row in rows) and all(row["grad_norm"] > 0 for row in rows)
    steps = [whole / "checkpoints" / f"step-00000{k}" for k in (1, 2, 3)]
    weights = [(Path(model) / "model.safetensors").read_bytes()] + [(p / "model.safetensors").read_bytes()
                                                                      for p in steps]
    assert len(set(weights)) == 4, "the policy must change at every step, or the test proves nothing"

    cut = tmp_path / "cut"
    proc = subprocess.Popen(_learner_cmd(model, cut, tasks), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    latest = cut / "checkpoints" / "latest"  # written after the checkpoint's rename: the checkpoint is complete
    while not latest.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "model.safetensors").exists(), "the run finished before it could be killed"
    assert not (cut / "checkpoints" / "step-000003").exists()
    resumed = subprocess.run(_learner_cmd(model, cut, tasks, "--resume"), check=True, env=env, timeout=900,
                             capture_output=True, text=True)
    assert "resuming from" in resumed.stderr and "step 3/3 | reward" in resumed.stderr
    assert "rl-stage 1: steps " in resumed.stderr.splitlines()[-1]  # the summary line
    assert (whole / "model.safetensors").read_bytes() == (cut / "model.safetensors").read_bytes()
    for name in ("step-000002", "step-000003"):
        ours, theirs = _engine_state(cut / "checkpoints" / name), _engine_state(whole / "checkpoints" / name)
        assert _same_tensors(ours["optimizer"], theirs["optimizer"]), name
        assert ours["scheduler"] == theirs["scheduler"], name
    assert _metrics(cut)[1] == rows[1]  # the step right after the resume
    assert _metrics(cut) == rows and len(rows) == 3
    assert (cut / "instance-stats.jsonl.zst").read_bytes() == (whole / "instance-stats.jsonl.zst").read_bytes()
    flags = json.loads((cut / "resolved_config.json").read_text())["flags"]  # train/run.py, as for sft
    assert flags["lr"] == {"value": 1e-4, "source": "commandline"} and flags["clip"]["source"] == "default"


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


class GroupScript(ScriptedGenerator):
    """Test double for loop logic: a code turn, then an answer that depends on the sample (``/s{k}`` of the
    trajectory id): ``answers[k % len(answers)]``, so a group's members differ the same way in every run."""

    def __init__(self, answers=("<<<True>>>", "<<<False>>>", "<<<True>>>", "no answer")):
        super().__init__([])
        self.answers = answers

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


# ------------------------------------------------------------------------------------------ runs (micro model)


@pytest.fixture(scope="module")
def micro_dir(tmp_path_factory) -> str:
    from r1ci_cli.models import InitModelOptions, init_model

    return str(init_model(tmp_path_factory.mktemp("micro") / "m0", InitModelOptions(preset="micro", seed=0)))


def _pool_file(tmp_path: Path, n: int = 8, groups: int = 4) -> Path:
    path = tmp_path / "staged.jsonl"
    rows = [Task.from_dict({**_task(i).to_dict(), "group": 1 + i % groups, "p": round(0.1 + 0.1 * i, 2)}).to_dict()
            for i in range(n)]
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def _run_opts(model: str, out: Path, stage: int = 1, **kw) -> rl.RlOptions:
    from r1ci_cli.rollout.loop import RolloutOptions
    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions

    engine = EngineOptions(lr=kw.pop("lr", 1e-3), min_lr_ratio=kw.pop("min_lr_ratio", 1.0), micro_batch_size=8,
                           device="cpu")
    values = dict(batch_size=2, group_size=2, steps=2, kl_coef=0.0, seed=3, generation_batch_size=8,
                  rollout=RolloutOptions(max_new_tokens=12, max_total_tokens=24, max_code_calls=1, timeout_s=10.0,
                                         prompts="short"), engine=engine)
    values.update(kw)
    return rl.RlOptions(stage=stage, model=model, checkpoint=CheckpointOptions(str(out), save_every=10), **values)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_the_lr_schedule_counts_every_update_epoch(micro_dir, tmp_path, sandbox, one_torch_thread):
    """2 RL steps x 2 update epochs = 4 optimizer steps of a cosine to 0: halfway after the first RL step (the
    schedule used to be 2 steps long and ended after the first RL step)."""
    from r1ci_cli.potential import read_staged

    opts = _run_opts(micro_dir, tmp_path / "out", update_epochs=2, min_lr_ratio=0.0, lr=1e-3)
    rl.rl_stage(read_staged(str(_pool_file(tmp_path))), opts, sandbox)
    assert [row["lr"] for row in _rows(tmp_path / "out")] == pytest.approx([0.5e-3, 0.0], abs=1e-12)


def test_stages_chain_their_running_pass_rates_and_online_regroups(micro_dir, tmp_path, sandbox, one_torch_thread, caplog):
    from r1ci_cli.potential import STATS_FILE, read_staged, read_stats

    tasks = read_staged(str(_pool_file(tmp_path)))
    first = tmp_path / "rl1"
    metrics = rl.rl_stage(tasks, _run_opts(micro_dir, first), sandbox)
    stats = read_stats(str(first / STATS_FILE))
    assert {row["id"] for row in stats} == {t.id for t in tasks if t.extra["group"] == 1}
    assert sum(row["num_samples"] for row in stats) == 2 * 2 * 2 and all(row["stage"] == 1 for row in stats)
    assert metrics["step"] == 2
    # stage 2 regroups the unreached groups (2..4) by those rates and carries them on
    second = tmp_path / "online2"
    with caplog.at_level("INFO", logger="r1ci"):
        rl.rl_stage(tasks, _run_opts(str(first), second, stage=2, regroup="online"), sandbox)
    assert "online regroup for stage 2: 6 unreached instance(s)" in caplog.text
    resolved = json.loads((second / "resolved_config.json").read_text())
    assert resolved["derived"]["stage_stats"] == str(first / STATS_FILE)
    carried = {row["id"]: row for row in read_stats(str(second / STATS_FILE))}
    assert {row["id"] for row in stats} <= set(carried)
    assert all(carried[row["id"]]["num_samples"] >= row["num_samples"] for row in stats)  # counts carry on
    assert sum(row["num_samples"] for row in carried.values()) == 2 * (2 * 2 * 2)
    # online after stage 1 needs the rates; a start model without them is refused before anything is written
    with pytest.raises(Exception, match="--regroup online: no .*instance-stats.jsonl.zst"):
        rl.rl_stage(tasks, _run_opts(micro_dir, tmp_path / "x", stage=2, regroup="online"), sandbox)
    assert not (tmp_path / "x").exists()


def _cli(*args: str):
    from click.testing import CliRunner

    from r1ci_cli.cli import cli

    return CliRunner().invoke(cli, ["rl-stage", *args])


def test_a_used_output_directory_is_refused_without_resume_as_sft_does(micro_dir, tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints" / "step-000003").mkdir(parents=True)
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    staged = _pool_file(tmp_path)
    result = _cli(str(staged), "--stage", "1", "--model", micro_dir, "-o", str(out), "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"{out}: exists and is not empty; use --resume to continue it, or another -o")
    assert (out / "metrics.jsonl").read_text() == '{"step": 1}\n' and (out / "checkpoints" / "step-000003").is_dir()
    sft = subprocess.run([sys.executable, "-m", "r1ci_cli", "sft", str(staged), "--model", micro_dir, "-o", str(out)],
                         capture_output=True, text=True)
    assert sft.returncode == 1 and sft.stderr.strip().splitlines()[-1].endswith(result.stderr.strip().split(": ", 1)[1])


@pytest.mark.parametrize("case", ["ref-model", "no-group", "online-without-stats"])
def test_a_failed_start_names_the_culprit_and_leaves_no_output_directory(micro_dir, tmp_path, case):
    staged, out = _pool_file(tmp_path), tmp_path / "out"
    args = [str(staged), "--stage", "2", "--model", micro_dir, "-o", str(out), "--device", "cpu", "--steps", "1"]
    if case == "ref-model":
        args += ["--ref-model", str(tmp_path / "nowhere")]
        expected = f"--ref-model {tmp_path / 'nowhere'}: no such directory"
    elif case == "no-group":
        lines = staged.read_bytes().splitlines(keepends=True)
        lines[2] = orjson.dumps({k: v for k, v in orjson.loads(lines[2]).items() if k != "group"}) + b"\n"
        staged.write_bytes(b"".join(lines))
        expected = "staged.jsonl:3: field 'group': missing (run score-potential first"
    else:
        args += ["--regroup", "online"]
        expected = "--regroup online: no "
    result = _cli(*args)
    assert result.exit_code == 1, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.slow
def test_resume_before_the_first_checkpoint_starts_over_without_duplicate_rows(micro_dir, tmp_path):
    """Killed after a metrics row but before any checkpoint: --resume starts at step 0 and writes each row once."""
    tasks = _pool_file(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "r1ci_cli", "rl-stage", str(tasks), "--stage", "1", "--model", micro_dir,
            "--batch-size", "2", "--group-size", "2", "--steps", "3", "--max-new-tokens", "12", "--max-total-tokens",
            "24", "--save-every", "100", "--lr", "1e-3", "--kl-coef", "0.01", "--device", "cpu", "--seed", "5"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(base + ["-o", str(whole)], check=True, env=env, timeout=600, capture_output=True)
    proc = subprocess.Popen(base + ["-o", str(cut)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = cut / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "checkpoints").exists() and metrics.read_text().count("\n") >= 1
    subprocess.run(base + ["-o", str(cut), "--resume"], check=True, env=env, timeout=600, capture_output=True)
    assert _metrics(cut) == _metrics(whole) and [r["step"] for r in _metrics(cut)] == [1, 2, 3]
    assert (whole / "model.safetensors").read_bytes() == (cut / "model.safetensors").read_bytes()


def test_a_run_that_fails_before_its_first_row_leaves_no_output_directory(micro_dir, tmp_path, sandbox, monkeypatch):
    """A failure in the first rollout (here the generator raises) is a failed start as well: no OUT is left
    behind to be refused by the next plain command."""
    from r1ci_cli.backends.hf import HfGenerator
    from r1ci_cli.potential import read_staged

    def broken(self, requests):
        raise RuntimeError("generator lost")

    monkeypatch.setattr(HfGenerator, "generate", broken)
    with pytest.raises(RuntimeError, match="generator lost"):
        rl.rl_stage(read_staged(str(_pool_file(tmp_path))), _run_opts(micro_dir, tmp_path / "out"), sandbox)
    assert not (tmp_path / "out").exists()
