"""The command-line surface: help everywhere, import-clean start-up, exit codes, quiet broken pipes."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from click.testing import CliRunner

from r1ci_cli.cli import available_commands, cli, load_command

PY = [sys.executable, "-m", "r1ci_cli"]


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for name in available_commands():
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, result.output
        doc = load_command(name).help or ""
        assert doc.strip().splitlines()[0], f"{name} has no summary line"
        assert "Example:" in doc, f"{name}'s help has no example"


def test_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom r1ci_cli.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "for name in ['" + "', '".join(available_commands()) + "']:\n"
            "    try:\n        main([name, '--help'])\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'deepspeed', 'vllm', 'reasoning_gym', 'numpy') "
            "if m in sys.modules]\nsys.stderr.write(repr(heavy))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stderr.strip().endswith("[]"), proc.stderr[-2000:]


def test_flag_misuse_exits_2_and_bad_input_exits_1(tmp_path):
    bad = subprocess.run(PY + ["gen-tasks", "--num-per-task", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == ""
    missing = subprocess.run(PY + ["gen-tasks", "--tasks", "no_such_task_anywhere", "--source", "bbh"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "no_such_task_anywhere" in missing.stderr


def test_closed_pipe_ends_quietly():
    cmd = " ".join(PY) + " gen-tasks -q --source bbh --tasks boolean_expressions --num-per-task 5000 | head -n 1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert orjson.loads(proc.stdout)["task"] == "boolean_expressions"


def test_gen_tasks_writes_no_partial_file_on_error(tmp_path):
    out = tmp_path / "t.jsonl.zst"
    proc = subprocess.run(PY + ["gen-tasks", "--source", "bbh", "--tasks", "boolean_expressions",
                                "--difficulty", "no_such_knob=3", "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "no_such_knob" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_console_scripts_run():
    """``r1ci-<command>`` scripts sit beside the interpreter after ``pip install``."""
    from pathlib import Path

    bindir = Path(sys.executable).parent
    if not (bindir / "r1ci").exists():
        pytest.skip("r1ci is not installed as a package in this interpreter")
    for name in available_commands():
        proc = subprocess.run([str(bindir / f"r1ci-{name}"), "--help"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and f"r1ci-{name}" in proc.stdout, proc.stderr


def test_threads_option_sets_torch_threads_or_the_variables_before_import(monkeypatch):
    import sys

    import torch

    from r1ci_cli.commands.base import _apply_threads

    before = torch.get_num_threads()
    try:
        _apply_threads(None, None, 1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    _apply_threads(None, None, 3)
    import os

    assert os.environ["OMP_NUM_THREADS"] == "3" and os.environ["MKL_NUM_THREADS"] == "3"
    assert _apply_threads(None, None, None) is None


def test_help_shows_a_plain_percent_sign():
    result = CliRunner().invoke(cli, ["rollout", "--help"])
    assert result.exit_code == 0 and "%%" not in result.stdout and "p % N == I" in " ".join(result.stdout.split())


@pytest.mark.slow
def test_quiet_means_nothing_on_stderr_from_the_libraries_either(tmp_path):
    """-q: no DeepSpeed accelerator warning (on stdout, from its import through transformers), no transformers
    "Loading weights" or "Writing model shards" bar: nothing at all on success. Fresh processes, since DeepSpeed
    warns once per process."""
    tasks, model = tmp_path / "tasks.jsonl", tmp_path / "m"
    made = CliRunner().invoke(cli, ["gen-tasks", "--tasks", "game24", "--num-per-task", "2", "-o", str(tasks)])
    assert made.exit_code == 0, made.output
    runs = {
        "init-model": PY + ["init-model", "-q", "--preset", "micro", "-o", str(model)],
        "rollout": PY + ["rollout", "-q", str(tasks), "--backend", "hf", "--model", str(model), "--max-new-tokens", "4",
                         "--max-total-tokens", "4", "-o", str(tmp_path / "out.jsonl")],
    }
    for name, cmd in runs.items():
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (proc.stdout, proc.stderr) == ("", ""), name
