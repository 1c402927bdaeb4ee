"""The RL tests' learner: a ``tiny`` model SFT'd 40 steps on answer-only ``boolean_expressions`` trajectories,
right about 40% of the time at temperature 1 ("partly right"), so its GRPO groups have reward variance and
rl-stage moves its weights. Built once per session (``conftest.learner``) for tests/test_rl_learning.py and
tests/test_rl.py, which trained the very same model each on its own."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import orjson

from r1ci_cli.records import Task

NUM_TASKS = 48
SFT_STEPS = 40
PROMPTS = "short"  # the short agent prompt: a third of the paper's tokens, so every step is ~3x cheaper


def learner_tasks() -> list[Task]:
    """48 easy BBH ``boolean_expressions`` instances (at most two literals, at most one ``not``)."""
    from r1ci_cli.tasks.generate import GenOptions, generate_tasks

    opts = GenOptions(sources=("bbh",), tasks=("boolean_expressions",), num_per_task=NUM_TASKS, pool="train",
                      difficulty=("max_literals=2", "max_nots=1"), seed=0)
    return list(generate_tasks(opts))


def teacher_rows(tasks: list[Task]) -> list[dict]:
    """Answer-only trajectories in the agent format (what rl-stage rolls out), correct by construction."""
    from r1ci_cli.rollout.prompts import load_prompts

    system = load_prompts(PROMPTS)["agent"]
    rows = []
    for task in tasks:
        prompt = [{"role": "system", "content": system}, {"role": "user", "content": task.question}]
        rows.append({"id": f"{task.id}/teacher", "task_id": task.id, "style": "agent", "temperature": 1.0,
                     "model": "teacher", "answer": task.answer, "correct": True, "reward": 1.1,
                     "num_code_calls": 0, "finish": "answer",
                     "turns": [{"role": "model", "text": f"<<<{task.answer}>>>"}],
                     "task": task.task, "question": task.question, "prompt": prompt})
    return rows


def make_learner(root: Path) -> dict[str, str]:
    """``model`` (the SFT'd model directory), ``staged`` (the instances as a one-group stage pool, p 0.4) and
    ``base`` (the tiny model it started from) under ``root``; every file and directory made read-only, since
    the tests share them (a test that writes copies first)."""
    import torch

    from r1ci_cli.models import InitModelOptions, init_model
    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions
    from r1ci_cli.train.options import SftOptions
    from r1ci_cli.train.sft import sft

    root.mkdir(parents=True, exist_ok=True)
    tasks = learner_tasks()
    assert len(tasks) == NUM_TASKS
    refs = root / "teacher.jsonl"
    refs.write_text("".join(json.dumps(row) + "\n" for row in teacher_rows(tasks)))
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine is shared: more torch threads than cores is many times slower
    try:
        base = init_model(root / "m0", InitModelOptions(preset="tiny", seed=0))
        engine = EngineOptions(lr=1e-3, micro_batch_size=8, device="cpu", precision="fp32")
        sft([str(refs)], SftOptions(model=str(base), checkpoint=CheckpointOptions(str(root / "sft"), save_every=10**9),
                                    epochs=1000, batch_size=8, warmup_ratio=0.1, max_steps=SFT_STEPS, seed=0,
                                    engine=engine), progress=False)
    finally:
        torch.set_num_threads(before)
    staged = root / "staged.jsonl"
    staged.write_bytes(b"".join(orjson.dumps({**t.to_dict(), "group": 1, "p": 0.4}) + b"\n" for t in tasks))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.chmod(path, os.stat(path).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    for dirpath, _dirnames, _filenames in os.walk(root, topdown=False):
        os.chmod(dirpath, os.stat(dirpath).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return {"model": str(root / "sft"), "staged": str(staged), "base": str(base)}
