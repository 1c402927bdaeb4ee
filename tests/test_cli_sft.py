"""The sft command: help, flag checks, one-line errors on bad input, resolved config, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from r1ci_cli.cli import cli
from test_sequences import make_trajectory
from test_sft import arithmetic_trajectories, micro_model, write_jsonl  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices on a shared machine (conftest.py)

ROOT = Path(__file__).resolve().parents[1]


def _invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["sft", *args], env=env, auto_envvar_prefix="R1CI")


def test_help_has_summary_and_example() -> None:
    result = _invoke(["--help"])
    assert result.exit_code == 0
    assert "r1ci sft refs.jsonl.zst --model m0 -o m1" in result.stdout
    # --batch-size shows the paper's default (click may wrap the line)
    assert re.search(r"--batch-size\b[^\[]*\[default:\s+32[;\]]", result.stdout), result.stdout


def test_help_does_not_import_torch() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys\nfrom r1ci_cli.cli import load_command\n"
                          "load_command('sft'); load_command('init-model'); print('torch' in sys.modules)"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_cli_trains_and_writes_resolved_config(tmp_path: Path, micro_model: str) -> None:
    refs = write_jsonl(tmp_path / "refs.jsonl", arithmetic_trajectories(8))
    out = tmp_path / "m1"
    result = _invoke([refs, "--model", micro_model, "-o", str(out), "--epochs", "1", "--batch-size", "4",
                      "--micro-batch-size", "2", "--lr", "1e-3", "--device", "cpu", "-q"],
                     env={"R1CI_SFT_MAX_SEQ_LEN": "300"})
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    flags = json.loads((out / "resolved_config.json").read_text())["flags"]
    assert flags["lr"] == {"value": 1e-3, "source": "commandline"}
    assert flags["max_seq_len"] == {"value": 300, "source": "environment"}
    assert flags["weight_decay"]["source"] == "default"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


BAD_ROWS = [
    ({"turns": []}, "field 'turns': must hold at least one turn"),
    ({"correct": "yes"}, "field 'correct': must be true or false"),
    ({"turns": [{"role": "model", "text": 5}]}, "field 'turns[0].text'"),
    ({"turns": [{"role": "user", "text": "x"}]}, "field 'turns[0].role'"),
]


@pytest.mark.parametrize("change,message", BAD_ROWS)
def test_bad_input_is_a_one_line_error(tmp_path: Path, micro_model: str, change: dict[str, Any],
                                       message: str) -> None:
    rows = [make_trajectory(i) for i in range(4)]
    rows[1].update(change)
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    result = _invoke([path, "--model", micro_model, "-o", str(tmp_path / "m1"), "--batch-size", "4"])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.jsonl:2:" in lines[0] and message in lines[0], result.stderr


def test_not_json_is_a_one_line_error(tmp_path: Path, micro_model: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(make_trajectory()) + "\n{not json\n")
    result = _invoke([str(path), "--model", micro_model, "-o", str(tmp_path / "m1")])
    assert result.exit_code == 1 and "bad.jsonl:2:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    refs = write_jsonl(tmp_path / "refs.jsonl", arithmetic_trajectories(4))
    result = _invoke([refs, "--model", str(tmp_path / "nope"), "-o", str(tmp_path / "m1"), "--batch-size", "4"])
    assert result.exit_code == 1 and "--model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_deepspeed_config_must_exist(tmp_path: Path) -> None:
    result = _invoke(["--model", "m0", "-o", str(tmp_path / "m1"), "--deepspeed", str(tmp_path / "none.json")])
    assert result.exit_code == 2


def _sft_process(refs: str, model: str, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = [sys.executable, "-m", "r1ci_cli", "sft", refs, "--model", model, "-o", str(out), "--epochs", "3",
            "--batch-size", "2", "--micro-batch-size", "1", "--lr", "2e-3", "--save-every", "3",
            "--device", "cpu", "-q", *extra]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted(tmp_path: Path, micro_model: str) -> None:
    from safetensors.torch import load_file

    refs = write_jsonl(tmp_path / "refs.jsonl", arithmetic_trajectories(16))
    full = _sft_process(refs, micro_model, tmp_path / "full")
    assert full.wait(timeout=600) == 0, full.stderr.read().decode()

    victim = _sft_process(refs, micro_model, tmp_path / "killed")
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.monotonic() + 600
    while not latest.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "model.safetensors").exists()

    resumed = _sft_process(refs, micro_model, tmp_path / "killed", "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()

    def metrics(out: Path) -> list[dict[str, Any]]:
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")} for r in rows]

    assert metrics(tmp_path / "killed") == metrics(tmp_path / "full")
    want = load_file(str(tmp_path / "full" / "model.safetensors"))
    got = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert all((want[k] == got[k]).all() for k in want)


def test_missing_parent_directories_of_the_run_directory_are_created(tmp_path: Path, micro_model: str) -> None:
    refs = write_jsonl(tmp_path / "refs.jsonl", arithmetic_trajectories(4))
    out = tmp_path / "ckpt" / "sft"
    result = _invoke([refs, "--model", micro_model, "-o", str(out), "--epochs", "1", "--batch-size", "4",
                      "--micro-batch-size", "4", "--device", "cpu", "--max-steps", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file()
    (tmp_path / "file").write_text("x")
    blocked = _invoke([refs, "--model", micro_model, "-o", str(tmp_path / "file" / "sft"), "-q"])
    assert blocked.exit_code == 1 and "not a directory" in blocked.stderr
