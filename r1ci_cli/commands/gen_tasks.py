"""``r1ci gen-tasks``: write seeded task instances (SymBench, BIG-Bench-Hard, Reasoning-Gym) as Task records."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

from r1ci_cli.commands.base import R1ciCommand, common_options, output_option, seed_option
from r1ci_cli.progress import Progress

SOURCE_CHOICES = ("symbench", "bbh", "rgym")


def _split_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...]:
    items = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    return items


@click.command("gen-tasks", cls=R1ciCommand)
@click.option("--source", "sources", default="symbench,bbh,rgym", show_default=True, callback=_split_list,
              help="Comma-separated sources: symbench, bbh, rgym.")
@click.option("--tasks", default=None, callback=_split_list,
              help="Comma-separated task names or globs (e.g. 'game24,logical_deduction_*'); default all.")
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True,
              help="Which tasks of the fixed 107/37 split.")
@click.option("--num-per-task", type=click.IntRange(min=1), default=200, show_default=True,
              help="Instances per task (docs/paper.md 'Tasks': each task has more than 200 questions).")
@click.option("--pool", type=click.Choice(["auto", "train", "eval", "all"]), default="auto", show_default=True,
              help="Instance pool: train and eval never share a question; auto = eval for test-split tasks; "
                   "all = no separation (e.g. every published item with --from-data).")
@click.option("--difficulty", multiple=True, metavar="[TASK.]KNOB=VALUE",
              help="Override a difficulty knob (JSON value; [lo, hi] is a range). Repeatable. Knobs: --list -v.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with the data files of data-backed tasks (BBH JSON, GSM-Hard, MATH).")
@click.option("--from-data", is_flag=True, help="Families that can load data files (e.g. BBH's official "
              "<subtask>.json) take their instances from --data-dir instead of being generated; a selected task "
              "without a loader is refused (SymBench's published instances: --symbench-dir).")
@click.option("--symbench-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Read the published SymBench instances from a CodeSteer checkout (dataset_gather/) instead "
                   "of generating; --tasks limits the tasks read, --pool train|eval keeps one pool, "
                   "--num-per-task (when given) the first N of each task.")
@click.option("--list", "list_only", is_flag=True, help="Print the task table (source, split, generator, "
              "reference kind, data needed) instead of generating; with -v also each task's knobs.")
@click.option("--check", "check_file", type=click.Path(dir_okay=False), default=None,
              help="Regenerate with these flags and fail unless FILE (a frozen instance set) is identical.")
@click.option("--exclude", multiple=True, type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="Leave out every question that appears in FILE (Task records; repeatable) and repeats of a "
                   "question already written (e.g. RL questions disjoint from the SFT ones).")
@seed_option
@output_option
@common_options
def gen_tasks_cmd(sources: tuple[str, ...], tasks: tuple[str, ...], split: str, num_per_task: int, pool: str,
                  difficulty: tuple[str, ...], data_dir: Path | None, from_data: bool, symbench_dir: Path | None,
                  list_only: bool, check_file: str | None, exclude: tuple[str, ...], seed: int, output: str,
                  quiet: bool) -> None:
    """Generate seeded task instances as Task records (zstd JSONL with -o NAME.zst).

    Example:  r1ci gen-tasks --source bbh,rgym --split test --num-per-task 200 -o test.jsonl.zst
    """
    from r1ci_cli.tasks import generate
    from r1ci_cli.streams import record_sink

    unknown = [s for s in sources if s not in SOURCE_CHOICES]
    if unknown or not sources:
        raise click.BadParameter(f"unknown source {', '.join(unknown) or '(none)'}; choose from "
                                 f"{', '.join(SOURCE_CHOICES)}", param_hint="--source")
    opts = generate.GenOptions(sources=sources, tasks=tasks, split=split, num_per_task=num_per_task, seed=seed,
                               pool=pool, difficulty=difficulty, data_dir=data_dir, from_data=from_data,
                               exclude=exclude)
    if symbench_dir is not None:
        if list_only or check_file or difficulty or exclude or sources != ("symbench",):
            raise click.UsageError("--symbench-dir goes with --source symbench and neither --list, --check, "
                                   "--difficulty nor --exclude")
        from r1ci_cli.tasks.symbench_original import LAYOUTS, original_tasks

        names = [t for t in tasks if t in LAYOUTS] or None
        unknown = [t for t in tasks if t not in LAYOUTS]
        if unknown:
            raise click.BadParameter(f"no original layout for {', '.join(unknown)}", param_hint="--tasks")
        given = click.get_current_context().get_parameter_source("num_per_task") is not ParameterSource.DEFAULT
        rows = generate.select_originals(original_tasks(symbench_dir, names), pool,
                                         num_per_task if given else None)
        with record_sink(output) as sink:
            sink.write_all(rows)
        return
    if from_data:
        refused = generate.without_loader(opts)
        if refused:
            shown = ", ".join(refused[:8]) + (f", … ({len(refused)} tasks)" if len(refused) > 8 else "")
            raise click.UsageError(f"--from-data: no data to load for {shown}; select tasks that load data "
                                   "(e.g. --source bbh), or read the published SymBench instances with "
                                   "--source symbench --symbench-dir DIR")
    if list_only:
        verbose = bool(click.get_current_context().meta.get("r1ci_verbose"))
        sys.stdout.write(generate.format_table(generate.list_rows(opts), knobs=verbose))
        return
    if check_file is not None:
        generate.check_frozen(check_file, opts)
        return
    with Progress(None, "gen-tasks", enabled=not quiet) as bar, record_sink(output) as sink:
        for record in generate.generate_tasks(opts):
            sink.write(record)
            bar.update(task=record.task)
