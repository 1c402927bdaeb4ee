"""The sandbox: run untrusted model code with isolation, limits and typed outcomes.

``SandboxPool`` runs code locally in pre-forked workers; ``open_sandbox("HOST:PORT", opts, token)`` returns a
client of a remote ``exec-sandbox --serve`` with the same ``submit``/``run``/``map``/``close``. See
``isolation.py`` for the modes and README "Sandbox" for the threat model.
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
