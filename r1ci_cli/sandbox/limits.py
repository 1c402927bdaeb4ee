"""Resource limits: one memory + pids cgroup per worker slot (cgroup v1), and the rlimits of a request.

A cgroup measures real memory (``RLIMIT_AS`` would count the preloaded zygote's virtual memory) and counts
every process of a request whatever its uid or namespace, and its ``cgroup.procs`` lets the worker sweep up
anything a request left behind. Where no cgroup is writable (not root, cgroup v2 only, a container), the
limits fall back to ``RLIMIT_AS`` and ``RLIMIT_NPROC`` and say so in the log. cgroup v2 is not handled yet:
its no-internal-processes rule needs a delegated subtree, which a plain root process does not have.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from dataclasses import dataclass

log = logging.getLogger("r1ci.sandbox")

CGROUP_V1_ROOT = "/sys/fs/cgroup"


def _own_cgroup(controller: str) -> str | None:
    try:
        with open("/proc/self/cgroup") as handle:
            for line in handle:
                _num, controllers, path = line.rstrip("\n").split(":", 2)
                if controller in controllers.split(","):
                    return path
    except OSError:
        return None
    return None


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


@dataclass
class CgroupSlot:
    """The cgroups one worker puts each of its requests into (a request joins by writing to ``procs_fds``)."""

    memory_dir: str | None
    pids_dir: str | None
    procs_fds: tuple[int, ...]
    _oom_fd: int = -1

    @property
    def has_memory(self) -> bool:
        return self.memory_dir is not None

    @property
    def has_pids(self) -> bool:
        return self.pids_dir is not None

    def oom_kills(self) -> int:
        """How many processes the kernel OOM-killed in this slot so far (a counter that only grows)."""
        if self.memory_dir is None:
            return 0
        try:
            if self._oom_fd < 0:  # kept open: read twice per request
                path = os.path.join(self.memory_dir, "memory.oom_control")
                self._oom_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            for line in os.pread(self._oom_fd, 4096, 0).decode().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
            with open(os.path.join(self.memory_dir, "memory.failcnt")) as handle:
                return int(handle.read())
        except (OSError, ValueError):
            return 0

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in (self.pids_dir, self.memory_dir):
            if directory is None:
                continue
            try:
                with open(os.path.join(directory, "cgroup.procs")) as handle:
                    found.update(int(x) for x in handle.read().split())
            except (OSError, ValueError):
                pass
        return sorted(found)

    def kill_all(self, wait_s: float = 2.0, keep: tuple[int, ...] = ()) -> int:
        """SIGKILL whatever is still in the slot but ``keep`` and wait until it is gone; returns how many."""
        first = [pid for pid in self.pids() if pid not in keep]
        deadline = time.monotonic() + wait_s
        pids = first
        while pids and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.002)
            pids = [pid for pid in self.pids() if pid not in keep]
        return len(first)

    def remove(self) -> None:
        self.kill_all()
        for fd in (*self.procs_fds, self._oom_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        for directory in (self.memory_dir, self.pids_dir):
            if directory is not None:
                try:
                    os.rmdir(directory)
                except OSError as err:
                    log.debug("could not remove cgroup %s: %s", directory, err)


def _make(controller: str, name: str, settings: dict[str, str]) -> str | None:
    own = _own_cgroup(controller)
    base = os.path.join(CGROUP_V1_ROOT, controller)
    if own is None or not os.path.isfile(os.path.join(base, "cgroup.procs")):
        return None
    directory = os.path.join(base + own, name)
    try:
        os.makedirs(directory, exist_ok=True)
        for key, value in settings.items():
            path = os.path.join(directory, key)
            if os.path.exists(path):
                _write(path, value)
        return directory
    except OSError as err:
        log.debug("no %s cgroup (%s)", controller, err)
        try:
            os.rmdir(directory)
        except OSError:
            pass
        return None


def open_slot(name: str, memory_mb: int, max_processes: int) -> CgroupSlot:
    """Create (or reuse) the slot's cgroups; a controller that is not writable is left out (``None``)."""
    limit = str(memory_mb * 1024 * 1024)
    # memsw must be set after the plain limit (the kernel keeps memsw >= limit); it stops swapping past the limit.
    memory = _make("memory", name, {"memory.limit_in_bytes": limit, "memory.memsw.limit_in_bytes": limit,
                                    "memory.swappiness": "0"})
    # One more than a request may start: the zygote lives in the slot too (see zygote.py).
    pids = _make("pids", name, {"pids.max": str(max_processes + 1)})
    fds = tuple(os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
                for d in (memory, pids) if d is not None)
    return CgroupSlot(memory, pids, fds)


def join_slot(slot: CgroupSlot) -> None:
    """Move the calling process into the slot (writing ``0`` means "the writer" in cgroup v1)."""
    for fd in slot.procs_fds:
        os.write(fd, b"0")


def static_rlimits(memory_mb: int, scratch_mb: int, max_open_files: int, max_processes: int, slot: CgroupSlot,
                   base_vm_bytes: int) -> dict[str, int]:
    """The rlimits every request of a worker gets, whatever its timeout (a pre-forked child sets them early)."""
    limits = {"RLIMIT_CORE": 0, "RLIMIT_FSIZE": scratch_mb * 1024 * 1024, "RLIMIT_NOFILE": max_open_files}
    if not slot.has_pids:
        limits["RLIMIT_NPROC"] = max_processes
    if not slot.has_memory:
        limits["RLIMIT_AS"] = base_vm_bytes + memory_mb * 1024 * 1024
    return limits


def request_rlimits(timeout_s: float, memory_mb: int, scratch_mb: int, max_open_files: int, max_processes: int,
                    slot: CgroupSlot, base_vm_bytes: int) -> dict[str, int]:
    """The rlimits of one request. CPU time gets one second past the wall-clock timeout as a backstop."""
    return {"RLIMIT_CPU": int(math.ceil(timeout_s)) + 1,
            **static_rlimits(memory_mb, scratch_mb, max_open_files, max_processes, slot, base_vm_bytes)}


def virtual_memory_bytes() -> int:
    """This process's current virtual size (what a forked child starts with under ``RLIMIT_AS``)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def remove_slot(name: str) -> None:
    """Kill what is left in a dead worker's slot and remove its cgroups (the pool calls this)."""
    dirs = []
    for controller in ("memory", "pids"):
        own = _own_cgroup(controller)
        if own is not None:
            directory = os.path.join(CGROUP_V1_ROOT, controller + own, name)
            if os.path.isdir(directory):
                dirs.append(directory)
    if dirs:
        memory = next((d for d in dirs if "/memory" in d), None)
        pids = next((d for d in dirs if "/pids" in d), None)
        CgroupSlot(memory, pids, ()).remove()
