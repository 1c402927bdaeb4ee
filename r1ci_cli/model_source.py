"""Where a ``--model`` comes from: one rule for every command that loads a model (rollout, eval, sft, rl-stage).

* An existing directory is a local model: it must hold a ``config.json`` that is a JSON object with a
  ``model_type`` (what transformers and vLLM read first); an empty directory, a missing or broken
  ``config.json`` is a one-line error naming the file (and line) instead of a library traceback.
* A Hugging Face hub name, ``org/name``, loads through transformers' cache the usual way (downloading when
  the hub is reachable). Under ``HF_HUB_OFFLINE=1`` a name that is not in the cache is refused at once. A
  string that looks like ``org/name`` is a path, not a hub name, when ``org`` is a directory here
  (``ckpt/sft`` with ``ckpt/`` present names a checkpoint that does not exist yet).
* Anything else (``./ckpt/sft``, ``a/b/c``, ``model`` that is no directory) is a one-line error at once:
  nothing goes to the network for a mistyped path.

``resolve_model`` checks and returns the spec unchanged (trajectories record the model as it was given).
``load_failure`` turns what a loader raised for a spec that passed the check (unreadable weights, an unknown
architecture) into the same kind of one-line error. Leaf module: no torch or transformers at import.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from r1ci_cli.errors import R1ciError

HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def resolve_model(spec: str, flag: str = "--model") -> str:
    """Check ``spec`` by the module's rule and return it; ``R1ciError`` (one line, naming ``flag``) otherwise."""
    path = Path(spec).expanduser()
    if path.is_dir():
        check_model_dir(path, flag)
        return spec
    if path.exists():
        raise R1ciError(f"{flag} {spec}: a file, not a model directory")
    if HUB_NAME.fullmatch(spec) and not Path(spec.split("/")[0]).is_dir():
        _check_offline_cache(spec, flag)
        return spec
    raise R1ciError(f"{flag} {spec}: no such directory (a model is a local directory, e.g. from init-model or "
                    "sft, or a Hugging Face hub name org/name)")


def check_model_dir(path: Path, flag: str = "--model") -> None:
    config = path / "config.json"
    if not config.is_file():
        if not any(path.iterdir()):
            raise R1ciError(f"{flag} {path}: empty directory, not a model (expected config.json and weights)")
        raise R1ciError(f"{flag} {path}: no config.json, not a model directory")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise R1ciError(f"{config}:{err.lineno}: invalid JSON ({err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise R1ciError(f"{config}: unreadable ({err})") from None
    if not isinstance(data, dict):
        raise R1ciError(f"{config}: expected a JSON object, got {type(data).__name__}")
    if "model_type" not in data:
        raise R1ciError(f"{config}: field 'model_type': missing (not a transformers model config)")


def _check_offline_cache(name: str, flag: str) -> None:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on"):
        return
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return  # transformers is not installed either: the loader says so
    if not isinstance(try_to_load_from_cache(name, "config.json"), str):
        raise R1ciError(f"{flag} {name}: HF_HUB_OFFLINE=1 and the model is not in the local Hugging Face cache "
                        "(download it where the hub is reachable, or give a model directory)")


def load_errors() -> tuple[type[BaseException], ...]:
    """What transformers' loaders raise for a model directory that is broken rather than for a bug: missing
    or unreadable files, a config it cannot map, unreadable safetensors weights."""
    errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError)
    try:
        from safetensors import SafetensorError
    except ImportError:
        return errors
    return (*errors, SafetensorError)


def load_failure(spec: str, err: BaseException, flag: str = "--model") -> R1ciError:
    """The one-line error for a model that passed ``resolve_model`` but could not be loaded."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return R1ciError(f"{flag} {spec}: cannot be loaded ({type(err).__name__}: {first[:300]})")
