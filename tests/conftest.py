"""Shared fixtures: an isolated environment for every test, and a way to run reference programs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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


@pytest.fixture
def run_programs():
    """Run Python sources and return their stripped stdout (sandbox pool once it lands)."""

    def run(sources: list[str], timeout_s: float = 60.0) -> list[tuple[str, str, int]]:
        out = []
        for src in sources:
            proc = subprocess.run([sys.executable, "-I", "-c", src], capture_output=True, text=True,
                                  timeout=timeout_s)
            out.append((proc.stdout, proc.stderr, proc.returncode))
        return out

    return run
