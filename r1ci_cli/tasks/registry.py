"""The task registry: every task family the toolchain can generate, check and solve.

A family is a name, a source (``symbench``, ``bbh``, ``rgym``) and four functions:

* ``generate(rng, knobs) -> Instance`` — a seeded generator (``rng`` is a private ``random.Random``;
  ``knobs`` are the family's difficulty knobs with any ``--difficulty`` overrides applied). Families that
  only load data have ``generate=None`` and a ``load(data_dir) -> list[Instance]`` instead.
* ``verify(instance, answer) -> bool`` — ``answer`` is the already extracted content of the last
  ``<<<…>>>`` span (``answer.extract_answer``). Planning and puzzle families check constraints or simulate,
  so every valid answer passes. It must not raise on any string; ``score`` still guards it.
* ``reference_program(instance) -> str`` — self-contained Python source (stdlib, numpy, sympy only: it
  runs in the sandbox, which cannot see this package) that prints the answer in the expected form, without
  the ``<<<>>>``. For our own generators it computes the answer from the instance's data (``kind
  "computed"``); for data-backed and wrapped families it may print the stored answer (``kind "stored"``).
* ``partial(instance, answer) -> float`` — optional partial credit, logged and never rewarded.
* ``perturb(instance, correct_answer, rng) -> list[str]`` — two or more *wrong* answers close to the
  right one (an off-by-one number, a swapped pair, an illegal move), used by tests of verifier strictness.

An ``Instance`` holds ``question`` (the prompt text), ``check`` (JSON-able data the verifier needs) and
``answer`` (a JSON-able canonical answer for people and for the reference backend's logs).
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import logging
import random
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1ci_cli.answer import extract_answer
from r1ci_cli.errors import R1ciError

log = logging.getLogger("r1ci.tasks")

SOURCES = ("symbench", "bbh", "rgym")
SOURCE_MODULES = {
    "symbench": "r1ci_cli.tasks.symbench",
    "bbh": "r1ci_cli.tasks.bbh",
    "rgym": "r1ci_cli.tasks.rgym",
}


@dataclass(frozen=True)
class Instance:
    question: str
    check: Mapping[str, Any]
    answer: Any = None


@dataclass(frozen=True)
class TaskFamily:
    name: str
    source: str
    verify: Callable[[Instance, str], bool]
    reference_program: Callable[[Instance], str]
    generate: Callable[[random.Random, Mapping[str, Any]], Instance] | None = None
    knobs: Mapping[str, Any] = field(default_factory=dict)
    reference_kind: str = "computed"  # computed | stored
    needs_data: str | None = None  # what files --data-dir must hold, for data-backed families
    load: Callable[[Path], list[Instance]] | None = None
    partial: Callable[[Instance, str], float] | None = None
    # Wrong answers near the right one (for tests of the verifier's strictness): at least two per instance.
    perturb: Callable[[Instance, str, random.Random], list[str]] | None = None
    description: str = ""
    # True when generate() is slow (a few instances/s): named in --list and the README.
    slow: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"{self.name}: unknown source {self.source!r}")
        if self.generate is None and self.load is None:
            raise ValueError(f"{self.name}: a family needs generate() or load()")
        if self.reference_kind not in ("computed", "stored"):
            raise ValueError(f"{self.name}: reference_kind must be computed or stored")

    @property
    def has_generator(self) -> bool:
        return self.generate is not None


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one response. ``verify_error`` is set when the verifier raised."""

    answer: str | None
    correct: bool
    partial: float | None = None
    verify_error: str | None = None


def score(family: TaskFamily, instance: Instance, response: str) -> Verdict:
    """Extract the last ``<<<…>>>`` answer and check it. A verifier exception gives no verdict: ``verify_error``
    says what it raised (the rollout loop ends the trajectory as ``infra_error``), logged."""
    answer = extract_answer(response)
    if answer is None:
        return Verdict(None, False)
    try:
        correct = bool(family.verify(instance, answer))
    except Exception as err:  # third-party verifiers (reasoning-gym) raise on odd text; never a crash
        log.warning("%s: verifier raised %s on answer %.80r; no verdict (infra_error)", family.name,
                    type(err).__name__, answer)
        return Verdict(answer, False, verify_error=f"{type(err).__name__}: {err}")
    partial = None
    if family.partial is not None:
        try:
            partial = float(family.partial(instance, answer))
        except Exception as err:  # partial credit is only logged; a failure there must not hide the verdict
            log.debug("%s: partial score raised %s", family.name, err)
    return Verdict(answer, correct, partial)


# ---------------------------------------------------------------------------------------------- programs

def program(functions: Iterable[Callable[..., Any]], main: str, **data: Any) -> str:
    """Build a self-contained reference program from module-level functions.

    ``functions`` are copied by source (they may use only stdlib, numpy and sympy, imported inside them
    or named in ``imports`` lines of ``main``); ``data`` becomes literal assignments at the top, and
    ``main`` is the code that computes and prints the answer, e.g.
    ``program([solve], "print(solve(numbers, target))", numbers=[4, 7, 8, 8], target=24)``.
    """
    parts = [f"{name} = {literal(value)}" for name, value in data.items()]
    parts += [textwrap.dedent(inspect.getsource(fn)).rstrip() for fn in functions]
    parts.append(textwrap.dedent(main).strip())
    return "\n\n".join(parts) + "\n"


def literal(value: Any) -> str:
    """A Python literal for JSON-like data (dicts, lists, str, int, float, bool, None)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return repr(value)
    raise TypeError(f"cannot embed {type(value).__name__} in a reference program")


def print_stored(answer: Any) -> str:
    """The reference program of a family whose answer is stored data (``reference_kind="stored"``)."""
    return f"print({literal(answer if isinstance(answer, str) else str(answer))})\n"


# ---------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, TaskFamily] = {}
_LOADED: set[str] = set()


def register(family: TaskFamily) -> TaskFamily:
    if family.name in _REGISTRY and _REGISTRY[family.name] is not family:
        raise ValueError(f"task {family.name!r} is registered twice")
    _REGISTRY[family.name] = family
    return family


def load_source(source: str) -> None:
    """Import one source's families (lazily: reasoning-gym's import takes a few seconds)."""
    if source in _LOADED:
        return
    module = importlib.import_module(SOURCE_MODULES[source])
    for family in getattr(module, "FAMILIES", ()):
        register(family)
    _LOADED.add(source)


def families(sources: Iterable[str] = SOURCES) -> list[TaskFamily]:
    sources = list(sources)
    for source in sources:
        load_source(source)
    return sorted((f for f in _REGISTRY.values() if f.source in sources), key=lambda f: (SOURCES.index(f.source), f.name))


def get_family(name: str, source: str | None = None) -> TaskFamily:
    if name not in _REGISTRY:
        for src in ([source] if source else SOURCES):
            load_source(src)
            if name in _REGISTRY:
                break
    try:
        return _REGISTRY[name]
    except KeyError:
        raise R1ciError(f"unknown task {name!r} (see 'r1ci gen-tasks --list')") from None


def select(patterns: Iterable[str] | None, sources: Iterable[str] = SOURCES) -> list[TaskFamily]:
    """Families whose names match any of the glob ``patterns`` (all when None)."""
    pool = families(sources)
    patterns = [p for p in (patterns or []) if p]
    if not patterns:
        return pool
    chosen = []
    for pattern in patterns:
        matched = [f for f in pool if fnmatch.fnmatchcase(f.name, pattern)]
        if not matched:
            raise R1ciError(f"--tasks {pattern!r} matches no task of source {', '.join(sources)}")
        chosen += [f for f in matched if f not in chosen]
    return sorted(chosen, key=lambda f: (SOURCES.index(f.source), f.name))


def collect(package: str) -> list[TaskFamily]:
    """Every ``FAMILY`` / ``FAMILIES`` defined by the modules of a source package (one module per task or group)."""
    import pkgutil

    pkg = importlib.import_module(package)
    found: list[TaskFamily] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if hasattr(module, "FAMILY"):
            found.append(module.FAMILY)
        found.extend(getattr(module, "FAMILIES", ()))
    return found
