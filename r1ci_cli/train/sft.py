"""Supervised fine-tuning on trajectories: masked causal-LM loss over model-written tokens.

Contract of ``sft(sources, options)``:

* Reads trajectories (``sft_data``: correct only, ≤ ``max_per_task`` per task), turns them into sequences
  (``sequences``: loss mask on model tokens only, explicit truncation), and trains for ``epochs`` over
  global batches of ``batch_size`` sequences, each split into micro-batches of ``micro_batch_size`` per rank
  with gradient accumulation making up the rest.
* The loss of a global batch is the mean over its predicted loss tokens (token mean over the whole batch,
  not a mean of per-sequence means), the same whatever the micro-batch size, accumulation or rank count.
* Writes into ``checkpoint.output`` through ``train/run.py`` (the run directory rl-stage has too):
  ``metrics.jsonl`` (one row per optimizer step), ``resolved_config.json``, checkpoints every ``save_every``
  steps and at the end, and the final model and tokenizer (``save_pretrained`` layout) at its top.
* ``resume=True`` continues from the newest checkpoint and reaches the same final weights and metrics as an
  uninterrupted run (CPU, same thread count; GPU kernels may differ in the last bits).
* ``eval.tasks`` (``--eval-tasks``): every ``eval.every`` steps the live model is evaluated on held-out tasks
  in ``sandbox`` (``train/evaluation.py``); the step's metrics row gets an ``eval`` entry, and the weights are
  those of a run without evaluations. ``report`` sends the rows to TensorBoard/W&B (``train/report.py``).

Not handled: sequence packing; logits are computed only at loss positions, which keeps memory in check for
large vocabularies, but a single very long row still needs its full activations.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.model_source import load_errors, load_failure, resolve_model
from r1ci_cli.progress import Progress
from r1ci_cli.seeds import derive_seed
from r1ci_cli.settings import fingerprint, settings
from r1ci_cli.train import sft_data
from r1ci_cli.train.engine import open_engine
from r1ci_cli.train.options import SftOptions
from r1ci_cli.train.run import Run, check_output, open_run
from r1ci_cli.train.schedule import warmup_steps_for
from r1ci_cli.train.sequences import SequenceBuilder, TokenSequence

log = logging.getLogger("r1ci.sft")

# Metrics fields that measure time: they differ between a resumed and an uninterrupted run.
TIMING_FIELDS = ("tokens_per_s", "elapsed_s")


@dataclass(frozen=True)
class SftResult:
    output: Path
    steps: int
    final_loss: float | None
    num_sequences: int


def _world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _check(options: SftOptions, world_size: int) -> int:
    """Validates the options before any input is read; returns the gradient accumulation steps."""
    micro = options.engine.micro_batch_size
    if options.epochs < 1 or options.batch_size < 1 or micro < 1:
        raise R1ciError("--epochs, --batch-size and --micro-batch-size must be at least 1")
    per_step = micro * world_size
    if options.batch_size % per_step:
        raise R1ciError(f"--batch-size {options.batch_size} is not a multiple of --micro-batch-size × ranks "
                        f"= {micro} × {world_size}")
    if world_size > 1 and options.engine.deepspeed_config is None:
        raise R1ciError(f"WORLD_SIZE={world_size} but no --deepspeed CONFIG: the torch engine runs one process")
    check_output(options.checkpoint)
    return options.batch_size // per_step


def _loss_sum(model: Any, batch: Mapping[str, Any]):
    """Sum of token cross-entropies at loss positions; logits only where a label exists."""
    import torch
    import torch.nn.functional as F

    hidden = model.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 use_cache=False).last_hidden_state  # (B, T, H)
    targets = batch["labels"][:, 1:]  # (B, T-1)
    where = targets != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][where])  # (N, V)
    return F.cross_entropy(logits.float(), targets[where], reduction="sum"), torch.count_nonzero(where)


def _train_step(engine: Any, sequences: Sequence[TokenSequence], batch: list[int], options: SftOptions,
                pad_id: int) -> tuple[float, float, int, int]:
    """One optimizer step over a global batch: (loss, grad norm, tokens, loss tokens), all ranks summed."""
    from r1ci_cli.train.sequences import collate

    num_loss_tokens = sum(sft_data.predicted_loss_tokens(sequences[i]) for i in batch)
    micro = sft_data.rank_micro_batches(batch, sequences, options.engine.micro_batch_size, engine.world_size,
                                        engine.rank)
    # The engine contract: each micro loss is divided by the global batch's loss tokens (engine.py).
    scale = 1.0 / max(1, num_loss_tokens)
    loss_total = 0.0
    tokens = 0
    for indices in micro:
        tensors = {k: v.to(engine.device) for k, v in collate([sequences[i] for i in indices], pad_id).items()}
        with engine.autocast():
            loss_sum, _count = _loss_sum(engine.model, tensors)
        engine.backward(loss_sum * scale)
        loss_total += float(loss_sum.detach())
        tokens += int(tensors["attention_mask"].sum())
    grad_norm = engine.step()
    loss_total, tokens = engine.all_reduce_sum([loss_total, float(tokens)])
    return loss_total / max(1, num_loss_tokens), grad_norm, int(tokens), num_loss_tokens


def _prepare_data(sources: Sequence[str], options: SftOptions, tokenizer: Any):
    rows = sft_data.read_trajectories(sources)
    chosen, stats = sft_data.select(rows, options.only_correct, options.max_per_task, options.seed)
    log.info("sft: %d trajectories read, %d incorrect skipped, %d over the per-task cap skipped, %d kept "
             "(%d tasks)", stats.num_read, stats.num_incorrect_skipped, stats.num_over_cap_skipped,
             stats.num_selected, stats.num_tasks)
    builder = SequenceBuilder(tokenizer, options.max_seq_len)
    sequences = sft_data.build_sequences(chosen, builder)
    return sequences, stats, builder.stats


def sft(sources: Sequence[str], options: SftOptions, flags: Mapping[str, Any] | None = None,
        progress: bool = True, sandbox: Any = None) -> SftResult:
    """Train (see the module docstring). Every rank calls this; rank 0 writes files. ``flags``: the command's
    flag values and where each came from (click's ParameterSource), for resolved_config.json. ``sandbox``: where
    the code of ``--eval-tasks`` evaluations runs (``train/evaluation.py``)."""
    from transformers import AutoTokenizer

    from r1ci_cli.rollout.loop import RolloutOptions
    from r1ci_cli.train.evaluation import Evaluator

    rank, world_size = _world()
    grad_accum = _check(options, world_size)
    evaluator = Evaluator(options.eval, RolloutOptions(), options.checkpoint.save_every, world_size)
    if rank != 0:  # one copy of every message: the other ranks only warn
        logging.getLogger("r1ci").setLevel(logging.WARNING)
    resolve_model(options.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(options.model)
    except load_errors() as err:
        raise load_failure(options.model, err) from None
    sequences, selection, seq_stats = _prepare_data(sources, options, tokenizer)
    per_epoch = sft_data.steps_per_epoch(len(sequences), options.batch_size)
    total_steps = per_epoch * options.epochs
    if options.max_steps is not None:
        total_steps = min(total_steps, options.max_steps)
    warmup = warmup_steps_for(total_steps, options.warmup_ratio)
    data = sft_data.data_fingerprint(sequences)
    run = open_run(options.checkpoint, fingerprint(options, data=data, world=world_size), rank,
                   material={"options": settings(options), "data": data, "world": world_size})
    import torch

    # Dropout draws from torch's global generator: seeded here, restored from the checkpoint on resume.
    torch.manual_seed(derive_seed(options.seed, "sft-init"))
    engine = open_engine(run.checkpoint or options.model, replace(
        options.engine, total_steps=total_steps, warmup_steps=warmup, grad_accum=grad_accum))
    if run.checkpoint is not None:
        engine.load(run.checkpoint)
    run.start(flags or {}, options, {
        "world_size": world_size, "grad_accum": grad_accum, "steps_per_epoch": per_epoch, "total_steps": total_steps,
        "warmup_steps": warmup, "num_sequences": len(sequences), "selection": asdict(selection),
        "sequences": seq_stats.as_dict(), "precision": getattr(engine, "precision", options.engine.precision),
        "device": str(engine.device)})
    generator = None
    if evaluator.enabled:
        from r1ci_cli.train.vllm_policy import policy_generator

        generator = policy_generator("hf", engine.model, tokenizer, options.model, name=f"{options.model}@sft",
                                     batch_size=options.eval.batch_size)
    evaluator.start(run, generator, sandbox, engine.model, total_steps)
    with run:
        last_loss = _loop(engine, run, sequences, options, tokenizer, total_steps, per_epoch, progress, evaluator)
    run.export(engine, tokenizer)
    log.info("sft: %d steps done; model in %s", total_steps, run.out)
    return SftResult(run.out, total_steps, last_loss, len(sequences))


def _loop(engine: Any, run: Run, sequences: Sequence[TokenSequence], options: SftOptions, tokenizer: Any,
          total_steps: int, per_epoch: int, progress: bool, evaluator: Any) -> float | None:
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    started = time.monotonic()
    last_loss = None
    order_epoch, order = -1, []
    with Progress(total_steps, "sft", enabled=progress and engine.rank == 0) as bar:
        bar.update(run.start_step)
        for step in range(run.start_step, total_steps):
            epoch, batch_index = divmod(step, per_epoch)
            if epoch != order_epoch:
                order_epoch, order = epoch, sft_data.epoch_order(options.seed, epoch, len(sequences))
            batch = sft_data.global_batch(order, batch_index, options.batch_size)
            lr = engine.lr()
            step_started = time.monotonic()
            loss, grad_norm, tokens, loss_tokens = _train_step(engine, sequences, batch, options, pad_id)
            last_loss = loss
            row = {"step": step + 1, "epoch": round((step + 1) / per_epoch, 4), "loss": loss, "lr": lr,
                   "grad_norm": grad_norm, "num_tokens": tokens, "num_loss_tokens": loss_tokens,
                   "tokens_per_s": round(tokens / max(1e-9, time.monotonic() - step_started), 1),
                   "elapsed_s": round(time.monotonic() - started, 3)}
            run.append({**row, **evaluator.after_step(step + 1)})
            bar.update(1, loss=f"{loss:.4f}", lr=f"{lr:.2e}")
            if run.due(step + 1, total_steps):
                run.save(step + 1, engine, tokenizer, {"epoch": (step + 1) // per_epoch,
                                                       "batch_in_epoch": (step + 1) % per_epoch})
    return last_loss
