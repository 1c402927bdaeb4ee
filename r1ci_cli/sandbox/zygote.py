"""The zygote's per-request child: fork into fresh namespaces, enter a read-only root, drop privileges, run.

The worker (a single-threaded process that has preloaded numpy/sympy) calls ``Namespaces.create`` once, when
it first runs a request in this mode, and ``spawn`` per request. ``Namespaces`` holds what every request of
one worker shares, built once because creating (and tearing down) them per request dominated the cost:

* a network namespace with only a loopback device, left down (no address, no route, no other interface);
* a UTS namespace whose hostname is ``sandbox``;
* a template mount namespace whose root is a tmpfs holding only read-only binds of the paths in ``Layout``,
  a few device nodes and empty ``/proc`` and ``/tmp`` mount points; the old root is detached and ``/`` is
  read-only. A short-lived helper process builds it and the worker keeps only its ``/proc/<pid>/ns/mnt`` fd.

They die with the worker (a replaced worker builds its own).

Sharing is safe because a worker runs one request at a time and nothing of a request outlives it: every
process of a request lives in that request's PID namespace, which the kernel empties (and so closes every
socket) before the worker reaps its init and starts the next request; the code runs as an unprivileged uid
without capabilities in these namespaces (which belong to the initial user namespace), so it cannot bring the
loopback up, add an interface, change a sysctl or the hostname, or mount anything in the template. A
request's own mounts (``/proc``, the scratch) live in a private copy of the template that dies with it. IPC
namespaces stay per request: SysV objects outlive their processes.

Per request:

1. the worker ``unshare(CLONE_NEWPID)``s and forks, so the child is PID 1 of a new PID namespace; the worker
   then ``setns`` back, so its later children are unaffected. When the child exits, the kernel kills
   everything else in that namespace — a ``setsid()`` double-forked grandchild included;
2. the child joins the slot's cgroups (memory, pids), starts a new session, ``setns``es into the worker's
   network, UTS and template mount namespaces, and unshares a private copy of the mount namespace and a fresh
   IPC namespace;
3. it mounts a fresh ``/proc`` and an empty tmpfs scratch at ``/tmp`` in that copy;
4. it sets rlimits, switches to the unprivileged uid/gid with no supplementary groups (which clears every
   capability), sets no-new-privs and a parent-death signal, tells the worker it is ready, closes every other
   descriptor, and runs the code with stdin on ``/dev/null``.

In ``none`` mode the namespaces, steps 1 and 3 and the uid change are skipped: only the session, cgroups and
rlimits apply.
A failure before the code starts is written to the child's stderr and exits with ``SETUP_FAILED``; the worker
reports it as ``sandbox_error``. Not handled: a kernel without user-visible namespaces (probing then picks
another mode), and seccomp syscall filtering (the code may make any syscall its uid and namespaces allow).
"""

from __future__ import annotations

import io
import os
import signal
import sys
import traceback
from dataclasses import dataclass

from r1ci_cli.sandbox import native, runner
from r1ci_cli.sandbox.layout import DEVICES, Layout
from r1ci_cli.sandbox.limits import CgroupSlot, join_slot

SETUP_FAILED = 121
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
    """What one request's child needs besides the code."""

    isolate: bool
    layout: Layout
    uid: int
    gid: int
    scratch_mb: int
    limits: dict[str, int]
    scratch_dir: str | None = None  # none mode: the host directory used as scratch


@dataclass(frozen=True)
class Namespaces:
    """Open fds (close-on-exec) of the namespaces a worker's requests share; see the module docstring."""

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
                # If this fails the worker stays outside its old network, which it never uses; still report it.
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

    def close(self) -> None:
        for fd in (self.net, self.uts, self.mnt):
            try:
                os.close(fd)
            except OSError:
                pass


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
            os.read(hold_r, 1)  # returns when the worker has opened the namespace (or died)
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


def spawn(code: str, spec: ChildSpec, slot: CgroupSlot, own_pidns_fd: int,
          lifeline: tuple[int, int], namespaces: Namespaces | None = None) -> tuple[int, int, int, int]:
    """Fork the child; returns ``(pid, stdout_fd, stderr_fd, ready_fd)`` read ends for the worker.

    ``own_pidns_fd`` is an open ``/proc/self/ns/pid`` of the worker; ``lifeline`` the worker's pipe whose
    write end only the worker keeps; ``namespaces`` the worker's shared namespaces (required when
    ``spec.isolate``).
    """
    if spec.isolate and namespaces is None:
        raise ValueError("an isolated request needs the worker's namespaces")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    ready_r, ready_w = os.pipe()
    unshared = False
    try:
        if spec.isolate:
            native.unshare(native.CLONE_NEWPID)
            unshared = True
        pid = os.fork()
    except BaseException:
        if unshared:
            native.setns(own_pidns_fd, native.CLONE_NEWPID)
        for fd in (out_r, out_w, err_r, err_w, ready_r, ready_w):
            os.close(fd)
        raise
    if pid == 0:  # pragma: no cover - runs in the forked child, which leaves through os._exit
        for fd in (out_r, err_r, ready_r, lifeline[1]):
            os.close(fd)
        _child(code, spec, slot, out_w, err_w, ready_w, lifeline[0], namespaces)
    if spec.isolate:
        # Only children forked from here on would enter a new namespace; undo that at once.
        native.setns(own_pidns_fd, native.CLONE_NEWPID)
    for fd in (out_w, err_w, ready_w):
        os.close(fd)
    return pid, out_r, err_r, ready_r


def _child(code: str, spec: ChildSpec, slot: CgroupSlot, out_w: int, err_w: int, ready_w: int,
           lifeline_fd: int, namespaces: Namespaces | None) -> None:  # pragma: no cover - forked child
    try:
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                      write_through=False)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True)
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        join_slot(slot)
        if spec.isolate:
            assert namespaces is not None
            _enter_root(spec, namespaces)
            cwd = "/tmp"
        else:
            cwd = spec.scratch_dir or "/tmp"
        runner.set_limits(spec.limits)
        if spec.isolate:
            native.prctl(native.PR_SET_NO_NEW_PRIVS, 1)
            runner.drop_privileges(spec.uid, spec.gid)
        # Set after the uid change (which clears it): the request dies if its worker dies.
        native.prctl(native.PR_SET_PDEATHSIG, signal.SIGKILL)
        if _worker_gone(lifeline_fd):
            os._exit(SETUP_FAILED)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(runner.ENV)
        os.environ["HOME"] = os.environ["TMPDIR"] = cwd
        sys.path[:] = list(spec.layout.sys_path)
        os.write(ready_w, b"R")
        os.closerange(3, 1 << 16)
    except BaseException:
        try:
            os.write(2, ("r1ci sandbox setup failed: " + traceback.format_exc(limit=3)).encode())
        finally:
            os._exit(SETUP_FAILED)
    runner.run_code(code)


def _worker_gone(lifeline_fd: int) -> bool:
    """The worker holds the write end of the lifeline; EOF on the read end means it has died."""
    import select

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


def _enter_root(spec: ChildSpec, namespaces: Namespaces) -> None:  # pragma: no cover - forked child
    """Join the shared namespaces, take a private copy of the template root, mount /proc and a fresh scratch."""
    native.setns(namespaces.net, native.CLONE_NEWNET)
    native.setns(namespaces.uts, native.CLONE_NEWUTS)
    native.setns(namespaces.mnt, native.CLONE_NEWNS)  # also moves root and cwd to the template's root
    # The copy is private (the template's mounts are), so nothing mounted below reaches the template.
    native.unshare(native.CLONE_NEWNS | native.CLONE_NEWIPC)
    os.chdir("/")
    native.mount("proc", "/proc", "proc", native.MS_NOSUID | native.MS_NODEV | native.MS_NOEXEC)
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
