"""``SandboxPool``: a thread-safe pool of pre-forked sandbox workers, the in-process face of the sandbox.

Each of ``opts.workers`` slots owns one worker process (``worker.py``, started by exec so that a threaded
caller such as the rollout loop is never forked, from an environment reduced to ``WORKER_ENV``: no secret of
this process reaches a worker) and one thread that feeds it requests from a shared queue. ``submit`` returns a
``Future[ExecResult]``; every outcome is an ``ExecResult`` — a bad request (``protocol.request_problem``) is a
``sandbox_error`` of its own, and a broken worker yields ``sandbox_error`` and is replaced; nothing raises into
the caller. The pool's own deadline per request is the request's timeout plus ``GRACE_S``, after which the
worker is killed and replaced, so a wedged worker cannot hang a run. A worker is also retired (and the log
says why) after ``RETIRE_AFTER_ERRORS`` sandbox errors in a row, or when its health check fails: a deep one
(including a test request) after each sandbox error, a cheap one (descriptors, zygote, cgroups) every
``HEALTH_EVERY`` requests. Only starting the pool raises (``R1ciError``) — when no requested isolation works on
this host.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import ExecRequest, ExecResult
from r1ci_cli.sandbox import limits, protocol
from r1ci_cli.sandbox.options import SandboxOptions

log = logging.getLogger("r1ci.sandbox")

GRACE_S = 10.0
START_TIMEOUT_S = 120.0
RETIRE_AFTER_ERRORS = 3
HEALTH_EVERY = 1000
HEALTH_TIMEOUT_S = 60.0
# The only variables a worker inherits (with PYTHONPATH extended to this package): nothing that could be a secret.
WORKER_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR", "PYTHONPATH", "PYTHONHOME",
              "LD_LIBRARY_PATH")
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SERIAL = itertools.count()


def sandbox_error(request_id: str, message: str, wall_ms: float = 0.0) -> ExecResult:
    return ExecResult(id=request_id, status="sandbox_error", exit_code=None, stdout="", stderr=message + "\n",
                      wall_ms=wall_ms, truncated=False)


class _WorkerGone(Exception):
    pass


class _Slot:
    """One worker process and the pipe ends to it; used by one pool thread at a time."""

    def __init__(self, opts: SandboxOptions, index: int):
        self.opts, self.index = opts, index
        self.proc: subprocess.Popen[bytes] | None = None
        self.name = ""
        self.errors_in_a_row = 0
        self.served = 0

    def start(self, mode: str) -> dict[str, Any]:
        self.name = f"r1ci-sandbox-{os.getpid()}-{self.index}-{next(_SERIAL)}"
        config = json.dumps({"options": self.opts.to_json(), "mode": mode, "slot": self.name,
                             "caller_cwd": os.getcwd()})
        self.errors_in_a_row = self.served = 0
        env = {name: value for name, value in os.environ.items() if name in WORKER_ENV}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from r1ci_cli.sandbox.worker import main; main()", config],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd="/", env=env, close_fds=True,
            start_new_session=True)
        try:
            ready = self._read(START_TIMEOUT_S)
        except _WorkerGone as err:
            ready = {"ready": False, "error": str(err)}
        if not ready.get("ready"):
            self.stop()
        return ready

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def call(self, code: str, timeout_s: float) -> dict[str, Any]:
        return self._ask({"code": code, "timeout_s": timeout_s}, timeout_s + GRACE_S)

    def health(self, deep: bool) -> str:
        """Why the worker should be retired ("" when it is healthy)."""
        try:
            reply = self._ask({"op": "health", "deep": deep}, HEALTH_TIMEOUT_S)
        except _WorkerGone as err:
            return str(err)
        return "" if reply.get("healthy") else str(reply.get("reason", "unhealthy"))

    def _ask(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        if not self.alive():
            raise _WorkerGone("the sandbox worker is not running")
        assert self.proc is not None and self.proc.stdin is not None
        try:
            protocol.write_fd(self.proc.stdin.fileno(), message)
        except OSError as err:
            raise _WorkerGone(f"the sandbox worker went away ({err})") from None
        return self._read(timeout_s)

    def _read(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        readable, _, _ = select.select([fd], [], [], timeout_s)
        if not readable:
            self.stop()
            raise _WorkerGone(f"the sandbox worker did not answer within {timeout_s:.0f} s and was replaced")
        try:
            message = protocol.read_fd(fd)
        except (OSError, protocol.ProtocolError) as err:
            message = None
            log.warning("sandbox worker %s: %s", self.pid, err)
        if message is None:
            code = self.stop()
            raise _WorkerGone(f"the sandbox worker died (exit {code}) and was replaced")
        return message

    def stop(self) -> int | None:
        """Close the worker's pipes, give it a moment to exit cleanly, then kill it; remove its cgroups."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass
        try:
            code = proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        limits.remove_slot(self.name)
        return code


class SandboxPool:
    """Run untrusted Python code in sandboxed workers; see the module docstring and README "Sandbox"."""

    def __init__(self, opts: SandboxOptions | None = None):
        self.opts = opts or SandboxOptions()
        self._queue: queue.Queue[tuple[str, float, str, Future[ExecResult]] | None] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._slots = [_Slot(self.opts, i) for i in range(self.opts.workers)]
        try:
            first = self._start_slots()
        except BaseException:
            for slot in self._slots:
                slot.stop()
            raise
        self.isolation: str = first["isolation"]
        self.cgroups = {"memory": first.get("memory_cgroup", False), "pids": first.get("pids_cgroup", False)}
        self._log_choice(first)
        self._threads = [threading.Thread(target=self._serve, args=(slot,), name=f"r1ci-sandbox-{slot.index}",
                                          daemon=True) for slot in self._slots]
        for thread in self._threads:
            thread.start()

    def _fail_start(self, ready: dict[str, Any]) -> None:
        if "error" in ready:
            raise R1ciError(f"sandbox worker failed to start: {ready['error']}")
        why = "; ".join(f"{mode}: {reason}" for mode, reason in ready.get("reasons", {}).items())
        raise R1ciError(f"no sandbox isolation works on this host ({why}); install bubblewrap, run as root, "
                        "or pass --isolation none to run model code without isolation")

    def _log_choice(self, ready: dict[str, Any]) -> None:
        for mode, reason in ready.get("reasons", {}).items():
            log.info("sandbox isolation %s unavailable: %s", mode, reason)
        if self.isolation == "none":
            log.warning("sandbox isolation is NONE: model code runs as this user with only resource limits; "
                        "it can read your files and reach the network")
        else:
            log.info("sandbox isolation: %s (memory cgroup: %s, pids cgroup: %s)", self.isolation,
                     self.cgroups["memory"], self.cgroups["pids"])

    def _start_slots(self) -> dict[str, Any]:
        """Start the workers; with ``auto`` the first one probes and the others start in the mode it chose."""
        replies: dict[int, dict[str, Any]] = {}
        first_mode = self.opts.isolation
        rest = self._slots
        if first_mode == "auto":
            replies[0] = self._slots[0].start(first_mode)
            if not replies[0].get("ready"):
                self._fail_start(replies[0])
            first_mode, rest = replies[0]["isolation"], self._slots[1:]

        def start(slot: _Slot) -> None:
            try:
                replies[slot.index] = slot.start(first_mode)
            except OSError as err:
                replies[slot.index] = {"ready": False, "error": str(err)}

        threads = [threading.Thread(target=start, args=(slot,)) for slot in rest]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for index in sorted(replies):
            if not replies[index].get("ready"):
                self._fail_start(replies[index])
        return replies[0]

    # --- the worker threads ----------------------------------------------------------------------------------
    def _serve(self, slot: _Slot) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            code, timeout_s, request_id, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = self._execute(slot, code, timeout_s, request_id)
            except Exception as err:  # noqa: BLE001 - a pool bug must not leave a caller waiting forever
                log.exception("sandbox pool failed on request %s", request_id)
                result = sandbox_error(request_id, f"r1ci sandbox: internal error: {err!r}")
            future.set_result(result)

    def _execute(self, slot: _Slot, code: str, timeout_s: float, request_id: str) -> ExecResult:
        start = time.monotonic()
        try:
            if not slot.alive():
                self._restart(slot)
            reply = slot.call(code, timeout_s)
            result = ExecResult(id=request_id, status=reply["status"], exit_code=reply["exit_code"],
                                stdout=reply["stdout"], stderr=reply["stderr"], wall_ms=float(reply["wall_ms"]),
                                truncated=bool(reply["truncated"]))
        except (_WorkerGone, OSError, KeyError, R1ciError) as err:
            log.warning("sandbox request %s: %s", request_id, err)
            result = sandbox_error(request_id, f"r1ci sandbox: {err}", (time.monotonic() - start) * 1000.0)
            self._retire(slot, str(err))
            return result
        self._check(slot, result.status == "sandbox_error")
        return result

    def _check(self, slot: _Slot, failed: bool) -> None:
        """Count the slot's sandbox errors in a row and check its health; retire it if it is broken."""
        slot.served += 1
        slot.errors_in_a_row = slot.errors_in_a_row + 1 if failed else 0
        if slot.errors_in_a_row >= RETIRE_AFTER_ERRORS:
            self._retire(slot, f"{slot.errors_in_a_row} sandbox errors in a row")
        elif failed or slot.served % HEALTH_EVERY == 0:
            reason = slot.health(deep=failed)
            if reason:
                self._retire(slot, f"its health check failed: {reason}")

    def _retire(self, slot: _Slot, why: str) -> None:
        if self._closed:
            return
        log.warning("sandbox worker %d (pid %s) retired: %s; starting a fresh one", slot.index, slot.pid, why)
        try:
            self._restart(slot)
        except (R1ciError, OSError) as err:
            log.error("could not replace sandbox worker %d: %s", slot.index, err)

    def _restart(self, slot: _Slot) -> None:
        slot.stop()
        ready = slot.start(self.isolation)
        if not ready.get("ready"):
            self._fail_start(ready)
        log.info("sandbox worker %d replaced (pid %s)", slot.index, slot.pid)

    # --- the public API --------------------------------------------------------------------------------------
    def submit(self, code: str, timeout_s: float | None = None, request_id: str = "") -> Future[ExecResult]:
        """Queue one execution; the future always resolves to an ExecResult (a bad request to its own
        ``sandbox_error``). ``timeout_s`` ``None`` takes the pool's default."""
        future: Future[ExecResult] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox pool is closed")
            timeout = self.opts.timeout_s if timeout_s is None else timeout_s
            problem = protocol.request_problem(code, timeout)
            if problem or not isinstance(request_id, str):
                future.set_result(sandbox_error(str(request_id), "r1ci sandbox: bad request: "
                                                + (problem or "the request id must be a string")))
            else:
                self._queue.put((code, float(timeout), request_id, future))
        return future

    def run(self, code: str, timeout_s: float | None = None, request_id: str = "") -> ExecResult:
        return self.submit(code, timeout_s, request_id).result()

    def map(self, requests: Iterable[ExecRequest]) -> Iterator[ExecResult]:
        """Results in input order, with at most ``opts.in_flight`` requests submitted at once."""
        return map_requests(self.submit, requests, self.opts.in_flight)

    @property
    def worker_pids(self) -> list[int | None]:
        return [slot.pid for slot in self._slots]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._slots:
                self._queue.put(None)
        for thread in self._threads:
            thread.join()
        for slot in self._slots:
            slot.stop()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def map_requests(submit: Any, requests: Iterable[ExecRequest], in_flight: int) -> Iterator[ExecResult]:
    """Shared by the pool and the service client: a bounded window of futures, drained in input order."""
    window: collections.deque[tuple[ExecRequest, Future[ExecResult]]] = collections.deque()
    for request in requests:
        window.append((request, submit(request.code, request.timeout_s, request.id)))
        if len(window) >= in_flight:
            yield _with_extra(*window.popleft())
    while window:
        yield _with_extra(*window.popleft())


def _with_extra(request: ExecRequest, future: Future[ExecResult]) -> ExecResult:
    result = future.result()
    return dataclasses.replace(result, extra=dict(request.extra)) if request.extra else result
