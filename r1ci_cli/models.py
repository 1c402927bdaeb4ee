"""init-model: a small random-init Qwen2 model with a locally trained tokenizer and a Qwen-style chat template.

Contract of ``init_model(output_dir, options)``:

* It writes a Hugging Face model directory (``save_pretrained`` layout: ``config.json``,
  ``model.safetensors``, ``generation_config.json``, ``tokenizer.json``, ``tokenizer_config.json``,
  ``chat_template.jinja``) that ``AutoModelForCausalLM`` / ``AutoTokenizer`` and vLLM load unchanged.
* The tokenizer is byte-level BPE trained on ``options.corpus`` (default: text of the registered task
  families plus a built-in text of Python and reasoning patterns, see ``default_corpus``). It uses exactly
  Qwen2's pre-tokenizer pipeline (NFC, Qwen2's split regex, byte-level without regex) because transformers
  5.x rebuilds that pipeline for any ``qwen2`` model directory: any other pipeline would give different ids
  after a reload.
* Special tokens ``<|endoftext|>`` (pad, unk), ``<|im_start|>``, ``<|im_end|>`` (eos) get ids 0, 1, 2.
* The same options give the same bytes (weights from a seeded ``torch.Generator`` scope, the tokenizer from
  a deterministic trainer over a corpus built with ``derive_rng``).

Not handled: tokenizers for non-Qwen architectures; loading an existing hub model (use its own directory).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1ci_cli.errors import R1ciError
from r1ci_cli.model_corpus import default_corpus

log = logging.getLogger("r1ci.models")

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

# Qwen2's split rule, as transformers 5.x's Qwen2Tokenizer rebuilds it (digits split one by one).
QWEN2_SPLIT_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                     r"""\s*[\r\n]+|\s+(?!\S)|\s+""")

# Qwen-style template: every message is <|im_start|>role\n content <|im_end|>\n. Model turns and execution
# results live inside ONE assistant message (docs/paper.md "Interaction format": the model continues after the
# appended results), so training and rollout render the prompt the same way and append raw text after it.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class Preset:
    """Architecture of a preset; ``vocab_size`` is the tokenizer's target size."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int = 4096


# Sizes measured by tests/test_models.py (parameters with tied embeddings): tiny ≈ 5M, small ≈ 25M.
# ``micro`` (≈ 0.2M) exists for fast tests of training code; it learns little.
PRESETS: dict[str, Preset] = {
    "micro": Preset(vocab_size=1024, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2),
    "tiny": Preset(vocab_size=4096, hidden_size=256, intermediate_size=704, num_hidden_layers=5,
                   num_attention_heads=4, num_key_value_heads=2),
    "small": Preset(vocab_size=8192, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                    num_attention_heads=8, num_key_value_heads=4),
}


@dataclass(frozen=True)
class InitModelOptions:
    """``preset``: a key of PRESETS. ``corpus``: strings to train the tokenizer on (None: ``default_corpus``).
    ``vocab_size``: overrides the preset's tokenizer target size (the model's vocabulary is the trained
    size rounded up to a multiple of 64)."""

    preset: str = "tiny"
    seed: int = 0
    corpus: Iterable[str] | None = None
    vocab_size: int | None = None


def chat_template_messages(system: str | None, question: str) -> list[dict[str, str]]:
    """The prompt messages of one task: an optional system message, then the user's question."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": question})
    return messages


def render_prompt(messages: Iterable[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """The text CHAT_TEMPLATE renders, without jinja (for tests and tokenizer-free callers)."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


# ------------------------------------------------------------------------------------------------ tokenizer

def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    """A byte-level BPE ``tokenizers.Tokenizer`` with Qwen2's pipeline and the special tokens at ids 0–2."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise R1ciError(f"--vocab-size {vocab_size} is too small: byte-level BPE needs at least "
                        f"{256 + len(SPECIAL_TOKENS)} (256 bytes + special tokens)")
    tokenizer = Tokenizer(models.BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                                     fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_nonempty(corpus), trainer=trainer)
    return tokenizer


def _nonempty(corpus: Iterable[str]) -> Iterator[str]:
    count = 0
    for text in corpus:
        if not isinstance(text, str):
            raise R1ciError(f"tokenizer corpus: expected strings, got {type(text).__name__}")
        if text:
            count += 1
            yield text
    if count == 0:
        raise R1ciError("tokenizer corpus is empty: give at least one non-empty text")


def wrap_tokenizer(tokenizer: Any):
    """The transformers tokenizer (Qwen2Tokenizer) around a trained ``tokenizers.Tokenizer``."""
    from transformers import Qwen2Tokenizer

    wrapped = Qwen2Tokenizer(vocab=tokenizer.get_vocab(), merges=_merges(tokenizer), unk_token=ENDOFTEXT,
                             eos_token=IM_END, pad_token=ENDOFTEXT, bos_token=None,
                             additional_special_tokens=[IM_START, IM_END],
                             model_max_length=PRESETS["tiny"].max_position_embeddings)
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def _merges(tokenizer: Any) -> list[tuple[str, str]]:
    model = json.loads(tokenizer.to_str())["model"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]


# ------------------------------------------------------------------------------------------------ model

def build_model(preset: Preset, vocab_size: int, seed: int, special_ids: dict[str, int]):
    """A randomly initialised Qwen2ForCausalLM; weights depend only on (preset, vocab_size, seed)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=preset.hidden_size, intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_hidden_layers, num_attention_heads=preset.num_attention_heads,
        num_key_value_heads=preset.num_key_value_heads, max_position_embeddings=preset.max_position_embeddings,
        tie_word_embeddings=True, use_sliding_window=False, rope_theta=10000.0,
        bos_token_id=special_ids[ENDOFTEXT], eos_token_id=special_ids[IM_END], pad_token_id=special_ids[ENDOFTEXT],
    )
    # transformers initialises weights from torch's global generator; fork_rng restores the caller's
    # state afterwards, so the seed scopes only this construction.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = [special_ids[IM_END], special_ids[ENDOFTEXT]]
    model.generation_config.pad_token_id = special_ids[ENDOFTEXT]
    model.generation_config.bos_token_id = special_ids[ENDOFTEXT]
    return model


def count_parameters(model: Any) -> int:
    """Unique parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())


def quiet_transformers() -> None:
    """transformers' own tqdm bars ("Writing model shards") would bypass -q; our log line says the same."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def init_model(output_dir: str | Path, options: InitModelOptions = InitModelOptions()) -> Path:
    """Write the model directory (see the module docstring) atomically and return its path.

    The directory must not exist or be empty: an existing model is never overwritten.
    """
    if options.preset not in PRESETS:
        raise R1ciError(f"unknown preset {options.preset!r} (choose from {', '.join(PRESETS)})")
    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise R1ciError(f"{out}: exists and is not an empty directory; choose another -o")
    if not out.parent.is_dir():
        raise R1ciError(f"{out}: parent directory {out.parent} does not exist")
    preset = PRESETS[options.preset]
    started = time.monotonic()
    corpus = options.corpus if options.corpus is not None else default_corpus(options.seed)
    raw = train_tokenizer(corpus, options.vocab_size or preset.vocab_size)
    if options.vocab_size is not None and raw.get_vocab_size() < options.vocab_size:
        log.warning("--vocab-size %d: the corpus holds enough text for only %d tokens (no more pairs occur "
                    "twice), so the tokenizer has %d; give a larger --corpus or a smaller --vocab-size",
                    options.vocab_size, raw.get_vocab_size(), raw.get_vocab_size())
    special_ids = {tok: raw.token_to_id(tok) for tok in SPECIAL_TOKENS}
    tokenizer = wrap_tokenizer(raw)
    vocab_size = -(-len(tokenizer) // 64) * 64
    model = build_model(preset, vocab_size, options.seed, special_ids)
    quiet_transformers()
    save_model_dir(out, model, tokenizer, {"preset": options.preset, "seed": options.seed,
                                           "tokenizer_size": len(tokenizer), "num_parameters": count_parameters(model)})
    log.info("init-model: %s preset, %d parameters, vocabulary %d (%d trained) in %.1f s -> %s",
             options.preset, count_parameters(model), vocab_size, len(tokenizer), time.monotonic() - started, out)
    return out


def save_model_dir(out: Path, model: Any, tokenizer: Any, meta: dict[str, Any]) -> None:
    """Write ``model``, ``tokenizer`` and ``r1ci_model.json`` (``meta``) into a temporary sibling of ``out`` and
    rename it into place: ``out`` (absent or an empty directory) holds a whole model or nothing."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "r1ci_model.json").write_text(json.dumps(meta, indent=2) + "\n")
        for path in tmp.iterdir():  # save_pretrained leaves some files private (0600)
            os.chmod(path, 0o644)
        os.chmod(tmp, 0o755)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
