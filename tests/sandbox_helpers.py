"""Shared by the sandbox tests: one pool per isolation mode per test module, skipped where a mode is missing."""

from __future__ import annotations

import os
from concurrent.futures import Future

import pytest

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import ExecResult
from r1ci_cli.sandbox import SandboxOptions, SandboxPool

ISOLATED_MODES = ("zygote", "bwrap", "firejail")
MEMORY_MB = 256
OUTPUT_CAP = 64 * 1024


def make_options(isolation: str, **overrides) -> SandboxOptions:
    values = dict(workers=2, timeout_s=10.0, memory_mb=MEMORY_MB, max_output_bytes=OUTPUT_CAP,
                  preload=("numpy", "sympy"), isolation=isolation, max_processes=48)
    values.update(overrides)
    return SandboxOptions(**values)


_UNAVAILABLE: dict[str, str] = {}


def open_pool_or_skip(isolation: str, **overrides) -> SandboxPool:
    """A pool in ``isolation`` mode, or a skip naming why the mode does not work on this host."""
    if isolation in _UNAVAILABLE:
        pytest.skip(_UNAVAILABLE[isolation])
    try:
        return SandboxPool(make_options(isolation, **overrides))
    except R1ciError as err:
        _UNAVAILABLE[isolation] = f"isolation {isolation} is not available here: {err}"
        pytest.skip(_UNAVAILABLE[isolation])


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children = [int(x) for x in handle.read().split()]
            except OSError:
                continue
            found.extend(children)
            stack.extend(children)
    return found


def process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def processes_named(prefix: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().startswith(prefix):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


class FailingSandbox:
    """The infrastructure's test double: a real sandbox behind a shim that fails calls with ``sandbox_error``
    (their code never runs), as a preempted node or a lost connection would: every ``every``-th call, or, with
    ``only``, every call whose request id it accepts."""

    def __init__(self, inner, every: int = 3, only=None):
        self.inner, self.every, self.only = inner, every, only
        self.calls, self.failed = 0, 0

    def submit(self, code: str, timeout_s: float | None = None, request_id: str = "x") -> Future:
        self.calls += 1
        fails = self.only(request_id) if self.only is not None else self.calls % self.every == 0
        if not fails:
            return self.inner.submit(code, timeout_s=timeout_s, request_id=request_id)
        self.failed += 1
        future: Future = Future()
        future.set_result(ExecResult(request_id, "sandbox_error", None, "", "injected: node preempted", 0.0, False))
        return future
