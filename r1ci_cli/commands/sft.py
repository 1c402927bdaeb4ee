"""``r1ci sft``: supervised fine-tuning on (correct) trajectories, loss on model-written tokens only."""

from __future__ import annotations

import contextlib
import sys

import click

from r1ci_cli.commands.base import R1ciCommand, common_options, resolved_params, seed_option, threads_option


@click.command("sft", cls=R1ciCommand)
@click.argument("src", nargs=-1, metavar="[SRC]...")
@click.option("--model", required=True, help="Model directory to start from (e.g. from r1ci init-model).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Run directory: final model, metrics.jsonl, resolved_config.json, checkpoints/.")
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True, help="Passes over the data.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Sequences per optimizer step, over all ranks.")
@click.option("--micro-batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Sequences per forward pass per rank; gradient accumulation makes up the batch.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-5, show_default=True,
              help="Peak learning rate (a tiny random-init model wants ~1e-3).")
@click.option("--warmup-ratio", type=click.FloatRange(0, 1, max_open=True), default=0.03, show_default=True,
              help="Share of steps with linear warmup; cosine decay after.")
@click.option("--min-lr-ratio", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Final rate of the cosine decay, as a share of --lr.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="AdamW weight decay (not on biases and norms).")
@click.option("--grad-clip", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Clip the global gradient norm; 0 turns clipping off.")
@click.option("--max-seq-len", type=click.IntRange(min=2), default=4096, show_default=True,
              help="Longer sequences are truncated (counted and logged).")
@click.option("--max-per-task", type=click.IntRange(min=1), default=70, show_default=True,
              help="At most this many trajectories per task.")
@click.option("--only-correct/--include-incorrect", default=True, show_default=True,
              help="Train only on trajectories marked correct.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop after this many optimizer steps (the schedule is shortened to match).")
@click.option("--save-every", type=click.IntRange(min=1), default=100, show_default=True,
              help="Checkpoint every N optimizer steps (and at the end).")
@click.option("--keep-checkpoints", type=click.IntRange(min=1), default=2, show_default=True,
              help="How many newest checkpoints to keep.")
@click.option("--resume", is_flag=True, help="Continue the run in -o from its newest checkpoint.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 autocast on a GPU that has it, fp32 elsewhere.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (torch engine).")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=False, show_default=True,
              help="Recompute activations in the backward pass to save memory.")
@click.option("--deepspeed", "deepspeed", type=click.Path(dir_okay=False, exists=True), default=None,
              help="DeepSpeed JSON config (ZeRO 0-3); launch with deepspeed or torchrun.")
@click.option("--local_rank", "--local-rank", "local_rank", type=int, default=None, hidden=True,
              help="Set by the deepspeed launcher; the rank is read from the environment.")
@threads_option
@seed_option
@common_options
def sft_cmd(src: tuple[str, ...], model: str, output: str, epochs: int, batch_size: int, micro_batch_size: int,
            lr: float, warmup_ratio: float, min_lr_ratio: float, weight_decay: float, grad_clip: float,
            max_seq_len: int, max_per_task: int, only_correct: bool, max_steps: int | None, save_every: int,
            keep_checkpoints: int, resume: bool, precision: str, device: str, gradient_checkpointing: bool,
            deepspeed: str | None, local_rank: int | None, seed: int, quiet: bool) -> None:
    """Fine-tune a model on trajectories (reads them all: selection needs every one).

    Example:  r1ci sft refs.jsonl.zst --model m0 -o m1
    """
    from r1ci_cli.train.sft import SftOptions, sft

    # PAPER.md "SFT": 3 epochs, batch 32, at most 70 per task, correct only. The paper gives no SFT learning
    # rate: 1e-5 (ours) is the usual full fine-tuning rate for 3B–14B Qwen2.5 models.
    options = SftOptions(
        model=model, output=output, epochs=epochs, batch_size=batch_size, micro_batch_size=micro_batch_size,
        lr=lr, warmup_ratio=warmup_ratio, min_lr_ratio=min_lr_ratio, weight_decay=weight_decay,
        grad_clip=grad_clip, max_seq_len=max_seq_len, max_per_task=max_per_task, only_correct=only_correct,
        max_steps=max_steps, save_every=save_every, keep_checkpoints=keep_checkpoints, resume=resume,
        precision=precision, device=device, gradient_checkpointing=gradient_checkpointing, deepspeed=deepspeed,
        seed=seed, progress=not quiet, resolved=resolved_params(click.get_current_context()))
    # DeepSpeed's logger (imported by transformers/accelerate when installed) writes to stdout; this
    # command writes no records, so everything a library prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        sft(list(src) or ["-"], options)
