"""``exec-sandbox``: run ExecRequests in the sandbox pool, or serve the pool to remote rollout workers."""

from __future__ import annotations

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, input_argument, output_option
from r1ci_cli.commands.options import SANDBOX_POOL, bundles


@click.command("exec-sandbox", cls=R1ciCommand)
@common_options
@input_argument
@output_option
@bundles(SANDBOX_POOL)
@click.option("--serve", metavar="HOST:PORT", default=None,
              help="Serve the pool over TCP to remote clients instead of reading SRC (trusted network only).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the shared secret that --serve requires from every client.")
def exec_sandbox_cmd(src: str, output: str, pool, serve: str | None, token_file: str | None, quiet: bool) -> None:
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
    token = service.read_token(token_file, private=True) if token_file is not None else None
    with SandboxPool(pool) as sandbox:
        if address is not None:
            service.serve(sandbox, address, token or "")
            return
        with open_records(src, ExecRequest) as requests, record_sink(output) as sink:
            sink.write_all(sandbox.map(requests))
