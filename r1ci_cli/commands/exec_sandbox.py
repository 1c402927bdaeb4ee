"""``exec-sandbox``: run ExecRequests in the sandbox pool, or serve the pool to remote rollout workers."""

from __future__ import annotations

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, input_argument, output_option
from r1ci_cli.sandbox.options import ISOLATION_MODES, SandboxOptions


@click.command("exec-sandbox", cls=R1ciCommand)
@common_options
@input_argument
@output_option
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Pre-forked sandbox workers (requests run in parallel up to this).")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Wall-clock limit per execution unless a request sets timeout_s (the paper's 60 s).")
@click.option("--memory-mb", type=click.IntRange(min=16), default=1024, show_default=True,
              help="Memory limit per execution (cgroup, or RLIMIT_AS without one).")
@click.option("--max-output-bytes", type=click.IntRange(min=1), default=1 << 20, show_default=True,
              help="Cap on stdout and on stderr; past it the run ends as output_limit.")
@click.option("--preload", default="numpy,sympy", show_default=True,
              help="Comma-separated modules the workers import once, so requests get them for free.")
@click.option("--isolation", type=click.Choice(ISOLATION_MODES), default="auto", show_default=True,
              help="auto takes the strongest mode that works here; none runs code unisolated (loud warning).")
@click.option("--serve", metavar="HOST:PORT", default=None,
              help="Serve the pool over TCP to remote clients instead of reading SRC (trusted network only).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the shared secret that --serve requires from every client.")
def exec_sandbox_cmd(src: str, output: str, workers: int, timeout_s: float, memory_mb: int, max_output_bytes: int,
                     preload: str, isolation: str, serve: str | None, token_file: str | None, quiet: bool) -> None:
    """Run untrusted Python snippets (ExecRequest) in the sandbox and write ExecResults in input order.

    Example:  printf '{"id":"a","code":"print(6*7)"}\\n' | r1ci exec-sandbox
    """
    from r1ci_cli.sandbox import SandboxPool, service
    from r1ci_cli.records import ExecRequest
    from r1ci_cli.streams import open_records, record_sink

    if serve is not None and token_file is None:
        raise click.UsageError("--serve needs --token-file (clients must present the shared token)")
    if serve is None and token_file is not None:
        raise click.UsageError("--token-file only applies with --serve")
    address = service.parse_address(serve) if serve is not None else None
    token = service.read_token(token_file) if token_file is not None else None
    opts = SandboxOptions(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb,
                          max_output_bytes=max_output_bytes, preload=preload, isolation=isolation)
    with SandboxPool(opts) as pool:
        if address is not None:
            service.serve(pool, address, token or "")
            return
        with open_records(src, ExecRequest) as requests, record_sink(output) as sink:
            sink.write_all(pool.map(requests))
