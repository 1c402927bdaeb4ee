"""``r1ci rollout``: multi-turn code-interpreter rollouts of Task records, written as Trajectory records."""

from __future__ import annotations

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, input_argument, output_option, threads_option
from r1ci_cli.commands.options import BACKEND, GENERATION, MAX_PER_TASK, RESUME, SANDBOX, bundles


def _shard(_ctx: click.Context, _param: click.Parameter, value: str | None):
    from r1ci_cli.rollout.pipeline import parse_shard

    try:
        return parse_shard(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@click.command("rollout", cls=R1ciCommand)
@input_argument
@output_option
@bundles(BACKEND, GENERATION, SANDBOX)
@click.option("--keep", type=click.Choice(["all", "correct"]), default="all", show_default=True,
              help="correct: drop wrong and sandbox-failed trajectories (teacher data).")
@MAX_PER_TASK.option()
@click.option("--shard", default=None, callback=_shard, metavar="I/N",
              help="Only tasks at input positions p with p % N == I (SLURM arrays).")
@RESUME.option()
@threads_option
@common_options
def rollout_cmd(src: str, output: str, backend, generation, sandbox, keep: str, max_per_task: int | None, shard,
                resume: bool, quiet: bool) -> None:
    """Roll out tasks with a model and a code sandbox; write one Trajectory per sample.

    Example:  r1ci gen-tasks --tasks game24 --num-per-task 5 | r1ci rollout --backend reference
    """
    from r1ci_cli.rollout.job import RolloutJob, run_rollout

    if resume and output == "-":
        raise click.UsageError("--resume needs a file output (-o FILE)")
    if backend.kind in ("hf", "vllm", "openai") and backend.model is None:
        raise click.UsageError(f"--backend {backend.kind} needs --model")
    if backend.text_share and generation.style != "agent":
        raise click.UsageError(f"--text-share mixes text answers into agent trajectories; --style {generation.style} "
                               "has no place for them")
    run_rollout(RolloutJob(src=src, output=output, backend=backend, rollout=generation, sandbox=sandbox, keep=keep,
                           max_per_task=max_per_task, shard=shard, resume=resume, progress=not quiet))
