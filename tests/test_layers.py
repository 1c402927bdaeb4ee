"""Imports point downward: a module never imports a layer above its own (read from the source, lazy imports
inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "r1ci_cli"

# Layer of each top-level part of the package, lowest first. A module may import its own layer and the ones
# below; the command line (cli, commands) sits on top of everything.
LAYERS = [
    {"__init__", "errors", "seeds", "streams", "records", "progress", "answer"},
    {"tasks", "interaction", "sandbox", "models", "model_corpus", "models_gguf", "model_source", "settings", "show"},
    {"backends"},
    {"rollout", "potential"},
    {"train", "evaluate"},
    {"commands", "cli", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "r1ci_cli" and len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module == "r1ci_cli"]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    own = relative.parts[0].removesuffix(".py")
    assert own in RANK, f"{relative}: add its package to LAYERS"
    upward = [f"line {line}: {name}" for line, name in _imports(path)
              if (part := _part(name)) is not None and part in RANK and RANK[part] > RANK[own]]
    assert not upward, f"{relative} imports upward: {upward}"


def test_backends_know_no_concrete_backend_in_their_interface() -> None:
    base = [name for _, name in _imports(PACKAGE / "backends" / "base.py")]
    assert not [n for n in base if n.startswith("r1ci_cli.backends.")], base


def test_core_modules_never_import_click() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in MODULES
                 if p.relative_to(PACKAGE).parts[0] not in ("commands", "cli.py")
                 and any(name == "click" or name.startswith("click.") for _, name in _imports(p))]
    assert not offenders, offenders
