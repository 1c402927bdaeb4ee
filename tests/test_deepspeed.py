"""DeepSpeed engine on CPU (gloo): 2 ranks match one process; ZeRO-3 resumes; config and launcher checks.

The 2-rank tests are slow: DeepSpeed JIT-compiles a communication extension on first start (~40 s), kept in
``TORCH_EXTENSIONS_DIR`` (default here: ``.torch_extensions/`` in the checkout, ignored by git). CPUAdam
(ZeRO-Offload) is not exercised: its compile alone takes minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from r1ci_cli.errors import R1ciError
from test_sft import arithmetic_trajectories, micro_model, write_jsonl  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices on a shared machine (conftest.py)

pytest.importorskip("deepspeed")

ROOT = Path(__file__).resolve().parents[1]
TRAIN_FLAGS = ["--batch-size", "8", "--micro-batch-size", "2", "--lr", "2e-3", "--epochs", "1", "--max-steps", "4",
               "--save-every", "2", "--device", "cpu", "-q"]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.setdefault("TORCH_EXTENSIONS_DIR", str(ROOT / ".torch_extensions"))
    return env


def _run(args: list[str], ranks: int, port: int) -> None:
    if ranks:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
                    "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "r1ci_cli"]
    else:
        launcher = [sys.executable, "-m", "r1ci_cli"]
    proc = subprocess.run([*launcher, "sft", *args], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "", proc.stdout[-2000:]


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def _config(tmp_path: Path, stage: int) -> str:
    path = tmp_path / f"zero{stage}.json"
    path.write_text(json.dumps({"zero_optimization": {"stage": stage}}))
    return str(path)


@pytest.fixture
def refs(tmp_path: Path) -> str:
    return write_jsonl(tmp_path / "refs.jsonl", arithmetic_trajectories(32))


@pytest.mark.slow
def test_two_ranks_zero2_match_single_process(tmp_path: Path, micro_model: str, refs: str) -> None:
    _run([refs, "--model", micro_model, "-o", str(tmp_path / "single"), *TRAIN_FLAGS], 0, 0)
    _run([refs, "--model", micro_model, "-o", str(tmp_path / "z2"), "--deepspeed", _config(tmp_path, 2),
          *TRAIN_FLAGS], 2, 29631)
    assert _losses(tmp_path / "z2") == pytest.approx(_losses(tmp_path / "single"), rel=1e-4)
    resolved = json.loads((tmp_path / "z2" / "resolved_config.json").read_text())["derived"]
    assert resolved["world_size"] == 2 and resolved["grad_accum"] == 2


@pytest.mark.slow
@pytest.mark.long
def test_two_ranks_zero3_resume_and_close_to_single_process(tmp_path: Path, micro_model: str, refs: str) -> None:
    out = tmp_path / "z3"
    args = [refs, "--model", micro_model, "-o", str(out), "--deepspeed", _config(tmp_path, 3), *TRAIN_FLAGS]
    _run(args, 2, 29632)
    full = _losses(out)
    _run([refs, "--model", micro_model, "-o", str(tmp_path / "single"), *TRAIN_FLAGS], 0, 0)
    # ZeRO-3 partitions and reduces in another order; the first step sees identical weights.
    assert full[0] == pytest.approx(_losses(tmp_path / "single")[0], rel=1e-6)
    assert full == pytest.approx(_losses(tmp_path / "single"), rel=2e-2)
    # A crash after the step-2 checkpoint: later files gone, 'latest' points at step 2.
    shutil.rmtree(out / "checkpoints" / "step-000004")
    (out / "checkpoints" / "latest").write_text("step-000002\n")
    (out / "model.safetensors").unlink()
    _run([*args, "--resume"], 2, 29633)
    assert _losses(out) == pytest.approx(full, rel=1e-6)
    assert (out / "model.safetensors").is_file()


def test_engine_needs_launcher_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from r1ci_cli.train.deepspeed_engine import DeepSpeedEngine
    from r1ci_cli.train.engine import EngineOptions

    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(R1ciError, match="RANK, LOCAL_RANK, WORLD_SIZE"):
        DeepSpeedEngine("m0", EngineOptions(lr=1e-3, total_steps=1, warmup_steps=0, deepspeed_config="x.json"))


@pytest.mark.parametrize("content,message", [
    ({"optimizer": {"type": "Adam"}}, "remove the 'optimizer' section"),
    ({"scheduler": {"type": "WarmupLR"}}, "remove the 'scheduler' section"),
    ([1, 2], "must be a JSON object"),
    ("{not json", "cannot read"),
])
def test_bad_configs_are_refused(tmp_path: Path, content: Any, message: str) -> None:
    from r1ci_cli.train.deepspeed_engine import read_config
    from r1ci_cli.train.engine import EngineOptions

    path = tmp_path / "ds.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(R1ciError, match=message):
        read_config(str(path), EngineOptions(lr=1e-3, total_steps=1, warmup_steps=0), 1, "fp32")


def test_config_batch_geometry_comes_from_flags(tmp_path: Path) -> None:
    from r1ci_cli.train.deepspeed_engine import read_config
    from r1ci_cli.train.engine import EngineOptions

    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"train_batch_size": 999, "zero_optimization": {"stage": 2}}))
    options = EngineOptions(lr=1e-3, total_steps=1, warmup_steps=0, micro_batch_size=2, grad_accum=4,
                            grad_clip=0.5)
    config = read_config(str(path), options, 2, "bf16")
    assert (config["train_batch_size"], config["train_micro_batch_size_per_gpu"],
            config["gradient_accumulation_steps"], config["gradient_clipping"]) == (16, 2, 4, 0.5)
    assert config["bf16"] == {"enabled": True}
