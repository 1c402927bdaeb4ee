"""Small real training inputs for the reporting and evaluation tests: a micro model (with dropout, so a
training step draws from torch's global random stream), word-sorting tasks, held-out tasks and reference
teacher trajectories, all made here through the commands themselves."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from r1ci_cli.cli import cli

EASY = ["--tasks", "word_sorting", "--difficulty", "word_sorting.min_words=2", "--difficulty",
        "word_sorting.max_words=2"]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


def make_inputs(root: Path) -> dict[str, str]:
    """``model``, ``tasks`` (train pool), ``heldout`` (eval pool) and ``teacher`` (correct reference
    trajectories, short prompts) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    model = root / "m0"
    invoke("init-model", "-q", "--preset", "micro", "--seed", "0", "-o", str(model))
    config = json.loads((model / "config.json").read_text())
    config["attention_dropout"] = 0.1  # training then draws random numbers (what an evaluation must not touch)
    (model / "config.json").write_text(json.dumps(config, indent=2))
    paths = {"model": str(model), "tasks": str(root / "tasks.jsonl"), "heldout": str(root / "heldout.jsonl"),
             "teacher": str(root / "teacher.jsonl")}
    invoke("gen-tasks", "-q", *EASY, "--num-per-task", "24", "-o", paths["tasks"])
    invoke("gen-tasks", "-q", *EASY, "--pool", "eval", "--num-per-task", "4", "-o", paths["heldout"])
    invoke("rollout", "-q", paths["tasks"], "--backend", "reference", "--keep", "correct", "--prompts", "short",
           "-o", paths["teacher"])
    return paths


def staged(tasks: str, out: Path) -> str:
    """The tasks as a curriculum pool (every instance in group 1), for rl-stage."""
    rows = [json.loads(line) for line in Path(tasks).read_text().splitlines()]
    out.write_text("".join(json.dumps({**row, "group": 1}) + "\n" for row in rows))
    return str(out)
