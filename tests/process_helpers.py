"""Crash a child process at a chosen moment: the SIGKILL-and-resume tests."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def kill_when_exists(proc: subprocess.Popen, path: Path, timeout_s: float = 600.0) -> bool:
    """SIGKILL ``proc`` as soon as ``path`` exists (polling); True when it was still running then."""
    deadline = time.monotonic() + timeout_s
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running
