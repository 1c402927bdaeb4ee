"""The sandbox worker: a process the pool starts by exec, which preloads modules and runs one request at a time.

Started as ``python -c "from r1ci_cli.sandbox.worker import main; main()" CONFIG`` with the request pipe on
stdin and the result pipe on stdout (both moved off fds 0/1 at once so stray prints go to the log). It sends a
``ready`` frame naming the isolation mode it settled on (``auto`` is resolved here by probing, because probing
the zygote needs the preloaded process), then answers each request frame with one result frame. It exits when
its request pipe closes. It never raises for a request: a failure of the sandbox itself becomes
``sandbox_error`` with the reason in ``stderr``.

The worker is single-threaded on purpose: it forks per request, and forking a threaded process is unsafe.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from r1ci_cli.sandbox import isolation, limits, protocol, zygote
from r1ci_cli.sandbox.layout import Layout, compute_layout
from r1ci_cli.sandbox.options import AUTO_ORDER, SandboxOptions

log = logging.getLogger("r1ci.sandbox.worker")

# Cheap calls that pull in the lazily imported parts of a preloaded module, so requests do not pay for them.
WARMUPS = {
    "sympy": "import sympy; _x = sympy.Symbol('x'); sympy.solve(_x**2 - 1, _x); sympy.simplify(sympy.sin(_x)**2)",
    "numpy": "import numpy; numpy.linalg.inv(numpy.eye(2)); numpy.random.default_rng(0).random(2)",
}
PROBE_CODE = "import os, socket; print(os.getuid(), len(socket.if_nameindex()))"
_DRAIN_S = 1.0


class Worker:
    """One worker's state: options, layout, cgroup slot and the chosen mode."""

    def __init__(self, opts: SandboxOptions, slot_name: str, caller_cwd: str = "/"):
        self.opts = opts
        self.layout: Layout = compute_layout(opts.preload, opts.extra_ro_paths)
        self.slot = limits.open_slot(slot_name, opts.memory_mb, opts.max_processes)
        self.base_vm = limits.virtual_memory_bytes()
        self.lifeline = os.pipe()
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.hidden = isolation.hidden_paths(caller_cwd)
        self.mode = "none"
        self.namespaces: zygote.Namespaces | None = None  # built at the first zygote request, then reused

    def close(self) -> None:
        self.slot.remove()
        if self.namespaces is not None:
            self.namespaces.close()

    # --- choosing a mode -------------------------------------------------------------------------------------
    def probe(self, mode: str) -> str | None:
        """Run a tiny program in ``mode``; ``None`` if it works with the isolation it promises, else why not."""
        if mode == "firejail":
            reason = isolation.firejail_available_reason(self.layout)
            if reason:
                return reason
        if mode == "bwrap" and not shutil.which("bwrap"):
            return "bwrap is not installed (apt-get install bubblewrap)"
        if mode == "zygote" and os.geteuid() != 0:
            return "the zygote needs root (user-namespace mode is not implemented)"
        result = self.execute(PROBE_CODE, 10.0, mode)
        if result["status"] != "ok":
            return f"{result['status']}: {result['stderr'].strip()[-300:]}"
        uid, num_interfaces = (int(x) for x in result["stdout"].split())
        if os.geteuid() == 0 and uid == 0:
            return "code still ran as root"
        if num_interfaces > 1:
            return f"the sandbox sees {num_interfaces} network interfaces"
        return None

    def resolve(self, requested: str) -> tuple[str, dict[str, str]]:
        if requested == "none":
            return "none", {}
        reasons: dict[str, str] = {}
        for mode in (AUTO_ORDER if requested == "auto" else (requested,)):
            reason = self.probe(mode)
            if reason is None:
                return mode, reasons
            reasons[mode] = reason
        return "", reasons

    # --- one request -----------------------------------------------------------------------------------------
    def execute(self, code: str, timeout_s: float, mode: str | None = None) -> dict[str, Any]:
        mode = mode or self.mode
        limits_ = limits.request_rlimits(timeout_s, self.opts.memory_mb, self.opts.scratch_mb,
                                         self.opts.max_open_files, self.opts.max_processes, self.slot, self.base_vm)
        oom_before = self.slot.oom_kills()
        scratch = tempfile.mkdtemp(prefix="r1ci-scratch-") if mode == "none" else None
        start = time.monotonic()
        try:
            if mode in ("zygote", "none"):
                spec = zygote.ChildSpec(mode == "zygote", self.layout, self.opts.sandbox_uid, self.opts.sandbox_gid,
                                        self.opts.scratch_mb, limits_, scratch)
                if spec.isolate and self.namespaces is None:
                    self.namespaces = zygote.Namespaces.create(self.layout)
                pid, out_r, err_r, ready_r = zygote.spawn(code, spec, self.slot, self.own_pidns, self.lifeline,
                                                          self.namespaces)
                stdin_fd, stdin_data = None, b""
            else:
                pid, out_r, err_r, ready_r, stdin_fd = self._spawn_exec(mode, limits_)
                stdin_data = isolation.runner_stdin(code.encode("utf-8", "surrogatepass"))
        except OSError as err:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            return _result("sandbox_error", None, "", f"r1ci sandbox: could not start the request: {err}\n",
                           start, False)
        try:
            return self._supervise(pid, out_r, err_r, ready_r, stdin_fd, stdin_data, start, timeout_s, oom_before)
        finally:
            self.slot.kill_all()
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)

    def _spawn_exec(self, mode: str, limits_: dict[str, int]) -> tuple[int, int, int, int, int]:
        """Start bwrap/firejail; returns ``(pid, stdout, stderr, ready, stdin)`` fds (stdin takes the code)."""
        if mode == "bwrap":
            argv = isolation.bwrap_argv(self.layout, self.opts.sandbox_uid, self.opts.sandbox_gid,
                                        self.opts.scratch_mb, limits_)
        else:
            argv = isolation.firejail_argv(self.layout, self.opts.sandbox_uid, self.opts.sandbox_gid, limits_,
                                           self.hidden)
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ready_r, ready_w = os.pipe()
        slot = self.slot

        def before_exec() -> None:
            # Runs in the forked child of this single-threaded worker, before Popen closes the other fds.
            os.dup2(ready_w, isolation.READY_FD)
            limits.join_slot(slot)

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
        return proc.pid, out_r, err_r, ready_r, in_w

    def _supervise(self, pid: int, out_r: int, err_r: int, ready_r: int, stdin_fd: int | None, stdin_data: bytes,
                   start: float, timeout_s: float, oom_before: int) -> dict[str, Any]:
        """Feed stdin, read capped output, enforce the deadline, reap, and classify the outcome."""
        cap = self.opts.max_output_bytes
        buffers = {out_r: bytearray(), err_r: bytearray()}
        poller = select.poll()
        pidfd = os.pidfd_open(pid)
        for fd in (out_r, err_r, ready_r, pidfd):
            poller.register(fd, select.POLLIN)
        if stdin_fd is not None and not stdin_data:
            os.close(stdin_fd)
            stdin_fd = None
        if stdin_fd is not None:
            os.set_blocking(stdin_fd, False)
            poller.register(stdin_fd, select.POLLOUT)
        open_fds = {out_r, err_r, ready_r}
        ready = exited = False
        reason = ""
        deadline = start + timeout_s
        exit_deadline = None
        pending = memoryview(stdin_data)
        try:
            while open_fds - {ready_r} or not exited:
                now = time.monotonic()
                limit = deadline if exit_deadline is None else min(deadline, exit_deadline)
                if now >= limit:
                    reason = "timeout" if now >= deadline else "drain"
                    break
                for fd, _event in poller.poll((limit - now) * 1000):
                    if fd == pidfd:
                        exited = True
                        poller.unregister(pidfd)
                        exit_deadline = time.monotonic() + _DRAIN_S
                    elif fd == stdin_fd:
                        try:
                            pending = pending[os.write(stdin_fd, pending[: 1 << 16]):]
                        except OSError:
                            pending = pending[:0]
                        if not pending:
                            poller.unregister(stdin_fd)
                            os.close(stdin_fd)
                            stdin_fd = None
                    else:
                        data = os.read(fd, 1 << 16)
                        if fd == ready_r:
                            ready = ready or bool(data)
                        elif data:
                            buffer = buffers[fd]
                            room = cap - len(buffer)
                            buffer += data[:room]
                            if len(data) > room:
                                reason = "output_limit"
                                break
                        if not data:
                            poller.unregister(fd)
                            open_fds.discard(fd)
                if reason:
                    break
            if not exited:
                _kill(pid)
            _, status, usage = os.wait4(pid, 0)
            if not ready and ready_r in open_fds and select.select([ready_r], [], [], 0)[0]:
                ready = bool(os.read(ready_r, 1))  # the byte may still be unread when stdout/stderr closed first
        finally:
            for fd in [pidfd, *open_fds] + ([stdin_fd] if stdin_fd is not None else []):
                os.close(fd)
        stdout, stderr = (bytes(buffers[out_r]), bytes(buffers[err_r]))
        out_s = stdout.decode("utf-8", "replace")
        err_s = stderr.decode("utf-8", "replace")
        truncated = reason == "output_limit"
        if reason == "timeout":
            return _result("timeout", None, out_s, err_s, start, truncated)
        if reason == "output_limit":
            return _result("output_limit", None, out_s, err_s, start, True)
        code = os.waitstatus_to_exitcode(status)
        exit_code = code if code >= 0 else None
        if self.slot.oom_kills() > oom_before:
            return _result("oom", exit_code, out_s, err_s, start, truncated)
        if not ready:
            return _result("sandbox_error", exit_code, out_s, "r1ci sandbox failed to start the request: " + err_s,
                           start, truncated)
        if exit_code is None and usage.ru_utime + usage.ru_stime >= timeout_s:
            return _result("timeout", None, out_s, err_s, start, truncated)
        if exit_code not in (None, 0) and _ends_with_memory_error(err_s):
            return _result("oom", exit_code, out_s, err_s, start, truncated)
        return _result("ok" if exit_code == 0 else "error", exit_code, out_s, err_s, start, truncated)


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
    worker = Worker(opts, config["slot"], config.get("caller_cwd", "/"))
    try:
        mode, reasons = worker.resolve(config["mode"])
        protocol.write_fd(results, {"ready": bool(mode), "isolation": mode, "reasons": reasons,
                                    "memory_cgroup": worker.slot.has_memory, "pids_cgroup": worker.slot.has_pids})
        if not mode:
            return
        worker.mode = mode
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        while True:
            request = protocol.read_fd(requests)
            if request is None:
                return
            result = worker.execute(request["code"], float(request["timeout_s"]))
            protocol.write_fd(results, result)
    except (BrokenPipeError, protocol.ProtocolError):
        return
    finally:
        worker.close()
