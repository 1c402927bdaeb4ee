"""The `make all` / `make ablation` glue: question-disjoint RL tasks, the ablation table, and the Makefile's
dry run reading as the pipeline."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from r1ci_cli.errors import R1ciError
from r1ci_cli.streams import read_dicts, record_sink

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "shell" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, rows: list[dict]) -> str:
    with record_sink(str(path)) as sink:
        for row in rows:
            sink.write(row)
    return str(path)


def test_disjoint_drops_shared_and_repeated_questions(tmp_path: Path) -> None:
    disjoint = _load("disjoint").disjoint
    sft = _write(tmp_path / "sft.jsonl.zst", [{"id": "a", "question": "q1"}, {"id": "b", "question": "q2"}])
    rl = _write(tmp_path / "rl.jsonl.zst", [{"id": "c", "question": "q2"}, {"id": "d", "question": "q3"},
                                            {"id": "e", "question": "q3"}, {"id": "f", "question": "q4"}])
    out = tmp_path / "out.jsonl.zst"
    assert disjoint(rl, str(out), [sft]) == (2, 2)
    assert [row["id"] for _, row in read_dicts(str(out))] == ["d", "f"]


def test_disjoint_fails_when_nothing_is_left(tmp_path: Path) -> None:
    disjoint = _load("disjoint").disjoint
    sft = _write(tmp_path / "sft.jsonl", [{"id": "a", "question": "q1"}])
    with pytest.raises(R1ciError):
        disjoint(sft, str(tmp_path / "out.jsonl"), [sft])


def test_ablation_table_means_and_best_stage(tmp_path: Path) -> None:
    table = _load("ablation_table").table
    accs = {"base": 0.0, "sft": 0.25, "rl1": 0.5, "rl2": 0.75, "rl3": 0.25, "rl4": 0.5, "flat": 0.25}
    runs = []
    for name in ("s0", "s1"):
        run = tmp_path / name
        run.mkdir()
        for column, acc in accs.items():
            correct = int(acc * 4)
            _write(run / f"eval-{column}.jsonl.zst", [{"correct": i < correct} for i in range(4)])
        runs.append(str(run))
    lines = table(runs).splitlines()
    assert lines[2] == "| s0 | 0.000 | 0.250 | 0.500 | 0.750 | 0.250 | 0.500 | 0.250 | 0.750 |"
    assert lines[-1] == "| mean | 0.000 | 0.250 | 0.500 | 0.750 | 0.250 | 0.500 | 0.250 | 0.750 |"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_dry_run_reads_as_the_pipeline() -> None:
    out = subprocess.run(["make", "-n", "pipeline", "RUN=dryrun-test"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    order = ["gen-tasks", "init-model", "rollout -q runs/dryrun-test/tasks-sft", "sft -q", "score-potential",
             "rl-stage -q runs/dryrun-test/staged.jsonl.zst --stage 1", "--stage 4", "eval report"]
    positions = [out.find(step) for step in order]
    assert all(p >= 0 for p in positions), dict(zip(order, positions))
    assert positions == sorted(positions)
    assert out.count("--style ") == 8  # 4 styles x 2 temperatures (the tiny default; the paper: 5)
    assert "--model runs/dryrun-test/rl3" in out  # stage 4 starts from stage 3
    assert not (ROOT / "runs" / "dryrun-test").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_teacher_variable_meanings() -> None:
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", "pipeline", "RUN=dryrun-test", *args], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    assert "--backend openai --model gpt-4o --keep correct" in dry("TEACHER=openai:gpt-4o")
    assert "--backend openai --base-url http://h:8000/v1 --model q" in dry("TEACHER=http://h:8000/v1", "TEACHER_MODEL=q")
    vllm = dry("MODEL=/ckpt/qwen", "BACKEND=vllm", "GPUS=8")
    assert "init-model" not in vllm and "--model /ckpt/qwen" in vllm
    assert "torchrun --nproc_per_node=8" in vllm and "--backend vllm" in vllm


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_dry_ablation_trains_the_base_run_once_and_every_seed_from_it() -> None:
    out = subprocess.run(["make", "-n", "ablation", "RUN=dryrun-test", "ABLATION_SEEDS=5 6"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out.count("-o runs/dryrun-test/sft ") == 1
    for seed in (5, 6):
        assert f"--stage 1 --model runs/ablation-s{seed}/sft -o runs/ablation-s{seed}/rl1" in out
        assert f"--stage 4 --model runs/ablation-s{seed}/sft -o runs/ablation-s{seed}/flat" in out
        assert f"--seed $(( {seed} + 1 ))" in out
    assert not (ROOT / "runs" / "ablation-s5").exists()  # a dry run links nothing
