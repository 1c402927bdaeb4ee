"""The `make all` / `make ablation` glue: question-disjoint RL tasks (gen-tasks --exclude), the ablation table,
the Makefile's dry run reading as the pipeline, and the pipeline itself at a small size (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
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


def test_exclude_drops_shared_and_repeated_questions_in_order(tmp_path: Path) -> None:
    from r1ci_cli.records import Task
    from r1ci_cli.tasks.generate import exclude_questions

    def task(id_: str, question: str) -> Task:
        return Task(id_, "bbh", "navigate", "train", 0, question, {})

    sft = _write(tmp_path / "sft.jsonl.zst", [task("a", "q1").to_dict(), task("b", "q2").to_dict()])
    rl = [task("c", "q2"), task("d", "q3"), task("e", "q3"), task("f", "q4")]
    assert [t.id for t in exclude_questions(rl, [sft])] == ["d", "f"]
    with pytest.raises(R1ciError, match="nothing is left"):
        list(exclude_questions(rl[:1], [sft]))


def test_gen_tasks_exclude_gives_rl_questions_apart_from_sft_and_no_partial_file(tmp_path: Path) -> None:
    """The Makefile's RL draw: a second seed of the train pool minus every SFT question (easy knobs repeat)."""
    from click.testing import CliRunner

    from r1ci_cli.cli import cli

    def gen(seed: int, num: int, out: Path, *extra: str):
        return CliRunner().invoke(cli, ["gen-tasks", "-q", "--tasks", "word_sorting", "--pool", "train",
                                        "--difficulty", "word_sorting.min_words=2", "--difficulty",
                                        "word_sorting.max_words=2", "--num-per-task", str(num), "--seed", str(seed),
                                        "-o", str(out), *extra])

    assert gen(0, 1000, tmp_path / "sft.jsonl").exit_code == 0
    assert gen(1000, 100, tmp_path / "all.jsonl").exit_code == 0
    result = gen(1000, 100, tmp_path / "rl.jsonl", "--exclude", str(tmp_path / "sft.jsonl"))
    assert result.exit_code == 0, result.stderr
    sft, every, rl = ([row["question"] for _, row in read_dicts(str(tmp_path / name))]
                      for name in ("sft.jsonl", "all.jsonl", "rl.jsonl"))
    assert rl and not set(rl) & set(sft) and len(set(rl)) == len(rl)
    assert rl == [q for i, q in enumerate(every) if q not in sft and q not in every[:i]]  # order kept
    assert len(rl) < len(every)  # the easy knobs do repeat questions: the filter has work to do
    empty = gen(0, 1000, tmp_path / "none.jsonl", "--exclude", str(tmp_path / "sft.jsonl"))
    assert empty.exit_code == 1 and "nothing is left" in empty.stderr and not (tmp_path / "none.jsonl").exists()


def _trajectory(task: str, index: int, correct: bool) -> dict:
    return {"id": f"{task}/{index}/agent/t0.6/s0", "task_id": f"{task}/{index}", "style": "agent", "temperature": 0.6,
            "model": "m", "turns": [{"role": "model", "text": "<<<x>>>"}], "answer": "x", "correct": correct,
            "reward": 1.0, "num_code_calls": 0, "finish": "answer", "task": task, "source": "bbh", "split": "train"}


def test_ablation_table_means_and_best_stage(tmp_path: Path) -> None:
    table = _load("ablation_table").table
    accs = {"base": 0.0, "sft": 0.25, "rl1": 0.5, "rl2": 0.75, "rl3": 0.25, "rl4": 0.5, "flat": 0.25, "online4": 1.0}
    runs = []
    for name in ("s0", "s1"):
        run = tmp_path / name
        run.mkdir()
        for column, acc in accs.items():
            correct = int(acc * 4)
            _write(run / f"eval-{column}.jsonl.zst", [_trajectory("navigate", i, i < correct) for i in range(4)])
        runs.append(str(run))
    lines = table(runs).splitlines()
    assert lines[0].endswith("| flat GRPO | online (stage 4) | best stage |")
    assert lines[2] == "| s0 | 0.000 | 0.250 | 0.500 | 0.750 | 0.250 | 0.500 | 0.250 | 1.000 | 0.750 |"
    assert lines[-1] == "| mean | 0.000 | 0.250 | 0.500 | 0.750 | 0.250 | 0.500 | 0.250 | 1.000 | 0.750 |"


def test_ablation_table_and_eval_report_agree_on_accuracy(tmp_path: Path) -> None:
    """Unequal task sizes: 3 of 3 right on one task, 0 of 1 on another. The paper's accuracy (eval report)
    is the mean over tasks, 0.5; the share of correct trajectories would be 0.75."""
    import json

    from click.testing import CliRunner

    from r1ci_cli.cli import cli

    rows = [_trajectory("navigate", i, True) for i in range(3)] + [_trajectory("web_of_lies", 0, False)]
    run = tmp_path / "s0"
    run.mkdir()
    for column in ("base", "sft", "rl1", "rl2", "rl3", "rl4", "flat", "online4"):
        _write(run / f"eval-{column}.jsonl.zst", rows)
    cells = _load("ablation_table").table([str(run)]).splitlines()[2].split(" | ")
    report = CliRunner().invoke(cli, ["eval", "report", str(run / "eval-sft.jsonl.zst"), "--summary"])
    overall = [json.loads(line) for line in report.stdout.splitlines() if '"overall"' in line]
    assert overall[0]["accuracy"] == 0.5 and cells[2] == "0.500"


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
    # rollout --backend openai needs --base-url: TEACHER=openai:NAME gets the OpenAI API's (shell/lib.sh)
    assert "--backend openai --model gpt-4o --base-url https://api.openai.com/v1 " in dry("TEACHER=openai:gpt-4o")
    assert "--backend openai --model q --base-url http://h:8000/v1 " in dry("TEACHER=http://h:8000/v1", "TEACHER_MODEL=q")
    assert "--backend reference --device cpu --keep correct" in dry()
    assert "--backend hf --model /ckpt/teacher --device cpu" in dry("TEACHER=/ckpt/teacher")
    missing = subprocess.run(["make", "-n", "pipeline", "RUN=dryrun-test", "TEACHER=http://h:8000/v1"], cwd=ROOT,
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "TEACHER_MODEL" in missing.stderr
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
        # the online arm: rl1, then stages 2..4 from the stage before, each regrouped by its running pass rates
        assert f"--stage 2 --model runs/ablation-s{seed}/rl1 -o runs/ablation-s{seed}/online2" in out
        assert f"--stage 4 --model runs/ablation-s{seed}/online3 -o runs/ablation-s{seed}/online4" in out
        assert out.count(f"-o runs/ablation-s{seed}/online") == 3
        assert f"--model runs/ablation-s{seed}/online4 --temperature" in out  # evaluated
    assert out.count("--regroup online") == 6
    assert not (ROOT / "runs" / "ablation-s5").exists()  # a dry run links nothing


def _tensorboard_scalars(log_dir: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [e.step for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_pipeline_at_a_small_size_shows_its_curves_in_tensorboard(tmp_path: Path) -> None:
    """The whole `make all` pipeline on a micro model, a few instances and steps: every training stage writes
    its TensorBoard run under runs/$(RUN)/tb/ (read back with TensorBoard's own reader), evaluations during
    training included (EVAL_EVERY), and the report is made."""
    pytest.importorskip("tensorboard")
    if not (ROOT / ".venv" / "lib").is_dir():
        pytest.skip("needs the checkout's .venv (make install)")
    small = {
        "RUNS": str(tmp_path), "RUN": "small", "MODEL": "micro", "TASKS": "word_sorting",
        "DIFFICULTY": "word_sorting.min_words=2 word_sorting.max_words=2", "SFT_N": "48", "RL_N": "6", "EVAL_N": "4",
        "STEPS": "2", "STAGES": "1", "POTENTIAL_STYLES": "agent", "POTENTIAL_TEMPS": "1.0",
        "SFT_ARGS": "--epochs 1 --batch-size 8 --micro-batch-size 8 --lr 3e-3 --max-seq-len 256 --save-every 100",
        "RL_ARGS": "--batch-size 2 --group-size 2 --lr 1e-4 --max-new-tokens 32 --max-total-tokens 64 "
                   "--max-code-calls 1 --timeout-s 10 --max-seq-len 256",
        "ROLLOUT_ARGS": "--max-new-tokens 32 --max-total-tokens 64 --max-code-calls 1 --timeout-s 10",
        "EVAL_EVERY": "3", "TRAIN_EVAL_ARGS": "--eval-max-new-tokens 32 --eval-max-total-tokens 64",
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MAKEFLAGS", None)
    proc = subprocess.run(["make", "--no-print-directory", "pipeline", *(f"{k}={v}" for k, v in small.items())],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "small"
    assert (run / "report.md").is_file()
    assert sorted(p.name for p in (run / "tb").iterdir()) == ["rl1", "sft"]
    sft = _tensorboard_scalars(run / "tb" / "sft")
    steps = [json.loads(line)["step"] for line in (run / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))  # 48 trajectories, batch 8, one epoch
    assert sft["train/loss"] == steps and sft["train/lr"] == steps
    assert sft["eval/accuracy"] == [3, 6]  # EVAL_EVERY=3 and the last step
    rl = _tensorboard_scalars(run / "tb" / "rl1")
    assert rl["train/reward_mean"] == [1, 2] and rl["train/kl"] == [1, 2] and rl["finish/answer"] == [1, 2]
    assert rl["eval/accuracy"] == [2]
