"""GRPO objective on hand-computed examples."""

from __future__ import annotations

import math

import pytest
import torch

from r1ci_cli.train import grpo


def test_group_advantages_by_hand():
    rewards = [1.1, 0.1, 0.1, 1.1, -0.1, 0.5]
    groups = ["a", "a", "a", "a", "b", "c"]
    adv = grpo.group_advantages(rewards, groups)
    # group a: mean 0.6, sample std sqrt(4 * 0.25 / 3) = 0.57735
    assert adv[0] == pytest.approx(0.5 / 0.5773503, rel=1e-5)
    assert adv[1] == pytest.approx(-0.5 / 0.5773503, rel=1e-5)
    assert adv[4] == 0.0 and adv[5] == 0.0  # singleton groups teach nothing
    assert grpo.group_advantages([1, 1, 1], ["g", "g", "g"]) == [0.0, 0.0, 0.0]


def test_zero_variance_groups():
    assert grpo.zero_variance_groups([1, 1, 0, 1, 0.1, 0.1], list("aabbcc")) == {"a", "c"}


def test_masked_sequence_mean_is_token_mean_per_sequence():
    values = torch.tensor([[1.0, 3.0, 100.0], [2.0, 2.0, 2.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert float(grpo.masked_sequence_mean(values, mask)) == pytest.approx((2.0 + 2.0) / 2)


def test_loss_by_hand_with_clipping():
    # one sequence, two model tokens; ratio e^0.5 = 1.6487 (clipped to 1.2 for A > 0), ratio 1 for the other.
    logp = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    old = torch.tensor([[-1.5, -2.0, -9.0]])
    mask = torch.tensor([[1, 1, 0]])
    parts = grpo.grpo_loss(logp, old, None, torch.tensor([2.0]), mask, grpo.GrpoLossConfig(clip=0.2, kl_coef=0.0))
    expected = -(min(math.exp(0.5) * 2, 1.2 * 2) + 1.0 * 2) / 2
    assert float(parts.loss.detach()) == pytest.approx(expected, rel=1e-6)
    assert parts.clip_fraction == pytest.approx(0.5)
    parts.loss.backward()
    assert logp.grad[0, 0] == 0.0  # clipped token: no gradient
    assert logp.grad[0, 2] == 0.0  # masked (observation) token: no gradient
    assert logp.grad[0, 1] != 0.0


def test_negative_advantage_clips_from_below():
    logp = torch.tensor([[-2.0]], requires_grad=True)
    old = torch.tensor([[-1.0]])  # ratio e^-1 = 0.368 < 0.8
    parts = grpo.grpo_loss(logp, old, None, torch.tensor([-1.0]), torch.tensor([[1]]), grpo.GrpoLossConfig())
    assert float(parts.loss.detach()) == pytest.approx(0.8)  # -min(0.368 * -1, 0.8 * -1)
    parts.loss.backward()
    assert logp.grad[0, 0] == 0.0


def test_k3_kl_is_zero_against_identical_reference_and_positive_otherwise():
    logp = torch.tensor([[-1.0, -0.5]])
    assert torch.all(grpo.k3_kl(logp, logp) == 0)
    kl = grpo.k3_kl(logp, torch.tensor([[-2.0, -0.1]]))
    assert torch.all(kl > 0)
    assert float(kl[0, 0]) == pytest.approx(math.exp(-1.0) + 1.0 - 1.0)


def test_kl_term_enters_the_loss_with_its_coefficient():
    logp = torch.tensor([[-1.0, -1.0]])
    ref = torch.tensor([[-2.0, -2.0]])
    zero_adv = torch.tensor([0.0])
    parts = grpo.grpo_loss(logp, logp, ref, zero_adv, torch.ones(1, 2), grpo.GrpoLossConfig(kl_coef=0.5))
    assert float(parts.loss.detach()) == pytest.approx(0.5 * (math.exp(-1.0) + 1.0 - 1.0))
    assert parts.kl == pytest.approx(math.exp(-1.0))


def test_token_logprobs_match_log_softmax():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    ids = torch.randint(0, 7, (2, 4))
    chosen, entropy = grpo.token_logprobs(logits, ids)
    assert chosen.shape == (2, 3) and entropy.shape == (2, 3)
    assert float(chosen[1, 2]) == pytest.approx(float(torch.log_softmax(logits[1, 2], -1)[ids[1, 3]]))
    assert torch.all(entropy >= 0)


def test_zero_variance_on_correctness_is_exact_and_on_reward_rounded():
    assert grpo.zero_variance_groups([False, False, True, False], list("aabb")) == {"a"}
    assert grpo.zero_variance_groups([0.1, 0.1 + 1e-12, 0.1, -0.1], list("aabb")) == {"a"}


def test_token_logprobs_at_a_temperature_are_those_of_the_scaled_logits():
    logits = torch.randn(2, 4, 7, generator=torch.Generator().manual_seed(0))
    ids = torch.randint(0, 7, (2, 4), generator=torch.Generator().manual_seed(1))
    logp, _ = grpo.token_logprobs(logits, ids, temperature=0.5)
    expected = torch.log_softmax(logits[:, :-1] / 0.5, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    assert torch.allclose(logp, expected)


# Two sequences of two model tokens. Trainer (old) vs sampler probabilities: (0.5 vs 0.25, 0.2 vs 0.4) and
# (0.3 vs 0.1, 0.6 vs 0.6), so the ratios exp(d) are 2, 0.5 and 3, 1.
OLD = torch.log(torch.tensor([[0.5, 0.2, 0.9], [0.3, 0.6, 0.9]]))
SAMPLER = torch.log(torch.tensor([[0.25, 0.4, 0.1], [0.1, 0.6, float("nan")]]))
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # the NaN sampler log-prob is a token it did not sample


def test_mismatch_metrics_by_hand():
    sums = grpo.sampler_mismatch(OLD, SAMPLER, MASK, cap=2.5)
    metrics = grpo.mismatch_metrics(sums)
    d = [math.log(2), math.log(0.5), math.log(3), 0.0]
    k3 = [math.exp(x) - x - 1 for x in d]
    assert metrics["mismatch_tokens"] == 4
    assert metrics["mismatch_log_ratio_mean"] == pytest.approx(sum(d) / 4)
    assert metrics["mismatch_log_ratio_max"] == pytest.approx(math.log(3))
    assert metrics["mismatch_kl_k3"] == pytest.approx(sum(k3) / 4)
    assert metrics["mismatch_over_cap_share"] == pytest.approx(1 / 4)  # only the ratio 3 exceeds 2.5
    # sequence ratios: 2 * 0.5 = 1 (inside [1/2.5, 2.5]) and 3 * 1 = 3 (outside)
    assert metrics["mismatch_seq_outside_share"] == pytest.approx(1 / 2)
    total: dict = {}
    grpo.add_mismatch(total, grpo.sampler_mismatch(OLD[:1], SAMPLER[:1], MASK[:1], 2.5))
    grpo.add_mismatch(total, grpo.sampler_mismatch(OLD[1:], SAMPLER[1:], MASK[1:], 2.5))
    assert grpo.mismatch_metrics(total) == pytest.approx(metrics)


def test_importance_weights_by_hand():
    assert grpo.importance_weights(OLD, SAMPLER, MASK, "none", 2.0) is None
    tis = grpo.importance_weights(OLD, SAMPLER, MASK, "token-tis", 2.5)
    assert tis[:, :2].flatten().tolist() == pytest.approx([2.0, 0.5, 2.5, 1.0])
    assert tis[1, 2] == 1.0  # no sampler log-prob: no correction
    mask = grpo.importance_weights(OLD, SAMPLER, MASK, "seq-mask", 2.5)
    assert mask.tolist() == [[1.0] * 3, [0.0] * 3]
    with pytest.raises(ValueError, match="unknown importance correction"):
        grpo.importance_weights(OLD, SAMPLER, MASK, "geo", 2.0)


def test_corrected_gradient_by_hand():
    """With ratio 1 (one update per batch) d loss / d logp_t = -w_t * A / (tokens of the sequence * sequences)."""
    logp = OLD.clone().requires_grad_(True)
    advantages = torch.tensor([1.5, -0.5])
    weights = grpo.importance_weights(OLD, SAMPLER, MASK, "token-tis", 2.5)
    parts = grpo.grpo_loss(logp, logp.detach(), None, advantages, MASK, grpo.GrpoLossConfig(kl_coef=0.0), weights)
    parts.loss.backward()
    expected = [[-2.0 * 1.5 / (2 * 2), -0.5 * 1.5 / (2 * 2), 0.0],
                [-2.5 * -0.5 / (3 * 2), -1.0 * -0.5 / (3 * 2), -1.0 * -0.5 / (3 * 2)]]
    assert logp.grad.flatten().tolist() == pytest.approx([x for row in expected for x in row])
    assert float(parts.loss.detach()) == pytest.approx(-(1.5 * (2.0 + 0.5) / 2 + -0.5 * (2.5 + 1 + 1) / 3) / 2)
