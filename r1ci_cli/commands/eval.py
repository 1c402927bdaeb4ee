"""``r1ci eval``: pass@1 of models on tasks, with per-task/source/split tables, a report and a plot."""

from __future__ import annotations

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, input_argument, output_option, threads_option
from r1ci_cli.commands.options import BACKEND, GENERATION, RESUME, SAMPLES, SANDBOX, bundles


class _EvalGroup(click.Group):
    """``r1ci eval [SRC] --model …`` runs an evaluation (the ``run`` subcommand); ``r1ci eval report FILES``
    summarises existing trajectory files."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _names(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (value or "").split(",") if n.strip())


_report_options = [
    click.option("--names", default=None, callback=_names, help="Comma-separated names of the models/files."),
    click.option("--summary", is_flag=True, help="JSON summary rows (per task, source, split, overall) on stdout."),
    click.option("--report", default=None, type=click.Path(dir_okay=False),
                 help="Markdown report; a PNG plot with the same name (.png) is written beside it."),
    click.option("--stages", default=None, callback=_names,
                 help="Names in curriculum order (e.g. base,sft,rl1,rl2): adds accuracy over stages to the plot."),
    click.option("--baseline", default=None, metavar="NAME",
                 help="The report pairs each model with the one before it on the same instances (wins, losses, "
                      "sign test); with NAME (e.g. sft) also every other model with NAME."),
]


def _with(options):
    def wrap(func):
        for option in reversed(options):
            func = option(func)
        return func
    return wrap


@click.group("eval", cls=_EvalGroup)
def eval_cmd() -> None:
    """Evaluate models on tasks (pass@1 at temperature 0.6) and report accuracy per task, source and split.

    `r1ci eval [SRC] --model M ...` runs the evaluation (see `r1ci eval run --help`);
    `r1ci eval report A.jsonl.zst B.jsonl.zst --names a,b --report report.md` summarises trajectory files.

    Example:  r1ci gen-tasks --split test --num-per-task 20 | r1ci eval --backend reference --summary -o refs.jsonl.zst
    """


@eval_cmd.command("run", cls=R1ciCommand)
@input_argument
@output_option
@click.option("--model", "--compare", "models", multiple=True,
              help="Checkpoint (hf, vllm) or served model (openai); repeat (or --compare A --compare B) to compare "
                   "models side by side (-o is then a directory).")
# docs/paper.md "Headline results": pass@1 at temperature 0.6.
@bundles(BACKEND, GENERATION, SANDBOX, exclude=("model", "text_share"), temperature=0.6)
@RESUME.option()
@_with(_report_options)
@threads_option
@common_options
def run_cmd(src: str, output: str, models: tuple[str, ...], backend, generation, sandbox, resume: bool,
            names: tuple[str, ...], summary: bool, report: str | None, stages: tuple[str, ...],
            baseline: str | None, quiet: bool) -> None:
    """Roll out tasks with one or more models and summarise (trajectories to -o, rows with --summary).

    Example:  r1ci eval test.jsonl.zst --model ckpt/sft --report report.md -o sft.jsonl.zst
    """
    from r1ci_cli.evaluate.job import EvalJob, run_eval

    if backend.kind != "reference" and not models:
        raise click.UsageError(f"--backend {backend.kind} needs --model")
    if resume and output == "-":
        raise click.UsageError("--resume needs -o FILE (or -o DIR with several models)")
    if len(models) > 1 and output.endswith((".jsonl", ".zst", ".json")):
        raise click.UsageError(f"with several models -o is a directory (one NAME.jsonl.zst per model), not a file "
                               f"name like {output}")
    run_eval(EvalJob(src=src, output=output, models=models, names=names, backend=backend, rollout=generation,
                     sandbox=sandbox, resume=resume, progress=not quiet, summary=summary, report=report,
                     stages=stages, baseline=baseline))


@eval_cmd.command("report", cls=R1ciCommand)
@click.argument("paths", nargs=-1, required=True, metavar="TRAJECTORIES...")
@SAMPLES.option(default=1)
@_with(_report_options)
@common_options
def report_cmd(paths: tuple[str, ...], samples: int, names: tuple[str, ...], summary: bool, report: str | None,
               stages: tuple[str, ...], baseline: str | None, quiet: bool) -> None:
    """Summarise existing trajectory files side by side (summary rows on stdout, --report for markdown + PNG).

    Example:  r1ci eval report base.jsonl.zst sft.jsonl.zst rl1.jsonl.zst --stages base,sft,rl1 --report report.md
    """
    from r1ci_cli.evaluate.job import report_files

    if not summary and report is None:
        summary = True
    report_files(paths, names, samples, summary, report, stages, baseline)
