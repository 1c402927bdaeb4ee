"""The sandbox worker: a process the pool starts by exec, which preloads modules and runs one request at a time.

Started as ``python -c "from r1ci_cli.sandbox.worker import main; main()" CONFIG`` with the request pipe on
stdin and the result pipe on stdout (both moved off fds 0/1 at once so stray prints go to the log), from an
environment the pool has reduced to an allowlist. It sends a ``ready`` frame naming the isolation mode it
settled on (``auto`` is resolved here by probing), then answers each request frame with one result frame, and
each ``{"op": "health"}`` frame with its own state. It exits when its request pipe closes. It never raises for
a request: a bad request or a failure of the sandbox itself becomes ``sandbox_error`` with the reason in
``stderr``.

In the ``zygote`` and ``none`` modes the worker forks a zygote right after the preload and has it fork each
request's child ahead of the request (``zygote.py``): the worker's own memory, which holds every request it
has served, is never copied into a child that runs code. In the ``bwrap`` and ``firejail`` modes each request
execs the wrapper. The worker is a child subreaper: whatever a wrapper orphans is reaped here after every
request, even under a PID 1 that never reaps.

The worker is single-threaded on purpose: it forks, and forking a threaded process is unsafe.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from r1ci_cli.sandbox import isolation, limits, native, protocol, runner
from r1ci_cli.sandbox.layout import Layout, compute_layout
from r1ci_cli.sandbox.options import AUTO_ORDER, SandboxOptions
from r1ci_cli.sandbox.zygote import ArmedChild, ChildSpec, Zygote

log = logging.getLogger("r1ci.sandbox.worker")

# Cheap calls that pull in the lazily imported parts of a preloaded module, so requests do not pay for them.
WARMUPS = {
    "sympy": "import sympy; _x = sympy.Symbol('x'); sympy.solve(_x**2 - 1, _x); sympy.simplify(sympy.sin(_x)**2)",
    "numpy": "import numpy; numpy.linalg.inv(numpy.eye(2)); numpy.random.default_rng(0).random(2)",
}
PROBE_CODE = "import os, socket; print(os.getuid(), len(socket.if_nameindex()))"
_DRAIN_S = 1.0
SETUP_TIMEOUT_S = 30.0
EXIT_WAIT_S = 10.0
IDLE_REAP_S = 0.5
# A healthy worker's descriptors do not grow; this many above its count after start-up means a leak.
FD_SLACK = 16


class _SetupFailed(Exception):
    pass


class Worker:
    """One worker's state: options, layout, cgroup slot, zygote and the chosen mode."""

    def __init__(self, opts: SandboxOptions, slot_name: str, caller_cwd: str = "/", requested: str = "auto"):
        self.opts = opts
        self.layout: Layout = compute_layout(opts.preload, opts.extra_ro_paths)
        self.slot = limits.open_slot(slot_name, opts.memory_mb, opts.max_processes)
        self.base_vm = limits.virtual_memory_bytes()
        self.lifeline = os.pipe()
        self.caller_cwd = caller_cwd
        self.outside_ns = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in ("pid", "net")}
        self.mode = "none"
        self.armed: ArmedChild | None = None
        self.current: ArmedChild | None = None
        self.dying: list[int] = []  # pidfds of ended children that may still be exiting
        self.base_fds = 0
        native.prctl(native.PR_SET_CHILD_SUBREAPER, 1)
        self.zygote: Zygote | None = None
        if requested == "none" or (requested in ("zygote", "auto") and os.geteuid() == 0):
            native.collapse_anonymous_memory()
            spec = ChildSpec(requested != "none", self.layout, opts.sandbox_uid, opts.sandbox_gid, opts.scratch_mb,
                             limits.static_rlimits(opts.memory_mb, opts.scratch_mb, opts.max_open_files,
                                                   opts.max_processes, self.slot, self.base_vm))
            self.zygote = Zygote.start(spec, self.slot, self.lifeline)
            self._zygote_isolates = spec.isolate

    def close(self) -> None:
        for child in (self.current, self.armed):
            if child is not None:
                self._end(child, wait=True)
        self.current = self.armed = None
        self._bury()
        if self.zygote is not None:
            self.zygote.close()
        self.slot.remove()

    # --- choosing a mode -------------------------------------------------------------------------------------
    def probe(self, mode: str) -> str | None:
        """Run a tiny program in ``mode``; ``None`` if it works with the isolation it promises, else why not."""
        if mode == "firejail":
            reason = isolation.firejail_available_reason(self.layout)
            if reason:
                return reason
        if mode == "bwrap" and not shutil.which("bwrap"):
            return "bwrap is not installed (apt-get install bubblewrap)"
        if mode == "zygote" and (os.geteuid() != 0 or self.zygote is None):
            return "the zygote needs root (user-namespace mode is not implemented)"
        result = self.execute(PROBE_CODE, 10.0, mode)
        self.after_request()
        if result["status"] != "ok":
            return " ".join(f"{result['status']}: {result['stderr'].strip()[-300:]}".split())
        uid, num_interfaces = (int(x) for x in result["stdout"].split())
        if os.geteuid() == 0 and uid == 0:
            return "code still ran as root"
        if num_interfaces > 1:
            return f"the sandbox sees {num_interfaces} network interfaces"
        return None

    def resolve(self, requested: str) -> tuple[str, dict[str, str]]:
        reasons: dict[str, str] = {}
        for mode in (AUTO_ORDER if requested == "auto" else (requested,)):
            if mode == "none":
                self.mode = mode
                self.after_request()
                break
            self.mode = mode
            reason = self.probe(mode)
            if reason is None:
                break
            reasons[mode] = reason
        else:
            mode = ""
        if mode not in ("zygote", "none") and self.zygote is not None:
            if self.armed is not None:
                self._end(self.armed, wait=True)
                self.armed = None
            self._bury()
            self.zygote.close()
            self.zygote = None
        self.base_fds = _count_fds()
        return mode, reasons

    # --- one request -----------------------------------------------------------------------------------------
    def execute(self, code: str, timeout_s: float, mode: str | None = None) -> dict[str, Any]:
        mode = mode or self.mode
        start = time.monotonic()
        oom_before = self.slot.oom_kills()
        try:
            if mode in ("zygote", "none"):
                child = self._ready_child()
                start = time.monotonic()
                data = runner.REQUEST_HEADER.pack(timeout_s) + code.encode("utf-8", "surrogatepass")
                own = False
            else:
                child = self._spawn_exec(mode, timeout_s)
                data, own = isolation.runner_stdin(code.encode("utf-8", "surrogatepass")), True
        except (OSError, subprocess.SubprocessError, _SetupFailed) as err:
            return _result("sandbox_error", None, "", f"r1ci sandbox: could not start the request: {err}\n",
                           start, False)
        self.current = child
        return self._supervise(child, data, own, start, timeout_s, oom_before)

    def after_request(self) -> None:
        """Between requests: let the last child go, reap orphans, and order the next child from the zygote.

        Nothing here waits for the kernel in the zygote mode: the last child's exit and the next one's fork and
        set-up overlap with the wait for the next request (``_ready_child`` makes sure the last child is gone
        before the next one runs).
        """
        if self.current is not None:
            self._end(self.current, wait=not self._overlapping)
            self.current = None
        self.reap()
        if self.zygote is not None and self.armed is None and self.mode in ("zygote", "none"):
            try:
                self.armed = self._order()
            except OSError as err:
                log.warning("could not fork the next sandbox child: %s", err)  # the next request retries

    @property
    def _overlapping(self) -> bool:
        """Children are PID 1 of their own namespace: nothing of theirs outlives them, no sweep is needed."""
        return self.zygote is not None and self._zygote_isolates and self.mode == "zygote"

    def reap(self) -> None:
        """Reap exited children (orphans this subreaper inherited); only between requests."""
        if self.zygote is None:
            native.reap_children()
            return
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.zygote is not None and pid == self.zygote.pid:
                self.zygote.reaped = True

    def _order(self) -> ArmedChild:
        assert self.zygote is not None
        scratch = None if self._zygote_isolates else tempfile.mkdtemp(prefix="r1ci-scratch-")
        try:
            return self.zygote.order(scratch)
        except BaseException:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            raise

    def _ready_child(self) -> ArmedChild:
        """The armed child once it has said READY; one fresh try if it died or failed while waiting."""
        assert self.zygote is not None
        error = ""
        for _attempt in range(2):
            if self.armed is None:
                self.armed = self._order()
            child, self.armed = self.armed, None
            try:
                if not child.pid:
                    self.zygote.collect(child)
            except OSError as err:
                error = str(err)
                self._end(child, wait=True)
                continue
            poller = select.poll()
            poller.register(child.status_r, select.POLLIN)
            if poller.poll(SETUP_TIMEOUT_S * 1000) and os.read(child.status_r, 1) == runner.READY:
                self._bury()  # the previous child's memory is free before this one's code runs
                return child
            error = _drain(child.stderr_r).strip() or "the sandbox child ended before it was ready"
            self._end(child, wait=True)
        raise _SetupFailed(error)

    def _end(self, child: ArmedChild, wait: bool) -> None:
        """Kill the child if it may still run and close its pipes. With ``wait``, also wait until it is gone,
        sweep the cgroup slot and remove its scratch; otherwise its pidfd waits in ``dying``."""
        if child.pid and not child.reaped:
            _kill(child.pid)
        pidfd, child.pidfd = child.pidfd, -1
        child.close()
        if pidfd >= 0:
            self.dying.append(pidfd)
        if wait:
            self._bury()
            self.slot.kill_all(keep=(self.zygote.pid,) if self.zygote is not None else ())
            if child.scratch_dir:
                shutil.rmtree(child.scratch_dir, ignore_errors=True)

    def _bury(self) -> None:
        """Wait until every ended child is gone."""
        for pidfd in self.dying:
            select.select([pidfd], [], [], EXIT_WAIT_S)
            os.close(pidfd)
        self.dying.clear()

    def _spawn_exec(self, mode: str, timeout_s: float) -> ArmedChild:
        """Start bwrap/firejail for one request; its stdin takes the code, its fd 3 says READY."""
        limits_ = limits.request_rlimits(timeout_s, self.opts.memory_mb, self.opts.scratch_mb,
                                         self.opts.max_open_files, self.opts.max_processes, self.slot, self.base_vm)
        if mode == "bwrap":
            argv = isolation.bwrap_argv(self.layout, self.opts.sandbox_uid, self.opts.sandbox_gid,
                                        self.opts.scratch_mb, limits_, self.outside_ns)
        else:
            argv = isolation.firejail_argv(self.layout, self.opts.sandbox_uid, self.opts.sandbox_gid, limits_,
                                           isolation.hidden_paths(self.caller_cwd), self.outside_ns)
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ready_r, ready_w = os.pipe()
        slot = self.slot

        def before_exec() -> None:
            # Runs in the forked child of this single-threaded worker, before Popen closes the other fds.
            os.dup2(ready_w, isolation.READY_FD)
            limits.join_slot(slot)
            runner.fresh_session_keyring()

        try:
            proc = subprocess.Popen(argv, stdin=in_r, stdout=out_w, stderr=err_w, cwd="/", close_fds=True,
                                    pass_fds=(isolation.READY_FD,), preexec_fn=before_exec,
                                    start_new_session=True, env={"PATH": "/usr/bin:/bin"})
        except BaseException:
            for fd in (in_w, out_r, err_r, ready_r):
                os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, err_w, ready_w):
                os.close(fd)
        # The worker reaps the process itself (wait4 in _supervise); this keeps Popen from tracking it too.
        proc.returncode = 0
        return ArmedChild(proc.pid, os.pidfd_open(proc.pid), in_w, out_r, err_r, ready_r)

    def _supervise(self, child: ArmedChild, data: bytes, own: bool, start: float, timeout_s: float,
                   oom_before: int) -> dict[str, Any]:
        """Feed the request, read capped output, enforce the deadline, collect the exit status, and classify.

        ``own``: the child is this worker's (an exec mode: reaped here with ``wait4``); otherwise it is the
        zygote's, armed and READY, and it reports its exit status on its status pipe before it leaves (or, if it
        died another way, the status is read from its zombie).
        """
        cap = self.opts.max_output_bytes
        buffers = {child.stdout_r: bytearray(), child.stderr_r: bytearray()}
        poller = select.poll()
        for fd in (child.stdout_r, child.stderr_r, child.status_r, child.pidfd):
            poller.register(fd, select.POLLIN)
        os.set_blocking(child.request_w, False)
        poller.register(child.request_w, select.POLLOUT)
        pending = memoryview(data)
        open_fds = {child.stdout_r, child.stderr_r}
        ready, exited, reported = not own, False, None
        status_bytes = bytearray()
        reason = ""
        deadline = start + timeout_s
        exit_deadline = None
        while open_fds or not exited:
            now = time.monotonic()
            limit = deadline if exit_deadline is None else min(deadline, exit_deadline)
            if now >= limit:
                reason = "timeout" if now >= deadline else "drain"
                break
            for fd, _event in poller.poll((limit - now) * 1000):
                if fd == child.pidfd:
                    exited = True
                    poller.unregister(fd)
                elif fd == child.request_w:
                    try:
                        pending = pending[os.write(fd, pending[: 1 << 16]):]
                    except OSError:
                        pending = pending[:0]
                    if not pending:
                        poller.unregister(fd)
                        os.close(fd)
                        child.request_w = -1
                elif fd == child.status_r:
                    chunk = os.read(fd, 64)
                    if not chunk:
                        poller.unregister(fd)
                    elif len(status_bytes) < 64:
                        status_bytes += chunk
                        ready, reported = _parse_status(status_bytes, ready)
                        exited = exited or reported is not None
                else:
                    chunk = os.read(fd, 1 << 16)
                    if chunk:
                        buffer = buffers[fd]
                        room = cap - len(buffer)
                        buffer += chunk[:room]
                        if len(chunk) > room:
                            reason = "output_limit"
                            break
                    else:
                        poller.unregister(fd)
                        open_fds.discard(fd)
                if exited and exit_deadline is None:
                    exit_deadline = time.monotonic() + _DRAIN_S
            if reason:
                break
        if reason in ("timeout", "output_limit") or not exited:
            _kill(child.pid)
            reported = None
        cpu_s = 0.0
        if own:
            _, status, usage = os.wait4(child.pid, 0)
            child.reaped = True
            cpu_s = usage.ru_utime + usage.ru_stime
            if not ready and select.select([child.status_r], [], [], 0)[0]:
                ready = os.read(child.status_r, 1) == runner.READY  # may be unread when the output closed first
        elif reported is not None:
            status = reported << 8
        elif reason in ("timeout", "output_limit"):
            # The result does not depend on how it died: answer now, and let the kernel tear the request down
            # (a fork bomb's processes on a busy host: seconds) while the next request is awaited; the next
            # child runs only once this one is gone (_ready_child).
            status = signal.SIGKILL
        else:
            select.select([child.pidfd], [], [], EXIT_WAIT_S)
            status, cpu_s = native.exit_status_of_zombie(child.pid) or (signal.SIGKILL, 0.0)
        out_s = bytes(buffers[child.stdout_r]).decode("utf-8", "replace")
        err_s = bytes(buffers[child.stderr_r]).decode("utf-8", "replace")
        if reason == "timeout":
            return _result("timeout", None, out_s, err_s, start, False)
        if reason == "output_limit":
            return _result("output_limit", None, out_s, err_s, start, True)
        code = os.waitstatus_to_exitcode(status)
        exit_code = code if code >= 0 else None
        if self.slot.oom_kills() > oom_before:
            return _result("oom", exit_code, out_s, err_s, start, False)
        if not ready:
            return _result("sandbox_error", exit_code, out_s, "r1ci sandbox failed to start the request: " + err_s,
                           start, False)
        if exit_code is None and (code == -signal.SIGXCPU or cpu_s >= timeout_s):
            return _result("timeout", None, out_s, err_s, start, False)
        if exit_code not in (None, 0) and _ends_with_memory_error(err_s):
            return _result("oom", exit_code, out_s, err_s, start, False)
        return _result("ok" if exit_code == 0 else "error", exit_code, out_s, err_s, start, False)

    # --- health ----------------------------------------------------------------------------------------------
    def health(self, deep: bool) -> str:
        """Why this worker should be retired ("" when healthy); ``deep`` also runs a test request."""
        fds = _count_fds()
        if self.base_fds and fds > self.base_fds + FD_SLACK:
            return f"{fds} open descriptors (it started with {self.base_fds})"
        if self.zygote is not None and not self.zygote.alive():
            return "its zygote has died"
        for directory in (self.slot.memory_dir, self.slot.pids_dir):
            if directory is not None and not os.path.isdir(directory):
                return f"its cgroup {directory} is gone"
        if deep:
            nonce = secrets.token_hex(8)
            result = self.execute(f"print({nonce!r})", 10.0)
            self.after_request()
            if result["status"] != "ok" or result["stdout"].strip() != nonce:
                return " ".join(f"a test request failed ({result['status']}: {result['stderr'][-300:]})".split())
        return ""


def _parse_status(data: bytearray, ready: bool) -> tuple[bool, int | None]:
    """What a child's status pipe said so far: READY, then EXITED and a 4-byte exit status."""
    at = 0
    if data[:1] == runner.READY:
        ready, at = True, 1
    if data[at:at + 1] == runner.EXITED and len(data) >= at + 1 + runner.EXIT_STATUS.size:
        return ready, runner.EXIT_STATUS.unpack_from(data, at + 1)[0] & 0xFF
    return ready, None


def _drain(fd: int, limit: int = 1 << 16) -> str:
    """What is readable on ``fd`` right now (a failed child's set-up error), without blocking."""
    chunks: list[bytes] = []
    while sum(map(len, chunks)) < limit and select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, limit)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _count_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _ends_with_memory_error(stderr: str) -> bool:
    lines = stderr.rstrip().splitlines()
    return bool(lines) and lines[-1].startswith("MemoryError")


def _result(status: str, exit_code: int | None, stdout: str, stderr: str, start: float,
            truncated: bool) -> dict[str, Any]:
    return {"status": status, "exit_code": exit_code, "stdout": stdout, "stderr": stderr,
            "wall_ms": round((time.monotonic() - start) * 1000.0, 3), "truncated": truncated}


def _preload(names: tuple[str, ...]) -> None:
    for name in names:
        importlib.import_module(name)
        warmup = WARMUPS.get(name)
        if warmup:
            exec(compile(warmup, f"<warmup {name}>", "exec"), {})
    # Move everything imported so far out of the collector's reach: otherwise the first full collection in a
    # request's child touches every preloaded object and copies the whole heap out of copy-on-write.
    gc.collect()
    gc.freeze()


def _serve(worker: Worker, requests: int, results: int) -> None:
    while True:
        if not select.select([requests], [], [], IDLE_REAP_S)[0]:
            worker.reap()  # what a wrapper's processes orphan as they finish exiting, while nothing else happens
            continue
        request = protocol.read_fd(requests)
        if request is None:
            return
        if request.get("op") == "health":
            reason = worker.health(bool(request.get("deep")))
            protocol.write_fd(results, {"healthy": not reason, "reason": reason})
            continue
        problem = protocol.request_problem(request.get("code"), request.get("timeout_s"))
        if problem:
            result = _result("sandbox_error", None, "", f"r1ci sandbox: bad request: {problem}\n", time.monotonic(),
                             False)
        else:
            try:
                result = worker.execute(request["code"], float(request["timeout_s"]))
            except Exception as err:  # noqa: BLE001 - a worker bug must become this request's sandbox_error
                log.exception("sandbox worker failed on a request")
                result = _result("sandbox_error", None, "", f"r1ci sandbox: internal error: {err!r}\n",
                                 time.monotonic(), False)
        protocol.write_fd(results, result)
        worker.after_request()


def main() -> None:
    """Worker entry point (see the module docstring)."""
    requests = os.dup(0)
    results = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    logging.basicConfig(level=logging.WARNING, format="r1ci sandbox worker: %(message)s", stream=sys.stderr)
    config = json.loads(sys.argv[1])
    opts = SandboxOptions.from_json(config["options"])
    try:
        _preload(opts.preload)
    except Exception as err:  # noqa: BLE001 - reported to the pool, which turns it into an R1ciError
        protocol.write_fd(results, {"ready": False, "error": f"could not preload: {err!r}"})
        return
    worker = Worker(opts, config["slot"], config.get("caller_cwd", "/"), config["mode"])
    try:
        mode, reasons = worker.resolve(config["mode"])
        protocol.write_fd(results, {"ready": bool(mode), "isolation": mode, "reasons": reasons,
                                    "memory_cgroup": worker.slot.has_memory, "pids_cgroup": worker.slot.has_pids})
        if not mode:
            return
        worker.mode = mode
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        _serve(worker, requests, results)
    except (BrokenPipeError, protocol.ProtocolError):
        return
    finally:
        worker.close()
