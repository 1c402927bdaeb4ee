"""``r1ci rl-stage``: one GRPO stage of the improvement-potential curriculum."""

from __future__ import annotations

import contextlib
import sys

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, input_argument, resolved_params, threads_option
from r1ci_cli.commands.options import RL, SANDBOX, bundles


@click.command("rl-stage", cls=R1ciCommand)
@input_argument
# Rollouts in training: agent style, --group-size samples each, no nucleus cut (the ratio needs the policy's
# own distribution), scheduling by --generation-batch-size. Checkpoints are more frequent than sft's: RL
# steps are slow.
@bundles(RL, SANDBOX, exclude=("style", "samples", "top_p", "cohorts", "max_in_flight"), save_every=10)
@threads_option
@common_options
def rl_stage_cmd(src: str, options, sandbox, quiet: bool) -> None:
    """Train one curriculum stage with GRPO on the instances of groups 1..STAGE (reads all tasks first).

    Example:  r1ci rl-stage staged.jsonl.zst --stage 2 --model ckpt/rl1 -o ckpt/rl2
    """
    from r1ci_cli.model_source import resolve_model
    from r1ci_cli.potential import read_staged
    from r1ci_cli.rollout.sandbox import open_sandbox
    from r1ci_cli.train.rl import rl_stage
    from r1ci_cli.train.run import check_output

    check_output(options.checkpoint)
    resolve_model(options.model)
    if options.ref_model is not None:
        resolve_model(options.ref_model, "--ref-model")
    tasks = read_staged(src)
    flags = resolved_params(click.get_current_context())
    with contextlib.redirect_stdout(sys.stderr), open_sandbox(sandbox, options.rollout.timeout_s) as box:
        rl_stage(tasks, options, box, flags=flags)
