"""``r1ci score-potential``: improvement potential per instance and the curriculum groups."""

from __future__ import annotations

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, input_argument, output_option


@click.command("score-potential", cls=R1ciCommand)
@input_argument
@output_option
@click.option("--groups", type=click.IntRange(min=1), default=4, show_default=True,
              help="Equal-size curriculum groups, group 1 = highest potential (docs/paper.md: 4).")
@click.option("--min-samples", type=click.IntRange(min=1), default=4, show_default=True,
              help="Instances with fewer valid trajectories (infra_error ones are not counted) are named on stderr "
                   "and not scored (paper: 20 per instance).")
@click.option("--update", "stage_stats", type=click.Path(dir_okay=False, exists=True), metavar="STAGE_STATS",
              help="Regroup instead of scoring: SRC is a staged task file, STAGE_STATS an rl-stage's "
                   "instance-stats.jsonl.zst; the groups the stages so far did not reach are re-sorted by the "
                   "current pass rates (what rl-stage --regroup online does).")
@common_options
def score_potential_cmd(src: str, output: str, groups: int, min_samples: int, stage_stats: str | None,
                        quiet: bool) -> None:
    """Score each instance's improvement potential 4p(1-p) from its trajectories and assign curriculum groups.

    Buffers: it needs all samples of an instance before scoring it, so it reads the whole input
    (keeping one trajectory per instance, not the turns of all) before writing anything.

    Example:  r1ci rollout tasks.jsonl.zst --model ckpt/sft --samples 5 | r1ci score-potential -o staged.jsonl.zst
    """
    import logging

    from r1ci_cli import potential
    from r1ci_cli.records import Trajectory
    from r1ci_cli.streams import open_records, record_sink

    if stage_stats is not None:
        rates = potential.PassRates.from_state(potential.read_stats(stage_stats))
        tasks = potential.regroup(potential.read_staged(src), rates.entries,
                                  potential.next_stage_of(rates.entries.values()))
    else:
        opts = potential.PotentialOptions(groups=groups, min_samples=min_samples)
        with open_records(src, Trajectory) as rows:
            tasks = potential.score_groups(rows, opts)
        logging.getLogger("r1ci.score-potential").info("%s", potential.histogram(tasks))
    with record_sink(output) as sink:
        sink.write_all(tasks)
