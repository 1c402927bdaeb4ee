"""Shared by the sandbox tests: one pool per isolation mode per test module, skipped where a mode is missing."""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future

import pytest

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import ExecResult
from r1ci_cli.sandbox import SandboxOptions, SandboxPool

ISOLATED_MODES = ("zygote", "bwrap", "firejail")
MEMORY_MB = 256
OUTPUT_CAP = 64 * 1024
# The soak tests (slow) run the sizes with R1CI_SANDBOX_SOAK=full in the environment of pytest (minutes),
# and a fraction of them by default, to fit the CI budget. Read at import: the tests' fixtures clear R1CI_*.
SOAK_FULL = os.environ.get("R1CI_SANDBOX_SOAK", "") == "full"


def soak(full: int, ci: int) -> int:
    """How many calls a soak test makes: ``full`` with R1CI_SANDBOX_SOAK=full, else ``ci``."""
    return full if SOAK_FULL else ci


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


class LogRecords(logging.Handler):
    """Collects the messages logged while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


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


def open_fds(pid: int) -> int:
    """How many descriptors ``pid`` has open (0 once it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:
        return 0


def rss_kb(pid: int) -> int:
    """``pid``'s resident memory in kB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


# Sandboxed code that looks for byte strings by every means it has: the environment and command line of every
# process it can see (after PR_SET_DUMPABLE, which makes its own /proc files readable), every readable mapping of
# its own memory through /proc/self/mem, and small files in the places a secret could be left. The needles never
# appear in the code: each is sent as two random masks whose XOR it is, and rebuilt byte by byte into a buffer
# whose address is then skipped (as is the one read buffer), so the scan cannot find its own copy. Two controls
# prove that the scan works: a copy of a needle kept on purpose must be found in memory, and /proc/self/environ
# must have been readable. Prints one JSON object.
_SCAN = r'''
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
MASKS = __MASKS__
needles = {}
for name, (a, b) in MASKS.items():
    a, b = bytes.fromhex(a), bytes.fromhex(b)
    buf = bytearray(len(a))
    for i in range(len(a)):
        buf[i] = a[i] ^ b[i]
    needles[name] = buf
kept = bytearray(needles["control"])  # the positive control: this copy must be found in memory
skip = {ctypes.addressof(ctypes.c_char.from_buffer(b)) for b in needles.values()}
found = {name: [] for name in needles}
def check(where, data, limit=None):
    for name, needle in needles.items():
        if data.find(needle, 0, limit if limit is not None else len(data)) >= 0 and where not in found[name]:
            found[name].append(where)
import sys
PYTHON_DIRS = tuple(sorted({sys.base_prefix, sys.prefix, *(p for p in sys.path if p)}))
files = 0
readable = []
for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self"]:
    for what in ("environ", "cmdline"):
        try:
            with open("/proc/%s/%s" % (pid, what), "rb") as handle:
                check("/proc/%s/%s" % ("self" if pid == "self" else "N", what), handle.read())
            if pid == "self":
                readable.append(what)
        except OSError:
            pass
for top in ("/tmp", "/dev/shm", "/run", "/var", "/srv", "/etc/r1ci", "/root", "/home", os.getcwd()):
    for root, dirs, names in os.walk(top):
        dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(PYTHON_DIRS)]
        for name in names:
            path = os.path.join(root, name)
            try:
                if os.path.isfile(path) and os.path.getsize(path) < (1 << 20) and files < 5000:
                    files += 1
                    with open(path, "rb") as handle:
                        check("file " + path, handle.read())
            except OSError:
                pass
chunk = bytearray(1 << 20)
view = memoryview(chunk)
low = ctypes.addressof(ctypes.c_char.from_buffer(chunk))
overlap = max(len(n) for n in needles.values())
mem = os.open("/proc/self/mem", os.O_RDONLY)
scanned = 0
with open("/proc/self/maps") as handle:
    maps = handle.read().splitlines()
for line in maps:
    fields = line.split()
    if fields[1][0] != "r" or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]")):
        continue
    start, end = (int(x, 16) for x in fields[0].split("-"))
    pos = start
    while pos < end:
        try:
            got = os.preadv(mem, [view[: min(len(chunk), end - pos)]], pos)
        except OSError:
            break
        if got <= 0:
            break
        scanned += got
        for name, needle in needles.items():
            at = chunk.find(needle, 0, got)
            while at >= 0:
                address = pos + at
                if address not in skip and not low <= address < low + len(chunk):
                    if "memory" not in found[name]:
                        found[name].append("memory")
                    break
                at = chunk.find(needle, at + 1, got)
        if pos + got >= end:
            break
        pos += max(got - overlap, 1)
print(json.dumps({"found": found, "scanned_bytes": scanned, "files": files, "readable": readable}))
'''


def scan_code(targets: dict[str, str]) -> str:
    """The scan program for ``targets`` (name -> string to look for) plus the ``control`` needle."""
    import secrets

    masks = {}
    for name, value in {**targets, "control": "r1ci-control-" + secrets.token_hex(16)}.items():
        raw = value.encode()
        key = secrets.token_bytes(len(raw))
        masks[name] = (key.hex(), bytes(x ^ y for x, y in zip(raw, key)).hex())
    return _SCAN.replace("__MASKS__", repr(masks))


def check_scan(result, targets: tuple[str, ...]) -> None:
    """Assert that the scan ran (controls found) and found none of ``targets``."""
    import json

    assert result.status == "ok", result
    report = json.loads(result.stdout)
    assert report["found"]["control"] == ["memory"], report
    assert "environ" in report["readable"], report
    assert report["scanned_bytes"] > 1 << 20, report
    for name in targets:
        assert report["found"][name] == [], (name, report)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedSandbox:
    """``exec-sandbox --serve`` in a subprocess (its own environment) and a connected client; for ``with``."""

    def __init__(self, tmp_path, env: dict[str, str] | None = None, args: tuple[str, ...] = ("--workers", "1")):
        import secrets
        import subprocess
        import sys
        import time

        from r1ci_cli.sandbox.service import SandboxClient

        self.token = secrets.token_hex(16)
        token_file = tmp_path / "token"
        token_file.write_text(self.token + "\n")
        token_file.chmod(0o600)
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "r1ci_cli", "exec-sandbox", *args, "--serve", self.address,
                                      "--token-file", str(token_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 120
        self.client = None
        while self.client is None:
            try:
                self.client = SandboxClient(self.address, token=self.token)
            except (R1ciError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("the sandbox service did not start: "
                                       + self.proc.stderr.read().decode(errors="replace")[-2000:])
                time.sleep(0.2)

    def connect(self):
        from r1ci_cli.sandbox.service import SandboxClient

        return SandboxClient(self.address, token=self.token)

    def close(self) -> None:
        import signal

        if self.client is not None:
            self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)

    def __enter__(self) -> "ServedSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServicePool:
    """A pool behind an in-process ``SandboxServer``, used through a ``SandboxClient``: the suites' service mode.

    ``worker_pids`` are the served pool's, so the tests that look at workers work unchanged.
    """

    isolation = "service"

    def __init__(self, isolation: str = "auto", **overrides):
        import secrets
        import threading

        from r1ci_cli.sandbox.service import SandboxClient, SandboxServer

        self.pool = open_pool_or_skip(isolation, **overrides)
        token = secrets.token_hex(16)
        self.server = SandboxServer(self.pool, ("127.0.0.1", 0), token)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self.client = SandboxClient(f"{self.server.address[0]}:{self.server.address[1]}", token=token,
                                    opts=self.pool.opts)
        self.opts = self.pool.opts

    @property
    def worker_pids(self):
        return self.pool.worker_pids

    def submit(self, *args, **kwargs):
        return self.client.submit(*args, **kwargs)

    def run(self, *args, **kwargs):
        return self.client.run(*args, **kwargs)

    def map(self, requests):
        return self.client.map(requests)

    def close(self) -> None:
        self.client.close()
        self.server.close()
        self._thread.join(10)
        self.pool.close()

    def __enter__(self) -> "ServicePool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
