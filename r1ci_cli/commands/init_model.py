"""``r1ci init-model``: a small random-init Qwen2 model directory with a locally trained tokenizer."""

from __future__ import annotations

import contextlib
import sys

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, seed_option
from r1ci_cli.models import PRESETS, InitModelOptions, init_model


def _read_corpus(paths: tuple[str, ...]):
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            yield handle.read()


@click.command("init-model", cls=R1ciCommand)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Model directory to create (must not exist, or be empty).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="tiny", show_default=True,
              help="Model size: tiny ≈ 5M parameters, small ≈ 25M; micro ≈ 0.2M is for fast tests.")
@click.option("--corpus", "corpus", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="Text file(s) to train the tokenizer on (repeatable); default: task text + built-in code text.")
@click.option("--vocab-size", type=click.IntRange(min=259), default=None,
              help="Tokenizer target size (default: the preset's).")
@seed_option
@common_options
def init_model_cmd(output: str, preset: str, corpus: tuple[str, ...], vocab_size: int | None, seed: int,
                   quiet: bool) -> None:
    """Create a tiny Qwen2 model (random weights, local BPE tokenizer, Qwen chat template).

    Example:  r1ci init-model -o m0 --preset tiny --seed 0
    """
    options = InitModelOptions(preset=preset, seed=seed, vocab_size=vocab_size,
                               corpus=list(_read_corpus(corpus)) if corpus else None)
    # DeepSpeed's logger (imported by transformers/accelerate when installed) writes to stdout; this
    # command writes no records, so everything a library prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        init_model(output, options)
