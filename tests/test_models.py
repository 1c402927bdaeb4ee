"""init-model: reloadable HF directory, tokenizer ids identical after reload, chat template, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from r1ci_cli.errors import R1ciError
from r1ci_cli.models import (IM_END, IM_START, InitModelOptions, chat_template_messages, init_model,
                             render_prompt)

SAMPLES = [
    "Hello  world 12345\n\n```python\nprint('hi')\n```\nCode Execution Results:\n42\n",
    "<|im_start|>user\nWhat is 3+4?<|im_end|>\n<|im_start|>assistant\n<<<7>>>",
    "  ünïcode café ﬁ 😀\t\ttabs\r\nCRLF and 'll 've 're THE'S",
    "x = [i ** 2 for i in range(10)]  # comment\n    indented\n\n\n",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_model(tmp_path_factory.mktemp("m") / "m0", InitModelOptions(preset="tiny", seed=0))


def test_layout_is_save_pretrained(model_dir: Path) -> None:
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "generation_config.json"} <= names
    assert json.loads((model_dir / "config.json").read_text())["model_type"] == "qwen2"
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp dir left


@pytest.mark.parametrize("text", SAMPLES)
def test_autotokenizer_ids_equal_raw_tokenizers_ids(model_dir: Path, text: str) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(model_dir)
    ids = auto(text)["input_ids"]
    assert ids == raw.encode(text).ids
    assert auto.decode(ids) == __import__("unicodedata").normalize("NFC", text)


def test_special_tokens_are_single_ids(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.eos_token == IM_END
    for special in ("<|endoftext|>", IM_START, IM_END):
        assert len(tok(special)["input_ids"]) == 1
    assert tok.convert_tokens_to_ids(["<|endoftext|>", IM_START, IM_END]) == [0, 1, 2]


def test_chat_template_matches_render_prompt(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    messages = chat_template_messages("Reason step by step.", "What is 6*7?")
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == render_prompt(messages)
    assert text.endswith(f"{IM_START}assistant\n")
    assert chat_template_messages(None, "q") == [{"role": "user", "content": "q"}]


def test_model_reloads_and_generates(model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.config.vocab_size % 64 == 0
    out = model.generate(torch.tensor([[1, 5, 6]]), max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 7)


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path: Path, model_dir: Path) -> None:
    again = init_model(tmp_path / "again", InitModelOptions(seed=0))
    assert _digest(again) == _digest(model_dir)
    other = init_model(tmp_path / "other", InitModelOptions(seed=1))
    assert _digest(other)["model.safetensors"] != _digest(model_dir)["model.safetensors"]


@pytest.mark.parametrize("preset,low,high", [("tiny", 3e6, 7e6), ("small", 18e6, 32e6)])
def test_preset_sizes(tmp_path: Path, preset: str, low: float, high: float) -> None:
    directory = init_model(tmp_path / preset, InitModelOptions(preset=preset))
    count = json.loads((directory / "r1ci_model.json").read_text())["num_parameters"]
    assert low <= count <= high


def test_custom_corpus_and_vocab_size(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    corpus = ["abc abc abd " * 50, "print(1)\n" * 30]
    directory = init_model(tmp_path / "c", InitModelOptions(corpus=corpus, vocab_size=300))
    tok = AutoTokenizer.from_pretrained(directory)
    assert len(tok) <= 300
    assert tok.decode(tok("abc print")["input_ids"]) == "abc print"


@pytest.mark.parametrize("options,message", [
    (InitModelOptions(preset="huge"), "unknown preset"),
    (InitModelOptions(corpus=[]), "corpus is empty"),
    (InitModelOptions(corpus=[1, 2]), "expected strings"),
    (InitModelOptions(vocab_size=100), "too small"),
])
def test_bad_options_are_domain_errors(tmp_path: Path, options: InitModelOptions, message: str) -> None:
    with pytest.raises(R1ciError, match=message):
        init_model(tmp_path / "x", options)
    assert not (tmp_path / "x").exists()


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(R1ciError, match="not an empty directory"):
        init_model(tmp_path / "full", InitModelOptions(corpus=["a b c"] * 5))


def test_cli_init_model(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from r1ci_cli.cli import cli

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("def f(x):\n    return x + 1\n" * 20)
    result = CliRunner().invoke(cli, ["init-model", "-o", str(tmp_path / "m"), "--corpus", str(corpus),
                                      "--vocab-size", "400", "--seed", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads((tmp_path / "m" / "r1ci_model.json").read_text())["seed"] == 3
    again = CliRunner().invoke(cli, ["init-model", "-o", str(tmp_path / "m"), "--corpus", str(corpus)])
    assert again.exit_code == 1
    assert "not an empty directory" in again.stderr


def test_a_vocab_size_the_corpus_cannot_fill_is_a_clear_warning(tmp_path: Path, caplog) -> None:
    import logging

    corpus = ["def f(x):\n    return x + 1\n" * 20]
    with caplog.at_level(logging.WARNING, logger="r1ci"):
        directory = init_model(tmp_path / "m", InitModelOptions(preset="micro", corpus=corpus, vocab_size=2048))
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "--vocab-size 2048" in warning[0] and "corpus" in warning[0]
    trained = json.loads((directory / "tokenizer.json").read_text())["model"]["vocab"]
    assert str(len(trained)) in warning[0]
