"""Which sandbox a rollout's code runs in: a local pool, or an ``exec-sandbox --serve`` service and its token.

One mechanism for every command that runs model code (rollout, eval, rl-stage): ``--sandbox HOST:PORT``
names a service, and its shared token comes from ``--sandbox-token-file FILE`` or, without that flag, from
the environment variable ``R1CI_SANDBOX_TOKEN`` (so it never has to appear on a command line). Without
``--sandbox`` a local pool of ``workers`` runs the code with ``isolation``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.settings import RUNTIME

TOKEN_ENV = "R1CI_SANDBOX_TOKEN"


@dataclass(frozen=True)
class SandboxSettings:
    """Where code runs; all ``runtime`` (a sandbox never changes what a trajectory is, only where it runs)."""

    address: str | None = field(default=None, metadata=RUNTIME)  # HOST:PORT of a service; None: a local pool
    token_file: str | None = field(default=None, metadata=RUNTIME)  # the service's token; else $R1CI_SANDBOX_TOKEN
    workers: int = field(default=2, metadata=RUNTIME)
    isolation: str = field(default="auto", metadata=RUNTIME)
    memory_mb: int = field(default=1024, metadata=RUNTIME)

    def check(self) -> None:
        """Flag combinations, before any input is read (``R1ciError`` naming the flags)."""
        if self.token_file is not None and self.address is None:
            raise R1ciError("--sandbox-token-file goes with --sandbox HOST:PORT (a local pool needs no token)")

    def token(self) -> str | None:
        """The service's token: the token file's content, else ``$R1CI_SANDBOX_TOKEN``; None for a local pool."""
        if self.address is None:
            return None
        if self.token_file is not None:
            from r1ci_cli.sandbox.service import read_token

            return read_token(self.token_file)
        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise R1ciError(f"--sandbox {self.address} needs the service's token: --sandbox-token-file FILE, "
                            f"or the token in ${TOKEN_ENV}")
        return token


def open_sandbox(settings: SandboxSettings, timeout_s: float) -> Any:
    """A local ``SandboxPool`` or a client of the service, as a context manager (``submit``/``run``/``map``)."""
    try:
        from r1ci_cli.sandbox import SandboxOptions
        from r1ci_cli.sandbox import open_sandbox as open_pool_or_client
    except ImportError as err:
        raise R1ciError(f"the sandbox package is not available ({err})") from None
    settings.check()
    opts = SandboxOptions(workers=settings.workers, timeout_s=timeout_s, memory_mb=settings.memory_mb,
                          isolation=settings.isolation)
    return open_pool_or_client(settings.address, opts, token=settings.token())
