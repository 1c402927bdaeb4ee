"""MATH Geometry (SymBench's data-backed geometry problems), and the MATH-layout loader it shares.

The data is third-party and not shipped. The MATH dataset's layout is one JSON file per problem,
``MATH/train/<subject>/<n>.json`` holding ``{"problem", "level", "type", "solution"}``; the answer is the
content of the last ``\\boxed{…}`` (or ``\\fbox{…}``) of the solution. ``load(data_dir)`` looks for the
subject folder at each of ``MATH_ROOTS`` under ``--data-dir`` and returns every problem in numeric file
order (``2.json`` before ``10.json``), so an instance's position is stable. Problems whose solution has
no boxed answer cannot be scored and are skipped with one warning. The question is the original
runner's (the problem, then the ``<<<…>>>`` instruction); answers are compared by
``_mathnorm.equivalent``; the reference program prints the stored boxed answer.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from pathlib import Path

from r1ci_cli.errors import BadRecord, MissingData, R1ciError
from r1ci_cli.tasks.registry import Instance, TaskFamily, print_stored
from r1ci_cli.tasks.symbench import _mathnorm
from r1ci_cli.tasks.symbench.gsm_hard import ANSWER_FORMAT

log = logging.getLogger("r1ci.tasks.math")

# Where a subject folder may sit under --data-dir, first match wins.
MATH_ROOTS = ("MATH/train", "math/train", "dataset_gather/MATH/train", "train", ".")
_FIELDS = ("problem", "solution")


def find_subject(data_dir: Path | None, task: str, subject: str) -> Path:
    """The folder holding ``<n>.json`` files of one MATH subject; R1ciError naming what was looked for."""
    expected = f"DATA_DIR/MATH/train/{subject}/*.json"
    if data_dir is None:
        raise MissingData(f"{task} needs data: pass --data-dir DIR holding MATH/train/{subject}/*.json")
    for root in MATH_ROOTS:
        folder = Path(data_dir) / root / subject
        if folder.is_dir() and any(folder.glob("*.json")):
            return folder
    raise MissingData(f"{task} needs data: no {subject}/*.json under {data_dir} (expected {expected})")


def _order(path: Path) -> tuple[int, int | str]:
    stem = path.stem
    return (0, int(stem)) if stem.isdigit() else (1, stem)


def question_text(problem: str) -> str:
    return problem + ANSWER_FORMAT


def instance_from_file(path: Path, subject: str) -> Instance | None:
    """One Instance from a MATH problem file; None when the solution has no boxed answer."""
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BadRecord(str(path), err.lineno, None, f"bad JSON: {err.msg}") from None
    except UnicodeDecodeError:
        raise BadRecord(str(path), 1, None, "not UTF-8 text") from None
    if not isinstance(row, dict):
        raise BadRecord(str(path), 1, None, f"expected a JSON object, got {type(row).__name__}")
    for name in _FIELDS:
        if not isinstance(row.get(name), str) or not row[name].strip():
            raise BadRecord(str(path), 1, name, "must be a non-empty string")
    answer = _mathnorm.last_boxed(row["solution"])
    if answer is None or not answer.strip():
        return None
    check = {"answer": answer.strip(), "file": f"{subject}/{path.name}", "level": str(row.get("level", ""))}
    return Instance(question_text(row["problem"]), check, answer.strip())


def load_subject(data_dir: Path | None, task: str, subject: str) -> list[Instance]:
    folder = find_subject(data_dir, task, subject)
    instances, skipped = [], []
    for path in sorted(folder.glob("*.json"), key=_order):
        instance = instance_from_file(path, subject)
        if instance is None:
            skipped.append(path.name)
        else:
            instances.append(instance)
    if skipped:
        log.warning("%s: %d problem(s) without a \\boxed answer skipped (first: %s/%s)", task, len(skipped),
                    folder, skipped[0])
    if not instances:
        raise R1ciError(f"{folder}: no problem with a \\boxed answer")
    return instances


def verify(instance: Instance, answer: str) -> bool:
    return _mathnorm.equivalent(answer, instance.check["answer"])


def reference_program(instance: Instance) -> str:
    return print_stored(instance.check["answer"])


def perturb(instance: Instance, correct: str, rng: random.Random) -> list[str]:
    """A numeric answer off by one either way; a non-numeric one with a term or a word added."""
    import sympy  # lazy: importing sympy costs about a second

    gold = instance.check["answer"]
    value = _mathnorm.parse_answer(gold)
    if isinstance(value, _mathnorm.Scalar) and not value.expr.has(sympy.oo, -sympy.oo):
        return [sympy.latex(value.expr + 1), sympy.latex(value.expr - 1)]
    return [f"{gold}+1", f"\\text{{not}} {gold}"]


def make_family(name: str, subject: str, description: str) -> TaskFamily:
    load: Callable[[Path], list[Instance]] = lambda data_dir: load_subject(data_dir, name, subject)  # noqa: E731
    return TaskFamily(
        name=name, source="symbench", generate=None, load=load, verify=verify,
        reference_program=reference_program, reference_kind="stored", perturb=perturb,
        needs_data=f"the MATH dataset's DATA_DIR/MATH/train/{subject}/*.json",
        description=description,
    )


FAMILY = make_family("math_geometry", "geometry",
                     "MATH geometry problems (user-provided data); LaTeX answer compared by value.")
