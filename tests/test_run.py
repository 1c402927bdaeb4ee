"""The run directory sft and rl-stage share (train/run.py): refusals, resume, metrics cut back, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1ci_cli.errors import R1ciError
from r1ci_cli.train.checkpoint import CheckpointOptions
from r1ci_cli.train.run import METRICS, RESOLVED_CONFIG, check_output, open_run


@pytest.fixture(scope="module")
def engine_and_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    from r1ci_cli.train.engine import EngineOptions, TorchEngine

    return TorchEngine(tiny_model_dir, EngineOptions(device="cpu")), AutoTokenizer.from_pretrained(tiny_model_dir)


def _rows(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / METRICS).read_text().splitlines()]


def test_a_fresh_run_refuses_a_used_directory_and_a_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    with pytest.raises(R1ciError, match="not empty; use --resume"):
        check_output(CheckpointOptions(str(tmp_path / "run")))
    check_output(CheckpointOptions(str(tmp_path / "run"), resume=True))
    check_output(CheckpointOptions(str(tmp_path / "no" / "run")))  # missing parents are created with the run
    (tmp_path / "file").write_text("x")
    with pytest.raises(R1ciError, match="is not a directory"):
        check_output(CheckpointOptions(str(tmp_path / "file" / "run")))


def test_resume_continues_after_the_checkpoint_and_redoes_later_rows_once(tmp_path: Path, engine_and_tokenizer) -> None:
    engine, tokenizer = engine_and_tokenizer
    options = CheckpointOptions(str(tmp_path / "run"), save_every=2)
    run = open_run(options, key="k1")
    assert run.checkpoint is None and run.start_step == 0
    run.start({"lr": {"value": 1, "source": "commandline"}}, options, {"total_steps": 3})
    with run:
        for step in (1, 2, 3):
            run.append({"step": step})
            if step == 2:
                run.save(step, engine, tokenizer, {"stage": 1})
    config = json.loads((tmp_path / "run" / RESOLVED_CONFIG).read_text())
    assert config["flags"]["lr"]["source"] == "commandline" and config["run_key"] == "k1"
    assert config["options"]["save_every"] == 2 and config["derived"] == {"total_steps": 3}
    assert _rows(tmp_path / "run") == [1, 2, 3]  # step 3 ran but was never saved (the crash)

    with pytest.raises(R1ciError, match="other data or settings"):
        open_run(CheckpointOptions(options.output, resume=True), key="k2")
    again = open_run(CheckpointOptions(options.output, resume=True), key="k1")
    assert again.checkpoint.name == "step-000002" and again.start_step == 2 and again.state["stage"] == 1
    again.start({}, options, {})
    assert _rows(tmp_path / "run") == [1, 2]  # the unsaved row is redone, not kept twice
    with again:
        again.append({"step": 3})
        again.save(3, engine, tokenizer)
    assert _rows(tmp_path / "run") == [1, 2, 3]
    assert json.loads((again.checkpoint.parent / "step-000003" / "trainer_state.json").read_text())["metrics_rows"] == 3
    again.export(engine, tokenizer)
    assert (tmp_path / "run" / "config.json").is_file() and (tmp_path / "run" / "tokenizer.json").is_file()
    assert not (tmp_path / "run" / ".tmp-export").exists()
