"""The few Linux system calls Python 3.11's ``os`` lacks (unshare, setns, mount, pivot_root, prctl), via ctypes.

Only the pre-forked worker and its per-request children call these; each raises ``OSError`` with errno set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

# pivot_root has no glibc wrapper; its number differs per architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl_ptr = ctypes.CDLL(_libc._name, use_errno=True).prctl  # a second handle: prctl with a string argument
_prctl_ptr.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(_libc.syscall(number, _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0) -> None:
    _check(_libc.prctl(option, arg2, 0, 0, 0), f"prctl {option}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


def drop_bounding_set() -> None:
    """Drop every capability from the bounding set (needs CAP_SETPCAP; stops at the first unknown one)."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            if ctypes.get_errno() == 22:  # EINVAL: past the last capability this kernel knows
                return
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


_libc.waitpid.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def reap(pid: int) -> None:
    """Reap child ``pid`` without reading its status (``waitpid`` with a NULL status pointer)."""
    _libc.waitpid(pid, None, 0)


def reap_children() -> int:
    """Reap every exited child without reading its status (``waitpid`` with a NULL status pointer)."""
    reaped = 0
    while _libc.waitpid(-1, None, os.WNOHANG) > 0:
        reaped += 1
    return reaped


def exit_status_of_zombie(pid: int) -> tuple[int, float] | None:
    """``(wait status, CPU seconds)`` of an exited, not yet reaped process, from ``/proc/<pid>/stat``.

    The worker reads its requests' children this way because their parent (the zygote) must not.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields[0] != b"Z" or len(fields) < 50:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[49]), sum(int(x) for x in fields[11:15]) / ticks


MADV_COLLAPSE = 25
_HUGE = 2 << 20


def collapse_anonymous_memory() -> int:
    """Back this process's anonymous memory with 2 MB pages where the kernel can (MADV_COLLAPSE, Linux ≥ 6.1).

    A process forked from this one then copies one page-table entry per 2 MB instead of 512, and its exit frees
    them as cheaply: the zygote calls it once after the preload. Best effort; returns the bytes collapsed.
    """
    collapsed = 0
    try:
        with open("/proc/self/maps") as handle:
            maps = handle.read().splitlines()
    except OSError:
        return 0
    for line in maps:
        fields = line.split()
        if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5] != "[heap]"):
            continue
        low, high = (int(x, 16) for x in fields[0].split("-"))
        start, end = (low + _HUGE - 1) & ~(_HUGE - 1), high & ~(_HUGE - 1)
        if end <= start:
            continue
        # MADV_COLLAPSE alone (no MADV_HUGEPAGE): later faults in these ranges, in the zygote's children above
        # all, must stay 4 kB pages, or each would zero a whole 2 MB page.
        if _libc.madvise(start, end - start, MADV_COLLAPSE) == 0:
            collapsed += end - start
    return collapsed


def set_process_name(name: str) -> None:
    """Name this process (``comm``, at most 15 bytes) so that ``ps`` and ``perf`` tell it apart."""
    _prctl_ptr(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


_pylibc = ctypes.PyDLL(_libc._name, use_errno=True)  # calls that keep the GIL


def raw_fork() -> int:
    """``fork()`` of the C library, without the interpreter's own before/after-fork work (see zygote.py)."""
    pid = _pylibc.fork()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"fork: {os.strerror(err)}")
    return pid
