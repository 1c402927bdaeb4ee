"""Options of the sandbox pool (a frozen dataclass shared by the pool, the worker and the service)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import MAX_TIMEOUT_S

ISOLATION_MODES = ("auto", "zygote", "bwrap", "firejail", "none")
# The order in which ``auto`` tries the modes: strongest and fastest first. ``none`` is never chosen by ``auto``.
AUTO_ORDER = ("zygote", "bwrap", "firejail")


@dataclass(frozen=True)
class SandboxOptions:
    """How untrusted code runs.

    ``timeout_s`` is the wall-clock limit per request (docs/paper.md "Sandbox": 60 s per execution); the CPU-time
    rlimit is set one second above it as a backstop. ``memory_mb`` bounds the real memory of everything a
    request starts (memory cgroup; ``RLIMIT_AS`` where no cgroup is writable). ``max_output_bytes`` caps
    stdout and stderr each; past it the request is killed and reported as ``output_limit``. ``preload`` names
    modules the pre-forked worker imports once so that requests get them for free (numpy: ~140 ms cold, ~3 ms
    preloaded); everything else in the interpreter's standard library and site-packages stays importable,
    read-only, at its normal cost.
    """

    workers: int = 2
    timeout_s: float = 60.0
    memory_mb: int = 1024
    max_output_bytes: int = 1 << 20
    preload: tuple[str, ...] = ("numpy", "sympy")
    isolation: str = "auto"
    max_processes: int = 64
    scratch_mb: int = 64
    max_open_files: int = 256
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    max_in_flight: int = 0
    extra_ro_paths: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if isinstance(self.preload, str):
            object.__setattr__(self, "preload", tuple(p for p in self.preload.split(",") if p))
        else:
            object.__setattr__(self, "preload", tuple(self.preload))
        object.__setattr__(self, "extra_ro_paths", tuple(self.extra_ro_paths))
        if self.isolation not in ISOLATION_MODES:
            raise R1ciError(f"unknown isolation {self.isolation!r}: use one of {', '.join(ISOLATION_MODES)}")
        for name in ("workers", "memory_mb", "max_output_bytes", "max_processes", "scratch_mb", "max_open_files"):
            if getattr(self, name) < 1:
                raise R1ciError(f"sandbox option {name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise R1ciError(f"sandbox timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} s, "
                            f"got {self.timeout_s}")

    @property
    def in_flight(self) -> int:
        """How many requests ``map`` keeps submitted at once."""
        return self.max_in_flight or 2 * self.workers

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["preload"] = list(self.preload)
        data["extra_ro_paths"] = list(self.extra_ro_paths)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SandboxOptions":
        return cls(**{**data, "preload": tuple(data["preload"]), "extra_ro_paths": tuple(data["extra_ro_paths"])})
