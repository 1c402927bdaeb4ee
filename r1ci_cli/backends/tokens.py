"""The token side shared by the token-in/token-out backends (hf, vllm): chat prompts to ids, observation
text to ids (once, when appended), ids to text, the ids that end an assistant message, and the tokenizer
fingerprint that trajectories carry (training trusts their stored ids only when it matches its own).

``TokenizerMixin`` works over ``self.tokenizer`` (a transformers tokenizer); no heavy imports here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from r1ci_cli.errors import R1ciError


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A string that changes whenever the tokenizer would map some text to different ids.

    For a fast (Rust-backed) tokenizer: sha256 over the canonical JSON of its model (vocabulary and merges),
    normalizer, pre-tokenizer and added tokens. For others: over the sorted vocabulary. Rollout backends
    store it in each Trajectory as ``tokenizer``; sequences trust stored ids only when it matches.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        data = json.loads(backend.to_str())
        material: Any = {key: data.get(key) for key in ("model", "normalizer", "pre_tokenizer", "added_tokens")}
    else:
        material = sorted(tokenizer.get_vocab().items())
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


class TokenizerMixin:
    tokenizer: object

    def _end_ids(self) -> set[int]:
        """eos and ``<|im_end|>`` (when the vocabulary has it): the tokens that end a message."""
        ends = set()
        if self.tokenizer.eos_token_id is not None:
            ends.add(int(self.tokenizer.eos_token_id))
        im_end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end >= 0 and im_end != self.tokenizer.unk_token_id:
            ends.add(im_end)
        if not ends:
            raise R1ciError("the tokenizer has neither an eos token nor <|im_end|>: cannot tell when a message ends")
        return ends

    def encode_prompt(self, messages: Sequence[Mapping[str, str]]) -> tuple[int, ...]:
        encoded = self.tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True,
                                                     tokenize=True)
        if isinstance(encoded, Mapping) or hasattr(encoded, "input_ids"):
            encoded = encoded["input_ids"]
        return tuple(int(i) for i in encoded)

    def encode_text(self, text: str) -> tuple[int, ...]:
        return tuple(int(i) for i in self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
