"""``r1ci init-model``: a small random-init Qwen2 model directory with a locally trained tokenizer, or a GGUF
file (``--from-gguf``) turned into an ordinary model directory."""

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
@click.option("--from-gguf", "from_gguf", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Convert this GGUF file (weights dequantised to fp32, its tokenizer and chat template) "
                   "instead of building a random model; needs r1ci[gguf].")
@seed_option
@common_options
def init_model_cmd(output: str, preset: str, corpus: tuple[str, ...], vocab_size: int | None,
                   from_gguf: str | None, seed: int, quiet: bool) -> None:
    """Create a tiny Qwen2 model (random weights, local BPE tokenizer, Qwen chat template), or convert a
    GGUF file into a model directory.

    Example:  r1ci init-model -o m0 --preset tiny --seed 0
    Example:  r1ci init-model --from-gguf SmolLM2-135M-Instruct.Q4_1.gguf -o smollm2
    """
    if from_gguf is not None:
        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in ("preset", "corpus", "vocab_size", "seed")
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"--from-gguf takes the file's model and tokenizer: drop {', '.join(given)}")
        from r1ci_cli.models_gguf import convert_gguf

        with contextlib.redirect_stdout(sys.stderr):
            convert_gguf(from_gguf, output, progress=not quiet)
        return
    options = InitModelOptions(preset=preset, seed=seed, vocab_size=vocab_size,
                               corpus=list(_read_corpus(corpus)) if corpus else None)
    # DeepSpeed's logger (imported by transformers/accelerate when installed) writes to stdout; this
    # command writes no records, so everything a library prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        init_model(output, options)
