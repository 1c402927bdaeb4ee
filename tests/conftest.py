"""Shared fixtures: an isolated environment for every test, and a way to run reference programs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Tiny models on a 2-core machine that the sandbox's workers share: one torch thread, in this process and in every
# command a test starts, is faster than two contending (test_rl_mismatch: 107 s -> 13 s). Set before torch is
# imported; a test about threads sets its own (test_cli.py), and an OMP_NUM_THREADS already set is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches, HOME and every R1CI_* variable point into a temporary directory; nothing touches the network."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith("R1CI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


def shared_data() -> Path:
    """The reference data beside the checkout; tests that need it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sandbox_pool():
    """One sandbox pool for the whole session (auto isolation: the strongest mode this host offers)."""
    from r1ci_cli.sandbox import SandboxOptions, SandboxPool

    with SandboxPool(SandboxOptions(workers=2, timeout_s=60.0)) as pool:
        yield pool


@pytest.fixture
def run_programs(sandbox_pool):
    """Run Python sources in the sandbox; returns (stdout, stderr, exit_code) per source, in order.

    A program that does not finish with status ``ok`` returns a non-zero code and its status in stderr.
    """

    def run(sources: list[str], timeout_s: float = 60.0) -> list[tuple[str, str, int]]:
        futures = [sandbox_pool.submit(src, timeout_s=timeout_s) for src in sources]
        out = []
        for future in futures:
            result = future.result()
            code = result.exit_code if result.status in ("ok", "error") and result.exit_code is not None else -1
            stderr = result.stderr if result.status in ("ok", "error") else f"[{result.status}] {result.stderr}"
            out.append((result.stdout, stderr, code))
        return out

    return run


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random-init Qwen2 model with a locally trained tokenizer, made once per session."""
    from r1ci_cli.models import InitModelOptions, init_model

    return str(init_model(tmp_path_factory.mktemp("tiny") / "model", InitModelOptions(preset="tiny", seed=0)))


@pytest.fixture(scope="session")
def training_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A micro model with dropout, word-sorting tasks, held-out tasks and teacher trajectories
    (``training_inputs.make_inputs``), made once per session."""
    from training_inputs import make_inputs

    return make_inputs(tmp_path_factory.mktemp("training-inputs"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny matrices on a shared 2-core machine: one torch thread is many times faster than two contending."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def learner(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The RL tests' partly right SFT'd tiny model and its stage pool (``learner_model.make_learner``), made once
    per session and read-only: tests/test_rl_learning.py trains from it, tests/test_rl.py resumes runs from it."""
    from learner_model import make_learner

    return make_learner(tmp_path_factory.mktemp("learner"))
