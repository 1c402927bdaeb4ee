"""The zygote: a clean preloaded process that forks each request's sandboxed child before the request arrives.

Three processes serve a worker slot in the ``zygote`` (and ``none``) mode:

* the **worker** (``worker.py``) talks to the pool, writes each request's code to a child and reads its output.
  Its memory holds every request it has handled, so nothing that runs code is ever forked from it;
* the **zygote**, forked by the worker after the preload and before its first request (``Zygote.start``). It
  holds what all requests share — the preloaded modules, the namespaces below — and is only ever told "fork
  the next child" along with four pipe ends: it never sees a request's code, output or exit status (it reaps
  its children without reading their status). Every child is a copy of this clean memory. The zygote lives in
  the slot's memory and pids cgroups, so its children are born there (moving a process into a cgroup v1 waits
  for an RCU grace period, ~20 ms); it never allocates much, its memory was charged to the worker before it
  joined, and (where it may) its ``oom_score_adj`` of -1000 keeps the OOM killer on the request;
* the **child**, forked by the zygote as soon as the previous request is over: it enters its sandbox, drops its
  privileges, says ``READY`` on its status pipe and blocks reading its request. The fork and the set-up are paid
  between requests ("armed" ahead), not after a request arrives. When the code is done the child closes its
  output, writes its exit status and leaves; the worker answers without waiting for the kernel to tear down
  the address space.

What every child of one zygote shares, built once by ``Namespaces.create`` because creating (and tearing down)
them per request dominated the cost:

* a network namespace with only a loopback device, left down (no address, no route, no other interface);
* a UTS namespace whose hostname is ``sandbox``;
* a template mount namespace whose root is a tmpfs holding only read-only binds of the paths in ``Layout``,
  a few device nodes and empty ``/proc`` and ``/tmp`` mount points; the old root is detached and ``/`` is
  read-only. A short-lived helper process builds it and the zygote keeps only its ``/proc/<pid>/ns/mnt`` fd.

Sharing is safe because a worker runs one request at a time and nothing of a request outlives it: every
process of a request lives in that request's PID namespace, which the kernel empties (and so closes every
socket) before the worker arms the next child; the code runs as an unprivileged uid without capabilities in
these namespaces (which belong to the initial user namespace), so it cannot bring the loopback up, add an
interface, change a sysctl or the hostname, or mount anything in the template. A request's own mounts
(``/proc``, the scratch) live in a private copy of the template that dies with it. IPC namespaces stay per
request: SysV objects outlive their processes.

Per child (``_child``):

1. the zygote ``unshare(CLONE_NEWPID)``s and forks, so the child is PID 1 of a new PID namespace; the zygote
   then ``setns`` back. When the child exits, the kernel kills everything else in that namespace — a
   ``setsid()`` double-forked grandchild included;
2. the child, born in the slot's cgroups and the shared network, UTS and template mount namespaces (the
   zygote lives in them), starts a new session, reseeds ``random`` and ``numpy.random``, unshares a private
   copy of the mount namespace and a fresh IPC namespace, mounts a fresh ``/proc`` (its keyring files
   masked) and an empty tmpfs scratch at ``/tmp``, and gives up the zygote's OOM immunity;
3. it sets rlimits, joins a fresh session keyring, switches to the unprivileged uid/gid with no supplementary
   groups (which clears every capability), sets no-new-privs and a parent-death signal, installs the syscall
   filter (``runner.install_seccomp``), closes every other descriptor and says ``READY``;
4. it reads the request (its timeout sets ``RLIMIT_CPU``) and runs the code with stdin on ``/dev/null``.

In ``none`` mode the namespaces, the mounts, the uid change and the syscall filter are skipped: only the
session, cgroups, rlimits and keyring apply, in a scratch directory the worker made.
A failure before the code starts is written to the child's stderr and exits with ``SETUP_FAILED``; the worker
reports it as ``sandbox_error``. Not handled: a kernel without user-visible namespaces (probing then picks
another mode).
"""

from __future__ import annotations

import fcntl
import gc
import io
import os
import select
import signal
import socket
import sys
import traceback
from dataclasses import dataclass

from r1ci_cli.sandbox import native, runner
from r1ci_cli.sandbox.layout import DEVICES, Layout
from r1ci_cli.sandbox.limits import CgroupSlot, join_slot

SETUP_FAILED = 121
# The child's descriptors: 0 /dev/null, 1 stdout, 2 stderr, 3 the request (read), 4 its status (write).
REQUEST_FD, STATUS_FD = 3, 4
SPAWN_TIMEOUT_S = 30.0
# /proc files a request must not read: the keyrings of its uid, and kernel state that is nobody's business.
MASKED_PROC = ("/proc/keys", "/proc/key-users", "/proc/kcore", "/proc/timer_list", "/proc/sched_debug",
               "/proc/sysrq-trigger")
# The new root is a tmpfs mounted over an existing host directory inside the private mount namespace. That
# directory must not contain a path to bind (a venv under /tmp would be hidden by the tmpfs), so it is the
# first candidate outside every bound path.
NEW_ROOT_CANDIDATES = ("/mnt", "/media", "/srv", "/opt", "/tmp", "/var/tmp", "/boot")


def pick_new_root(ro_dirs: tuple[str, ...]) -> str:
    for candidate in NEW_ROOT_CANDIDATES:
        if not os.path.isdir(candidate) or os.path.islink(candidate):
            continue
        prefix = candidate.rstrip("/") + "/"
        if not any(path == candidate or path.startswith(prefix) or prefix.startswith(path.rstrip("/") + "/")
                   for path in ro_dirs):
            return candidate
    raise OSError(f"no directory among {', '.join(NEW_ROOT_CANDIDATES)} is free to build the sandbox root on")


_MOUNT_RO = native.MS_BIND | native.MS_REMOUNT | native.MS_RDONLY | native.MS_NOSUID | native.MS_NODEV


@dataclass(frozen=True)
class ChildSpec:
    """What every child of one zygote needs; ``limits`` are the rlimits that do not depend on the request."""

    isolate: bool
    layout: Layout
    uid: int
    gid: int
    scratch_mb: int
    limits: dict[str, int]


@dataclass
class ArmedChild:
    """The worker's side of one request's process and its pipes: a pre-forked child of the zygote (its pid as the
    worker sees it), or in the exec modes the wrapper the worker started (whose "status" pipe only says READY)."""

    pid: int
    pidfd: int
    request_w: int
    stdout_r: int
    stderr_r: int
    status_r: int
    scratch_dir: str | None = None
    reaped: bool = False  # set once its parent has collected it (only the worker's own children)

    def close(self) -> None:
        for fd in (self.pidfd, self.request_w, self.stdout_r, self.stderr_r, self.status_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.pidfd = self.request_w = self.stdout_r = self.stderr_r = self.status_r = -1


class Zygote:
    """The worker's handle on its zygote process (see the module docstring)."""

    def __init__(self, pid: int, sock: socket.socket):
        self.pid, self.sock = pid, sock
        self.pidfd = os.pidfd_open(pid)
        self.reaped = False

    @classmethod
    def start(cls, spec: ChildSpec, slot: CgroupSlot, lifeline: tuple[int, int]) -> "Zygote":
        """Fork the zygote; call before the worker has seen any request."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        worker = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the zygote, which leaves through os._exit
            try:
                keep = {0, 1, 2, theirs.fileno(), lifeline[0], *slot.procs_fds}
                for fd in range(3, max(keep) + 1):
                    if fd not in keep:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                os.closerange(max(keep) + 1, 1 << 16)
                ours.detach()
                _zygote_main(theirs, spec, slot, lifeline[0], worker)
            except BaseException:
                os.write(2, ("r1ci sandbox zygote failed: " + traceback.format_exc(limit=4)).encode())
            finally:
                os._exit(0)
        theirs.close()
        return cls(pid, ours)

    def alive(self) -> bool:
        return not self.reaped and not select.select([self.pidfd], [], [], 0)[0]

    def order(self, scratch_dir: str | None = None) -> ArmedChild:
        """Have the zygote fork the next child, without waiting: the pipes are ready, ``pid`` is 0 until
        ``collect``. The child then sets itself up in the background."""
        request_r, request_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        status_r, status_w = os.pipe()
        ours = [request_w, stdout_r, stderr_r, status_r]
        try:
            socket.send_fds(self.sock, [b"F" + os.fsencode(scratch_dir or "")],
                            [request_r, stdout_w, stderr_w, status_w])
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in (request_r, stdout_w, stderr_w, status_w):
                os.close(fd)
        return ArmedChild(0, -1, *ours, scratch_dir=scratch_dir)

    def collect(self, child: ArmedChild) -> None:
        """Wait for the zygote's answer to ``order``: the child's pid (and a pidfd), or ``OSError``."""
        if not select.select([self.sock], [], [], SPAWN_TIMEOUT_S)[0]:
            raise OSError(f"the zygote did not fork within {SPAWN_TIMEOUT_S:.0f} s")
        reply = self.sock.recv(4096)
        if not reply:
            raise OSError("the zygote has died")
        if reply.startswith(b"!"):
            raise OSError(reply[1:].decode(errors="replace"))
        child.pid = int(reply)
        child.pidfd = os.pidfd_open(child.pid)

    def close(self) -> None:
        self.sock.close()
        if not self.reaped:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.reaped = True
        os.close(self.pidfd)


def _zygote_main(sock: socket.socket, spec: ChildSpec, slot: CgroupSlot, lifeline_fd: int,
                 worker: int) -> None:  # pragma: no cover - runs in the zygote
    """Fork one child per command until the worker goes away; see the module docstring.

    Whatever every child would do the same way is done here once and inherited: the signal dispositions of a
    fresh interpreter, the environment, ``sys.path``, the standard streams' objects, the syscall filter's
    program. A command is the scratch directory (empty in the isolated mode) with four descriptors; the answer
    is the child's pid, or ``!`` and why not.
    """
    native.prctl(native.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker:
        return
    native.set_process_name("r1ci-zygote")
    try:
        _write("/proc/self/oom_score_adj", "-1000")
        immune = True
    except OSError:  # no CAP_SYS_RESOURCE: the OOM killer still prefers a request, whose memory is larger
        immune = False
    join_slot(slot)
    namespaces: Namespaces | None = None
    broken = b""
    if spec.isolate:
        try:
            namespaces = Namespaces.create(spec.layout)
        except OSError as err:
            broken = f"could not build the sandbox namespaces: {err}".encode()
    runner.prepare()
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    masked = tuple(path for path in MASKED_PROC if os.path.exists(path))
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(runner.ENV)
    sys.path[:] = list(spec.layout.sys_path)
    streams = _standard_streams()
    # Private 2 MB pages of our own (the worker's are shared with it, and any write here would split them):
    # a child's fork then copies one entry per 2 MB. The few this loop writes to are split at the first fork
    # (a write to a page a child shares); the rest stay whole.
    gc.collect()
    gc.freeze()
    native.collapse_anonymous_memory()
    if namespaces is not None:
        # Live in the shared network, UTS and template mount namespaces, so that every child is born there.
        native.setns(namespaces.net, native.CLONE_NEWNET)
        native.setns(namespaces.uts, native.CLONE_NEWUTS)
        native.setns(namespaces.mnt, native.CLONE_NEWNS)  # also moves root and cwd to the template's root
    setup = _Setup(spec, lifeline_fd, streams, masked, immune)
    newest = 0  # the worker may still read this child's status from its zombie: never reaped before the next order
    older: dict[int, int] = {}  # pidfd -> pid of earlier children, reaped (status unread) as soon as they exit
    while True:
        readable = select.select([sock, *older], [], [])[0]
        for fd in readable:
            if fd in older:
                native.reap(older.pop(fd))
                os.close(fd)
        if sock not in readable:
            continue
        try:
            message, fds, _flags, _addr = socket.recv_fds(sock, 4096, 4)
        except OSError:
            return
        if not message:
            return
        if newest:
            older[os.pidfd_open(newest)] = newest
            newest = 0
        try:
            if broken:
                reply = b"!" + broken
            elif len(fds) != 4:
                reply = b"!expected 4 descriptors"
            else:
                scratch = os.fsdecode(message[1:]) or None
                newest = _fork_child(setup, own_pidns, fds, scratch)
                reply = b"%d" % newest
        except OSError as err:
            reply = b"!" + str(err).encode()
        finally:
            for fd in fds:
                os.close(fd)
        sock.send(reply)


def _standard_streams() -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """``sys.stdin``/``stdout``/``stderr`` for descriptors 0, 1 and 2 as a fresh interpreter makes them (built
    once; each child gets them with empty buffers, because the zygote never writes to them)."""
    return (io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8"),
            io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=False),
            io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                             line_buffering=True))


@dataclass(frozen=True)
class _Setup:
    """What a zygote hands each child: the spec, the lifeline, the standard streams, the /proc files to mask,
    and whether the zygote gave itself OOM immunity (which the child must give up)."""

    spec: ChildSpec
    lifeline_fd: int
    streams: tuple
    masked: tuple[str, ...]
    immune: bool


def _fork_child(setup: _Setup, own_pidns: int, fds: list[int], scratch: str | None) -> int:  # pragma: no cover
    spec = setup.spec
    unshared = False
    try:
        if spec.isolate:
            native.unshare(native.CLONE_NEWPID)
            unshared = True
        # The C library's fork without the interpreter's after-fork callbacks (logging, threading, random...),
        # which cost a child some 200 copied pages; this process is single-threaded and holds no lock, and the
        # child reseeds what must differ per request (_reseed).
        pid = native.raw_fork()
    except BaseException:
        if unshared:
            native.setns(own_pidns, native.CLONE_NEWPID)
        raise
    if pid == 0:
        _child(setup, fds, scratch)
    if spec.isolate:
        # Only children forked from here on would enter a new namespace; undo that at once.
        native.setns(own_pidns, native.CLONE_NEWPID)
    return pid


@dataclass(frozen=True)
class Namespaces:
    """Open fds (close-on-exec) of the namespaces a zygote's children share; see the module docstring."""

    net: int
    uts: int
    mnt: int

    @classmethod
    def create(cls, layout: Layout) -> "Namespaces":
        """Build the shared namespaces (root only); the calling process's own namespaces are left as they were."""
        own_net = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        own_uts = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        opened: list[int] = []
        try:
            native.unshare(native.CLONE_NEWNET | native.CLONE_NEWUTS)
            try:
                native.sethostname("sandbox")
                opened.append(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
                opened.append(os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC))
            finally:
                native.setns(own_net, native.CLONE_NEWNET)
                native.setns(own_uts, native.CLONE_NEWUTS)
            opened.append(_mount_template(layout))
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise
        finally:
            os.close(own_net)
            os.close(own_uts)
        return cls(*opened)


def _mount_template(layout: Layout) -> int:
    """Fork a helper that builds the read-only root in a new mount namespace; return an fd of that namespace."""
    done_r, done_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - forked helper, leaves through os._exit
        try:
            os.close(done_r)
            os.close(hold_w)
            native.unshare(native.CLONE_NEWNS | native.CLONE_NEWIPC)
            _build_template(layout)
            os.write(done_w, b"R")
            os.read(hold_r, 1)  # returns when the zygote has opened the namespace (or died)
            os._exit(0)
        except BaseException:
            try:
                os.write(2, ("r1ci sandbox: building the root failed: " + traceback.format_exc(limit=3)).encode())
            finally:
                os._exit(SETUP_FAILED)
    os.close(done_w)
    os.close(hold_r)
    try:
        if os.read(done_r, 1) != b"R":
            raise OSError("r1ci sandbox: the helper building the sandbox root failed (see the worker log)")
        return os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(hold_w)
        os.close(done_r)
        os.waitpid(pid, 0)


def _child(setup: _Setup, fds: list[int], scratch: str | None) -> None:  # pragma: no cover - forked child
    spec = setup.spec
    try:
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]
        request_fd, out_w, err_w, status_w = high
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.dup2(request_fd, REQUEST_FD)
        os.dup2(status_w, STATUS_FD)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdin, sys.stdout, sys.stderr = setup.streams
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = setup.streams
        os.setsid()
        _reseed()
        if spec.isolate:
            _enter_root(spec, setup.masked)
            cwd = "/tmp"
        else:
            cwd = scratch or "/tmp"
            os.environ["HOME"] = os.environ["TMPDIR"] = cwd
        if setup.immune:
            _write("/proc/self/oom_score_adj", "0")  # raising it again needs no privilege
        runner.set_limits(spec.limits)
        runner.fresh_session_keyring()
        if spec.isolate:
            runner.no_new_privileges()
            runner.drop_privileges(spec.uid, spec.gid)
        # Set after the uid change (which clears it): the request dies if its zygote dies.
        native.prctl(native.PR_SET_PDEATHSIG, signal.SIGKILL)
        if _worker_gone(setup.lifeline_fd):
            os._exit(SETUP_FAILED)
        os.chdir(cwd)
        if spec.isolate:
            runner.install_seccomp()
        os.closerange(STATUS_FD + 1, 1 << 16)
        os.write(STATUS_FD, runner.READY)
        request = runner.read_request(REQUEST_FD)
        if request is None:  # the worker went away before sending a request
            os._exit(0)
        os.close(REQUEST_FD)
        timeout_s, code = request
        runner.set_limits(runner.cpu_limit(timeout_s))
    except BaseException:
        try:
            os.write(2, ("r1ci sandbox setup failed: " + traceback.format_exc(limit=3)).encode())
        finally:
            os._exit(SETUP_FAILED)
    runner.run_code(code, STATUS_FD)


def _reseed() -> None:
    """New random seeds, as a fresh interpreter would have (a raw fork skips ``random``'s own reseeding, and
    ``numpy.random``'s global state would otherwise repeat in every request)."""
    if "random" in sys.modules:
        sys.modules["random"].seed()
    if "numpy.random" in sys.modules:  # a 32-bit seed: 40 times cheaper than numpy's own seeding from entropy
        sys.modules["numpy.random"].seed(int.from_bytes(os.urandom(4), "little"))


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _worker_gone(lifeline_fd: int) -> bool:
    """The worker holds the write end of the lifeline; EOF on the read end means it has died."""
    readable, _, _ = select.select([lifeline_fd], [], [], 0)
    return bool(readable)


def _build_template(layout: Layout) -> None:  # pragma: no cover - forked helper
    """In a fresh mount namespace: make a read-only allowlisted root, pivot into it and detach the host's."""
    NEW_ROOT = pick_new_root(layout.ro_dirs)  # noqa: N806 - the constant of one build
    native.mount(None, "/", None, native.MS_REC | native.MS_PRIVATE)
    native.mount("tmpfs", NEW_ROOT, "tmpfs", native.MS_NOSUID | native.MS_NODEV, "size=1m,mode=0755")
    for path in layout.ro_dirs:
        target = NEW_ROOT + path
        _makedirs(target)
        native.mount(path, target, None, native.MS_BIND | native.MS_REC)
        native.mount(None, target, None, _MOUNT_RO)
    for link, dest in layout.symlinks:
        os.symlink(dest, NEW_ROOT + link)
    _makedirs(NEW_ROOT + "/dev")
    for device in DEVICES:
        if os.path.exists(device):
            target = NEW_ROOT + device
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
            native.mount(device, target, None, native.MS_BIND)
            native.mount(None, target, None, native.MS_BIND | native.MS_REMOUNT | native.MS_NOSUID)
    for name, dest in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                       ("stderr", "/proc/self/fd/2")):
        os.symlink(dest, f"{NEW_ROOT}/dev/{name}")
    _makedirs(NEW_ROOT + "/proc")
    _makedirs(NEW_ROOT + "/tmp")
    os.chdir(NEW_ROOT)
    native.pivot_root(".", ".")
    native.umount2(".", native.MNT_DETACH)
    os.chdir("/")
    native.mount(None, "/", None, native.MS_BIND | native.MS_REMOUNT | native.MS_RDONLY)


def _enter_root(spec: ChildSpec, masked: tuple[str, ...]) -> None:  # pragma: no cover - forked child
    """Take a private copy of the template root (the zygote lives in it), mount /proc and a fresh scratch."""
    # The copy is private (the template's mounts are), so nothing mounted below reaches the template.
    native.unshare(native.CLONE_NEWNS | native.CLONE_NEWIPC)
    os.chdir("/")
    native.mount("proc", "/proc", "proc", native.MS_NOSUID | native.MS_NODEV | native.MS_NOEXEC)
    for path in masked:
        native.mount("/dev/null", path, None, native.MS_BIND)
    # Allowlisted directories under /tmp (a venv or checkout there) would vanish under the scratch tmpfs:
    # hold them by O_PATH fds, mount the scratch, then bind them back read-only at the same paths.
    under_tmp = [path for path in spec.layout.ro_dirs if path.startswith("/tmp/")]
    held = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in under_tmp]
    native.mount("tmpfs", "/tmp", "tmpfs", native.MS_NOSUID | native.MS_NODEV,
                 f"size={spec.scratch_mb}m,mode=0700,uid={spec.uid},gid={spec.gid}")
    for path, fd in zip(under_tmp, held):
        _makedirs(path)
        native.mount(f"/proc/self/fd/{fd}", path, None, native.MS_BIND | native.MS_REC)
        native.mount(None, path, None, _MOUNT_RO)
        os.close(fd)


def _makedirs(path: str) -> None:
    """Create ``path`` and its parents with mode 0755 (the umask is ignored: parents must be traversable)."""
    parts = path.strip("/").split("/")
    current = ""
    for part in parts:
        current += "/" + part
        try:
            os.mkdir(current)
            os.chmod(current, 0o755)
        except FileExistsError:
            pass
