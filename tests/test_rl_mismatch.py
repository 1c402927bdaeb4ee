"""Sampler log-probs against the trainer's: the hf generator agrees with the trainer, a perturbed sampler is
seen by the mismatch metrics, and the importance-corrected gradient of rl-stage's update is the hand-computed one.

Measured on the 2-core development machine (tiny model, fp32, CPU, 240 sampled tokens per run, 3 seeds at
temperatures 0.7, 1.0 and 1.3): with the hf generator the largest |trainer − sampler| log-prob was 9.5e-7 (one
float32 step of a log-prob near −8; the generator decodes incrementally with a KV cache, the trainer runs the
whole sequence: the same math in another order), the mean 6e-8 and the k3 KL(sampler‖trainer) 0 in float32.
``HF_BOUND`` = 1e-4 leaves a factor 100 for other CPUs' kernels.
"""

from __future__ import annotations

import copy
import math

import pytest

from r1ci_cli.records import Task
from r1ci_cli.train import rl

HF_BOUND = 1e-4
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices on a shared machine (conftest.py)


@pytest.fixture(scope="module")
def sandbox():
    from r1ci_cli.sandbox import SandboxOptions, open_sandbox

    with open_sandbox(None, SandboxOptions(workers=1, timeout_s=10.0)) as box:
        yield box


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    import torch
    from transformers import AutoTokenizer

    from r1ci_cli.train.engine import load_model

    torch.manual_seed(0)
    return load_model(tiny_model_dir, gradient_checkpointing=False).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


def _tasks(n: int = 3) -> list[Task]:
    return [Task(id=f"t{i}", source="bbh", task="navigate", split="train", seed=i, question=f"Is {i} even? Think.",
                 check={"kind": "yesno", "target": "Yes"}, answer="Yes", extra={"group": 1}) for i in range(n)]


def _rollouts(model, tokenizer, sandbox, temperature: float, seed: int = 0):
    from r1ci_cli.backends.hf import HfGenerator
    from r1ci_cli.rollout.loop import RolloutOptions, rollout

    generator = HfGenerator.from_model(model, tokenizer, name="sampler", batch_size=8)
    opts = RolloutOptions(samples=2, temperature=temperature, max_new_tokens=40, max_total_tokens=40, seed=seed,
                          logprobs=True, prompts="short")
    return list(rollout(_tasks(), generator, sandbox, opts))


def _batch(trajs, tokenizer, advantages=None):
    advantages = advantages or [(-1.0) ** i * (1 + i / 10) for i in range(len(trajs))]
    return rl.make_batch(trajs, advantages, tokenizer, 512, pad_id=tokenizer.pad_token_id)


def _mismatch(model, batch, temperature: float, cap: float = 2.0) -> dict:
    from r1ci_cli.train.grpo import mismatch_metrics, sampler_mismatch

    logp = rl.frozen_logprobs(model, batch, micro=8, temperature=temperature)
    return mismatch_metrics(sampler_mismatch(logp, batch.sampler_logp, batch.loss_mask, cap))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_hf_sampler_logprobs_equal_the_trainers(policy, sandbox, temperature):
    model, tokenizer = policy
    trajs = _rollouts(model, tokenizer, sandbox, temperature)
    batch = _batch(trajs, tokenizer)
    metrics = _mismatch(model, batch, temperature)
    model_tokens = sum(len(t.ids) for traj in trajs for t in traj.turns if t.role == "model")
    assert metrics["mismatch_tokens"] == model_tokens > 100  # every sampled token compared (not the added eos)
    assert metrics["mismatch_log_ratio_max"] < HF_BOUND
    assert metrics["mismatch_kl_k3"] < HF_BOUND ** 2 and metrics["mismatch_over_cap_share"] == 0.0
    # The trainer must scale its logits by the same temperature: unscaled, the same tokens disagree.
    if temperature != 1.0:
        assert _mismatch(model, batch, 1.0)["mismatch_log_ratio_max"] > 100 * HF_BOUND


def _engine(model_dir: str, lr: float = 1e-3):
    from r1ci_cli.train.engine import EngineOptions, TorchEngine

    return TorchEngine(model_dir, EngineOptions(lr=lr, total_steps=1, warmup_steps=0, device="cpu", grad_clip=0.0))


def _rl_opts(correction: str, temperature: float = 1.0, cap: float = 2.0):
    from r1ci_cli.rollout.loop import RolloutOptions
    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions

    return rl.RlOptions(stage=1, model="m", checkpoint=CheckpointOptions("out"), kl_coef=0.0, is_correction=correction,
                        is_cap=cap, rollout=RolloutOptions(temperature=temperature),
                        engine=EngineOptions(micro_batch_size=4))


def test_with_the_hf_sampler_the_correction_changes_the_update_by_no_more_than_the_mismatch(
        tiny_model_dir, policy, sandbox):
    import torch

    model, tokenizer = policy
    batch = _batch(_rollouts(model, tokenizer, sandbox, 1.0, seed=3), tokenizer)
    results = {}
    for correction in ("none", "token-tis"):
        torch.manual_seed(0)
        engine = _engine(tiny_model_dir)
        results[correction] = (rl._update(engine, None, batch, _rl_opts(correction)),
                               [p.detach().clone() for p in engine.model.parameters()])
    (plain, plain_weights), (tis, tis_weights) = results["none"], results["token-tis"]
    bound = tis["mismatch_log_ratio_max"]
    assert bound < HF_BOUND
    # Weights exp(d) within e^±bound of 1 move each token's term by at most |A| (e^bound − 1).
    assert abs(tis["loss"] - plain["loss"]) <= max(abs(a) for a in batch.advantages) * math.expm1(bound) + 1e-9
    assert abs(tis["grad_norm"] - plain["grad_norm"]) <= plain["grad_norm"] * math.expm1(bound) + 1e-6


def test_a_perturbed_sampler_is_seen_and_the_corrected_gradient_is_the_hand_computed_one(
        tiny_model_dir, policy, sandbox):
    """The sampler is the trainer's model with noised weights (a stand-in for another precision or a stale
    copy). The metrics see it; the token-tis gradient of ``_update`` equals, parameter by parameter, the gradient
    of sum_b sum_t c_bt * logp_bt with c_bt = -min(exp(old_bt - sampler_bt), cap) * A_b / (tokens_b * B)
    computed here from the recorded log-probs (ratio 1, no clipping: one update per batch; no KL)."""
    import torch

    model, tokenizer = policy
    noisy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for param in noisy.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    batch = _batch(_rollouts(noisy, tokenizer, sandbox, 1.0, seed=5), tokenizer)
    metrics = _mismatch(model, batch, 1.0, cap=1.2)
    assert metrics["mismatch_kl_k3"] > 1e-4 > HF_BOUND ** 2
    assert metrics["mismatch_log_ratio_max"] > 0.1 and metrics["mismatch_over_cap_share"] > 0.0

    cap = 1.2
    engine = _engine(tiny_model_dir)
    captured = {}
    real_step = engine.step

    def capture_then_step():
        captured.update({name: p.grad.detach().clone() for name, p in engine.model.named_parameters()})
        return real_step()

    engine.step = capture_then_step
    update = rl._update(engine, None, batch, _rl_opts("token-tis", cap=cap))
    assert update["mismatch_over_cap_share"] == pytest.approx(_mismatch(model, batch, 1.0, cap)["mismatch_over_cap_share"])

    reference = _engine(tiny_model_dir).model.eval()
    logp = rl.sequence_logprobs(reference, batch, slice(None), 1.0)  # (B, T-1), with gradient
    old, sampler, mask = logp.detach(), batch.sampler_logp, batch.loss_mask
    coefficients = torch.zeros_like(old)
    sequences = len(batch.trajectories)
    for b in range(sequences):
        tokens = float(mask[b].sum())
        for t in range(old.shape[1]):
            if mask[b, t]:
                weight = 1.0 if math.isnan(sampler[b, t]) else min(math.exp(old[b, t] - sampler[b, t]), cap)
                coefficients[b, t] = -weight * batch.advantages[b] / (tokens * sequences)
    hand = torch.autograd.grad((coefficients * logp).sum(), list(reference.parameters()), allow_unused=True,
                               retain_graph=True)
    names = [name for name, _ in reference.named_parameters()]
    for name, expected in zip(names, hand):
        expected = torch.zeros_like(captured[name]) if expected is None else expected
        assert torch.allclose(captured[name], expected, rtol=1e-4, atol=1e-7), name
    # and the correction mattered: the uncorrected gradient is another one
    plain = torch.autograd.grad((coefficients.where(mask == 0, -batch_advantages(batch, mask)) * logp).sum(),
                                list(reference.parameters()), allow_unused=True)
    assert any(g is not None and not torch.allclose(captured[n], g, rtol=1e-2, atol=1e-6) for n, g in zip(names, plain))


def batch_advantages(batch, mask):
    """-A_b / (tokens_b * B) on every token: the uncorrected coefficients."""
    import torch

    per_row = torch.tensor(batch.advantages) / (mask.sum(dim=1) * len(batch.trajectories))
    return per_row[:, None].expand_as(mask)
