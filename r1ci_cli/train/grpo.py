"""The GRPO objective: group-normalised advantages, the PPO-clip surrogate and the k3 KL (docs/paper.md "GRPO").

Pure functions over tensors, tested on hand-computed examples. Conventions:

* ``mask`` (B, T) is 1 on model-written tokens only; prompt and execution-result tokens are 0 and get no
  gradient (docs/paper.md: tokens returned by code execution are masked out of the loss).
* Token-mean per sequence: each sequence's masked tokens are averaged, then sequences are averaged, so a
  long response does not outweigh a short one.
* The KL to the frozen reference is the low-variance k3 estimator ``exp(r - p) - (r - p) - 1`` on the
  sampled tokens (r: reference log-prob, p: policy log-prob), added to the loss with ``kl_coef``.
* Advantages: (reward − group mean) / (group std + eps), std with Bessel's correction like the usual GRPO
  implementations; a group whose rewards are all equal gets advantage 0 (it teaches nothing).
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


def zero_variance_groups(rewards: Sequence[float], group_ids: Sequence[str]) -> set[str]:
    """Groups whose rewards are all equal (``--filter-zero-variance`` drops or refills them)."""
    seen: dict[str, set[float]] = {}
    for reward, group in zip(rewards, group_ids):
        seen.setdefault(group, set()).add(round(float(reward), 9))
    return {group for group, values in seen.items() if len(values) == 1}


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
              advantages: torch.Tensor, mask: torch.Tensor, config: GrpoLossConfig) -> LossParts:
    """PPO-clip surrogate + kl_coef * k3 KL, token-mean per sequence.

    logp, old_logp, ref_logp, mask: (B, T) log-probs of the sampled tokens under the current policy, the
    policy that sampled them, and the frozen reference; advantages: (B,).
    """
    ratio = torch.exp(logp - old_logp)  # (B, T)
    adv = advantages.to(logp.dtype).unsqueeze(1)  # (B, 1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - config.clip, 1.0 + config.clip) * adv
    policy_term = -torch.minimum(unclipped, clipped)  # (B, T)
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


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs (with gradient) and entropies (without) of the next tokens. logits (B, T, V), input_ids (B, T)
    -> two (B, T-1).

    Position t holds log p(input_ids[t+1] | input_ids[:t+1]).
    """
    logits = logits[:, :-1, :].float()  # (B, T-1, V)
    targets = input_ids[:, 1:]  # (B, T-1)
    log_probs = torch.log_softmax(logits, dim=-1)
    chosen = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    with torch.no_grad():  # a metric only: no graph over the whole vocabulary
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)  # (B, T-1)
    return chosen, entropy
