"""The seven knowledge-bound BBH subtasks: items come from data, never from a generator.

causal_judgement, disambiguation_qa, movie_recommendation, ruin_names, salient_translation_error_detection, snarks
and sports_understanding need world knowledge no seeded generator can supply. Each family loads
``<data_dir>/<name>.json`` in BBH's format: the official BBH files, or the ones ``make data-bbh`` builds from the
BIG-bench source tasks (``_bigbench_build``). Their reference program prints the stored target
(``reference_kind="stored"``).

Without the file a family is skipped with one clear log line (:func:`load_or_skip`), never silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

from r1ci_cli.errors import R1ciError
from r1ci_cli.tasks.bbh._common import load_official, perturb, verify
from r1ci_cli.tasks.registry import Instance, TaskFamily, print_stored

log = logging.getLogger("r1ci.tasks.bbh")

# BBH subtask -> answer kind of its targets.
DATA_TASKS = {
    "causal_judgement": "yesno",
    "disambiguation_qa": "option",
    "movie_recommendation": "option",
    "ruin_names": "option",
    "salient_translation_error_detection": "option",
    "snarks": "option",
    "sports_understanding": "yesno",
}


def needs_data(name: str) -> str:
    return f"{name}.json in BBH format (official file, or built by 'make data-bbh')"


def _loader(name: str, kind: str):
    def load(data_dir: Path) -> list[Instance]:
        return load_official(data_dir, name, kind)

    return load


def _reference(instance: Instance) -> str:
    return print_stored(instance.answer)


def missing_data(family: TaskFamily, data_dir: Path | None) -> str | None:
    """Why a data-backed family cannot load from ``data_dir`` (one line), or None when its file is there."""
    if family.needs_data is None:
        return None
    wanted = f"{family.name}.json"
    if data_dir is None:
        return f"bbh task {family.name} skipped: it needs {wanted} and no --data-dir was given (run 'make data-bbh')"
    if not (Path(data_dir) / wanted).is_file():
        return f"bbh task {family.name} skipped: {Path(data_dir) / wanted} not found (run 'make data-bbh')"
    return None


def load_or_skip(family: TaskFamily, data_dir: Path | None) -> list[Instance] | None:
    """The family's items, or None after logging one warning line naming the missing file.

    A file that is present but malformed is an error (R1ciError), not a skip.
    """
    reason = missing_data(family, data_dir)
    if reason is not None:
        log.warning("%s", reason)
        return None
    if family.load is None:
        raise R1ciError(f"bbh task {family.name} has no loader")
    return family.load(Path(data_dir))  # type: ignore[arg-type]


FAMILIES = [
    TaskFamily(name=name, source="bbh", verify=verify, reference_program=_reference, generate=None,
               reference_kind="stored", needs_data=needs_data(name), load=_loader(name, kind), perturb=perturb,
               description=f"BBH {name} (knowledge-bound; items from data)")
    for name, kind in DATA_TASKS.items()
]
