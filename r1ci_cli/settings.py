"""What an options dataclass decides: the settings that shape results, told apart from how a run is executed.

Every command's options are frozen dataclasses, nested where one group holds another (``RlOptions`` holds
the ``RolloutOptions`` of its rollouts and the ``EngineOptions`` of its optimizer). A field marked
``runtime`` (``field(..., metadata=RUNTIME)``) says how the work runs, not what it computes: a device, a batch
size of the decoder, an output path, a checkpoint interval. Everything else shapes the results.

``settings(obj)`` is the nested dict of the shaping fields, and ``fingerprint(*objs)`` a short hash of it:
rl-stage and sft keep it as their run key (a resume with other settings is refused), and the settings that
shape trajectories are ``fingerprint(rollout_options, backend_options)``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, is_dataclass
from typing import Any

RUNTIME = {"runtime": True}


def settings(obj: Any, runtime: bool = False) -> dict[str, Any]:
    """The fields of an options dataclass (nested ones as dicts), without the runtime ones unless asked."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        if f.metadata.get("runtime") and not runtime:
            continue
        value = getattr(obj, f.name)
        out[f.name] = settings(value, runtime) if is_dataclass(value) else value
    return out


def fingerprint(*objs: Any, **extra: Any) -> str:
    """sha256 (hex, 16 characters) of the settings of ``objs`` and of ``extra`` (data, world size …)."""
    material = {"settings": [settings(obj) for obj in objs], **extra}
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def first_difference(before: Any, now: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first setting (dotted path, in ``now``'s order, then keys only ``before`` has) whose value differs
    between two ``settings()`` dicts, with both values; None when they agree."""
    if isinstance(before, dict) and isinstance(now, dict):
        for key in list(now) + [k for k in before if k not in now]:
            found = first_difference(before.get(key), now.get(key), f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    if isinstance(before, (list, tuple)) and isinstance(now, (list, tuple)):
        before, now = list(before), list(now)
    return None if before == now else (path or "(settings)", before, now)
