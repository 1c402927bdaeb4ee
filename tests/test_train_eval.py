"""Evaluation during training (--eval-tasks FILE --eval-every N on sft and rl-stage, train/evaluation.py): pass@1
of the live policy on held-out tasks, logged as metrics, trajectories beside the checkpoints, and no effect on
what training computes (same final weights with and without evaluations; exact resume after SIGKILL)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from r1ci_cli.cli import cli
from r1ci_cli.evaluate.accuracy import overall_accuracy
from r1ci_cli.records import Trajectory
from r1ci_cli.rollout.loop import RolloutOptions
from r1ci_cli.streams import read_all
from r1ci_cli.train import evaluation
from r1ci_cli.train.checkpoint import CheckpointOptions
from r1ci_cli.train.engine import EngineOptions
from r1ci_cli.train.evaluation import EvalOptions
from r1ci_cli.train.options import RlOptions, SftOptions
from r1ci_cli.train.report import ReportOptions
from process_helpers import kill_when_exists
from report_readers import tensorboard_events, tensorboard_scalars, wandb_history, wandb_offline_run
from training_inputs import invoke, staged

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TIMING = ("tokens_per_s", "elapsed_s", "generate_s", "sandbox_s", "rollout_s", "train_s")


@pytest.fixture(scope="module")
def inputs(training_inputs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("rl-inputs")
    paths = dict(training_inputs)
    paths["staged"] = staged(paths["tasks"], root / "staged.jsonl")
    paths["other"] = str(root / "m1")  # another random model: a KL reference that makes every RL step move
    invoke("init-model", "-q", "--preset", "micro", "--seed", "1", "-o", paths["other"])
    return paths


def _weights(out: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    want, got = _weights(a), _weights(b)
    return want.keys() == got.keys() and all((want[k] == got[k]).all() for k in want)


def _rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _training_rows(out: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING and k != "eval"} for row in _rows(out)]


def _sft_options(inputs: dict[str, str], out: Path, eval_options: EvalOptions | None = None) -> SftOptions:
    return SftOptions(model=inputs["model"], checkpoint=CheckpointOptions(str(out), save_every=3), epochs=1,
                      batch_size=4, max_steps=6, seed=0, max_seq_len=256, eval=eval_options or EvalOptions(),
                      engine=EngineOptions(lr=3e-3, micro_batch_size=4, device="cpu"))


def _heldout_eval(inputs: dict[str, str], **kw: Any) -> EvalOptions:
    return EvalOptions(tasks=inputs["heldout"], prompts="short", max_new_tokens=24, max_total_tokens=48,
                       batch_size=8, **kw)


def test_sft_evaluations_are_logged_and_kept_and_change_no_weight(tmp_path: Path, inputs: dict[str, str],
                                                                   sandbox_pool) -> None:
    from r1ci_cli.train.sft import sft

    sft([inputs["teacher"]], _sft_options(inputs, tmp_path / "plain"))
    sft([inputs["teacher"]], _sft_options(inputs, tmp_path / "evaluated", _heldout_eval(inputs, every=2)),
        sandbox=sandbox_pool)
    assert not _same_weights(tmp_path / "plain", Path(inputs["model"])), "training must move the weights"
    assert _same_weights(tmp_path / "plain", tmp_path / "evaluated")
    assert _training_rows(tmp_path / "plain") == _training_rows(tmp_path / "evaluated")
    rows = _rows(tmp_path / "evaluated")
    assert [row["step"] for row in rows if "eval" in row] == [2, 4, 6]
    heldout = [json.loads(line)["id"] for line in Path(inputs["heldout"]).read_text().splitlines()]
    for row in rows[1::2]:
        trajectories = read_all(str(evaluation.eval_path(tmp_path / "evaluated", row["step"])), Trajectory)
        assert [t.task_id for t in trajectories] == heldout
        assert {t.temperature for t in trajectories} == {0.6} and {t.style for t in trajectories} == {"agent"}
        assert row["eval"]["accuracy"] == pytest.approx(overall_accuracy(trajectories))
        assert row["eval"]["num_trajectories"] == len(heldout)
        assert sum(row["eval"]["finish"].values()) == pytest.approx(1.0)
    assert sorted(p.name for p in (tmp_path / "evaluated" / "eval").iterdir()) == [
        "step-000002.jsonl.zst", "step-000004.jsonl.zst", "step-000006.jsonl.zst"]


def test_an_evaluation_that_drew_from_the_training_stream_would_be_seen(tmp_path: Path, inputs: dict[str, str],
                                                                         sandbox_pool,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The control of the test above: with the random state not restored (and one draw made), the weights
    differ, so 'same weights' is a real check (dropout draws from torch's global stream)."""
    import torch

    from r1ci_cli.train.sft import sft

    @contextlib.contextmanager
    def leaky(model: Any):
        training = model.training
        model.eval()
        yield
        model.train(training)
        torch.rand(1)

    sft([inputs["teacher"]], _sft_options(inputs, tmp_path / "plain"))
    monkeypatch.setattr(evaluation, "preserved_state", leaky)
    sft([inputs["teacher"]], _sft_options(inputs, tmp_path / "leaky", _heldout_eval(inputs, every=2)),
        sandbox=sandbox_pool)
    assert not _same_weights(tmp_path / "plain", tmp_path / "leaky")


def _rl_options(inputs: dict[str, str], out: Path, eval_options: EvalOptions | None = None,
                report: ReportOptions | None = None) -> RlOptions:
    return RlOptions(stage=1, model=inputs["model"], ref_model=inputs["other"], kl_coef=0.5,
                     checkpoint=CheckpointOptions(str(out), save_every=10), batch_size=2, group_size=2, steps=3,
                     seed=5, max_seq_len=256, generation_batch_size=4,
                     rollout=RolloutOptions(max_new_tokens=16, max_total_tokens=32, prompts="short"),
                     engine=EngineOptions(lr=1e-3, min_lr_ratio=1.0, micro_batch_size=4, device="cpu"),
                     eval=eval_options or EvalOptions(), report=report or ReportOptions())


def test_rl_stage_evaluations_and_reports_change_no_weight_and_every_number_arrives(
        tmp_path: Path, inputs: dict[str, str], sandbox_pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """One rl-stage run with evaluations, TensorBoard and an offline W&B run: the weights and rows of a run
    without them; every number of every row (entropy, clip fraction, code calls, the generate/sandbox/train time
    split, finish/sandbox/group shares, tokens/s, eval …) at its step in both; sample tables as asked."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    from r1ci_cli.records import Task
    from r1ci_cli.streams import read_all as read_tasks
    from r1ci_cli.train.report import flatten
    from r1ci_cli.train.rl import rl_stage

    pool = read_tasks(inputs["staged"], Task)
    rl_stage(pool, _rl_options(inputs, tmp_path / "plain"), sandbox_pool)
    evaluated = tmp_path / "evaluated"
    rl_stage(pool, _rl_options(inputs, evaluated, _heldout_eval(inputs, every=2, seed=3),
                               ReportOptions(report_to="tensorboard,wandb", samples_every=2, samples=3)), sandbox_pool)
    assert not _same_weights(tmp_path / "plain", Path(inputs["model"])), "the KL term must move the weights"
    assert _same_weights(tmp_path / "plain", evaluated)
    assert _training_rows(tmp_path / "plain") == _training_rows(evaluated)
    rows = _rows(evaluated)
    assert [row["step"] for row in rows if "eval" in row] == [2, 3]  # every 2 steps and the last
    first = read_all(str(evaluation.eval_path(evaluated, 2)), Trajectory)
    assert {t.extra["rollout_seed"] for t in first} == {3} and {t.temperature for t in first} == {0.6}
    assert set(rows[0]["finish"]) >= {"answer", "max_calls", "max_tokens", "error"} and rows[0]["group"] == {"1": 1.0}

    wanted = {step: flatten(row) for step, row in ((row["step"], row) for row in rows)}
    tags = set().union(*wanted.values())
    assert {"train/entropy", "train/clip_fraction", "train/kl", "train/loss", "train/reward_mean", "train/accuracy",
            "train/mean_code_calls", "train/generate_s", "train/sandbox_s", "train/train_s", "train/stage",
            "train/tokens_per_s", "finish/answer", "sandbox/ok", "group/1", "eval/accuracy"} <= tags
    scalars = tensorboard_scalars(evaluated / "tb")
    assert set(scalars) == tags
    for tag, events in scalars.items():
        assert events == [(step, pytest.approx(want[tag], rel=1e-6, abs=1e-9))
                          for step, want in wanted.items() if tag in want], tag
    history = wandb_history(wandb_offline_run(evaluated))
    assert sorted(history) == [1, 2, 3]
    for step, want in wanted.items():
        assert {tag: history[step][tag] for tag in want} == pytest.approx(want, rel=1e-12), step

    accumulator = tensorboard_events(evaluated / "tb")
    assert [e.step for e in accumulator.Tensors("samples/text_summary")] == [2]  # samples_every=2
    assert [e.step for e in accumulator.Tensors("eval/samples/text_summary")] == [2, 3]
    table = accumulator.Tensors("eval/samples/text_summary")[0].tensor_proto.string_val[0].decode()
    assert table.startswith("| id | task | question |") and len(table.splitlines()) == 2 + 3  # header, rule, rows
    assert [s for s in history if history[s].get("samples/_type") == "table-file"] == [2]  # a wandb.Table
    assert [s for s in history if history[s].get("eval/samples/_type") == "table-file"] == [2, 3]
    [files] = list((evaluated / "wandb").glob("offline-run-*/files"))
    logged = json.loads((files / history[2]["samples/path"]).read_text())
    assert logged["columns"][:3] == ["id", "task", "question"] and len(logged["data"]) == 3


def test_eval_every_needs_eval_tasks_and_the_file_must_exist(tmp_path: Path) -> None:
    base = ["sft", "-", "--model", "m", "-o", str(tmp_path / "o")]
    result = CliRunner().invoke(cli, [*base, "--eval-every", "5"])
    assert result.exit_code == 2 and "--eval-every needs --eval-tasks" in result.stderr
    result = CliRunner().invoke(cli, [*base, "--eval-tasks", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_bad_eval_task_file_stops_before_training(tmp_path: Path, inputs: dict[str, str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "source": "bbh"}\n')
    result = CliRunner().invoke(cli, ["sft", inputs["teacher"], "--model", inputs["model"], "-o",
                                      str(tmp_path / "o"), "--eval-tasks", str(bad), "--device", "cpu"])
    assert result.exit_code == 1 and f"{bad}:1: field 'task'" in result.stderr
    assert not (tmp_path / "o").exists()


def _rl_cmd(inputs: dict[str, str], out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "r1ci_cli", "rl-stage", inputs["staged"], "--stage", "1", "--model", inputs["model"],
            "--ref-model", inputs["other"], "--kl-coef", "0.5", "-o", str(out), "--batch-size", "2", "--group-size",
            "2", "--steps", "3", "--max-new-tokens", "16", "--max-total-tokens", "32", "--prompts", "short",
            "--save-every", "1", "--lr", "1e-3", "--device", "cpu", "--seed", "5", "--eval-tasks", inputs["heldout"],
            "--eval-every", "2", "--eval-max-new-tokens", "24", "--eval-max-total-tokens", "48", *extra]


@pytest.mark.slow
def test_rl_stage_with_evaluations_resumes_exactly_after_sigkill(tmp_path: Path, inputs: dict[str, str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(_rl_cmd(inputs, whole), check=True, env=env, timeout=600, capture_output=True)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_rl_cmd(inputs, cut), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert kill_when_exists(proc, cut / "checkpoints" / "step-000001"), "the run finished before it was killed"
    assert not (cut / "model.safetensors").exists()
    subprocess.run(_rl_cmd(inputs, cut, "--resume"), check=True, env=env, timeout=600, capture_output=True)
    assert (whole / "model.safetensors").read_bytes() == (cut / "model.safetensors").read_bytes()

    def rows(out: Path) -> list[dict[str, Any]]:
        return [{**{k: v for k, v in row.items() if k not in TIMING},
                 **({"eval": {k: v for k, v in row["eval"].items() if k != "wall_s"}} if "eval" in row else {})}
                for row in _rows(out)]

    assert rows(whole) == rows(cut) and [r["step"] for r in rows(cut) if "eval" in r] == [2, 3]
    for step in (2, 3):
        assert (read_all(str(evaluation.eval_path(whole, step)), Trajectory)
                == read_all(str(evaluation.eval_path(cut, step)), Trajectory))
