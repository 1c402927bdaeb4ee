"""``rl-stage``: one stage of the improvement-potential curriculum, trained with GRPO (PAPER.md "GRPO").

Per step:

1. the sampler takes ``batch_size`` instances from the stage pool (groups 1..stage, cumulative);
2. the live policy rolls each out ``group_size`` times at temperature 1.0 through the rollout loop and the
   sandbox pool: ``generator="hf"`` samples from the live torch policy, ``"vllm"`` from a vLLM engine in
   this process that takes the policy's weights after every update (``train.vllm_policy``);
3. rewards are the paper's (+1 correct, ±0.1 format, −0.1 beyond 6 turns); advantages are group-normalised;
   with ``filter_zero_variance`` groups whose rewards are all equal are dropped (``drop``) or replaced by
   further instances from the pool (``refill``, at most ``refill_rounds`` extra rollouts per step);
4. the trajectories' stored token ids (never re-tokenised text) and loss masks (model tokens only) go
   through ``update_epochs`` optimizer steps of the PPO-clip objective against the log-probs of the policy
   that sampled them, plus ``kl_coef`` × k3 KL to the frozen reference model (the stage's starting model
   unless ``ref_model`` says otherwise).

Exact resume: the sampler's position and every rollout seed are pure functions of (seed, stage, step), and
a checkpoint holds weights, optimizer, scheduler and RNG states, so ``--resume`` after a SIGKILL reaches the
same weights and metrics as an uninterrupted run on CPU. GPU sampling is not bitwise reproducible.

Not handled here: several data-parallel ranks (one process; DeepSpeed ZeRO through the shared engine is for
memory) and ZeRO-3 partitioned weights with ``generator="vllm"`` (refused).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task, Trajectory
from r1ci_cli.rollout.loop import RolloutOptions
from r1ci_cli.seeds import derive_rng, derive_seed
from r1ci_cli.settings import RUNTIME, fingerprint
from r1ci_cli.train.checkpoint import CheckpointOptions
from r1ci_cli.train.engine import EngineOptions

log = logging.getLogger("r1ci.rl-stage")

METRICS = "metrics.jsonl"


@dataclass(frozen=True)
class RlOptions:
    """The rl-stage command's options: its own, the rollouts' (``rollout``: agent style, ``group_size`` samples
    per instance, seeds from (seed, stage, step); smaller token budgets than rollout's) and the optimizer's
    (``engine``: PAPER.md "GRPO" lr 1e-6, constant after warmup since the paper gives no decay)."""

    stage: int
    model: str  # the stage's starting checkpoint
    checkpoint: CheckpointOptions
    ref_model: str | None = None  # the frozen KL reference; None: ``model``
    batch_size: int = 128  # PAPER.md "GRPO": batch 128 prompts
    group_size: int = 5  # PAPER.md "GRPO": group size 5
    steps: int = 150  # PAPER.md "Multi-stage curriculum": 150 steps per stage
    clip: float = 0.2  # PAPER.md "GRPO"
    kl_coef: float = 0.001  # PAPER.md "GRPO": k3 estimator as a loss term
    update_epochs: int = 1
    filter_zero_variance: str = "off"  # off | drop | refill
    refill_rounds: int = 2
    max_seq_len: int = 4096
    warmup_steps: int = 0
    generation_batch_size: int = 16  # trajectories generated together (hf batch and trajectories in flight)
    generator: str = "hf"  # hf: the live torch policy; vllm: a colocated vLLM engine synced after every update
    vllm_gpu_memory: float = field(default=0.3, metadata=RUNTIME)  # the GPU share vLLM may take beside the trainer
    seed: int = 0
    rollout: RolloutOptions = field(default_factory=lambda: RolloutOptions(max_new_tokens=512, max_total_tokens=2048))
    engine: EngineOptions = field(default_factory=lambda: EngineOptions(lr=1e-6, min_lr_ratio=1.0, micro_batch_size=8))


# ------------------------------------------------------------------------------------------------ sampler

def stage_pool(tasks: Sequence[Task], stage: int) -> list[Task]:
    """Instances of groups 1..stage, in a stable order (by id) so the sampler does not depend on file order."""
    from r1ci_cli.potential import stage_filter

    pool = sorted(stage_filter(tasks, stage), key=lambda t: t.id)
    if not pool:
        raise R1ciError(f"no instance has group <= {stage} (run score-potential; is --stage right?)")
    return pool


def sample_batch(pool: Sequence[Task], seed: int, stage: int, step: int, batch_size: int,
                 offset: int = 0) -> list[Task]:
    """Instances ``[step * batch_size + offset, …)`` of a seeded, per-epoch reshuffled stream over the pool.

    A pure function of its arguments: the sampler's position is the step, which makes resume exact.
    """
    out = []
    start = step * batch_size + offset
    for position in range(start, start + batch_size):
        epoch, index = divmod(position, len(pool))
        order = list(range(len(pool)))
        derive_rng(seed, "rl-sampler", stage, epoch).shuffle(order)
        out.append(pool[order[index]])
    return out


# ------------------------------------------------------------------------------------------------ batches

@dataclass
class Batch:
    """One step's training data: sequences with advantages and the log-probs of the sampling policy."""

    trajectories: list[Trajectory]
    advantages: list[float]
    input_ids: Any = None  # (B, T)
    attention_mask: Any = None  # (B, T)
    loss_mask: Any = None  # (B, T-1), aligned with next-token log-probs
    old_logp: Any = None  # (B, T-1)
    ref_logp: Any = None  # (B, T-1)
    num_truncated: int = 0


def make_batch(trajectories: list[Trajectory], advantages: list[float], tokenizer: Any, max_seq_len: int,
               pad_id: int) -> Batch:
    """Tensors from stored ids; the loss mask is shifted to line up with next-token log-probs."""
    import torch

    from r1ci_cli.train.sequences import SequenceBuilder

    builder = SequenceBuilder(tokenizer, max_seq_len)
    kept_traj, kept_adv, sequences = [], [], []
    for traj, adv in zip(trajectories, advantages):
        seq = builder.build(traj)
        if seq is not None:
            kept_traj.append(traj)
            kept_adv.append(adv)
            sequences.append(seq)
    batch = Batch(kept_traj, kept_adv, num_truncated=builder.stats.num_truncated)
    if not sequences:
        return batch
    width = max(len(s.input_ids) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(sequences), width), dtype=torch.float32)  # (B, T)
    for row, seq in enumerate(sequences):
        n = len(seq.input_ids)
        ids[row, :n] = torch.tensor(seq.input_ids)
        attention[row, :n] = 1
        mask[row, :n] = torch.tensor(seq.loss_mask, dtype=torch.float32)
    batch.input_ids, batch.attention_mask, batch.loss_mask = ids, attention, mask[:, 1:]
    return batch


def sequence_logprobs(model: Any, batch: Batch, rows: slice, with_entropy: bool = False):
    """Next-token log-probs (B, T-1) of ``batch`` rows under ``model`` (and entropies)."""
    from r1ci_cli.train.grpo import token_logprobs

    ids = batch.input_ids[rows]
    out = model(input_ids=ids, attention_mask=batch.attention_mask[rows], use_cache=False)
    logp, entropy = token_logprobs(out.logits, ids)
    return (logp, entropy) if with_entropy else logp


def frozen_logprobs(model: Any, batch: Batch, micro: int) -> Any:
    import torch

    parts = []
    with torch.no_grad():
        for start in range(0, len(batch.trajectories), micro):
            parts.append(sequence_logprobs(model, batch, slice(start, start + micro)))
    return torch.cat(parts, dim=0)


# ------------------------------------------------------------------------------------------------ metrics

def rollout_metrics(trajectories: Sequence[Trajectory], zero_variance_share: float) -> dict[str, float]:
    n = max(len(trajectories), 1)
    return {
        "reward_mean": sum(t.reward for t in trajectories) / n,
        "accuracy": sum(t.correct for t in trajectories) / n,
        "format_rate": sum(bool(t.extra.get("well_formed")) for t in trajectories) / n,
        "zero_variance_share": zero_variance_share,
        "mean_code_calls": sum(t.num_code_calls for t in trajectories) / n,
        "response_tokens": sum(t.extra.get("usage", {}).get("completion_tokens", 0) for t in trajectories) / n,
    }


def run_key(opts: RlOptions, pool: Sequence[Task]) -> str:
    """What decides the run's numbers (``settings.py``); resuming with another key is refused."""
    return fingerprint(opts, pool=[t.id for t in pool])


def now() -> float:
    return time.perf_counter()


def step_seed(opts: RlOptions, step: int, round_index: int) -> int:
    return derive_seed(opts.seed, "rl-rollout", opts.stage, step, round_index)


# ------------------------------------------------------------------------------------------------ the loop

@dataclass(frozen=True)
class RlResult:
    output: Path
    steps: int
    last_metrics: dict[str, Any]


def _rollout_groups(pool: Sequence[Task], generator: Any, sandbox: Any, opts: RlOptions, step: int,
                    timing: dict[str, float]) -> tuple[list[Trajectory], float]:
    """Roll out the step's batch; with ``refill``, replace zero-variance groups from further pool positions."""
    from r1ci_cli.rollout.loop import RolloutStats, rollout
    from r1ci_cli.train.grpo import zero_variance_groups

    kept: list[Trajectory] = []
    num_groups = num_zero = 0
    want, offset = opts.batch_size, 0
    rounds = 1 + (opts.refill_rounds if opts.filter_zero_variance == "refill" else 0)
    for round_index in range(rounds):
        tasks = sample_batch(pool, opts.seed, opts.stage, step, want, offset=offset)
        offset += want
        ropts = replace(opts.rollout, style="agent", samples=opts.group_size, seed=step_seed(opts, step, round_index),
                        max_in_flight=opts.generation_batch_size)
        stats = RolloutStats()
        # The same instance may be drawn twice in a batch (small pools): key groups by draw, not by id.
        trajs = list(rollout(_distinct(tasks, step, round_index), generator, sandbox, ropts, stats=stats))
        timing["generate_s"] += stats.generate_s
        timing["sandbox_s"] += stats.sandbox_wait_s
        groups = [t.task_id for t in trajs]
        zero = zero_variance_groups([t.reward for t in trajs], groups)
        num_groups += len(set(groups))
        num_zero += len(zero)
        if opts.filter_zero_variance == "off":
            kept += trajs
        else:
            kept += [t for t in trajs if t.task_id not in zero]
        want = len(zero) if opts.filter_zero_variance == "refill" else 0
        if want == 0:
            break
    return kept, (num_zero / num_groups if num_groups else 0.0)


def _distinct(tasks: Sequence[Task], step: int, round_index: int) -> list[Task]:
    """Give each draw its own task id (``<id>#<step>.<round>.<k>``) so duplicates form separate groups."""
    out = []
    for k, task in enumerate(tasks):
        data = task.to_dict()
        data["id"] = f"{task.id}#{step}.{round_index}.{k}"
        out.append(Task.from_dict(data))
    return out


def _update(engine: Any, ref_model: Any, batch: Batch, opts: RlOptions) -> dict[str, float]:
    """``update_epochs`` optimizer steps of the GRPO loss over the batch (micro-batches accumulate)."""
    import torch

    from r1ci_cli.train.grpo import GrpoLossConfig, grpo_loss

    config = GrpoLossConfig(clip=opts.clip, kl_coef=opts.kl_coef)
    total = len(batch.trajectories)
    micro = max(1, opts.engine.micro_batch_size)
    engine.model.eval()  # no dropout: the old log-probs must equal the sampling policy's
    # With one update per batch the sampling policy is the current one: its log-probs are the current
    # forward's, detached (ratio 1), and no extra forward pass is needed.
    reuse_current = opts.update_epochs == 1
    batch.old_logp = None if reuse_current else frozen_logprobs(engine.model, batch, micro)
    batch.ref_logp = frozen_logprobs(ref_model, batch, micro) if ref_model is not None else None
    advantages = torch.tensor(batch.advantages, dtype=torch.float32)  # (B,)
    sums = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0}
    grad_norm = 0.0
    for _epoch in range(opts.update_epochs):
        for start in range(0, total, micro):
            rows = slice(start, start + micro)
            share = (min(start + micro, total) - start) / total
            with engine.autocast():
                logp, entropy = sequence_logprobs(engine.model, batch, rows, with_entropy=True)
            mask = batch.loss_mask[rows]
            ref = batch.ref_logp[rows] if batch.ref_logp is not None else None
            old = logp.detach().float() if reuse_current else batch.old_logp[rows]
            parts = grpo_loss(logp.float(), old, ref, advantages[rows], mask, config)
            engine.backward(parts.loss * share)
            weight = share / opts.update_epochs
            sums["loss"] += float(parts.loss.detach()) * weight
            sums["kl"] += parts.kl * weight
            sums["clip_fraction"] += parts.clip_fraction * weight
            with torch.no_grad():
                tokens = mask.sum().clamp(min=1.0)
                sums["entropy"] += float((entropy.detach() * mask).sum() / tokens) * weight
        grad_norm = engine.step()
    sums["grad_norm"] = grad_norm
    return sums


def rl_stage(tasks: Sequence[Task], opts: RlOptions, sandbox: Any) -> RlResult:
    """Train one curriculum stage; writes checkpoints, ``metrics.jsonl`` and the final model to ``opts.checkpoint.output``."""
    import torch
    from transformers import AutoTokenizer

    from r1ci_cli.train.vllm_policy import VllmPolicyOptions, after_update, policy_generator
    from r1ci_cli.progress import Progress
    from r1ci_cli.train.checkpoint import (latest_checkpoint, read_trainer_state, save_checkpoint,
                                           truncate_metrics)
    from r1ci_cli.train.engine import load_model, open_engine
    from r1ci_cli.train.grpo import group_advantages

    if opts.filter_zero_variance not in ("off", "drop", "refill"):
        raise R1ciError("--filter-zero-variance must be off, drop or refill")
    out = Path(opts.checkpoint.output)
    out.mkdir(parents=True, exist_ok=True)
    pool = stage_pool(tasks, opts.stage)
    key = run_key(opts, pool)
    start_step, start_from = 0, opts.model
    checkpoint = latest_checkpoint(out) if opts.checkpoint.resume else None
    if checkpoint is not None:
        state = read_trainer_state(checkpoint)
        if state.get("run_key") != key:
            raise R1ciError(f"{checkpoint}: made by a run with other options or data; refusing to resume")
        start_step, start_from = int(state["step"]), str(checkpoint)
        truncate_metrics(out / METRICS, int(state["metrics_rows"]))
        log.info("resuming stage %d at step %d from %s", opts.stage, start_step, checkpoint)
    elif (out / METRICS).exists() and not opts.checkpoint.resume:
        (out / METRICS).unlink()
    torch.manual_seed(derive_seed(opts.seed, "rl-init", opts.stage))
    engine = open_engine(start_from, replace(opts.engine, total_steps=opts.steps, warmup_steps=opts.warmup_steps))
    if checkpoint is not None:
        engine.load(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(opts.model)
    ref_model = None
    if opts.kl_coef != 0.0:
        ref_model = load_model(opts.ref_model or opts.model, gradient_checkpointing=False).to(engine.device)
        ref_model.eval()
        for param in ref_model.parameters():
            param.requires_grad_(False)
    generator = policy_generator(opts.generator, engine.model, tokenizer, str(start_from),
                                 name=f"{opts.model}@rl{opts.stage}", batch_size=opts.generation_batch_size,
                                 options=VllmPolicyOptions(gpu_memory_utilization=opts.vllm_gpu_memory,
                                                           max_model_len=opts.max_seq_len, seed=opts.seed))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    metrics: dict[str, Any] = {}
    with Progress(opts.steps, f"rl-stage {opts.stage}") as bar:
        bar.update(start_step)
        for step in range(start_step, opts.steps):
            timing = {"generate_s": 0.0, "sandbox_s": 0.0}
            began = now()
            engine.model.eval()
            trajectories, zero_share = _rollout_groups(pool, generator, sandbox, opts, step, timing)
            rollout_s = now() - began
            advantages = group_advantages([t.reward for t in trajectories], [t.task_id for t in trajectories])
            batch = make_batch(trajectories, advantages, tokenizer, opts.max_seq_len, pad_id)
            train_began = now()
            engine.model.train()
            update = _update(engine, ref_model, batch, opts) if batch.trajectories else {}
            if batch.trajectories:
                after_update(generator, engine.model)  # vLLM takes the new weights; no-op for hf
            metrics = {"step": step + 1, "stage": opts.stage, **rollout_metrics(trajectories, zero_share),
                       **update, "num_trajectories": len(trajectories), "num_truncated": batch.num_truncated,
                       "lr": engine.lr(), "generate_s": timing["generate_s"], "sandbox_s": timing["sandbox_s"],
                       "rollout_s": rollout_s, "train_s": now() - train_began}
            metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}
            with open(out / METRICS, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(metrics) + "\n")
            bar.update(1, reward=metrics["reward_mean"], acc=metrics["accuracy"])
            done = step + 1
            if done % opts.checkpoint.save_every == 0 or done == opts.steps:
                save_checkpoint(out, done, engine, {"step": done, "metrics_rows": done, "run_key": key,
                                                    "stage": opts.stage},
                                opts.checkpoint.keep, extra_files=tokenizer.save_pretrained)
    generator.close()
    engine.model.eval()
    engine.export(out)
    tokenizer.save_pretrained(out)
    return RlResult(out, opts.steps, metrics)
