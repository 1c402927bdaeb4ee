"""Read SymBench instances from the original repository layout (``dataset_gather/…``), for evaluation on
the exact published instances. The project ships none of that data; users point ``--symbench-dir`` at
their own checkout of the CodeSteer repository (or at its ``dataset_gather`` folder).

Contract:

* ``iter_original(root, tasks)`` yields ``(task, record)`` with records in the layout of the reference
  files (``task, index, source_path, subset, path_params?, question, <task fields>, solution, derived?``;
  see the data README): the same keys, the same values and the same order (subsets in ``LAYOUTS`` order,
  paths in natural order, ``sample_2`` before ``sample_10``; CSV rows in file order). ``index`` counts
  from 0 within a task. ``derived`` values (BoxLift's step limit, Letters' count and positions) are
  computed here with the original runner's rules.
* ``load_original(root, tasks)`` passes each record to ``r1ci_cli.tasks.symbench.<task>.from_symbench``
  (imported lazily) and yields ``(task, Instance, stored answer text or None)``.
* ``original_tasks(root, tasks, split_of)`` yields ``Task`` records for ``gen-tasks --symbench-dir``.
* With ``tasks=None`` every task whose folder exists is read; naming a task whose folders are all
  missing, an unknown task, or a root without any SymBench folder raises ``R1ciError`` (one line).
  A malformed file raises ``BadRecord``/``R1ciError`` naming the file.

Not read: Path Plan (no instance files upstream), the duplicate ``pattern_recognition_dataset.json``,
``test_results.txt`` logs, and the BIG-Bench-Hard copies (their own loader reads them).
"""

from __future__ import annotations

import ast
import csv
import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from r1ci_cli.errors import BadRecord, R1ciError
from r1ci_cli.records import Task
from r1ci_cli.tasks.registry import Instance

# task -> (reader kind, subset folders under dataset_gather in the order the reference files list them)
LAYOUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "blocksworld": ("blocksworld", ("Blocksworld_dataset",)),
    "boxlift": ("boxlift", ("BoxLift_dataset", "BoxLift_dataset_SFT")),
    "boxnet": ("boxnet", ("BoxNet1_dataset", "BoxNet1_dataset_SFT")),
    "combinatorial_calculation": ("samples", ("combinatorial_calculation",
                                              "combinatorial_calculation_varied_complexity")),
    "constrained_linear_arrangement": ("samples", ("constrained_linear_arrangement",)),
    "cryptanalysis": ("samples", ("cryptanalysis",)),
    "eight_queens": ("samples", ("eight_queens_dataset", "eight_queens_dataset_2", "eight_queens_dataset_hard",
                                 "eight_queens_dataset_varied_complexity")),
    "game2048": ("samples", ("2048_dataset",)),
    "game24": ("game24", ("game24_dataset",)),
    "letter_logic_diagram": ("samples", ("letter_logic_diagram",)),
    "letters": ("letters", ("Letters",)),
    "light_puzzles": ("samples", ("light_puzzles_dataset",)),
    "logic_puzzle": ("samples", ("logic_puzzle_dataset",)),
    "logical_equation": ("samples", ("logical_equation",)),
    "mahjong_pattern": ("samples", ("mahjong_pattern_dataset",)),
    "matrix_transformation": ("samples", ("matrix_transformation_dataset",)),
    "new_operator": ("samples", ("new_operator_dataset",)),
    "number_multiply": ("samples", ("number_multiply", "number_multiply_varied_complexity")),
    "pattern_recognition": ("samples", ("pattern_recognition",)),
    "permutations_and_combinations": ("samples", ("permutations_and_combinations",)),
    "pooling": ("samples", ("pooling_dataset",)),
    "reversi": ("samples", ("reversi_dataset",)),
    "standard_sudoku": ("samples", ("standard_sudoku",)),
    "statistical_counting": ("samples", ("statistical_counting_dataset",)),
    "string_deletion_and_modification": ("samples", ("string_deletion_and_modification",)),
    "string_insertion": ("samples", ("string_insertion",)),
    "string_splitting": ("samples", ("string_splitting",)),
    "string_synthesis": ("samples", ("string_synthesis",)),
    "synthesis_decomposition": ("samples", ("synthesis_decomposition_dataset",)),
}
GATHER = "dataset_gather"
QUESTION_FILES = ("question.txt", "input_prompt_1.txt")


def natural_key(text: str) -> tuple:
    """``sample_2`` before ``sample_10``: digit runs compare as numbers."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text)))


def gather_dir(root: Path) -> Path:
    """``root/dataset_gather`` when it exists, else ``root`` itself (the user pointed at dataset_gather)."""
    root = Path(root)
    return root / GATHER if (root / GATHER).is_dir() else root


# ---------------------------------------------------------------------------------------------- files

def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:  # exact text: no newline translation
            return handle.read()
    except UnicodeDecodeError:
        raise BadRecord(str(path), 1, None, "not UTF-8 text") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise BadRecord(str(path), err.lineno, None, f"bad JSON: {err.msg}") from None


def _ints(match: re.Match, names: tuple[str, ...]) -> dict[str, int]:
    return {name: int(value) for name, value in zip(names, match.groups())}


def _sorted_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))


def _head(task: str, gather: Path, path: Path, subset: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    source = f"{GATHER}/{path.relative_to(gather).as_posix()}"
    # index is filled in by iter_original, which counts across subsets; the key goes here for field order
    record: dict[str, Any] = {"task": task, "index": -1, "source_path": source, "subset": subset}
    if params:
        record["path_params"] = dict(params)
    return record


# ---------------------------------------------------------------------------------------------- readers

def _samples(task: str, gather: Path, subset: str) -> Iterator[dict[str, Any]]:
    """``<subset>/[<group>/]sample_*`` folders with question.txt + solution.json (or Number Multiply's files)."""
    base = gather / subset
    folders = [p for p in base.rglob("sample_*") if p.is_dir() and len(p.relative_to(base).parts) <= 2]
    for folder in sorted(folders, key=lambda p: natural_key(p.relative_to(base).as_posix())):
        params = _sample_params(folder.relative_to(base).parts)
        record = _head(task, gather, folder, subset, params)
        question_path = next((folder / n for n in QUESTION_FILES if (folder / n).is_file()), None)
        if question_path is None:
            raise R1ciError(f"{folder}: no {' or '.join(QUESTION_FILES)}")
        record["question"] = _read_text(question_path)
        values = folder / "input_value_list.txt"
        if values.is_file():
            try:
                record["input_value_list"] = ast.literal_eval(_read_text(values).strip())
            except (ValueError, SyntaxError):
                raise BadRecord(str(values), 1, None, "not a Python list literal") from None
        if (folder / "solution.json").is_file():
            record["solution"] = _read_json(folder / "solution.json")
        elif (folder / "target_answer.txt").is_file():
            record["solution"] = _read_text(folder / "target_answer.txt").strip()
        else:
            record["solution"] = None
        yield record


def _sample_params(parts: tuple[str, ...]) -> dict[str, Any] | None:
    if len(parts) == 2:
        group = parts[0]
        if m := re.fullmatch(r".*_complexity(\d+)", group):
            return {"complexity_folder": int(m.group(1))}
        if m := re.fullmatch(r"digit((?:_\d+)+)", group):
            return {"digits": [int(d) for d in m.group(1).split("_")[1:]]}
        return None
    if m := re.fullmatch(r"sample_(\d+)_(\d+)_(\d+)", parts[0]):
        return _ints(m, ("num_letters", "num_constraints", "variant"))
    return None


def _game24(task: str, gather: Path, subset_root: str) -> Iterator[dict[str, Any]]:
    """``game24_dataset/<target>/<target>.csv`` (no solutions) and ``<target>_<n>_number.csv``."""
    base = gather / subset_root
    for target_dir in _sorted_dirs(base):
        if not target_dir.name.isdigit():
            continue
        target = int(target_dir.name)
        files = [p for p in target_dir.glob("*.csv")
                 if re.fullmatch(rf"{target}(?:_\d+_number)?\.csv", p.name)]
        for path in sorted(files, key=lambda p: natural_key(p.name)):
            m = re.fullmatch(r"\d+_(\d+)_number\.csv", path.name)
            params = {"target": target, **({"n_numbers": int(m.group(1))} if m else {})}
            subset = f"{target_dir.name}/{path.name}"
            with open(path, encoding="utf-8", newline="") as handle:
                for row_index, row in enumerate(csv.DictReader(handle)):
                    yield _game24_record(task, gather, path, subset, params, row_index, row, target)


def _game24_record(task: str, gather: Path, path: Path, subset: str, params: dict, row_index: int,
                   row: dict, target: int) -> dict[str, Any]:
    line = row_index + 2  # the header is line 1
    puzzle = row.get("Puzzles")
    if not isinstance(puzzle, str) or not re.fullmatch(r"\s*\d+(?:\s+\d+)*\s*", puzzle):
        raise BadRecord(str(path), line, "Puzzles", f"expected whitespace-separated integers, got {puzzle!r}")
    record = _head(task, gather, path, subset, None)
    record["csv_row_index"] = row_index
    record["path_params"] = params
    record["question"] = None
    record["numbers"] = [int(x) for x in puzzle.split()]
    record["target"] = target
    record["solution"] = row.get("Solutions") or None
    record["csv_row"] = {k: v for k, v in row.items() if k is not None}
    return record


def estimate_steps(boxes: list[int], lifters: list[int]) -> int:
    """The BoxLift runner's step limit: each step, boxes heaviest first, each lifted by the shortest prefix
    of the still-free lifters whose capacities cover it (at least one lifter), skipping boxes too heavy
    for what is left."""
    if boxes and max(boxes) > sum(lifters):
        raise ValueError("a box is heavier than all lifters together")
    remaining = sorted(boxes, reverse=True)
    steps = 0
    while remaining:
        steps += 1
        free = list(lifters)
        i = 0
        while i < len(remaining) and free:
            if sum(free) < remaining[i]:
                i += 1
                continue
            total, used = 0, 0
            for capacity in free:
                total += capacity
                used += 1
                if total >= remaining[i]:
                    break
            del free[:used]
            remaining.pop(i)
    return steps


def _boxlift(task: str, gather: Path, subset: str) -> Iterator[dict[str, Any]]:
    for config in _sorted_dirs(gather / subset):
        m = re.fullmatch(r"BoxLift_(\d+)_(\d+)", config.name)
        if not m:
            continue
        for variant_dir in _sorted_dirs(config):
            v = re.fullmatch(r"BoxLift(\d+)", variant_dir.name)
            path = variant_dir / "BoxLift.json"
            if not v or not path.is_file():
                continue
            data = _read_json(path)
            for name in ("boxes", "lifters"):
                if not isinstance(data, dict) or not _int_list(data.get(name)):
                    raise BadRecord(str(path), 1, name, "must be a list of integers")
            record = _head(task, gather, path, subset, {**_ints(m, ("num_boxes", "num_lifters")),
                                                        "variant": int(v.group(1))})
            record.update(question=None, boxes=data["boxes"], lifters=data["lifters"], solution=None)
            try:
                record["derived"] = {"step_limit": estimate_steps(data["boxes"], data["lifters"])}
            except ValueError as err:
                raise BadRecord(str(path), 1, "boxes", str(err)) from None
            yield record


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in value)


def _boxnet(task: str, gather: Path, subset: str) -> Iterator[dict[str, Any]]:
    for env in _sorted_dirs(gather / subset):
        m = re.fullmatch(r"env_pg_state_(\d+)_(\d+)", env.name)
        if not m:
            continue
        for variant_dir in _sorted_dirs(env):
            v = re.fullmatch(r"pg_state(\d+)", variant_dir.name)
            path = variant_dir / f"{variant_dir.name}.json"
            if not v or not path.is_file():
                continue
            state = _read_json(path)
            if not isinstance(state, dict):
                raise BadRecord(str(path), 1, None, "expected a JSON object of cells")
            record = _head(task, gather, path, subset, {**_ints(m, ("rows", "columns")), "variant": int(v.group(1))})
            record.update(question=None, state=state, solution=None)
            yield record


def parse_blocksworld(text: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``Initial State:`` / ``Goal State:`` sections of ``stackN: A B`` lines (bottom first)."""
    states: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        header = re.fullmatch(r"\s*(Initial|Goal) State:\s*", line)
        if header:
            current = states.setdefault(header.group(1), {})
            continue
        stack = re.fullmatch(r"\s*(stack\d+):(.*)", line)
        if stack and current is not None:
            current[stack.group(1)] = stack.group(2).split()
    if "Initial" not in states or "Goal" not in states:
        raise ValueError("expected 'Initial State:' and 'Goal State:' sections")
    return states["Initial"], states["Goal"]


def _blocksworld(task: str, gather: Path, subset: str) -> Iterator[dict[str, Any]]:
    for config in _sorted_dirs(gather / subset):
        m = re.fullmatch(r"(\d+)_(\d+)_(\d+)_(\d+)", config.name)
        path = config / "blocksworld_task.txt"
        if not m or not path.is_file():
            continue
        text = _read_text(path)
        try:
            initial, goal = parse_blocksworld(text)
        except ValueError as err:
            raise BadRecord(str(path), 1, None, str(err)) from None
        record = _head(task, gather, path, subset,
                       _ints(m, ("num_blocks", "initial_stacks", "goal_stacks", "variant")))
        record.update(question=None, task_text=text, initial_state=initial, goal_state=goal, solution=None)
        yield record


def _letters(task: str, gather: Path, subset_root: str) -> Iterator[dict[str, Any]]:
    for subset_dir in _sorted_dirs(gather / subset_root):
        m = re.fullmatch(r"Letters_dataset_min_length_(\d+)_max_length_(\d+)", subset_dir.name)
        if not m:
            continue
        for word_dir in _sorted_dirs(subset_dir):
            w = re.fullmatch(r"([a-z])_(\d+)_(\d+)", word_dir.name)
            path = word_dir / "test_words.json"
            if not w or not path.is_file():
                continue
            word = _read_json(path)
            if isinstance(word, list) and len(word) == 1:
                word = word[0]
            if not isinstance(word, str):
                raise BadRecord(str(path), 1, None, "expected a JSON string (the test word)")
            letter = w.group(1)
            params = {**_ints(m, ("min_length", "max_length")), "letter": letter, "count": int(w.group(2)),
                      "variant": int(w.group(3))}
            record = _head(task, gather, path, subset_dir.name, params)
            positions = [i + 1 for i, ch in enumerate(word) if ch == letter]
            record.update(question=None, word=word, solution=None,
                          derived={"count": len(positions), "positions": positions})
            yield record


_READERS: dict[str, Callable[[str, Path, str], Iterator[dict[str, Any]]]] = {
    "samples": _samples, "game24": _game24, "boxlift": _boxlift, "boxnet": _boxnet,
    "blocksworld": _blocksworld, "letters": _letters,
}


# ---------------------------------------------------------------------------------------------- public

def available_tasks(root: Path) -> list[str]:
    gather = gather_dir(root)
    return [t for t, (_, folders) in sorted(LAYOUTS.items()) if any((gather / f).is_dir() for f in folders)]


def _resolve(root: Path, tasks: list[str] | None) -> list[str]:
    if not Path(root).is_dir():
        raise R1ciError(f"--symbench-dir {root}: no such directory")
    found = available_tasks(root)
    if tasks is None:
        if not found:
            raise R1ciError(f"no SymBench data under {root} (expected {GATHER}/<task folders>, e.g. "
                            f"{GATHER}/game24_dataset)")
        return found
    for task in tasks:
        if task not in LAYOUTS:
            raise R1ciError(f"unknown SymBench task {task!r} for the original layout "
                            f"(known: {', '.join(sorted(LAYOUTS))})")
        if task not in found:
            folders = " or ".join(f"{GATHER}/{f}" for f in LAYOUTS[task][1])
            raise R1ciError(f"no data for {task} under {root} (expected {folders})")
    return list(dict.fromkeys(tasks))


def iter_original(root: Path, tasks: list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(task, record) for every instance of ``tasks`` (all present when None), in the reference order."""
    gather = gather_dir(root)
    for task in _resolve(root, tasks):
        kind, folders = LAYOUTS[task]
        index = 0
        for folder in folders:
            if not (gather / folder).is_dir():
                continue
            for record in _READERS[kind](task, gather, folder):
                record["index"] = index
                index += 1
                yield task, record


def _module(task: str, cache: dict[str, ModuleType]) -> ModuleType:
    if task not in cache:
        try:
            module = importlib.import_module(f"r1ci_cli.tasks.symbench.{task}")
        except ModuleNotFoundError:
            raise R1ciError(f"SymBench task {task} has no module r1ci_cli.tasks.symbench.{task}") from None
        if not callable(getattr(module, "from_symbench", None)):
            raise R1ciError(f"SymBench task {task}: its module has no from_symbench(record) yet")
        cache[task] = module
    return cache[task]


def _converted(root: Path, tasks: list[str] | None) -> Iterator[tuple[str, dict, Instance, str | None]]:
    cache: dict[str, ModuleType] = {}
    for task, record in iter_original(root, tasks):
        module = _module(task, cache)
        try:
            instance, stored = module.from_symbench(record)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            # the record came from the user's files: name the file, not a traceback
            raise R1ciError(f"{record['source_path']}: {task} cannot read this instance "
                            f"({type(err).__name__}: {err})") from None
        yield task, record, instance, stored


def load_original(root: Path, tasks: list[str] | None = None) -> Iterator[tuple[str, Instance, str | None]]:
    """(task, Instance, stored answer text or None) for every original instance, via ``from_symbench``."""
    for task, _, instance, stored in _converted(root, tasks):
        yield task, instance, stored


def original_tasks(root: Path, tasks: list[str] | None = None,
                   split_of: Callable[[str], str] | None = None) -> Iterator[Task]:
    """Task records of the original instances, for ``gen-tasks --symbench-dir``, in reference order.

    ``split_of(task)`` gives the task's split (default: the project's split file). The id names the task
    and the reference index (``game24-orig-00017``); ``seed`` is that index (nothing random is drawn);
    ``origin``/``subset`` say where the instance came from and ``stored_answer`` holds the repository's
    answer text (None where it stores none). No pool filtering: these are the published instances.
    """
    if split_of is None:
        from r1ci_cli.tasks.split import split_of
    for task, record, instance, stored in _converted(root, tasks):
        index = record["index"]
        yield Task(id=f"{task}-orig-{index:05d}", source="symbench", task=task, split=split_of(task),
                   seed=index, question=instance.question, check=dict(instance.check), answer=instance.answer,
                   extra={"origin": record["source_path"], "subset": record["subset"], "index": index,
                          "stored_answer": stored})
