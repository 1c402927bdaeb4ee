"""What every command shares: error mapping, quiet broken pipes, and the common flags."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from r1ci_cli.errors import R1ciError
from r1ci_cli.progress import setup_logging


class R1ciCommand(click.Command):
    """A command whose domain errors become one line on stderr and exit 1.

    A closed downstream pipe (``r1ci gen-tasks | head``) ends the command quietly with exit 0.
    Anything else is a bug, and its traceback is let out.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except R1ciError as err:
            raise click.ClickException(str(err)) from None
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(0)


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except OSError:
        pass


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-q/--quiet`` and ``-v/--verbose``, applied (logging set up) before the command body runs."""

    def set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta["r1ci_quiet"] = value
        setup_logging(quiet=value, verbose=ctx.meta.get("r1ci_verbose", False))
        return value

    def set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta["r1ci_verbose"] = value
        setup_logging(quiet=ctx.meta.get("r1ci_quiet", False), verbose=value)
        return value

    func = click.option("-v", "--verbose", is_flag=True, callback=set_verbose, expose_value=False,
                        help="Debug logging on stderr.")(func)
    func = click.option("-q", "--quiet", is_flag=True, callback=set_quiet,
                        help="No progress and only warnings on stderr.")(func)
    return func


def input_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("src", default="-", metavar="[SRC]")(func)


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-o", "--output", default="-", show_default=True,
                        help="Where records go; '-' is stdout; a name ending in .zst is zstd-compressed.")(func)


def seed_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--seed`` with default 0, for commands without an options bundle (bundles carry it themselves)."""
    from r1ci_cli.commands.options import SEED

    return SEED.option(default=0)(func)


def _apply_threads(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    """Before torch is imported the variables decide its thread pool; after, ``set_num_threads`` does."""
    if value is not None:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(value)
        else:
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(value)
    return value


def threads_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--threads``: torch's CPU threads. More threads than free cores (a busy machine, sandbox workers
    beside the model) make every step slower; on 2 cores beside a training job one batched decoding step of
    the tiny model took 17 ms with 1 thread and 41 ms with 2."""
    return click.option("--threads", type=click.IntRange(min=1), default=None, callback=_apply_threads,
                        expose_value=False, is_eager=True,
                        help="torch CPU threads (default: torch's choice, one per core).")(func)


def resolved_params(ctx: click.Context) -> dict[str, dict[str, object]]:
    """Every flag's value and where it came from (commandline, environment, default_map, default), for
    the ``resolved_config.json`` that long jobs write beside their checkpoints."""
    out = {}
    for name, value in ctx.params.items():
        source = ctx.get_parameter_source(name)
        out[name] = {"value": list(value) if isinstance(value, tuple) else value,
                     "source": source.name.lower() if source is not None else "unknown"}
    return out
