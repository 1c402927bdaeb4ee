"""The README's five-minute tour, run as written: its commands are read from the README (so the tour never goes
stale), run in a fresh directory, and TensorBoard is started on what they wrote and asked for the curves."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tour_commands() -> list[str]:
    """The commands of the tour's bash block, one per entry (backslash continuations joined)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Five-minute tour\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)\n```", section, re.S).group(1)
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip() and not c.startswith("#")]


def test_the_tour_is_at_the_top_and_shows_every_part() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index("## Five-minute tour") < readme.index("## Quick start")
    words = " ".join(tour_commands())
    for part in ("init-model --preset micro", "rollout", "--backend reference", "sft", "rl-stage", "r1ci show",
                 "eval report", "--report-to tensorboard", "--eval-every", "tensorboard --logdir"):
        assert part in words, part


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.long
def test_the_readme_tour_runs_and_tensorboard_serves_its_curves(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    if not (bindir / "r1ci").exists() or shutil.which("tensorboard", path=str(bindir)) is None:
        pytest.skip("needs r1ci and tensorboard installed in this interpreter's environment (make install)")
    commands = tour_commands()
    serve = [c for c in commands if c.startswith("tensorboard ")]
    script = [c for c in commands if not c.startswith("tensorboard ")]
    assert len(serve) == 1 and commands[-1] == serve[0]
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("verdict ") == 2  # the two `r1ci show` commands printed a trajectory each
    assert "algebra olive" in proc.stdout or "verdict correct" in proc.stdout
    assert (tmp_path / "tour" / "report.md").is_file() and (tmp_path / "tour" / "report.png").is_file()

    port = _free_port()
    log = open(tmp_path / "tensorboard.log", "w")
    server = subprocess.Popen([*serve[0].split(), "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path,
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        tags, deadline = {}, time.monotonic() + 180
        while time.monotonic() < deadline and not ({"sft", "rl"} <= set(tags)):
            assert server.poll() is None, (tmp_path / "tensorboard.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=10) as r:
                    tags = json.loads(r.read())
            except OSError:
                time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert {"train/loss", "train/lr", "eval/accuracy"} <= set(tags["sft"])
    assert {"train/reward_mean", "train/kl", "finish/answer", "eval/accuracy"} <= set(tags["rl"])
