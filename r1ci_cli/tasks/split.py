"""The fixed 107/37 train/test split of the 144 tasks (docs/paper.md "Tasks"), stored in ``split.json``.

The paper's exact list is not public, so the split is ours: stratified by source (SymBench 24/9 — its nine
"unseen" tasks are the test ones —, BBH 20/7, Reasoning-Gym 63/21), drawn once with ``SPLIT_SEED`` by
``build_split`` and committed. A test pins the file's hash so it never changes silently; rebuild it only
on purpose with ``python -m r1ci_cli.tasks.split --write`` and say so in the changelog.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from r1ci_cli.errors import R1ciError
from r1ci_cli.seeds import stable_hash

SPLIT_FILE = Path(__file__).with_name("split.json")
SPLIT_SEED = 20250527  # arXiv 2505.21668's month; any fixed value would do
NUM_TEST = {"symbench": 9, "bbh": 7, "rgym": 21}
SYMBENCH_TEST = (  # SymBench's "unseen" tasks (data README)
    "letters", "eight_queens", "number_multiply", "cryptanalysis", "string_splitting",
    "combinatorial_calculation", "synthesis_decomposition", "game2048", "permutations_and_combinations",
)


def build_split(names_by_source: dict[str, list[str]], seed: int = SPLIT_SEED) -> dict[str, dict[str, str]]:
    """Choose the test tasks of each source: SymBench's unseen nine; for the others the ``NUM_TEST[source]``
    names with the smallest seeded hash (a seeded draw that does not depend on list order)."""
    table: dict[str, dict[str, str]] = {}
    for source, names in sorted(names_by_source.items()):
        if source == "symbench":
            test = set(SYMBENCH_TEST)
        else:
            test = set(sorted(names, key=lambda n: stable_hash(f"{seed}:{source}:{n}"))[: NUM_TEST[source]])
        for name in sorted(names):
            table[name] = {"source": source, "split": "test" if name in test else "train"}
    return table


@functools.cache
def load_split() -> dict[str, dict[str, str]]:
    with open(SPLIT_FILE, encoding="utf-8") as handle:
        return json.load(handle)["tasks"]


def split_of(task: str) -> str:
    try:
        return load_split()[task]["split"]
    except KeyError:
        raise R1ciError(f"task {task!r} is not in the split file {SPLIT_FILE.name}") from None


def write_split() -> None:  # pragma: no cover - run on purpose, by hand
    from r1ci_cli.tasks.registry import families

    names: dict[str, list[str]] = {}
    for family in families():
        names.setdefault(family.source, []).append(family.name)
    table = build_split(names)
    data = {"version": 1, "seed": SPLIT_SEED, "tasks": table}
    SPLIT_FILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--write"]:
        write_split()
    else:
        sys.exit("usage: python -m r1ci_cli.tasks.split --write")
