"""The original-layout loader: a fake ``dataset_gather`` tree rebuilt from the reference records must read
back as exactly those records (same fields, values and order)."""

from __future__ import annotations

import csv
import json
import types
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
import zstandard
from conftest import shared_data

from r1ci_cli.errors import BadRecord, R1ciError
from r1ci_cli.records import Task
from r1ci_cli.tasks import symbench_original as orig
from r1ci_cli.tasks.registry import Instance

# Tasks with thousands of instances are rebuilt from a few rows per source file only.
LARGE = {"game24": 3, "letters": 2}


def reference_records(task: str) -> list[dict]:
    path = shared_data() / "symbench" / f"{task}.jsonl.zst"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = zstandard.ZstdDecompressor().decompress(path.read_bytes(), max_output_size=1 << 28)
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def write_tree(root: Path, records: list[dict]) -> None:
    """Lay records out the way the CodeSteer repository stores them under dataset_gather/."""
    csv_rows: dict[Path, list[dict]] = defaultdict(list)
    for rec in records:
        path = root / rec["source_path"]
        task = rec["task"]
        if task == "game24":
            csv_rows[path].append(rec["csv_row"])
            continue
        if path.name.startswith("sample_"):
            path.mkdir(parents=True, exist_ok=True)
            if task == "number_multiply":
                (path / "input_prompt_1.txt").write_text(rec["question"])
                (path / "input_value_list.txt").write_text(str(rec["input_value_list"]))
                (path / "target_answer.txt").write_text(rec["solution"])
            else:
                (path / "question.txt").write_text(rec["question"])
                if rec["solution"] is not None:
                    (path / "solution.json").write_text(json.dumps(rec["solution"]))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        content = {"boxlift": lambda r: json.dumps({"boxes": r["boxes"], "lifters": r["lifters"]}),
                   "boxnet": lambda r: json.dumps(r["state"]),
                   "blocksworld": lambda r: r["task_text"],
                   "letters": lambda r: json.dumps(r["word"])}[task](rec)
        path.write_text(content)
    for path, rows in csv_rows.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def few_per_source(records: list[dict], count: int) -> list[dict]:
    kept, seen = [], defaultdict(int)
    for rec in records:
        key = rec["subset"] if rec["task"] == "letters" else rec["source_path"]
        if seen[key] < count:
            kept.append(rec)
            seen[key] += 1
    return kept


@pytest.mark.parametrize("task", sorted(orig.LAYOUTS))
def test_rebuilt_tree_reads_back_the_reference_records(task, tmp_path):
    records = reference_records(task)
    if task in LARGE:
        records = few_per_source(records, LARGE[task])
    write_tree(tmp_path, records)
    got = [rec for name, rec in orig.iter_original(tmp_path, [task])]
    assert {name for name, _ in orig.iter_original(tmp_path, [task])} == {task}
    if task in LARGE:  # indices restart because rows were dropped; everything else must match
        assert [r["index"] for r in got] == list(range(len(records)))
        got = [{**r, "index": w["index"]} for r, w in zip(got, records)]
    assert len(got) == len(records)
    for mine, want in zip(got, records):
        assert list(mine) == list(want)  # the same key order as the reference files
        assert mine == want


def test_root_may_be_the_dataset_gather_folder_itself(tmp_path):
    records = reference_records("cryptanalysis")[:5]
    write_tree(tmp_path, records)
    from_repo = [r for _, r in orig.iter_original(tmp_path, ["cryptanalysis"])]
    from_gather = [r for _, r in orig.iter_original(tmp_path / "dataset_gather", ["cryptanalysis"])]
    assert from_repo == from_gather == records


def test_all_present_tasks_are_read_when_none_are_named(tmp_path):
    write_tree(tmp_path, reference_records("pooling")[:3] + reference_records("boxnet")[:2])
    names = [name for name, _ in orig.iter_original(tmp_path, None)]
    assert names == ["boxnet"] * 2 + ["pooling"] * 3


def test_natural_order_puts_sample_2_before_sample_10(tmp_path):
    for i in (10, 2, 1):
        folder = tmp_path / "dataset_gather" / "cryptanalysis" / f"sample_{i}"
        folder.mkdir(parents=True)
        (folder / "question.txt").write_text(f"q{i}\n")
    got = [r for _, r in orig.iter_original(tmp_path, ["cryptanalysis"])]
    assert [r["question"] for r in got] == ["q1\n", "q2\n", "q10\n"]
    assert [r["index"] for r in got] == [0, 1, 2]
    assert got[0]["solution"] is None


@pytest.mark.parametrize("tasks, message", [
    (["no_such_task"], "unknown SymBench task 'no_such_task'"),
    (["game24"], "no data for game24"),
])
def test_bad_task_lists_raise_one_line(tmp_path, tasks, message):
    (tmp_path / "dataset_gather" / "pooling_dataset").mkdir(parents=True)
    with pytest.raises(R1ciError, match=message) as info:
        list(orig.iter_original(tmp_path, tasks))
    assert "\n" not in str(info.value)


def test_empty_or_missing_root_raises(tmp_path):
    with pytest.raises(R1ciError, match="no SymBench data"):
        list(orig.iter_original(tmp_path, None))
    with pytest.raises(R1ciError, match="no such directory"):
        list(orig.iter_original(tmp_path / "absent", None))


def test_malformed_solution_json_names_the_file(tmp_path):
    folder = tmp_path / "dataset_gather" / "pooling_dataset" / "sample_0"
    folder.mkdir(parents=True)
    (folder / "question.txt").write_text("q")
    (folder / "solution.json").write_text('{"solution": [1,\n  ')
    with pytest.raises(BadRecord, match=r"sample_0/solution\.json:2: bad JSON"):
        list(orig.iter_original(tmp_path, ["pooling"]))


def test_game24_bad_puzzle_cell_names_file_line_and_field(tmp_path):
    path = tmp_path / "dataset_gather" / "game24_dataset" / "24" / "24_4_number.csv"
    path.parent.mkdir(parents=True)
    path.write_text("Rank,Puzzles,Solutions\n1,1 2 3 4,(1*2*3*4)\n2,1 two 3,x\n")
    with pytest.raises(BadRecord, match=r"24_4_number\.csv:3: field 'Puzzles'"):
        list(orig.iter_original(tmp_path, ["game24"]))


@pytest.mark.parametrize("boxes, lifters, steps", [
    ([10, 20, 30], [100], 3),          # one lifter: one box per step
    ([50, 50], [30, 30, 40], 2),       # two lifters per box, three lifters: one box per step
    ([0, 5], [5, 5], 1),               # a weightless box still takes a lifter
    ([], [5], 0),
])
def test_estimate_steps_follows_the_greedy_rule(boxes, lifters, steps):
    assert orig.estimate_steps(boxes, lifters) == steps


def test_estimate_steps_refuses_an_unliftable_box():
    with pytest.raises(ValueError):
        orig.estimate_steps([100], [40, 50])


def test_parse_blocksworld_keeps_empty_stacks():
    initial, goal = orig.parse_blocksworld("Initial State:\nstack1: \nstack2: B A\n\nGoal State:\nstack1: A B\n")
    assert initial == {"stack1": [], "stack2": ["B", "A"]}
    assert goal == {"stack1": ["A", "B"]}


def _fake_module(with_converter: bool) -> types.ModuleType:
    module = types.ModuleType("fake")
    if with_converter:
        module.from_symbench = lambda rec: (Instance(rec["question"], {"i": rec["index"]}, "x"), "stored")
    return module


def test_load_original_needs_from_symbench(tmp_path, monkeypatch):
    write_tree(tmp_path, reference_records("pooling")[:2])
    monkeypatch.setattr(orig.importlib, "import_module", lambda name: _fake_module(False))
    with pytest.raises(R1ciError, match="has no from_symbench"):
        list(orig.load_original(tmp_path, ["pooling"]))


def test_load_original_and_task_records(tmp_path, monkeypatch):
    records = reference_records("pooling")[:3]
    write_tree(tmp_path, records)
    monkeypatch.setattr(orig.importlib, "import_module", lambda name: _fake_module(True))
    loaded = list(orig.load_original(tmp_path, ["pooling"]))
    assert [(t, inst.question, stored) for t, inst, stored in loaded] == [
        ("pooling", r["question"], "stored") for r in records]
    tasks = list(orig.original_tasks(tmp_path, ["pooling"], lambda task: "test"))
    assert all(isinstance(t, Task) for t in tasks)
    assert [t.id for t in tasks] == ["pooling-orig-00000", "pooling-orig-00001", "pooling-orig-00002"]
    row = tasks[1].to_dict()
    assert row["split"] == "test" and row["check"] == {"i": 1} and row["stored_answer"] == "stored"
    assert row["origin"] == records[1]["source_path"]
    orjson.dumps(row)  # JSON-able as gen-tasks writes it
    assert Task.from_dict(orjson.loads(orjson.dumps(row))) == tasks[1]


def test_task_records_default_to_the_project_split(tmp_path, monkeypatch):
    write_tree(tmp_path, reference_records("pooling")[:1])
    monkeypatch.setattr(orig.importlib, "import_module", lambda name: _fake_module(True))
    from r1ci_cli.tasks.split import split_of

    (task,) = orig.original_tasks(tmp_path, ["pooling"])
    assert task.split == split_of("pooling")


def test_conversion_errors_name_the_source_file(tmp_path, monkeypatch):
    write_tree(tmp_path, reference_records("pooling")[:1])
    module = types.ModuleType("fake")
    module.from_symbench = lambda rec: rec["no_such_field"]
    monkeypatch.setattr(orig.importlib, "import_module", lambda name: module)
    with pytest.raises(R1ciError, match=r"dataset_gather/pooling_dataset/sample_0: pooling cannot read"):
        list(orig.load_original(tmp_path, ["pooling"]))


@pytest.mark.parametrize("task", sorted(set(orig.LAYOUTS) - set(LARGE)))
def test_task_modules_convert_rebuilt_records(task, tmp_path):
    """Where a task module already has from_symbench, every rebuilt instance converts without error."""
    module = pytest.importorskip(f"r1ci_cli.tasks.symbench.{task}")
    if not hasattr(module, "from_symbench"):
        pytest.skip(f"{task} has no from_symbench yet")
    records = reference_records(task)[:20]
    write_tree(tmp_path, records)
    loaded = list(orig.load_original(tmp_path, [task]))
    assert len(loaded) == len(records)
    assert all(isinstance(inst, Instance) and inst.question for _, inst, _ in loaded)
