"""The 107/37 split: complete, stratified, reproducible from its seed, and pinned."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from r1ci_cli.tasks.registry import families
from r1ci_cli.tasks.split import NUM_TEST, SPLIT_FILE, SPLIT_SEED, SYMBENCH_TEST, build_split, load_split

# Changing the split changes every reported number: update this only on purpose, and say so.
PINNED_SHA256 = "a6ea357976e8f0b12d31a0467582ab962cd0a28b0cd45df83fc90d87b026d5ec"


def test_split_file_is_pinned():
    assert hashlib.sha256(SPLIT_FILE.read_bytes()).hexdigest() == PINNED_SHA256


def test_split_covers_every_registered_task_and_is_stratified():
    table = load_split()
    names = {f.name: f.source for f in families()}
    assert set(table) == set(names) and len(table) == 144
    counts = Counter((v["source"], v["split"]) for v in table.values())
    assert counts == {("symbench", "train"): 24, ("symbench", "test"): 9, ("bbh", "train"): 20,
                      ("bbh", "test"): 7, ("rgym", "train"): 63, ("rgym", "test"): 21}
    assert {n for n, v in table.items() if v["source"] == "symbench" and v["split"] == "test"} == set(SYMBENCH_TEST)
    assert all(table[n]["source"] == s for n, s in names.items())
    assert sum(NUM_TEST.values()) == 37


def test_split_is_rebuilt_by_its_seed():
    by_source: dict[str, list[str]] = {}
    for name, value in load_split().items():
        by_source.setdefault(value["source"], []).append(name)
    assert build_split(by_source, SPLIT_SEED) == load_split()
    assert json.loads(SPLIT_FILE.read_text())["seed"] == SPLIT_SEED
