"""``rl-stage``: one stage of the improvement-potential curriculum, trained with GRPO (docs/paper.md "GRPO").

Per step: (1) the sampler takes ``batch_size`` instances of the stage pool (groups 1..stage, cumulative);
(2) the live policy rolls each out ``group_size`` times through the rollout loop and the sandbox (``hf``: the
torch policy itself; ``vllm``: a vLLM engine in this process that takes the policy's weights after every
update, ``train/vllm_policy.py``); (3) rewards are the paper's, advantages group-normalised; groups whose
rewards are all equal may be dropped, or refilled from further pool positions (``filter_zero_variance``);
(4) the stored token ids (never re-tokenised text) and loss masks (model tokens only) go through
``update_epochs`` optimizer steps of the PPO-clip objective against the sampling policy's log-probs, plus
``kl_coef`` × k3 KL to the frozen reference (``train/grpo.py``). The run directory is ``train/run.py``'s.

Exact resume: the sampler's position and every rollout seed are pure functions of (seed, stage, step), and
a checkpoint holds weights, optimizer, scheduler and RNG states, so ``--resume`` after a SIGKILL reaches the
same weights and metrics as an uninterrupted run on CPU. GPU sampling is not bitwise reproducible.
Not handled: several data-parallel ranks (one process; DeepSpeed ZeRO is for memory) and ZeRO-3
partitioned weights with ``generator="vllm"`` (refused).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task, Trajectory
from r1ci_cli.seeds import derive_rng, derive_seed
from r1ci_cli.settings import fingerprint
from r1ci_cli.train.options import RlOptions


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


def _distinct(tasks: Sequence[Task], step: int, round_index: int) -> list[Task]:
    """Give each draw its own task id (``<id>#<step>.<round>.<k>``): the same instance drawn twice in a batch
    (small pools) forms two groups."""
    return [Task.from_dict({**task.to_dict(), "id": f"{task.id}#{step}.{round_index}.{k}"})
            for k, task in enumerate(tasks)]


# ------------------------------------------------------------------------------------------------ rollouts

def _rollout_groups(pool: Sequence[Task], generator: Any, sandbox: Any, opts: RlOptions, step: int,
                    timing: dict[str, float]) -> tuple[list[Trajectory], float]:
    """Roll out the step's batch; with ``refill``, replace zero-variance groups from further pool positions.
    Returns the kept trajectories and the share of groups whose rewards were all equal."""
    from r1ci_cli.rollout.loop import RolloutStats, rollout
    from r1ci_cli.train.grpo import zero_variance_groups

    kept: list[Trajectory] = []
    num_groups = num_zero = 0
    want, offset = opts.batch_size, 0
    rounds = 1 + (opts.refill_rounds if opts.filter_zero_variance == "refill" else 0)
    for round_index in range(rounds):
        tasks = sample_batch(pool, opts.seed, opts.stage, step, want, offset=offset)
        offset += want
        seed = derive_seed(opts.seed, "rl-rollout", opts.stage, step, round_index)
        ropts = replace(opts.rollout, style="agent", samples=opts.group_size, seed=seed,
                        max_in_flight=opts.generation_batch_size)
        stats = RolloutStats()
        trajs = list(rollout(_distinct(tasks, step, round_index), generator, sandbox, ropts, stats=stats))
        timing["generate_s"] += stats.generate_s
        timing["sandbox_s"] += stats.sandbox_wait_s
        groups = [t.task_id for t in trajs]
        zero = zero_variance_groups([t.reward for t in trajs], groups)
        num_groups += len(set(groups))
        num_zero += len(zero)
        kept += trajs if opts.filter_zero_variance == "off" else [t for t in trajs if t.task_id not in zero]
        want = len(zero) if opts.filter_zero_variance == "refill" else 0
        if want == 0:
            break
    return kept, (num_zero / num_groups if num_groups else 0.0)


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


# ------------------------------------------------------------------------------------------------ the update

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
    """Tensors from the stored ids, the way sft makes them (``sequences.collate``); the loss mask is shifted
    to line up with next-token log-probs. Trajectories truncation left without a model token are dropped."""
    from r1ci_cli.train.sequences import SequenceBuilder, collate

    builder = SequenceBuilder(tokenizer, max_seq_len)
    kept = [(traj, adv, seq) for traj, adv in zip(trajectories, advantages) if (seq := builder.build(traj))]
    batch = Batch([k[0] for k in kept], [k[1] for k in kept], num_truncated=builder.stats.num_truncated)
    if kept:
        tensors = collate([k[2] for k in kept], pad_id)
        batch.input_ids, batch.attention_mask = tensors["input_ids"], tensors["attention_mask"]
        batch.loss_mask = (tensors["labels"][:, 1:] != -100).float()
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

    with torch.no_grad():
        return torch.cat([sequence_logprobs(model, batch, slice(start, start + micro))
                          for start in range(0, len(batch.trajectories), micro)], dim=0)


def _update(engine: Any, ref_model: Any, batch: Batch, opts: RlOptions) -> dict[str, float]:
    """``update_epochs`` optimizer steps of the GRPO loss over the batch (micro-batches accumulate).

    The engine contract (``train/engine.py``): each micro-batch's loss goes to ``backward`` already weighted
    by its share of the batch's sequences, so the micro-batches add up to the loss of the whole batch (a mean
    over sequences of their token means, ``grpo.masked_sequence_mean``).
    """
    import torch

    from r1ci_cli.train.grpo import GrpoLossConfig, grpo_loss

    config = GrpoLossConfig(clip=opts.clip, kl_coef=opts.kl_coef)
    total, micro = len(batch.trajectories), max(1, opts.engine.micro_batch_size)
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
    return {**sums, "grad_norm": grad_norm}


# ------------------------------------------------------------------------------------------------ the loop

def run_key(opts: RlOptions, pool: Sequence[Task]) -> str:
    """What decides the run's numbers (``settings.py``); resuming with another key is refused."""
    return fingerprint(opts, pool=[t.id for t in pool])


def rl_stage(tasks: Sequence[Task], opts: RlOptions, sandbox: Any, flags: Mapping[str, Any] | None = None) -> dict:
    """Train one curriculum stage into ``opts.checkpoint.output``; returns the last step's metrics.
    ``flags``: the command's flag values and sources, for resolved_config.json."""
    import torch
    from transformers import AutoTokenizer

    from r1ci_cli.progress import Progress
    from r1ci_cli.train.engine import load_frozen, open_engine
    from r1ci_cli.train.grpo import group_advantages
    from r1ci_cli.train.run import check_output, open_run
    from r1ci_cli.train.vllm_policy import VllmPolicyOptions, after_update, policy_generator

    if opts.filter_zero_variance not in ("off", "drop", "refill"):
        raise R1ciError("--filter-zero-variance must be off, drop or refill")
    if opts.engine.deepspeed_config and opts.engine.micro_batch_size < opts.batch_size * opts.group_size:
        raise R1ciError("--deepspeed: rl-stage trains a step as one micro-batch (DeepSpeed's accumulation steps "
                        "are fixed, its batches are not): use --micro-batch-size >= --batch-size x --group-size")
    check_output(opts.checkpoint)
    pool = stage_pool(tasks, opts.stage)
    run = open_run(opts.checkpoint, run_key(opts, pool))
    torch.manual_seed(derive_seed(opts.seed, "rl-init", opts.stage))
    start_from = str(run.checkpoint or opts.model)
    engine = open_engine(start_from, replace(opts.engine, total_steps=opts.steps, warmup_steps=opts.warmup_steps))
    if run.checkpoint is not None:
        engine.load(run.checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(opts.model)
    ref_model = load_frozen(opts.ref_model or opts.model, engine.device) if opts.kl_coef else None
    vllm = VllmPolicyOptions(gpu_memory_utilization=opts.vllm_gpu_memory, max_model_len=opts.max_seq_len,
                             seed=opts.seed)
    name = f"{opts.model}@rl{opts.stage}"
    generator = policy_generator(opts.generator, engine.model, tokenizer, start_from, name=name,
                                 batch_size=opts.generation_batch_size, options=vllm)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    metrics: dict[str, Any] = {}
    run.start(flags or {}, opts, {"pool": len(pool), "device": str(engine.device),
                                  "precision": getattr(engine, "precision", opts.engine.precision)})
    with run, Progress(opts.steps, f"rl-stage {opts.stage}") as bar:
        bar.update(run.start_step)
        for step in range(run.start_step, opts.steps):
            timing = {"generate_s": 0.0, "sandbox_s": 0.0}
            began = time.perf_counter()
            engine.model.eval()
            trajectories, zero_share = _rollout_groups(pool, generator, sandbox, opts, step, timing)
            rollout_s = time.perf_counter() - began
            advantages = group_advantages([t.reward for t in trajectories], [t.task_id for t in trajectories])
            batch = make_batch(trajectories, advantages, tokenizer, opts.max_seq_len, pad_id)
            train_began = time.perf_counter()
            engine.model.train()
            update = _update(engine, ref_model, batch, opts) if batch.trajectories else {}
            if batch.trajectories:
                after_update(generator, engine.model)  # vLLM takes the new weights; no-op for hf
            metrics = {"step": step + 1, "stage": opts.stage, **rollout_metrics(trajectories, zero_share),
                       **update, "num_trajectories": len(trajectories), "num_truncated": batch.num_truncated,
                       "lr": engine.lr(), **timing, "rollout_s": rollout_s,
                       "train_s": time.perf_counter() - train_began}
            metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}
            run.append(metrics)
            bar.update(1, reward=metrics["reward_mean"], acc=metrics["accuracy"])
            if run.due(step + 1, opts.steps):
                run.save(step + 1, engine, tokenizer, {"stage": opts.stage})
    generator.close()
    engine.model.eval()
    run.export(engine, tokenizer)
    return metrics
