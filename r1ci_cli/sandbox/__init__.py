"""The sandbox: run untrusted model code with isolation, limits and typed outcomes, never in our process.

``open_sandbox(None, opts)`` is a local ``SandboxPool`` (``pool.py``) of workers (``worker.py``), each with a
zygote that forks every request's process ahead of the request (``zygote.py``);
``open_sandbox("HOST:PORT", opts, token)`` a client of a remote ``exec-sandbox --serve`` (``service.py``) with the
same ``submit``/``run``/``map``/``close``. Every outcome is an ``ExecResult`` whose ``status`` says what
happened (``ok``, ``error``, ``timeout``, ``oom``, ``output_limit``, ``sandbox_error``); nothing raises into the
caller once the pool has started. The commands reach it through ``rollout/sandbox.py`` (pool or service,
and the service's token).

Threat model, in short (README ``r1ci exec-sandbox``, "Threat model", has the whole list): in the ``zygote``
and ``bwrap`` modes (``isolation.py``) the code sees a read-only allowlist of the host's files
(``layout.py``), writes only a private tmpfs, has no network but its own loopback, runs in its own PID
namespace, and is bounded by a memory and pids cgroup, rlimits, a wall-clock timeout and an output cap
(``limits.py``). As root the runner drops to an unprivileged uid with no groups and no capabilities
(``runner.py``); unprivileged, ``bwrap`` keeps the caller's uid inside a user namespace. Every request gets a
fresh session keyring and a seccomp filter that refuses the keyring, namespaces, mounts, ptrace, bpf and the
like; it starts from memory that never held another request or a secret of the caller (workers get an
allowlisted environment). Not isolated: the kernel (the filter is a denylist), what is world-readable in the
allowlist, CPU share within the timeout, side channels; ``firejail`` is a denylist and ``none`` isolates
nothing. The service checks a shared token, bounds unauthenticated connections, but does not encrypt: a
trusted cluster network only.
"""

from __future__ import annotations

from typing import Any

from r1ci_cli.sandbox.options import ISOLATION_MODES, SandboxOptions
from r1ci_cli.sandbox.pool import SandboxPool

__all__ = ["ISOLATION_MODES", "SandboxOptions", "SandboxPool", "open_sandbox"]


def open_sandbox(address: str | None, opts: SandboxOptions | None = None, token: str | None = None) -> Any:
    """``None`` → a local ``SandboxPool``; ``"HOST:PORT"`` → a client of a sandbox service."""
    opts = opts or SandboxOptions()
    if address is None:
        return SandboxPool(opts)
    from r1ci_cli.sandbox.service import SandboxClient

    return SandboxClient(address, token=token, opts=opts)
