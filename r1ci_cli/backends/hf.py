"""The transformers backend: batched sampling with a KV cache on CPU or GPU, token-in/token-out.

Contract (see ``base.Generator``):

* The context of each request is ``request.context_ids`` exactly; the batch is left-padded with an
  attention mask and explicit position ids, so padding never changes what a row sees.
* Each row samples with its own ``torch.Generator`` seeded from ``request.seed`` (the loop derives it from
  ``--seed``, the trajectory id and the turn), so the random stream of a row does not depend on its
  neighbours; with the loop's fixed batch membership, the same seed gives the same trajectories on CPU.
  Temperature 0 is greedy. ``top_p`` < 1 keeps the smallest set of tokens whose probability reaches it.
* ``logprobs``: the log-prob of each sampled id under the distribution it was drawn from: log-softmax of the
  float32 logits divided by the temperature (rl-stage's trainer scales its logits the same way), minus the
  log of the nucleus mass when ``top_p`` < 1 (the nucleus is renormalised); 0.0 for greedy decoding.
* A row stops at the token that completes a python fence (or, with ``stop_at_answer``, an ``<<<…>>>``
  answer: ``interaction.find_stop``), at an end-of-message token (``<|im_end|>`` or the tokenizer's eos; kept
  in ``ids``, dropped from ``text``), or when its turn budget (``length``) or the model's context length
  (``context``) runs out.
* ``ids`` are the sampled ids; ``text`` is their decoding (never re-encoded).

Not handled: removing finished rows from the batch mid-way (they keep decoding a pad token until the
batch is done), speculative decoding, beam search.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

from r1ci_cli.backends.base import Completion, GenRequest
from r1ci_cli.backends.tokens import TokenizerMixin, tokenizer_fingerprint
from r1ci_cli.errors import MissingDependency, R1ciError
from r1ci_cli.interaction import find_stop
from r1ci_cli.model_source import load_errors, load_failure, resolve_model
from r1ci_cli.models import quiet_transformers

log = logging.getLogger("r1ci.backends.hf")

_STOP_CHARS = ("`", ">")


def _import_torch() -> tuple[Any, Any, Any]:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise MissingDependency("torch/transformers", "install r1ci[train] for --backend hf") from None
    return torch, AutoModelForCausalLM, AutoTokenizer


class HfGenerator(TokenizerMixin):
    def __init__(self, model_path: str, device: str = "auto", dtype: str = "auto", batch_size: int = 16):
        torch, auto_model, auto_tokenizer = _import_torch()
        resolve_model(model_path)
        if batch_size < 1:
            raise R1ciError("--batch-size must be at least 1")
        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        torch_dtype = {"auto": torch.float32 if self.device.type == "cpu" else torch.bfloat16,
                       "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
        if torch_dtype is None:
            raise R1ciError(f"--dtype {dtype}: use auto, float32, bfloat16 or float16")
        quiet_transformers()
        try:
            tokenizer = auto_tokenizer.from_pretrained(model_path)
            model = auto_model.from_pretrained(model_path, dtype=torch_dtype).to(self.device)
        except load_errors() as err:
            raise load_failure(model_path, err) from None
        model.eval()
        self._attach(model, tokenizer, model_path, batch_size)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, name: str, batch_size: int = 16) -> "HfGenerator":
        """Generate with a live model (rl-stage's policy): its weights are read at every call, never copied.

        The caller switches the model to eval mode before generating (no dropout while sampling).
        """
        torch, _auto_model, _auto_tokenizer = _import_torch()
        if batch_size < 1:
            raise R1ciError("--batch-size must be at least 1")
        self = cls.__new__(cls)
        self.torch = torch
        self.device = next(model.parameters()).device
        self._attach(model, tokenizer, name, batch_size)
        return self

    def _attach(self, model: Any, tokenizer: Any, name: str, batch_size: int) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.batch_size = batch_size
        self.model_name = name
        self.tokenizer_fingerprint = tokenizer_fingerprint(self.tokenizer)
        self.end_ids = self._end_ids()
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.end_ids)
        self.max_len = int(getattr(self.model.config, "max_position_embeddings", 1 << 30))
        self._pieces: dict[int, str] = {}
        # transformers renamed ``past_key_values`` to ``cache`` (5.x); pass whichever this version takes.
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    def _new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    # -------------------------------------------------------------------------------------------- tokens

    def _piece(self, token: int) -> str:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.decode([token])
        return piece

    # -------------------------------------------------------------------------------------------- sampling

    def generate(self, requests: Sequence[GenRequest]) -> list[Completion]:
        out: list[Completion] = []
        for start in range(0, len(requests), self.batch_size):
            out.extend(self._generate_batch(requests[start:start + self.batch_size]))
        return out

    def _sample(self, logits: Any, request: GenRequest, rng: Any) -> tuple[int, float]:
        """One token from a row's logits (V,), float32 on CPU, and its log-prob under the distribution it was
        drawn from (module docstring)."""
        torch = self.torch
        if request.temperature <= 0:
            return int(torch.argmax(logits)), 0.0
        scaled = logits / request.temperature
        probs = torch.softmax(scaled, dim=-1)
        nucleus_mass = None
        if request.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < request.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
            nucleus_mass = sorted_probs[keep].sum()
        token = int(torch.multinomial(probs, 1, generator=rng))
        if not request.logprobs:
            return token, 0.0
        logprob = torch.log_softmax(scaled, dim=-1)[token]
        if nucleus_mass is not None:
            logprob = logprob - torch.log(nucleus_mass)
        return token, min(float(logprob), 0.0)

    def _generate_batch(self, requests: Sequence[GenRequest]) -> list[Completion]:
        torch = self.torch
        contexts = []
        for request in requests:
            if request.context_ids is None:
                raise RuntimeError("the hf backend needs context_ids (the loop encodes the prompt)")
            contexts.append(list(request.context_ids))
        budgets = [min(r.max_new_tokens, self.max_len - len(c)) for r, c in zip(requests, contexts)]
        live = [i for i, b in enumerate(budgets) if b > 0]
        results: list[Completion | None] = [
            None if budgets[i] > 0 else Completion("", "context", ids=(), num_prompt_tokens=len(contexts[i]))
            for i in range(len(requests))]
        if not live:
            return results  # type: ignore[return-value]
        width = max(len(contexts[i]) for i in live)
        input_ids = torch.full((len(live), width), self.pad_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(live), width), dtype=torch.long)  # (B, T)
        for row, i in enumerate(live):
            input_ids[row, width - len(contexts[i]):] = torch.tensor(contexts[i], dtype=torch.long)
            mask[row, width - len(contexts[i]):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
        rngs = [torch.Generator(device="cpu").manual_seed(requests[i].seed % (1 << 63)) for i in live]
        sampled: list[list[int]] = [[] for _ in live]
        logprobs: list[list[float]] = [[] for _ in live]
        texts = [""] * len(live)
        finish: list[str | None] = [None] * len(live)
        input_ids, mask, positions = (t.to(self.device) for t in (input_ids, mask, positions))
        cache = self._new_cache()
        with torch.inference_mode():
            while True:
                out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                                 use_cache=True, **{self._cache_arg: cache})
                logits = out.logits[:, -1, :].float().cpu()  # (B, V)
                next_tokens = []
                for row, i in enumerate(live):
                    if finish[row] is not None:
                        next_tokens.append(self.pad_id)
                        continue
                    token, logprob = self._sample(logits[row], requests[i], rngs[row])
                    sampled[row].append(token)
                    logprobs[row].append(logprob)
                    next_tokens.append(token)
                    finish[row] = self._check(token, row, texts, requests[i], len(sampled[row]), budgets[i])
                if all(f is not None for f in finish):
                    break
                input_ids = torch.tensor(next_tokens, dtype=torch.long, device=self.device)[:, None]  # (B, 1)
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
                positions = positions[:, -1:] + 1
        for row, i in enumerate(live):
            ids = tuple(sampled[row])
            shown = ids[:-1] if ids and ids[-1] in self.end_ids and finish[row] == "eos" else ids
            if finish[row] == "length" and budgets[i] < requests[i].max_new_tokens:
                finish[row] = "context"  # the model's context, not the turn's budget, ran out
            results[i] = Completion(self.decode(shown), finish[row], ids=ids, num_prompt_tokens=len(contexts[i]),
                                    num_new_tokens=len(ids),
                                    logprobs=tuple(logprobs[row]) if requests[i].logprobs else None)
        return results  # type: ignore[return-value]

    def _check(self, token: int, row: int, texts: list[str], request: GenRequest, count: int, budget: int) -> str | None:
        if token in self.end_ids:
            return "eos"
        piece = self._piece(token)
        texts[row] += piece
        if (any(c in piece for c in _STOP_CHARS)
                and find_stop(texts[row], request.allow_code, request.stop_at_answer) is not None):
            return "stop"
        if count >= budget:
            return "length"
        return None

    def close(self) -> None:
        self.model = None
