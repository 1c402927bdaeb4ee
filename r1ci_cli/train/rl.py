"""``rl-stage``: one stage of the improvement-potential curriculum, trained with GRPO (docs/paper.md "GRPO").

Per step: (1) the sampler takes ``batch_size`` instances of the stage pool (groups 1..stage, cumulative;
with ``regroup="online"`` the groups the earlier stages did not reach are first re-sorted by the running pass
rates the previous stage wrote, ``potential.regroup``); (2) the live policy rolls each out ``group_size``
times through the rollout loop and the sandbox (``hf``: the torch policy itself; ``vllm``: a vLLM engine in
this process that takes the policy's weights after every update, ``train/vllm_policy.py``), keeping the
sampler's log-prob of every token; (3) outcomes: a trajectory the infrastructure ended (``infra_error``, after
the loop's retries) is left out of everything below and counted (``infra_error_share``); a group left with
fewer than two valid members is skipped and logged; rewards are the paper's, advantages group-normalised over
the valid members; groups whose correctness (``filter_on="correct"``, or rewards) is all equal may be dropped,
or refilled from further pool positions (``filter_zero_variance``); every group's pass rate updates its
instance's running p (``potential.PassRates``); (4) the stored token ids (never re-tokenised text) and loss
masks (model tokens only) go through ``update_epochs`` optimizer steps of the PPO-clip objective against the
trainer's log-probs at the start of the update, importance-corrected for the sampler's (``is_correction``),
plus ``kl_coef`` × k3 KL to the frozen reference (``train/grpo.py``); the trainer's log-probs are of the
logits divided by the sampling temperature, as the sampler's. The run directory is ``train/run.py``'s; at the
end the running pass rates go to ``OUT/instance-stats.jsonl.zst`` (``potential.STATS_FILE``).

Exact resume: the sampler's position and every rollout seed are pure functions of (seed, stage, step), and
a checkpoint holds weights, optimizer, scheduler, RNG states and the running pass rates, so ``--resume``
after a SIGKILL reaches the same weights, metrics and stats as an uninterrupted run on CPU. GPU sampling is
not bitwise reproducible. Not handled: several data-parallel ranks (one process; DeepSpeed ZeRO is for
memory) and ZeRO-3 partitioned weights with ``generator="vllm"`` (refused).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task, Trajectory, is_infra_error
from r1ci_cli.seeds import derive_rng, derive_seed
from r1ci_cli.settings import fingerprint
from r1ci_cli.train.options import RlOptions

log = logging.getLogger("r1ci.rl-stage")

MIN_VALID_MEMBERS = 2  # a group needs two valid members for a group statistic


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

@dataclass
class GroupCounts:
    """What one step's rollouts held, for the metrics and the log."""

    num_trajectories: int = 0  # rolled out, infra_error included
    num_infra_errors: int = 0
    num_groups: int = 0
    num_skipped: int = 0  # groups left with fewer than MIN_VALID_MEMBERS valid members
    num_zero_variance: int = 0  # of the groups that were not skipped
    skipped: list[str] = field(default_factory=list)


def select_groups(trajectories: Sequence[Trajectory], filter_on: str = "correct",
                  counts: GroupCounts | None = None) -> tuple[list[Trajectory], set[str]]:
    """The valid members of the groups that keep at least two of them, in input order, and the ids of the
    zero-variance groups among those (by ``filter_on``: correctness, exactly, or reward). A trajectory the
    infrastructure ended is never a member; a group that lost all (or all but one) of its members is
    skipped and logged."""
    from r1ci_cli.train.grpo import zero_variance_groups

    counts = counts if counts is not None else GroupCounts()
    valid = [t for t in trajectories if not is_infra_error(t)]
    order = list(dict.fromkeys(t.task_id for t in trajectories))
    size = {group: 0 for group in order}
    for traj in valid:
        size[traj.task_id] += 1
    skipped = [group for group in order if size[group] < MIN_VALID_MEMBERS]
    for group in skipped:
        log.warning("group %s skipped: %d of its members valid (the rest infra_error)", group, size[group])
    kept = [t for t in valid if size[t.task_id] >= MIN_VALID_MEMBERS]
    values = [t.correct if filter_on == "correct" else t.reward for t in kept]
    zero = zero_variance_groups(values, [t.task_id for t in kept])
    counts.num_trajectories += len(trajectories)
    counts.num_infra_errors += len(trajectories) - len(valid)
    counts.num_groups += len(order)
    counts.num_skipped += len(skipped)
    counts.num_zero_variance += len(zero)
    counts.skipped += skipped
    return kept, zero


def instance_id(draw_id: str) -> str:
    """The instance a group's draw id (``_distinct``) belongs to."""
    return draw_id.rsplit("#", 1)[0]


def group_pass_rates(trajectories: Sequence[Trajectory]) -> list[tuple[str, int, int]]:
    """(draw id, correct, valid members) per group with a valid member, in input order."""
    rates: dict[str, list[int]] = {}
    for traj in trajectories:
        if not is_infra_error(traj):
            entry = rates.setdefault(traj.task_id, [0, 0])
            entry[0] += int(traj.correct)
            entry[1] += 1
    return [(group, correct, valid) for group, (correct, valid) in rates.items()]


@dataclass
class StepRollouts:
    """One step's training groups: ``trajectories`` (valid members of kept groups) with their ``advantages``;
    ``pass_rates`` of every group rolled out (for the running p); ``counts``."""

    trajectories: list[Trajectory]
    advantages: list[float]
    pass_rates: list[tuple[str, int, int]]
    counts: GroupCounts


def rollout_step(pool: Sequence[Task], generator: Any, sandbox: Any, opts: RlOptions, step: int,
                 timing: dict[str, float] | None = None) -> StepRollouts:
    """Roll out the step's batch and form its groups; with ``refill``, replace the groups that teach nothing
    (zero-variance or skipped) from further pool positions."""
    from r1ci_cli.rollout.loop import RolloutStats, rollout
    from r1ci_cli.train.grpo import group_advantages

    timing = timing if timing is not None else {"generate_s": 0.0, "sandbox_s": 0.0}
    counts = GroupCounts()
    kept: list[Trajectory] = []
    rates: list[tuple[str, int, int]] = []
    want, offset = opts.batch_size, 0
    rounds = 1 + (opts.refill_rounds if opts.filter_zero_variance == "refill" else 0)
    for round_index in range(rounds):
        tasks = sample_batch(pool, opts.seed, opts.stage, step, want, offset=offset)
        offset += want
        seed = derive_seed(opts.seed, "rl-rollout", opts.stage, step, round_index)
        ropts = replace(opts.rollout, style="agent", samples=opts.group_size, seed=seed,
                        max_in_flight=opts.generation_batch_size, logprobs=True)
        stats = RolloutStats()
        trajs = list(rollout(_distinct(tasks, step, round_index), generator, sandbox, ropts, stats=stats))
        timing["generate_s"] += stats.generate_s
        timing["sandbox_s"] += stats.sandbox_wait_s
        rates += group_pass_rates(trajs)
        skipped_before = counts.num_skipped
        members, zero = select_groups(trajs, opts.filter_on, counts)
        kept += members if opts.filter_zero_variance == "off" else [t for t in members if t.task_id not in zero]
        want = len(zero) + counts.num_skipped - skipped_before if opts.filter_zero_variance == "refill" else 0
        if want == 0:
            break
    advantages = group_advantages([t.reward for t in kept], [t.task_id for t in kept])
    return StepRollouts(kept, advantages, rates, counts)


def rollout_metrics(trajectories: Sequence[Trajectory], counts: GroupCounts) -> dict[str, float]:
    """Outcome metrics of a step over the trajectories it trains on, and its infrastructure and group counts."""
    n = max(len(trajectories), 1)
    judged = max(counts.num_groups - counts.num_skipped, 1)
    return {
        "reward_mean": sum(t.reward for t in trajectories) / n,
        "accuracy": sum(t.correct for t in trajectories) / n,
        "format_rate": sum(bool(t.extra.get("well_formed")) for t in trajectories) / n,
        "zero_variance_share": counts.num_zero_variance / judged,
        "mean_code_calls": sum(t.num_code_calls for t in trajectories) / n,
        "response_tokens": sum(t.extra.get("usage", {}).get("completion_tokens", 0) for t in trajectories) / n,
        "infra_error_share": counts.num_infra_errors / max(counts.num_trajectories, 1),
        "groups_skipped": counts.num_skipped,
    }


def outcome_metrics(trajectories: Sequence[Trajectory], generate_s: float, stage: int) -> dict[str, Any]:
    """What the step's rollouts ended in, as shares (every known value present, 0 when absent, so curves have
    no gaps): ``finish`` reasons of the trajectories, ``sandbox`` statuses of their code executions, curriculum
    ``group`` (1..stage) of their instances; and generated ``tokens_per_s`` of generation time."""
    from collections import Counter

    from r1ci_cli.records import EXEC_STATUSES, FINISH_REASONS

    def shares(counts: Counter, known: Sequence[str]) -> dict[str, float]:
        total = max(sum(counts.values()), 1)
        return {str(k): round(counts.get(k, 0) / total, 6) for k in [*known, *sorted(set(counts) - set(known))]}

    finish = Counter(t.finish for t in trajectories)
    statuses = Counter(turn.status for t in trajectories for turn in t.turns if turn.role == "exec" and turn.status)
    groups = Counter(str(t.extra["group"]) for t in trajectories if "group" in t.extra)
    tokens = sum(t.extra.get("usage", {}).get("completion_tokens", 0) for t in trajectories)
    return {"finish": shares(finish, FINISH_REASONS), "sandbox": shares(statuses, EXEC_STATUSES),
            "group": shares(groups, [str(g) for g in range(1, stage + 1)]),
            "tokens_per_s": round(tokens / generate_s, 3) if generate_s > 0 else 0.0}


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
    sampler_logp: Any = None  # (B, T-1): the sampler's log-prob of each next token, NaN where none was recorded
    num_truncated: int = 0


def make_batch(trajectories: list[Trajectory], advantages: list[float], tokenizer: Any, max_seq_len: int,
               pad_id: int) -> Batch:
    """Tensors from the stored ids, the way sft makes them (``sequences.collate``); the loss mask and the
    sampler's log-probs are shifted to line up with next-token log-probs. Trajectories truncation left
    without a model token are dropped."""
    import torch

    from r1ci_cli.train.sequences import SequenceBuilder, collate

    builder = SequenceBuilder(tokenizer, max_seq_len)
    kept = [(traj, adv, seq) for traj, adv in zip(trajectories, advantages) if (seq := builder.build(traj))]
    batch = Batch([k[0] for k in kept], [k[1] for k in kept], num_truncated=builder.stats.num_truncated)
    if kept:
        tensors = collate([k[2] for k in kept], pad_id)
        batch.input_ids, batch.attention_mask = tensors["input_ids"], tensors["attention_mask"]
        batch.loss_mask = (tensors["labels"][:, 1:] != -100).float()
        if any(k[2].sampler_logprobs is not None for k in kept):
            sampler = torch.full(batch.input_ids.shape, float("nan"), dtype=torch.float32)  # (B, T)
            for row, (_traj, _adv, seq) in enumerate(kept):
                if seq.sampler_logprobs is not None:
                    sampler[row, :len(seq.sampler_logprobs)] = torch.tensor(seq.sampler_logprobs)
            batch.sampler_logp = sampler[:, 1:]
    return batch


def sequence_logprobs(model: Any, batch: Batch, rows: slice, temperature: float = 1.0, with_entropy: bool = False):
    """Next-token log-probs (B, T-1) of ``batch`` rows under ``model`` at ``temperature`` (and entropies)."""
    from r1ci_cli.train.grpo import token_logprobs

    ids = batch.input_ids[rows]
    out = model(input_ids=ids, attention_mask=batch.attention_mask[rows], use_cache=False)
    logp, entropy = token_logprobs(out.logits, ids, temperature)
    return (logp, entropy) if with_entropy else logp


def frozen_logprobs(model: Any, batch: Batch, micro: int, temperature: float = 1.0) -> Any:
    import torch

    with torch.no_grad():
        return torch.cat([sequence_logprobs(model, batch, slice(start, start + micro), temperature)
                          for start in range(0, len(batch.trajectories), micro)], dim=0)


def is_correction(opts: RlOptions) -> str:
    """The importance correction a run uses: ``auto`` is token-tis with the vllm generator, none with hf."""
    if opts.is_correction != "auto":
        return opts.is_correction
    return "token-tis" if opts.generator == "vllm" else "none"


def _update(engine: Any, ref_model: Any, batch: Batch, opts: RlOptions) -> dict[str, float]:
    """``update_epochs`` optimizer steps of the GRPO loss over the batch (micro-batches accumulate).

    The engine contract (``train/engine.py``): each micro-batch's loss goes to ``backward`` already weighted
    by its share of the batch's sequences, so the micro-batches add up to the loss of the whole batch (a mean
    over sequences of their token means, ``grpo.masked_sequence_mean``). The sampler/trainer mismatch is
    measured on the first epoch, against the trainer's log-probs before the update.
    """
    import torch

    from r1ci_cli.train.grpo import (GrpoLossConfig, add_mismatch, grpo_loss, importance_weights, mismatch_metrics,
                                     sampler_mismatch)

    config = GrpoLossConfig(clip=opts.clip, kl_coef=opts.kl_coef)
    correction, temperature = is_correction(opts), opts.rollout.temperature
    total, micro = len(batch.trajectories), max(1, opts.engine.micro_batch_size)
    engine.model.eval()  # no dropout: the old log-probs must equal the sampling policy's
    # With one update per batch the policy before the update is the current one: its log-probs are the current
    # forward's, detached (ratio 1), and no extra forward pass is needed.
    reuse_current = opts.update_epochs == 1
    batch.old_logp = None if reuse_current else frozen_logprobs(engine.model, batch, micro, temperature)
    batch.ref_logp = frozen_logprobs(ref_model, batch, micro, temperature) if ref_model is not None else None
    advantages = torch.tensor(batch.advantages, dtype=torch.float32)  # (B,)
    sums = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0}
    mismatch: dict[str, float] = {}
    grad_norm = 0.0
    for epoch in range(opts.update_epochs):
        for start in range(0, total, micro):
            rows = slice(start, start + micro)
            share = (min(start + micro, total) - start) / total
            with engine.autocast():
                logp, entropy = sequence_logprobs(engine.model, batch, rows, temperature, with_entropy=True)
            mask = batch.loss_mask[rows]
            ref = batch.ref_logp[rows] if batch.ref_logp is not None else None
            old = logp.detach().float() if reuse_current else batch.old_logp[rows]
            weights = None
            if batch.sampler_logp is not None:
                sampler = batch.sampler_logp[rows]
                if epoch == 0:
                    add_mismatch(mismatch, sampler_mismatch(old, sampler, mask, opts.is_cap))
                weights = importance_weights(old, sampler, mask, correction, opts.is_cap)
            parts = grpo_loss(logp.float(), old, ref, advantages[rows], mask, config, weights)
            engine.backward(parts.loss * share)
            weight = share / opts.update_epochs
            sums["loss"] += float(parts.loss.detach()) * weight
            sums["kl"] += parts.kl * weight
            sums["clip_fraction"] += parts.clip_fraction * weight
            with torch.no_grad():
                tokens = mask.sum().clamp(min=1.0)
                sums["entropy"] += float((entropy.detach() * mask).sum() / tokens) * weight
        grad_norm = engine.step()
    return {**sums, "grad_norm": grad_norm, **mismatch_metrics(mismatch)}


# ------------------------------------------------------------------------------------------------ the loop

def run_key(opts: RlOptions, pool: Sequence[Task], stats: Sequence[Mapping] = ()) -> str:
    """What decides the run's numbers (``settings.py``); resuming with another key is refused."""
    return fingerprint(opts, pool=[t.id for t in pool], **({"stats": list(stats)} if stats else {}))


def check_options(opts: RlOptions) -> None:
    """Flag combinations, before anything is read or started."""
    from r1ci_cli.potential import P_UPDATES
    from r1ci_cli.train.grpo import IS_CORRECTIONS

    if opts.filter_zero_variance not in ("off", "drop", "refill"):
        raise R1ciError("--filter-zero-variance must be off, drop or refill")
    if opts.filter_on not in ("correct", "reward"):
        raise R1ciError("--filter-on must be correct or reward")
    if opts.is_correction not in ("auto", *IS_CORRECTIONS) or opts.is_cap <= 1.0:
        raise R1ciError("--is-correction must be auto, none, token-tis or seq-mask, and --is-cap above 1")
    if opts.regroup not in ("static", "online") or opts.p_update not in P_UPDATES or not 0 < opts.p_ema <= 1:
        raise R1ciError("--regroup must be static or online, --p-update latest or ema, --p-ema in (0, 1]")
    if opts.rollout.temperature <= 0:
        raise R1ciError("--temperature must be above 0: rl-stage samples (and scales its logits by it)")
    if opts.engine.deepspeed_config and opts.engine.micro_batch_size < opts.batch_size * opts.group_size:
        raise R1ciError("--deepspeed: rl-stage trains a step as one micro-batch (DeepSpeed's accumulation steps "
                        "are fixed, its batches are not): use --micro-batch-size >= --batch-size x --group-size")


def previous_stats(opts: RlOptions) -> tuple[str | None, list[dict]]:
    """The previous stage's running pass rates: ``--stage-stats``, else ``MODEL/instance-stats.jsonl.zst``
    when present. ``--regroup online`` after stage 1 needs them."""
    from r1ci_cli.potential import STATS_FILE, read_stats

    path = opts.stage_stats or os.path.join(opts.model, STATS_FILE)
    if opts.stage_stats is None and not os.path.exists(path):
        if opts.regroup == "online" and opts.stage > 1:
            raise R1ciError(f"--regroup online: no {path} (the previous stage's running pass rates); "
                            "give --stage-stats FILE or use --regroup static")
        return None, []
    return path, read_stats(path)


def rl_stage(tasks: Sequence[Task], opts: RlOptions, sandbox: Any, flags: Mapping[str, Any] | None = None) -> dict:
    """Train one curriculum stage into ``opts.checkpoint.output``; returns the last step's metrics.
    ``flags``: the command's flag values and sources, for resolved_config.json."""
    import torch
    from transformers import AutoTokenizer

    from r1ci_cli.potential import STATS_FILE, PassRates, regroup
    from r1ci_cli.streams import record_sink
    from r1ci_cli.train.engine import load_frozen, open_engine
    from r1ci_cli.train.evaluation import Evaluator
    from r1ci_cli.train.run import check_output, open_run
    from r1ci_cli.train.vllm_policy import VllmPolicyOptions, after_update, policy_generator

    check_options(opts)
    check_output(opts.checkpoint)
    stats_path, stats = previous_stats(opts)
    rates = PassRates.from_state(stats, opts.p_update, opts.p_ema)
    if opts.regroup == "online":
        tasks = regroup(list(tasks), rates.entries, opts.stage)
    pool = stage_pool(tasks, opts.stage)
    evaluator = Evaluator(opts.eval, opts.rollout, opts.checkpoint.save_every)
    run = open_run(opts.checkpoint, run_key(opts, pool, stats))
    if run.checkpoint is not None:
        rates = PassRates.from_state(run.state.get("pass_rates", []), opts.p_update, opts.p_ema)
    by_id = {t.id: t for t in pool}
    torch.manual_seed(derive_seed(opts.seed, "rl-init", opts.stage))
    start_from = str(run.checkpoint or opts.model)
    # The schedule counts optimizer steps: update_epochs of them per RL step.
    engine = open_engine(start_from, replace(opts.engine, total_steps=opts.steps * opts.update_epochs,
                                             warmup_steps=opts.warmup_steps * opts.update_epochs))
    if run.checkpoint is not None:
        engine.load(run.checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(opts.model)
    ref_model = None
    if opts.kl_coef:
        ref_model = load_frozen(opts.ref_model or opts.model, engine.device,
                                flag="--ref-model" if opts.ref_model else "--model")
    vllm = VllmPolicyOptions(gpu_memory_utilization=opts.vllm_gpu_memory, max_model_len=opts.max_seq_len,
                             seed=opts.seed)
    name = f"{opts.model}@rl{opts.stage}"
    generator = policy_generator(opts.generator, engine.model, tokenizer, start_from, name=name,
                                 batch_size=opts.generation_batch_size, options=vllm)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    metrics: dict[str, Any] = {}
    run.start(flags or {}, opts, {"pool": len(pool), "device": str(engine.device), "is_correction": is_correction(opts),
                                  "stage_stats": stats_path,
                                  "precision": getattr(engine, "precision", opts.engine.precision)})
    evaluator.start(run, generator, sandbox, engine.model, opts.steps)
    began_run, history = time.perf_counter(), []
    with run:
        for step in range(run.start_step, opts.steps):
            timing = {"generate_s": 0.0, "sandbox_s": 0.0}
            began = time.perf_counter()
            engine.model.eval()
            rolled = rollout_step(pool, generator, sandbox, opts, step, timing)
            for group, correct, valid in rolled.pass_rates:
                rates.update(by_id[instance_id(group)], correct, valid, opts.stage, step + 1)
            rollout_s = time.perf_counter() - began
            batch = make_batch(rolled.trajectories, rolled.advantages, tokenizer, opts.max_seq_len, pad_id)
            train_began = time.perf_counter()
            engine.model.train()
            update = _update(engine, ref_model, batch, opts) if batch.trajectories else {}
            if batch.trajectories:
                after_update(generator, engine.model)  # vLLM takes the new weights; no-op for hf
            metrics = {"step": step + 1, "stage": opts.stage, **rollout_metrics(rolled.trajectories, rolled.counts),
                       **update, "num_trajectories": len(rolled.trajectories), "num_truncated": batch.num_truncated,
                       "lr": engine.lr(), **timing, "rollout_s": rollout_s,
                       "train_s": time.perf_counter() - train_began}
            metrics.update(outcome_metrics(rolled.trajectories, timing["generate_s"], opts.stage))
            metrics = {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in metrics.items()}
            metrics.update(evaluator.after_step(step + 1))
            run.append(metrics, samples=rolled.trajectories)
            history.append(metrics)
            log.info("%s", step_line(metrics, opts.steps, time.perf_counter() - began))
            if run.due(step + 1, opts.steps):
                run.save(step + 1, engine, tokenizer, {"stage": opts.stage, "pass_rates": rates.state()})
    generator.close()
    engine.model.eval()
    if engine.rank == 0:
        with record_sink(str(run.out / STATS_FILE)) as sink:
            sink.write_all(rates.records())
    run.export(engine, tokenizer)
    log.info("%s", summary_line(history, opts, time.perf_counter() - began_run, run.out))
    return metrics


def step_line(metrics: Mapping[str, Any], steps: int, seconds: float) -> str:
    """The one stderr line of a step."""
    line = (f"step {metrics['step']}/{steps} | reward {metrics['reward_mean']:.3f} | accuracy "
            f"{metrics['accuracy']:.3f} | kl {metrics.get('kl', 0.0):.4f} | code calls "
            f"{metrics['mean_code_calls']:.2f} | {seconds:.1f} s")
    if metrics.get("infra_error_share"):
        line += f" | infra_error {metrics['infra_error_share']:.3f}"
    if metrics.get("mismatch_tokens"):
        line += f" | mismatch kl {metrics['mismatch_kl_k3']:.2e}"
    return line


def summary_line(history: Sequence[Mapping[str, Any]], opts: RlOptions, seconds: float, out: Any) -> str:
    """The final stderr line: the steps this process ran, first and last rewards, where the model is."""
    if not history:
        return f"rl-stage {opts.stage}: nothing to do ({opts.steps} steps already done); model in {out}"
    first, last = history[0], history[-1]
    infra = sum(m.get("infra_error_share", 0.0) for m in history) / len(history)
    return (f"rl-stage {opts.stage}: steps {first['step']}-{last['step']} of {opts.steps} in {seconds:.0f} s | reward "
            f"{first['reward_mean']:.3f} -> {last['reward_mean']:.3f} | accuracy {first['accuracy']:.3f} -> "
            f"{last['accuracy']:.3f} | mean infra_error share {infra:.3f} | model in {out}")
