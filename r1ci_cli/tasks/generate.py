"""Instance generation for ``gen-tasks``: seeds, instance pools, difficulty overrides and data-backed tasks.

Determinism: instance ``i`` of task ``t`` in pool ``p`` is drawn from ``derive_rng(seed, t, p, i, attempt)``
(blake2b, no ``hash()``), so the same flags give identical bytes in every process and with any worker count.

Pools keep evaluation instances apart from training instances of the same task: every question is
assigned to one pool by a stable hash of its text (even → ``train``, odd → ``eval``), and a generator's
draw is retried with the next ``attempt`` until it lands in the requested pool. Two pools can therefore
never share a question, whatever seeds were used for either. By default a test-split task draws from
``eval`` and a train-split task from ``train``; ``--pool eval`` gives held-out instances of training
tasks (the SFT and RL checks use them).

A generator that raises is retried with the next attempt's seed (deterministic, like a pool miss); one that
keeps raising (``MAX_GENERATOR_ERRORS`` times for one instance) has its task skipped with one log line.

``exclude`` (``--exclude FILE``) leaves out every instance whose question appears in one of the given Task
files, and repeats of a question already written: the RL questions of a run are a second draw of the train
pool minus every SFT question (docs/paper.md keeps the two sets apart). Order is kept, so the output stays
deterministic; a selection that leaves nothing is an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from r1ci_cli.errors import MissingData, R1ciError
from r1ci_cli.records import Task
from r1ci_cli.seeds import derive_rng, stable_hash
from r1ci_cli.settings import first_difference
from r1ci_cli.tasks.registry import Instance, TaskFamily, select
from r1ci_cli.tasks.split import split_of

log = logging.getLogger("r1ci.gen-tasks")

POOLS = ("train", "eval")
MAX_ATTEMPTS = 200
# Exceptions from a generator on one instance's draws before the task is given up (skipped with one line).
MAX_GENERATOR_ERRORS = 20


@dataclass(frozen=True)
class GenOptions:
    sources: tuple[str, ...]
    tasks: tuple[str, ...] = ()
    split: str = "all"  # train | test | all: which tasks (the 107/37 split)
    num_per_task: int = 200
    seed: int = 0
    pool: str = "auto"  # train | eval | all | auto (eval for test-split tasks)
    difficulty: tuple[str, ...] = ()  # "knob=value" or "task.knob=value"
    data_dir: Path | None = None
    from_data: bool = False  # families with a loader take their instances from data_dir instead of generating
    exclude: tuple[str, ...] = ()  # Task files whose questions are left out (with repeats of a written question)


def pool_of(question: str) -> str:
    return POOLS[stable_hash(question) % 2]


def in_pool(question: str, pool: str) -> bool:
    """``all`` takes every question (no train/eval separation: for evaluating on published items)."""
    return pool == "all" or pool_of(question) == pool


def parse_difficulty(items: tuple[str, ...], chosen: list[TaskFamily]) -> dict[str, dict[str, Any]]:
    """``knob=value`` applies to every chosen task with that knob; ``task.knob=value`` to one task.

    Values are JSON (``3``, ``[3, 6]``, ``"hard"``); anything that is not JSON is taken as a string.
    """
    overrides: dict[str, dict[str, Any]] = {f.name: {} for f in chosen}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise R1ciError(f"--difficulty {item!r}: expected KNOB=VALUE or TASK.KNOB=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        task, dot, knob = key.strip().rpartition(".")
        targets = [f for f in chosen if (not dot or f.name == task) and knob in f.knobs]
        if not targets:
            where = f"task {task!r}" if dot else "any selected task"
            raise R1ciError(f"--difficulty {item!r}: {where} has no knob {knob!r} (see 'r1ci gen-tasks --list')")
        for family in targets:
            problem = _kind_problem(value, family.knobs[knob])
            if problem:
                raise R1ciError(f"--difficulty {item!r}: {family.name}'s knob {knob!r} {problem} "
                                f"(default {_show(family.knobs[knob])}; see 'r1ci gen-tasks --list -v')")
            overrides[family.name][knob] = value
    return overrides


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return None  # anything else (a config object, a date): the generator decides


def _kind_problem(value: Any, default: Any) -> str | None:
    """Why ``value`` cannot replace a knob whose default is ``default`` (None when it can): the same kind, or,
    for a scalar knob, a list of that kind (a range or choices sampled per instance)."""
    want = _kind(default)
    if want is None or _kind(value) == want:
        return None
    if want != "a list" and isinstance(value, list) and value and all(_kind(v) == want for v in value):
        return None
    alternatives = "" if want == "a list" else " or a list of them ([lo, hi])"
    return f"takes {want}{alternatives}, got {_show(value)}"


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _task_record(family: TaskFamily, instance: Instance, opts: GenOptions, pool: str, index: int,
                 item_seed: int, knobs: Mapping[str, Any]) -> Task:
    extra: dict[str, Any] = {"pool": pool, "index": index}
    if knobs:
        extra["difficulty"] = dict(knobs)
    return Task(
        id=f"{family.name}-{pool}-s{opts.seed}-{index:05d}",
        source=family.source,
        task=family.name,
        split=split_of(family.name),
        seed=item_seed,
        question=instance.question,
        check=dict(instance.check),
        answer=instance.answer,
        extra=extra,
    )


class GeneratorFailed(R1ciError):
    """A task's generator raised on ``MAX_GENERATOR_ERRORS`` draws of one instance: the task is skipped."""


def _draw(family: TaskFamily, opts: GenOptions, pool: str, index: int, merged: Mapping[str, Any],
          knobs: Mapping[str, Any]) -> tuple[Instance, int]:
    """Instance ``index``: the first attempt whose draw succeeds and lands in ``pool``, and its item seed.

    A generator that raises (Reasoning-Gym's ``maze`` does on some seeds) is retried with the next attempt's
    seed, so the result stays a pure function of the flags. After ``MAX_GENERATOR_ERRORS`` exceptions the task
    fails: ``GeneratorFailed`` (skipped by the caller), or, when the user's ``--difficulty`` knobs are set for
    it, an error naming them (the knobs are the likely cause).
    """
    errors = 0
    for attempt in range(MAX_ATTEMPTS):
        rng = derive_rng(opts.seed, family.name, pool, index, attempt)
        item_seed = rng.getrandbits(63)
        try:
            instance = family.generate(rng, merged)
        except Exception as err:  # noqa: BLE001 - third-party generators raise anything on an unlucky draw
            errors += 1
            log.debug("%s: instance %d, attempt %d raised %s: %s", family.name, index, attempt,
                      type(err).__name__, err)
            if errors < MAX_GENERATOR_ERRORS:
                continue
            cause = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
            if knobs:
                given = ", ".join(f"{family.name}.{k}={json.dumps(v)}" for k, v in knobs.items())
                raise R1ciError(f"--difficulty {given}: the {family.name} generator fails with these knobs "
                                f"({errors} draws of instance {index}; last: {cause})") from None
            raise GeneratorFailed(f"the generator raised on {errors} draws of instance {index} "
                                  f"(last: {cause})") from None
        if in_pool(instance.question, pool):
            return instance, item_seed
    raise R1ciError(f"{family.name}: no instance for pool {pool!r} after {MAX_ATTEMPTS} draws "
                    "(its instance space is too small at this difficulty)")


def generate_family(family: TaskFamily, opts: GenOptions, pool: str, knobs: Mapping[str, Any]) -> Iterator[Task]:
    """``opts.num_per_task`` instances of one generated family, in index order (``_draw``: retries)."""
    assert family.generate is not None
    merged = {**family.knobs, **knobs}
    for index in range(opts.num_per_task):
        instance, item_seed = _draw(family, opts, pool, index, merged, knobs)
        yield _task_record(family, instance, opts, pool, index, item_seed, knobs)


def load_family(family: TaskFamily, opts: GenOptions, pool: str) -> Iterator[Task]:
    """Instances of a data-backed family: a seeded choice among the loaded items of the requested pool."""
    assert family.load is not None
    if opts.data_dir is None:
        raise MissingData(f"{family.name} needs data: {family.needs_data} (pass --data-dir)")
    items = [item for item in family.load(Path(opts.data_dir)) if in_pool(item.question, pool)]
    order = list(range(len(items)))
    derive_rng(opts.seed, family.name, pool, "order").shuffle(order)
    if len(order) < opts.num_per_task:
        log.warning("%s: only %d %s instances in the data (asked for %d)", family.name, len(order), pool,
                    opts.num_per_task)
    for index, position in enumerate(order[: opts.num_per_task]):
        yield _task_record(family, items[position], opts, pool, index, position, {})


def select_originals(tasks: Iterable[Task], pool: str, num_per_task: int | None) -> Iterator[Task]:
    """``--symbench-dir``'s published instances under ``--pool`` (``train``/``eval`` keep that pool, as for
    generated ones; ``auto``/``all`` keep everything) and ``--num-per-task`` (the first N of each task, in the
    published order; None: all). The pool goes into ``extra`` as it does for generated instances."""
    counts: dict[str, int] = {}
    for task in tasks:
        if pool in POOLS and not in_pool(task.question, pool):
            continue
        if num_per_task is not None and counts.get(task.task, 0) >= num_per_task:
            continue
        counts[task.task] = counts.get(task.task, 0) + 1
        yield replace(task, extra={**task.extra, "pool": pool_of(task.question)})


def without_loader(opts: GenOptions) -> list[str]:
    """The selected tasks ``--from-data`` cannot serve: generated ones with no loader for ``--data-dir``."""
    return [f.name for f in chosen_families(opts) if f.load is None]


def chosen_families(opts: GenOptions) -> list[TaskFamily]:
    chosen = select(opts.tasks or None, opts.sources)
    if opts.split != "all":
        chosen = [f for f in chosen if split_of(f.name) == opts.split]
    return chosen


def generate_tasks(opts: GenOptions) -> Iterator[Task]:
    """Task records for every chosen family, family by family, minus ``opts.exclude``'s questions. Data-backed
    families without data are skipped with one log line each (never silently)."""
    tasks = _generate(opts)
    return exclude_questions(tasks, opts.exclude) if opts.exclude else tasks


def exclude_questions(tasks: Iterable[Task], paths: Sequence[str]) -> Iterator[Task]:
    """The tasks whose question is in none of ``paths`` (Task files) and not a repeat of one already passed."""
    from r1ci_cli.streams import open_records

    seen: set[str] = set()
    for path in paths:
        with open_records(path, Task) as rows:
            seen.update(row.question for row in rows)
    kept = dropped = 0
    for task in tasks:
        if task.question in seen:
            dropped += 1
            continue
        seen.add(task.question)
        kept += 1
        yield task
    if not kept:
        raise R1ciError(f"every question generated is also in {', '.join(paths)} (or repeated): nothing is left")
    log.info("--exclude: kept %d, dropped %d shared or repeated questions", kept, dropped)


def _generate(opts: GenOptions) -> Iterator[Task]:
    chosen = chosen_families(opts)
    if not chosen:
        raise R1ciError("no task matches the selection (see 'r1ci gen-tasks --list')")
    overrides = parse_difficulty(opts.difficulty, chosen)
    for family in chosen:
        pool = opts.pool if opts.pool != "auto" else ("eval" if split_of(family.name) == "test" else "train")
        if family.generate is not None and not (opts.from_data and family.load is not None):
            written = 0
            try:
                for task in generate_family(family, opts, pool, overrides[family.name]):
                    written += 1
                    yield task
            except GeneratorFailed as err:
                log.warning("skipping %s: %s%s", family.name, err,
                            f"; its first {written} instances are written" if written else "")
            continue
        try:
            yield from load_family(family, opts, pool)
        except MissingData as err:
            log.warning("skipping %s: %s", family.name, err)


@dataclass(frozen=True)
class ListRow:
    task: str
    source: str
    split: str
    generator: bool
    reference: str
    data: str
    knobs: dict[str, Any] = field(default_factory=dict)
    slow: bool = False


def list_rows(opts: GenOptions) -> list[ListRow]:
    return [
        ListRow(f.name, f.source, split_of(f.name), f.has_generator, f.reference_kind, f.needs_data or "-",
                dict(f.knobs), f.slow)
        for f in chosen_families(opts)
    ]


def format_table(rows: list[ListRow], knobs: bool = False) -> str:
    """The ``--list`` table; with ``knobs`` (``--list -v``) each task's difficulty knobs and their defaults
    follow its row, as ``--difficulty`` takes them."""
    header = ("task", "source", "split", "generator", "reference", "data needed")
    body = [(r.task + (" (slow)" if r.slow else ""), r.source, r.split, "yes" if r.generator else "no",
             r.reference, r.data) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in (header,)]
    for row, cells in zip(rows, body):
        lines.append("  ".join(str(x).ljust(w) for x, w in zip(cells, widths)).rstrip())
        if knobs and row.knobs:
            lines.append("    knobs: " + ", ".join(f"{k}={_show(v)}" for k, v in row.knobs.items()))
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts.setdefault(r.source, {"train": 0, "test": 0})[r.split] += 1
    summary = ", ".join(f"{src} {c['train']}/{c['test']}" for src, c in counts.items())
    lines.append(f"{len(rows)} tasks (train/test): {summary}")
    return "\n".join(lines) + "\n"


def _short(value: Any, limit: int = 80) -> str:
    text = _show(value)
    return text if len(text) <= limit else text[:limit] + "…"


def check_frozen(path: str, opts: GenOptions) -> int:
    """Compare a frozen instance file with a fresh generation under the same flags; raise on the first difference,
    naming its line and field (dotted for nested ones, e.g. ``check.numbers``)."""
    import itertools

    import orjson

    from r1ci_cli.streams import read_dicts

    count = 0
    for stored, fresh in itertools.zip_longest(read_dicts(path), generate_tasks(opts)):
        if stored is None:
            raise R1ciError(f"{path}: ends after {count} records; the flags generate more (next: {fresh.id})")
        line, record = stored
        if fresh is None:
            raise R1ciError(f"{path}:{line}: extra record {record.get('id')!r}; the flags generate {count}")
        regenerated = orjson.loads(orjson.dumps(fresh.to_dict()))
        difference = first_difference(record, regenerated)
        if difference is not None:
            name, stored_value, fresh_value = difference
            raise R1ciError(f"{path}:{line}: field '{name}' of record {record.get('id')!r} differs from a fresh "
                            f"generation: {_short(stored_value)} stored, {_short(fresh_value)} now")
        count += 1
    log.info("%s: all %d records match a fresh generation", path, count)
    return count
