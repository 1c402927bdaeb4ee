"""The GRPO objective: group-normalised advantages, the PPO-clip surrogate and the k3 KL (docs/paper.md "GRPO").

Pure functions over tensors, tested on hand-computed examples. Conventions:

* ``mask`` (B, T) is 1 on model-written tokens only; prompt and execution-result tokens are 0 and get no
  gradient (docs/paper.md: tokens returned by code execution are masked out of the loss).
* Token-mean per sequence: each sequence's masked tokens are averaged, then sequences are averaged, so a
  long response does not outweigh a short one.
* The KL to the frozen reference is the low-variance k3 estimator ``exp(r - p) - (r - p) - 1`` on the
  sampled tokens (r: reference log-prob, p: policy log-prob), added to the loss with ``kl_coef``.
* Advantages: (reward − group mean) / (group std + eps), std with Bessel's correction like the usual GRPO
  implementations; a group whose rewards are all equal gets advantage 0 (it teaches nothing). The caller
  passes only the members the model is answerable for: a trajectory the infrastructure ended
  (``infra_error``) is left out before this, so it changes neither the mean nor the std of its group.
* Log-probs are of the logits divided by the sampling temperature (``token_logprobs``), the distribution the
  sampler drew from; the generators record theirs the same way.
* Sampler/trainer mismatch (``sampler_mismatch``, ``importance_weights``): with d = trainer log-prob −
  sampler log-prob of a sampled token, the metrics are the mean of d, the max of |d|, the k3 estimate of
  KL(sampler‖trainer), mean of exp(d) − d − 1 (the tokens were drawn from the sampler), and the share of
  tokens whose ratio exp(d) exceeds the cap. ``token-tis`` multiplies each token's policy term by
  min(exp(d), cap) (truncated importance sampling); ``seq-mask`` drops the policy term of a sequence whose
  ratio exp(Σ d) lies outside [1/cap, cap] and keeps the others unweighted (rejection; the mean stays over
  the batch's sequences). The weights are constants (no gradient) and leave the KL term alone. Tokens
  without a sampler log-prob (NaN) get weight 1 and are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GrpoLossConfig:
    clip: float = 0.2  # docs/paper.md "GRPO": clip 0.2
    kl_coef: float = 0.001  # docs/paper.md "GRPO": KL coefficient 0.001 (k3, as a loss term)


def group_advantages(rewards: Sequence[float], group_ids: Sequence[str], eps: float = 1e-6) -> list[float]:
    """Group-normalised advantages, in input order. Singleton and zero-variance groups get 0."""
    if len(rewards) != len(group_ids):
        raise ValueError("rewards and group_ids differ in length")
    members: dict[str, list[int]] = {}
    for index, group in enumerate(group_ids):
        members.setdefault(group, []).append(index)
    out = [0.0] * len(rewards)
    for indices in members.values():
        values = [float(rewards[i]) for i in indices]
        if len(values) < 2:
            continue
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        std = math.sqrt(var)
        if std < 1e-12:
            continue
        for i, v in zip(indices, values):
            out[i] = (v - mean) / (std + eps)
    return out


def zero_variance_groups(values: Sequence[float | bool], group_ids: Sequence[str]) -> set[str]:
    """Groups whose ``values`` are all equal (``--filter-zero-variance`` drops or refills them): the members'
    correctness (exact equality; ``--filter-on correct``) or rewards (to 9 decimals; ``--filter-on reward``)."""
    seen: dict[str, set[float | bool]] = {}
    for value, group in zip(values, group_ids):
        seen.setdefault(group, set()).add(value if isinstance(value, bool) else round(float(value), 9))
    return {group for group, members in seen.items() if len(members) == 1}


def masked_sequence_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-mean per sequence, then mean over sequences. values, mask: (B, T) -> scalar."""
    mask = mask.to(values.dtype)
    per_sequence = (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (B,)
    has_tokens = (mask.sum(dim=1) > 0).to(values.dtype)  # (B,)
    return (per_sequence * has_tokens).sum() / has_tokens.sum().clamp(min=1.0)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference): exp(r - p) - (r - p) - 1 >= 0. (B, T) -> (B, T)."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


@dataclass(frozen=True)
class LossParts:
    loss: torch.Tensor
    policy_loss: float
    kl: float
    clip_fraction: float
    ratio_mean: float


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, config: GrpoLossConfig,
              is_weights: torch.Tensor | None = None) -> LossParts:
    """PPO-clip surrogate + kl_coef * k3 KL, token-mean per sequence.

    logp, old_logp, ref_logp, mask: (B, T) log-probs of the sampled tokens under the current policy, the
    trainer's policy at the start of the update (PPO's old policy), and the frozen reference; advantages:
    (B,); is_weights: (B, T) constant importance weights of the policy term (``importance_weights``).
    """
    ratio = torch.exp(logp - old_logp)  # (B, T)
    adv = advantages.to(logp.dtype).unsqueeze(1)  # (B, 1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - config.clip, 1.0 + config.clip) * adv
    policy_term = -torch.minimum(unclipped, clipped)  # (B, T)
    if is_weights is not None:
        policy_term = policy_term * is_weights.to(policy_term.dtype).detach()
    policy_loss = masked_sequence_mean(policy_term, mask)
    if ref_logp is not None and config.kl_coef != 0.0:
        kl = masked_sequence_mean(k3_kl(logp, ref_logp), mask)
    else:
        kl = torch.zeros((), dtype=logp.dtype)
    loss = policy_loss + config.kl_coef * kl
    with torch.no_grad():
        maskf = mask.to(logp.dtype)
        was_clipped = ((ratio - 1.0).abs() > config.clip).to(logp.dtype)
        denominator = maskf.sum().clamp(min=1.0)
        clip_fraction = float((was_clipped * maskf).sum() / denominator)
        ratio_mean = float((ratio * maskf).sum() / denominator)
    return LossParts(loss, float(policy_loss.detach()), float(kl.detach()), clip_fraction, ratio_mean)


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor,
                   temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs (with gradient) and entropies (without) of the next tokens under the logits divided by
    ``temperature`` (the sampling distribution). logits (B, T, V), input_ids (B, T) -> two (B, T-1).

    Position t holds log p(input_ids[t+1] | input_ids[:t+1]).
    """
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    logits = logits[:, :-1, :].float()  # (B, T-1, V)
    if temperature != 1.0:
        logits = logits / temperature
    targets = input_ids[:, 1:]  # (B, T-1)
    log_probs = torch.log_softmax(logits, dim=-1)
    chosen = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    with torch.no_grad():  # a metric only: no graph over the whole vocabulary
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)  # (B, T-1)
    return chosen, entropy


IS_CORRECTIONS = ("none", "token-tis", "seq-mask")


def _log_ratio(old_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor):
    """d = trainer − sampler log-prob (0 where unknown) and where it is known: two (B, T)."""
    known = (mask > 0) & ~torch.isnan(sampler_logp)
    delta = torch.where(known, old_logp.detach().float() - torch.nan_to_num(sampler_logp.float()),
                        torch.zeros_like(old_logp, dtype=torch.float32))
    return delta, known


def importance_weights(old_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor, mode: str,
                       cap: float) -> torch.Tensor | None:
    """The policy term's weights (B, T) for ``mode`` (module docstring); None for ``none``."""
    if mode == "none":
        return None
    delta, known = _log_ratio(old_logp, sampler_logp, mask)
    if mode == "token-tis":
        return torch.where(known, torch.exp(delta).clamp(max=cap), torch.ones_like(delta))
    if mode == "seq-mask":
        seq_log_ratio = delta.sum(dim=1, keepdim=True)  # (B, 1)
        inside = (seq_log_ratio.abs() <= math.log(cap)).to(delta.dtype)  # ratio within [1/cap, cap]
        return inside.expand_as(delta).clone()
    raise ValueError(f"unknown importance correction {mode!r} (choose from {', '.join(IS_CORRECTIONS)})")


def sampler_mismatch(old_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor,
                     cap: float) -> dict[str, float]:
    """Sums over the tokens with a known sampler log-prob, for adding up over micro-batches
    (``mismatch_metrics`` turns them into the step's metrics)."""
    with torch.no_grad():
        delta, known = _log_ratio(old_logp, sampler_logp, mask)
        k3 = torch.exp(delta) - delta - 1.0
        seq_log_ratio = delta.sum(dim=1)  # (B,)
        has = known.any(dim=1)
        return {"tokens": float(known.sum()), "sum_log_ratio": float(delta[known].sum()),
                "max_abs_log_ratio": float(delta[known].abs().max()) if bool(known.any()) else 0.0,
                "sum_k3": float(k3[known].sum()), "over_cap": float((known & (delta > math.log(cap))).sum()),
                "sequences": float(has.sum()),
                "sequences_outside": float((has & (seq_log_ratio.abs() > math.log(cap))).sum())}


def mismatch_metrics(sums: dict[str, float]) -> dict[str, float]:
    """The step's mismatch metrics from ``sampler_mismatch`` sums (added up; the max taken)."""
    tokens = max(sums.get("tokens", 0.0), 1.0)
    return {"mismatch_log_ratio_mean": sums.get("sum_log_ratio", 0.0) / tokens,
            "mismatch_log_ratio_max": sums.get("max_abs_log_ratio", 0.0),
            "mismatch_kl_k3": sums.get("sum_k3", 0.0) / tokens,
            "mismatch_over_cap_share": sums.get("over_cap", 0.0) / tokens,
            "mismatch_seq_outside_share": sums.get("sequences_outside", 0.0) / max(sums.get("sequences", 0.0), 1.0),
            "mismatch_tokens": int(sums.get("tokens", 0.0))}


def add_mismatch(total: dict[str, float], part: dict[str, float]) -> None:
    for key, value in part.items():
        total[key] = max(total.get(key, 0.0), value) if key.startswith("max_") else total.get(key, 0.0) + value
