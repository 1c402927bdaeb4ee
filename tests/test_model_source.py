"""One rule for --model in every command: an existing directory loads locally; an ``org/name`` hub name loads
through transformers' cache (offline under HF_HUB_OFFLINE=1, which conftest sets); anything else, an empty
directory or a broken config.json is a one-line error at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1ci_cli.cli import cli
from r1ci_cli.errors import R1ciError
from r1ci_cli.model_source import resolve_model


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    from r1ci_cli.models import InitModelOptions, init_model

    return init_model(tmp_path_factory.mktemp("micro") / "m", InitModelOptions(preset="micro", seed=0))


def test_an_existing_model_directory_is_local(micro):
    assert resolve_model(str(micro)) == str(micro)


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "empty directory"),
    (lambda d: (d / "notes.txt").write_text("x"), "no config.json"),
    (lambda d: (d / "config.json").write_text('{"model_type": "qwen2",\n  oops'), "config.json:2: invalid JSON"),
    (lambda d: (d / "config.json").write_text("[1]"), "config.json: expected a JSON object"),
    (lambda d: (d / "config.json").write_text("{}"), "field 'model_type': missing"),
])
def test_a_directory_that_is_no_model_is_one_line(tmp_path, make, message):
    directory = tmp_path / "m"
    directory.mkdir()
    make(directory)
    with pytest.raises(R1ciError, match=message) as err:
        resolve_model(str(directory))
    assert "\n" not in str(err.value) and str(directory) in str(err.value)


@pytest.mark.parametrize("spec", ["no_such_model", "./ckpt/sft", "a/b/c", "/abs/missing"])
def test_anything_else_is_refused_at_once(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(R1ciError, match="no such directory"):
        resolve_model(spec)


def test_a_path_whose_parent_exists_here_is_a_path_not_a_hub_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(R1ciError, match="ckpt/sft: no such directory"):
        resolve_model("ckpt/sft")


def test_a_hub_name_missing_from_the_offline_cache_is_refused_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(R1ciError, match="Qwen/Qwen2.5-7B-Instruct.*HF_HUB_OFFLINE=1.*cache"):
        resolve_model("Qwen/Qwen2.5-7B-Instruct")


def _cache(model: Path, name: str, home: Path) -> None:
    """Put a model directory where huggingface_hub's cache under ``home`` (HF_HOME) keeps ``name``."""
    org, repo = name.split("/")
    root = home / "hub" / f"models--{org}--{repo}"
    snapshot = root / "snapshots" / ("0" * 40)
    shutil.copytree(model, snapshot)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text("0" * 40)


def test_a_cached_hub_name_loads_offline(micro, tasks, tmp_path):
    """In a fresh process (huggingface_hub reads HF_HOME when imported): a rollout with a cached hub name."""
    import json
    import os
    import subprocess
    import sys

    home = tmp_path / "hf"
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    _cache(micro, "someorg/micro", home)
    proc = subprocess.run([sys.executable, "-m", "r1ci_cli", "rollout", tasks, "--backend", "hf", "--model",
                           "someorg/micro", "--max-new-tokens", "4", "--max-total-tokens", "4", "-q"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert row["model"] == "someorg/micro" and row["tokenizer"]


COMMANDS = {
    "rollout": ["rollout", "TASKS", "--backend", "hf", "--model", "MODEL"],
    "eval": ["eval", "TASKS", "--backend", "hf", "--model", "MODEL"],
    "sft": ["sft", "TASKS", "--model", "MODEL", "-o", "OUT"],
    "rl-stage": ["rl-stage", "TASKS", "--stage", "1", "--model", "MODEL", "-o", "OUT"],
}


@pytest.fixture
def tasks(tmp_path):
    path = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(cli, ["gen-tasks", "-q", "--tasks", "game24", "--num-per-task", "1", "-o", str(path)])
    assert result.exit_code == 0
    return str(path)


def _invoke(command, tasks, model, tmp_path):
    args = [{"TASKS": tasks, "MODEL": model, "OUT": str(tmp_path / "out")}.get(a, a) for a in COMMANDS[command]]
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("model, message", [
    ("missing_model_dir", "no such directory"),
    ("someorg/not-cached", "HF_HUB_OFFLINE=1"),
    ("EMPTY", "empty directory"),
    ("CORRUPT", "config.json:1: invalid JSON"),
])
def test_every_command_applies_the_same_rule(command, model, message, tasks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "CORRUPT").mkdir()
    (tmp_path / "CORRUPT" / "config.json").write_text("{not json")
    result = _invoke(command, tasks, model, tmp_path)
    assert result.exit_code == 1, (result.output, result.exception)
    assert message in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["rollout", "eval"])
def test_unreadable_weights_are_one_line(command, micro, tasks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(micro, broken)
    (broken / "model.safetensors").write_text("garbage")
    result = _invoke(command, tasks, str(broken), tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1 and "cannot be loaded" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
