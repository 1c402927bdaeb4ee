"""``r1ci sft``: supervised fine-tuning on (correct) trajectories, loss on model-written tokens only."""

from __future__ import annotations

import contextlib
import sys

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, resolved_params, threads_option
from r1ci_cli.commands.options import SANDBOX, SFT, bundles


@click.command("sft", cls=R1ciCommand)
@click.argument("src", nargs=-1, metavar="[SRC]...")
# The sandbox flags serve --eval-tasks: the evaluations run the model's code.
@bundles(SFT, SANDBOX)
@threads_option
@common_options
def sft_cmd(src: tuple[str, ...], options, sandbox, quiet: bool) -> None:
    """Fine-tune a model on trajectories (reads them all: selection needs every one).

    Example:  r1ci sft refs.jsonl.zst --model m0 -o m1 --report-to tensorboard
    """
    from r1ci_cli.rollout.loop import RolloutOptions
    from r1ci_cli.rollout.sandbox import open_sandbox
    from r1ci_cli.train.sft import sft

    flags = resolved_params(click.get_current_context())
    box = open_sandbox(sandbox, RolloutOptions().timeout_s) if options.eval.tasks else contextlib.nullcontext()
    # DeepSpeed's logger (imported by transformers/accelerate when installed) writes to stdout; this
    # command writes no records, so everything a library prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr), box as pool:
        sft(list(src) or ["-"], options, flags=flags, progress=not quiet, sandbox=pool)
