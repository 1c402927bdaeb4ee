"""``r1ci sft``: supervised fine-tuning on (correct) trajectories, loss on model-written tokens only."""

from __future__ import annotations

import contextlib
import sys

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, resolved_params, threads_option
from r1ci_cli.commands.options import SFT, bundles


@click.command("sft", cls=R1ciCommand)
@click.argument("src", nargs=-1, metavar="[SRC]...")
@bundles(SFT)
@threads_option
@common_options
def sft_cmd(src: tuple[str, ...], options, quiet: bool) -> None:
    """Fine-tune a model on trajectories (reads them all: selection needs every one).

    Example:  r1ci sft refs.jsonl.zst --model m0 -o m1
    """
    from r1ci_cli.train.sft import sft

    flags = resolved_params(click.get_current_context())
    # DeepSpeed's logger (imported by transformers/accelerate when installed) writes to stdout; this
    # command writes no records, so everything a library prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        sft(list(src) or ["-"], options, flags=flags, progress=not quiet)
