"""``r1ci eval``: pass@1 of models on tasks, with per-task/source/split tables, a report and a plot."""

from __future__ import annotations

import click

from r1ci_cli.commands.base import (R1ciCommand, common_options, input_argument, output_option, prompts_option,
                                    seed_option, threads_option)


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
@click.option("--backend", type=click.Choice(["reference", "hf", "vllm", "openai"]), default="hf",
              show_default=True, help="Any rollout backend.")
@click.option("--model", "--compare", "models", multiple=True,
              help="Checkpoint (hf, vllm) or served model (openai); repeat (or --compare A --compare B) to compare models side by side (-o is then a directory).")
@click.option("--style", type=click.Choice(["agent", "text", "code", "steer"]), default="agent", show_default=True,
              help="Rollout style.")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True,
              help="Samples per instance: 1 is pass@1; k > 1 also reports pass@k.")
@click.option("--temperature", type=click.FloatRange(min=0), default=0.6, show_default=True,
              help="PAPER.md 'Headline results': pass@1 at temperature 0.6.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=2048, show_default=True, help="Per turn.")
@click.option("--max-total-tokens", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Over all model turns.")
@click.option("--max-code-calls", type=click.IntRange(min=0), default=8, show_default=True, help="PAPER.md: 8.")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Per execution (PAPER.md: 60 s).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="hf batch size.")
@click.option("--device", default="auto", show_default=True, help="hf: cpu, cuda, cuda:1 …")
@click.option("--base-url", default=None, help="openai: server URL.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="openai: variable with the key.")
@click.option("--sandbox", "sandbox_address", default=None, metavar="HOST:PORT", help="An exec-sandbox service.")
@click.option("--sandbox-workers", type=click.IntRange(min=1), default=2, show_default=True, help="Local pool.")
@click.option("--resume", is_flag=True, help="Skip trajectories already in the output file(s).")
@_with(_report_options)
@prompts_option
@threads_option
@seed_option
@common_options
def run_cmd(src: str, output: str, backend: str, models: tuple[str, ...], style: str, samples: int,
            temperature: float, max_new_tokens: int, max_total_tokens: int, max_code_calls: int, timeout_s: float,
            batch_size: int, device: str, base_url: str | None, api_key_env: str, sandbox_address: str | None,
            sandbox_workers: int, resume: bool, names: tuple[str, ...], summary: bool, report: str | None,
            stages: tuple[str, ...], prompts: str, seed: int, quiet: bool) -> None:
    """Roll out tasks with one or more models and summarise (trajectories to -o, rows with --summary).

    Example:  r1ci eval test.jsonl.zst --model ckpt/sft --report report.md -o sft.jsonl.zst
    """
    from r1ci_cli.backends.base import BackendOptions
    from r1ci_cli.evaluate_job import EvalJob, run_eval
    from r1ci_cli.rollout.job import SandboxSettings
    from r1ci_cli.rollout.loop import RolloutOptions

    if backend != "reference" and not models:
        raise click.UsageError(f"--backend {backend} needs --model")
    if resume and output == "-":
        raise click.UsageError("--resume needs -o FILE (or -o DIR with several models)")
    rollout = RolloutOptions(style=style, temperature=temperature, samples=samples, seed=seed, prompts=prompts,
                             max_code_calls=max_code_calls, timeout_s=timeout_s, max_new_tokens=max_new_tokens,
                             max_total_tokens=max_total_tokens)
    job = EvalJob(src=src, output=output, backend=backend, models=models, names=names,
                  backend_opts=BackendOptions(device=device, batch_size=batch_size, base_url=base_url,
                                              api_key_env=api_key_env),
                  rollout=rollout, sandbox=SandboxSettings(address=sandbox_address, workers=sandbox_workers),
                  resume=resume, progress=not quiet, summary=summary, report=report, stages=stages)
    run_eval(job)


@eval_cmd.command("report", cls=R1ciCommand)
@click.argument("paths", nargs=-1, required=True, metavar="TRAJECTORIES...")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True,
              help="Samples per instance in the files (for pass@k).")
@_with(_report_options)
@common_options
def report_cmd(paths: tuple[str, ...], samples: int, names: tuple[str, ...], summary: bool, report: str | None,
               stages: tuple[str, ...], quiet: bool) -> None:
    """Summarise existing trajectory files side by side (summary rows on stdout, --report for markdown + PNG).

    Example:  r1ci eval report base.jsonl.zst sft.jsonl.zst rl1.jsonl.zst --stages base,sft,rl1 --report report.md
    """
    from r1ci_cli.evaluate_job import report_files

    if not summary and report is None:
        summary = True
    report_files(paths, names, samples, summary, report, stages)
