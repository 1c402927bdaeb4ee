"""Every `r1ci …` example line of the README runs, in README order, as a user would type it (bash, the
console script on PATH): they are the first thing users type.

Lines run unchanged except for what is listed below, each with its reason: sizes (SMALLER, and defaults made
small through the documented `R1CI_<COMMAND>_<OPTION>` variables in ENV) so the test fits CI, files a line
assumes the user already has (SETUP, run before the line), and lines that need a GPU, a server or the network
(SKIP, each tested elsewhere; the five-minute tour runs whole in tests/test_tour.py). A README line that none of these tables knows runs as written; a table entry that
matches no README line fails the test, so the tables cannot go stale.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lines that cannot run here: a prefix of the line -> why (and where it is tested instead).
SKIP = {
    "r1ci exec-sandbox --serve": "a service that runs until stopped (tests/test_sandbox_service.py)",
    "r1ci rollout train.jsonl.zst --backend openai": "the OpenAI API over the network (tests/test_backend_openai.py "
                                                     "runs the backend against a loopback server)",
    "r1ci init-model --from-gguf SmolLM2": "a 93 MB wheel from PyPI (make smollm2; tests/test_models_gguf.py converts "
                                           "a GGUF written from a tiny Llama, and the real wheel when cached)",
    "torchrun --nproc-per-node 8": "8 GPUs and a hub model (tests/test_deepspeed.py runs 2 CPU ranks)",
}
# Sizes written on a line: old -> new (the same everywhere, so `gen-tasks --check` still matches its file).
SMALLER = {
    "--num-per-task 100": "--num-per-task 1",
    "--num-per-task 200": "--num-per-task 1",
    "--num-per-task 50": "--num-per-task 1",
    "--preset small": "--preset micro",
    "for style in agent text code steer; do for t in 0.2 0.4 0.6 0.8 1.0; do":
        "for style in agent; do for t in 0.6 1.0; do",
}
# Defaults made small (flags on a line still win, as the README says).
ENV = {
    "R1CI_GEN_TASKS_NUM_PER_TASK": "1",
    "R1CI_INIT_MODEL_PRESET": "micro",
    "R1CI_SFT_MAX_STEPS": "2",
    "R1CI_RL_STAGE_STEPS": "1",
    "R1CI_RL_STAGE_BATCH_SIZE": "2",
    "R1CI_RL_STAGE_GROUP_SIZE": "2",
    "R1CI_RL_STAGE_MAX_NEW_TOKENS": "16",
    "R1CI_RL_STAGE_MAX_TOTAL_TOKENS": "32",
    "R1CI_ROLLOUT_MAX_NEW_TOKENS": "16",
    "R1CI_ROLLOUT_MAX_TOTAL_TOKENS": "32",
    "R1CI_EVAL_RUN_MAX_NEW_TOKENS": "16",
    "R1CI_EVAL_RUN_MAX_TOTAL_TOKENS": "32",
    "R1CI_SCORE_POTENTIAL_MIN_SAMPLES": "2",
    "OMP_NUM_THREADS": "1",
    "WANDB_MODE": "offline",  # no W&B account here: the run is written locally, as `wandb offline` makes it
}
# Files a line takes as given, made first (a prefix of the line -> bash).
SETUP = {
    "r1ci exec-sandbox requests.jsonl.zst":
        "printf '{\"id\":\"a\",\"code\":\"print(6*7)\"}\\n{\"id\":\"b\",\"code\":\"import sys; sys.exit(3)\"}\\n'"
        " > requests.jsonl.zst",
    "r1ci gen-tasks --split train --pool train --seed 1 --exclude sft-tasks.jsonl.zst":
        "r1ci gen-tasks --tasks game24 --num-per-task 2 -o sft-tasks.jsonl.zst",
    "r1ci rollout tasks.jsonl.zst": "r1ci gen-tasks --tasks game24 --num-per-task 2 -o tasks.jsonl.zst",
    "r1ci init-model -o m0 ": "rm -rf m0",  # the pipeline example made one already
    "r1ci init-model -o m0c": "r1ci gen-tasks --split train --num-per-task 1 | head -c 50000 > my_text.txt",
    "r1ci sft refs.jsonl.zst --model m0 -o m1  ": "cp teacher.jsonl.zst refs.jsonl.zst",
    # The three sft lines are alternatives: the second starts afresh, the third resumes the first.
    "r1ci sft refs.jsonl.zst --model m0 -o m1 --lr": "mv m1 m1.first",
    "r1ci sft refs.jsonl.zst --model m0 -o m1 --resume": "rm -rf m1 && mv m1.first m1",
    "for style in": "r1ci gen-tasks --tasks game24 --num-per-task 4 -o train.jsonl.zst",
    # "Watching a run" shows files of a `make all` run and of a run with --eval-every: stand-ins do.
    "r1ci show runs/tiny/teacher.jsonl.zst": "mkdir -p runs/tiny && cp teacher.jsonl.zst runs/tiny/",
    "r1ci show runs/tiny/eval-sft.jsonl.zst": "cp evals/sft.jsonl.zst runs/tiny/eval-sft.jsonl.zst",
    "r1ci show ckpt/rl1/eval/step-000010.jsonl.zst":
        "mkdir -p ckpt/rl1/eval && cp evals/rl2.jsonl.zst ckpt/rl1/eval/step-000010.jsonl.zst",
    # The reporting examples start their runs afresh (a used -o needs --resume).
    "r1ci sft refs.jsonl.zst --model m0 -o ckpt/sft --report-to": "rm -rf ckpt/sft",
    "r1ci rl-stage staged.jsonl.zst --stage 1 --model ckpt/sft -o ckpt/rl1 --report-to": "rm -rf ckpt/rl1",
    "r1ci eval report base.jsonl.zst":
        "cp evals/sft.jsonl.zst base.jsonl.zst && cp evals/sft.jsonl.zst sft.jsonl.zst"
        " && cp evals/rl2.jsonl.zst rl1.jsonl.zst",  # stand-ins: any trajectory files do
}


def readme_commands() -> list[str]:
    """Each shell command of a README code block that runs r1ci (continuations joined, a for loop whole)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    # The five-minute tour runs as written, with its own setup lines, in tests/test_tour.py.
    before, _, rest = text.partition("\n## Five-minute tour\n")
    text = before + ("\n## " + rest.split("\n## ", 1)[1] if "\n## " in rest else "")
    commands = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.M | re.S):
        lines = block.replace("\\\n", " ").splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("for "):
                end = next(j for j in range(i, len(lines)) if lines[j].startswith("done"))
                line, i = "\n".join(lines[i:end + 1]), end
            if re.search(r"(^\s*|[|&;]\s*)r1ci [a-z]|-m r1ci_cli [a-z]", line, flags=re.M):
                commands.append(line.strip())
            i += 1
    return commands


def test_the_readme_has_examples_and_every_table_entry_matches_one():
    commands = readme_commands()
    assert len(commands) >= 25, commands
    for table in (SKIP, SETUP):
        for prefix in table:
            assert any(c.startswith(prefix) for c in commands), f"no README line starts with {prefix!r}"
    for old in SMALLER:
        assert any(old in c for c in commands), f"no README line holds {old!r}"


@pytest.mark.slow
@pytest.mark.long
def test_every_readme_example_line_runs(tmp_path: Path):
    env = {**os.environ, **ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    ran, started = 0, time.monotonic()
    for command in readme_commands():
        if any(command.startswith(prefix) for prefix in SKIP):
            continue
        for prefix, setup in SETUP.items():
            if command.startswith(prefix):
                subprocess.run(["bash", "-c", "set -eo pipefail; " + setup], cwd=tmp_path, env=env, check=True,
                               capture_output=True, timeout=300)
        line = command
        for old, new in SMALLER.items():
            line = line.replace(old, new)
        proc = subprocess.run(["bash", "-c", "set -eo pipefail\n" + line], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"README line failed (exit {proc.returncode}):\n{line}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, f"{line}\n{proc.stderr[-3000:]}"
        ran += 1
        print(f"{time.monotonic() - started:6.0f} s  {line[:100]}", flush=True)
    print(f"{ran} README lines in {time.monotonic() - started:.0f} s")
    assert (tmp_path / "report.md").is_file() and (tmp_path / "ckpt" / "rl2").is_dir()
