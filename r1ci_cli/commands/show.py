"""``r1ci show``: pretty-print trajectories, tasks or execution results for people."""

from __future__ import annotations

import os
import sys

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, input_argument


def _globs(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for item in value for part in item.split(",") if part.strip())


@click.command("show", cls=R1ciCommand)
@input_argument
@click.option("--task", "tasks", multiple=True, callback=_globs, metavar="GLOB",
              help="Only records of these task families or instance ids (globs, comma-separated or repeated).")
@click.option("--correct/--wrong", "correct", default=None, help="Only correct (or only wrong) trajectories.")
@click.option("--finish", multiple=True, callback=_globs, metavar="REASON",
              help="Only trajectories with this finish reason (e.g. answer, max_tokens; comma-separated or repeated).")
@click.option("--id", "ids", multiple=True, callback=_globs, metavar="GLOB",
              help="Only records whose id (or a trajectory's task_id) matches.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N records.")
@click.option("--pager/--no-pager", default=True, show_default=True,
              help="Page the output ($PAGER, else less) when stdout is a terminal.")
@common_options
def show_cmd(src: str, tasks: tuple[str, ...], correct: bool | None, finish: tuple[str, ...], ids: tuple[str, ...],
             limit: int | None, pager: bool, quiet: bool) -> None:
    """Pretty-print trajectories (or tasks, exec requests, exec results) for reading: the question, each model
    turn with its code highlighted, each execution result with its status, the answer, verdict, reward and
    token counts. Plain text when stdout is not a terminal; paged when it is.

    Example:  r1ci show runs/tiny/eval-sft.jsonl.zst --task word_sorting --wrong --limit 3
    """
    from rich.console import Console

    from r1ci_cli.show import ShowFilter, select, show
    from r1ci_cli.streams import display_name, read_dicts

    terminal = sys.stdout.isatty()
    console = Console(file=sys.stdout, force_terminal=terminal, no_color=not terminal, highlight=False,
                      emoji=False, markup=False, width=None if terminal else _plain_width())
    flt = ShowFilter(tasks=tasks, correct=correct, finish=finish, ids=ids, limit=limit)
    records = select(read_dicts(src), display_name(src), flt)
    if terminal and pager:
        os.environ.setdefault("LESS", "-RFX")  # colours, quit when it fits one screen, keep the screen
        with console.pager(styles=True):
            show(records, console, highlight=True)
    else:
        show(records, console, highlight=terminal)


def _plain_width() -> int:
    """Rules and headings fill this many columns in plain text; text itself is never wrapped."""
    try:
        return max(40, int(os.environ.get("COLUMNS", "100")))
    except ValueError:
        return 100
