"""Isolation modes and how each one is started; ``auto`` probing lives in the worker (it needs the zygote).

* ``zygote``   — fork per request from a preloaded worker into a new PID and IPC namespace and a private copy
  of the worker's read-only allowlisted root, with the worker's network (loopback only, down) and UTS
  namespaces, a fresh ``/proc`` and tmpfs scratch, rlimits, a memory+pids cgroup and an unprivileged uid
  (see ``zygote.py``). Needs root (or ``CAP_SYS_ADMIN``); the strongest and the fastest.
* ``bwrap``    — bubblewrap per call with the same allowlisted root and namespaces; the code's interpreter is
  started by bwrap as root and the runner drops to the unprivileged uid before the code runs (bwrap's own
  ``--uid`` needs a user namespace, whose uid 0 would still own ``/etc/shadow`` on the host).
* ``firejail`` — firejail per call (``--net=none``, private ``/tmp`` and ``/dev``, no-new-privs, firejail's
  seccomp filter, only the two capabilities the runner needs to drop to the unprivileged uid; every top-level
  host path outside the allowlist, every entry of ``/run`` but firejail's own, ``/sys``, homes and the
  checkout blacklisted): a denylist, weaker than the two above. firejail runs programs without any sandbox
  inside a PID namespace (a container); that is refused, never used. The interpreter directories are bound
  at fresh mount points, because firejail cannot recreate a mode-700 ``/root`` path as bwrap and the zygote do.
* ``none``     — no isolation (rlimits and the cgroup only, the caller's uid); must be asked for explicitly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys

from r1ci_cli.sandbox import runner
from r1ci_cli.sandbox.layout import Layout

RUNNER_SOURCE = open(runner.__file__, encoding="utf-8").read().encode()
# What ``python -c`` runs in the exec modes: it reads the runner's source from stdin (length first) and runs it;
# the runner then reads the code from the rest of stdin. (firejail caps each argument at 4 kB.)
BOOTSTRAP = ("import os\nsize = int.from_bytes(os.read(0, 4), 'big')\nsource = b''\n"
             "while len(source) < size:\n    chunk = os.read(0, size - len(source))\n    if not chunk:\n"
             "        raise SystemExit('r1ci sandbox: the runner did not arrive')\n    source += chunk\n"
             "exec(compile(source, '<r1ci runner>', 'exec'))\n")
READY_FD = 3
SENSITIVE_DIRS = ("/home", "/root", "/mnt", "/media", "/opt", "/var", "/boot", "/work", "/dev/shm", "/run/user")
FIREJAIL_MOUNT_BASE = "/srv/r1ci-sandbox"
# The top-level host paths firejail leaves visible (read-only); everything else at the top level is blacklisted.
FIREJAIL_TOP = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "tmp", "dev", "proc", "run", "srv")
# Mounted over /proc files in the bwrap mode (zygote.MASKED_PROC in the zygote's); firejail blacklists them.
MASKED_PROC = ("/proc/keys", "/proc/key-users", "/proc/kcore", "/proc/timer_list", "/proc/sched_debug")


def bwrap_argv(layout: Layout, uid: int, gid: int, scratch_mb: int, limits: dict[str, int],
               outside_ns: dict[str, str] | None = None) -> list[str]:
    """The bubblewrap command line of one request; the code is written to the runner's stdin."""
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if os.getuid() != 0:
        argv.append("--unshare-user")
    # The scratch tmpfs first: allowlisted directories under /tmp (a venv or checkout there) are bound on top.
    argv += ["--size", str(scratch_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/tmp"]
    made: set[str] = set()
    for path in layout.ro_dirs:
        # bwrap would copy the host's modes onto the directories it creates on the way (/root is 0700).
        parts = path.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            ancestor = "/" + "/".join(parts[:depth])
            if ancestor not in made:
                made.add(ancestor)
                argv += ["--perms", "0755", "--dir", ancestor]
        argv += ["--ro-bind", path, path]
    for link, dest in layout.symlinks:
        argv += ["--symlink", dest, link]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    for path in MASKED_PROC:
        if os.path.exists(path):
            argv += ["--ro-bind", "/dev/null", path]
    argv += ["--remount-ro", "/", "--chdir", "/tmp", "--clearenv", "--"]
    return argv + _runner_argv(layout, uid, gid, limits, layout.executable, outside_ns)


def in_nested_pid_namespace() -> bool:
    """Whether this process runs in a PID namespace below the initial one (as firejail itself tells: the
    kernel's thread daemon, PID 2 of the initial namespace, is not visible)."""
    try:
        with open("/proc/2/comm") as handle:
            return handle.read().strip() != "kthreadd"
    except OSError:
        return True


def firejail_available_reason(layout: Layout) -> str | None:
    """Why firejail cannot be used here (``None`` when it can)."""
    if not shutil.which("firejail"):
        return "firejail is not installed (apt-get install firejail)"
    if os.getuid() != 0:
        return "the firejail mode binds the interpreter into the sandbox, which firejail allows only to root"
    if in_nested_pid_namespace():
        return ("firejail runs programs without any sandbox inside a PID namespace (a container), so it is not "
                "used here; use --isolation zygote or bwrap")
    return None


def firejail_mounts(layout: Layout) -> dict[str, str]:
    """Where each interpreter directory appears inside firejail: a fresh, world-searchable mount point.

    firejail cannot recreate a path such as ``/root/.pyenv/…`` with traversable parents the way bwrap and the
    zygote do, so the directories are bound at ``FIREJAIL_MOUNT_BASE/<n>`` instead (empty directories that
    this function creates once on the host; nothing is mounted there outside the sandbox).
    """
    mounts = {}
    for index, path in enumerate(layout.python_dirs):
        target = f"{FIREJAIL_MOUNT_BASE}/{index}"
        os.makedirs(target, mode=0o755, exist_ok=True)
        mounts[path] = target
    os.chmod(FIREJAIL_MOUNT_BASE, 0o755)
    return mounts


def _remap(path: str, mounts: dict[str, str]) -> str:
    for source, target in mounts.items():
        if path == source or path.startswith(source.rstrip("/") + "/"):
            return target + path[len(source):]
    return path


def firejail_argv(layout: Layout, uid: int, gid: int, limits: dict[str, int], hidden: tuple[str, ...],
                  outside_ns: dict[str, str] | None = None) -> list[str]:
    """The firejail command line of one request (as root; the runner drops to ``uid`` inside)."""
    mounts = firejail_mounts(layout)
    # No --private: it would hide /root before the interpreter is bound out of it; /root is blacklisted instead.
    # --caps.keep: the runner needs CAP_SETUID/CAP_SETGID to drop to the unprivileged uid, and nothing else.
    argv = [shutil.which("firejail") or "firejail", "--quiet", "--noprofile", "--net=none", "--private-tmp",
            "--private-dev", "--nogroups", "--nosound", "--no3d", "--ipc-namespace", "--nonewprivs", "--seccomp",
            "--caps.keep=setuid,setgid", "--deterministic-exit-code", "--deterministic-shutdown",
            f"--keep-fd={READY_FD}"]
    argv += [f"--bind={source},{target}" for source, target in mounts.items()]
    argv += [f"--blacklist={path}" for path in hidden if os.path.lexists(path)]
    argv += ["--read-only=/", f"--read-only={FIREJAIL_MOUNT_BASE}"]
    remapped = dataclasses.replace(layout, sys_path=tuple(_remap(p, mounts) for p in layout.sys_path))
    return argv + _runner_argv(remapped, uid, gid, limits, _remap(layout.executable, mounts), outside_ns)


def _under(parent: str, paths: set[str]) -> bool:
    return any(p == parent or p.startswith(parent + "/") for p in paths)


def _entries(directory: str, keep: tuple[str, ...] = ()) -> list[str]:
    """The entries of ``directory`` but ``keep`` and symlinks (a link's target is hidden or allowed on its own)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names
            if name not in keep and not os.path.islink(os.path.join(directory, name))]


def hidden_paths(caller_cwd: str) -> tuple[str, ...]:
    """What the firejail denylist hides (computed per request, so new entries are hidden too): every top-level
    path outside ``FIREJAIL_TOP``, every entry of ``/run`` but firejail's own state and of ``/srv`` but the
    interpreter mounts, ``/sys``, the masked ``/proc`` files, data directories, homes, the checkout and the
    caller's directory."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    extra = [package_root, caller_cwd, os.path.expanduser("~"), "/sys", *MASKED_PROC]
    if sys.prefix != sys.base_prefix:
        extra.append(os.path.dirname(sys.prefix))
    extra += _entries("/", FIREJAIL_TOP) + _entries("/run", ("firejail",))
    extra += _entries("/srv", (os.path.basename(FIREJAIL_MOUNT_BASE),))
    keep = ("/", "/usr", "/etc", "/tmp", "/dev", "/proc", "/srv", "/run", FIREJAIL_MOUNT_BASE)
    return tuple(p for p in dict.fromkeys(os.path.realpath(x) if not x.startswith("/proc/") else x
                                          for x in [*SENSITIVE_DIRS, *extra]) if p not in keep)


def _runner_argv(layout: Layout, uid: int, gid: int, limits: dict[str, int], executable: str,
                 outside_ns: dict[str, str] | None) -> list[str]:
    config = {"sys_path": list(layout.sys_path), "limits": limits, "uid": uid, "gid": gid, "cwd": "/tmp",
              "ready_fd": READY_FD, "outside_ns": outside_ns or {}}
    return [executable, "-I", "-S", "-c", BOOTSTRAP, json.dumps(config)]


def runner_stdin(code: bytes) -> bytes:
    """What the exec modes write to the sandboxed interpreter's stdin: the runner (see ``BOOTSTRAP``), the code."""
    return len(RUNNER_SOURCE).to_bytes(4, "big") + RUNNER_SOURCE + code
