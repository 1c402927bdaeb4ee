"""Reasoning-Gym tasks: 84 of reasoning-gym 0.1.25's procedural datasets, wrapped as task families.

The generators and scorers are Reasoning-Gym's own; this module only adapts them to the registry contract
(registry.py):

* ``generate(rng, knobs)`` draws one dataset seed from the private ``rng`` and builds the dataset with
  ``size=1`` (the per-instance seed therefore comes from the caller's (seed, task, index) coordinates, not
  from loop order), takes entry 0 and stores it in ``check`` in the faithful JSON form of rgym_codec.
* ``verify(instance, answer)`` rebuilds the entry and calls the dataset's ``score_answer``; an answer is
  correct only at score 1.0 (docs/paper.md "Tasks"). It never raises: a scorer exception is logged and counts
  as wrong. It is not protected against a scorer that *hangs* on some answer (none did in the survey).
* ``reference_program`` prints the stored answer (``reference_kind="stored"``): the generator is not ours.
* ``perturb`` makes wrong answers by generic edits and keeps only those the scorer really rejects.

Knobs are the fields of the dataset's config dataclass except ``seed`` and ``size``, with Reasoning-Gym's
defaults; tuples appear as lists and are turned back into tuples for the config. Which datasets are used
and why the others are not is data: rgym_selection.json, made from bench/rgym_survey.py's measurements.

Not handled: a scorer that hangs; third-party output on file descriptor 1 (Python-level prints, such as
bf's compiler's progress dots, are kept off stdout, which carries records). pool_matrix seeds numpy's
*global* RNG as a side effect; nothing in r1ci draws from it.

Importing this module imports reasoning_gym (a few seconds); the registry imports it only on demand.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import functools
import io
import json
import logging
import random
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import reasoning_gym  # noqa: F401  (registers every dataset in reasoning_gym.factory.DATASETS)
from reasoning_gym.factory import DATASETS

from r1ci_cli.errors import R1ciError
from r1ci_cli.tasks.registry import Instance, TaskFamily, print_stored
from r1ci_cli.tasks.rgym_codec import decode, encode
from r1ci_cli.tasks.rgym_perturb import wrong_answers

log = logging.getLogger("r1ci.tasks.rgym")

SELECTION_FILE = Path(__file__).with_name("rgym_selection.json")
# "composite" mixes other datasets by weight; it is a combinator, not one of the 105 datasets.
NOT_DATASETS = frozenset({"composite"})
# pool_matrix feeds ``seed + idx`` (idx is 0 here) to numpy's legacy seeding, which takes < 2**32; every other
# selected dataset also accepts 63-bit seeds (measured). Two equal seeds among N instances of a task: ~N**2/2**33.
SEED_BITS = 32
INSTRUCTION = "\n\nGive your final answer in the form <<<answer>>>."
_CONFIG_FIXED = ("seed", "size")


def dataset_names() -> list[str]:
    """Every Reasoning-Gym dataset name (105 in 0.1.25), sorted."""
    return sorted(n for n in DATASETS if n not in NOT_DATASETS)


def load_selection(path: Path = SELECTION_FILE) -> dict[str, Any]:
    """The committed selection: ``selected`` names, ``excluded`` {name: reason}, ``slow`` names, rates."""
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ knobs

def _config_fields(name: str) -> dict[str, dataclasses.Field]:
    _, config_cls = DATASETS[name]
    return {f.name: f for f in dataclasses.fields(config_cls) if f.init and f.name not in _CONFIG_FIXED}


def _to_knob(value: Any) -> Any:
    """A config value as a knob: tuples become lists so knobs read like plain JSON."""
    if isinstance(value, tuple | list):
        return [_to_knob(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_knob(v) for k, v in value.items()}
    return value


def _from_knob(value: Any, default: Any) -> Any:
    """A knob value in the config's own shape (a list given for a tuple default becomes a tuple)."""
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(_from_knob(v, default[i] if i < len(default) else None) for i, v in enumerate(value))
    return value


def default_knobs(name: str) -> dict[str, Any]:
    """Reasoning-Gym's default config values for ``name``, without ``seed`` and ``size``."""
    _, config_cls = DATASETS[name]
    defaults = config_cls()
    return {k: _to_knob(getattr(defaults, k)) for k in _config_fields(name)}


def _config_defaults(name: str) -> dict[str, Any]:
    _, config_cls = DATASETS[name]
    defaults = config_cls()
    return {k: getattr(defaults, k) for k in _config_fields(name)}


def config_overrides(name: str, knobs: Mapping[str, Any]) -> dict[str, Any]:
    """The knobs that differ from the defaults (what ``check`` records), after validating their names."""
    defaults = default_knobs(name)
    unknown = sorted(set(knobs) - set(defaults))
    if unknown:
        raise R1ciError(f"{name}: unknown difficulty knob(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(defaults)) or 'none'}")
    return {k: _to_knob(v) for k, v in sorted(knobs.items()) if _to_knob(v) != defaults[k]}


def make_config(name: str, overrides: Mapping[str, Any], seed: int, size: int = 1) -> Any:
    """The dataset's config dataclass with ``overrides`` applied; a value the config rejects is an R1ciError."""
    _, config_cls = DATASETS[name]
    defaults = _config_defaults(name)
    values = {k: _from_knob(v, defaults[k]) for k, v in overrides.items()}
    try:
        config = config_cls(seed=seed, size=size, **values)
        if hasattr(config, "validate"):
            config.validate()
    except (AssertionError, ValueError, TypeError) as err:
        raise R1ciError(f"{name}: invalid difficulty {dict(overrides)}: {err or type(err).__name__}") from None
    return config


# ------------------------------------------------------------------------------------------- generation

# Datasets whose __init__ only loads bundled data (0.4-1 s each) and reads no seed, checked against 0.1.25's
# source: one loaded object per config is re-seeded per instance instead of being rebuilt. test_rgym checks
# that a re-seeded object gives the same entry as a fresh one. Every other dataset is built fresh.
REUSABLE = frozenset({"arc_agi", "figlet_font", "group_anagrams", "spell_backward"})


# acre makes its whole question list in __init__ as 60% IID, 20% compositional and 20% systematic questions,
# rounded down per kind and shuffled with the seed: at size 1 every question would be systematic. Entry 0 of
# a size-5 list (3/1/1) keeps Reasoning-Gym's mix.
BUILD_SIZE = {"acre": 5}


@functools.lru_cache(maxsize=256)
def _loaded(name: str, overrides_json: str) -> Any:
    """One dataset object per (dataset, config); it scores answers and, for REUSABLE ones, generates."""
    dataset_cls, _ = DATASETS[name]
    return dataset_cls(config=make_config(name, json.loads(overrides_json), seed=0))


@contextlib.contextmanager
def _quiet_stdout(name: str) -> Iterator[None]:
    """Keep third-party prints off stdout, which carries records only (bf's compiler prints progress dots).

    Python-level only (the survey saw no selected dataset write to file descriptor 1 directly), and
    process-global like every ``sys.stdout`` swap: not for concurrent threads.
    """
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue():
        log.debug("%s printed %d characters to stdout; discarded", name, len(buffer.getvalue()))


# time_intervals reads the clock: it parses its time-only strings with dateutil, which fills in today's date,
# and that date lands in the stored entry (metadata start_time/end_time), so one seed gave other bytes on another
# day. Its generation runs with dateutil's default date pinned to this day (any fixed day would do; this one
# keeps the instances recorded in tests/golden/task_hashes.json).
PINNED_DAY = {"time_intervals": datetime.datetime(2026, 11, 30)}


@contextlib.contextmanager
def _pinned_clock(name: str) -> Iterator[None]:
    """Generation of ``name`` with dateutil's default date pinned (module-global, like ``_quiet_stdout``)."""
    if name not in PINNED_DAY:
        yield
        return
    module = sys.modules[DATASETS[name][0].__module__]
    real_parser, day = module.parser, PINNED_DAY[name]

    class PinnedParser:
        @staticmethod
        def parse(text: str, **kwargs: Any) -> datetime.datetime:
            kwargs.setdefault("default", day)
            return real_parser.parse(text, **kwargs)

    module.parser = PinnedParser
    try:
        yield
    finally:
        module.parser = real_parser


def make_entry(name: str, overrides: Mapping[str, Any], seed: int, reuse: bool = True) -> dict[str, Any]:
    """Reasoning-Gym's entry 0 of ``name`` built with ``seed`` and the config ``overrides``."""
    dataset_cls, _ = DATASETS[name]
    with _quiet_stdout(name), _pinned_clock(name):
        if reuse and name in REUSABLE:
            loaded = _loaded(name, json.dumps(dict(overrides), sort_keys=True))
            dataset = copy.copy(loaded)  # shares the read-only loaded data; the cached object stays untouched
            dataset.config = dataclasses.replace(loaded.config, seed=seed)
            dataset.seed = seed
            return dataset[0]
        return dataset_cls(config=make_config(name, overrides, seed, BUILD_SIZE.get(name, 1)))[0]


def generate_instance(name: str, rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    overrides = config_overrides(name, knobs)
    seed = rng.getrandbits(SEED_BITS)
    entry = make_entry(name, overrides, seed)
    check = {"dataset": name, "seed": seed, "config": overrides, "entry": encode(entry)}
    return Instance(question=entry["question"].rstrip() + INSTRUCTION, check=check, answer=encode(entry["answer"]))


# ----------------------------------------------------------------------------------------------- checks

def raw_score(instance: Instance, answer: str) -> float:
    """Reasoning-Gym's own score of ``answer`` (may raise: the scorer is third-party code)."""
    check = instance.check
    # score_answer is a method, and a few scorers read their config: score with a dataset of the same config.
    scorer = _loaded(check["dataset"], json.dumps(check.get("config", {}), sort_keys=True))
    with _quiet_stdout(check["dataset"]), warnings.catch_warnings():
        # pool_matrix's scorer warns (numpy loadtxt) on every non-grid answer: noise, not news, in a rollout log.
        warnings.simplefilter("ignore")
        return float(scorer.score_answer(answer, decode(check["entry"])))


def verify_instance(instance: Instance, answer: str) -> bool:
    """True only when ``score_answer`` gives exactly 1.0; never raises."""
    try:
        return raw_score(instance, answer) == 1.0
    except Exception as err:  # noqa: BLE001 - third-party scorers raise on odd text; that answer is wrong
        log.warning("%s: score_answer raised %s on answer %.80r; counted as wrong",
                    instance.check.get("dataset"), type(err).__name__, answer)
        return False


def reference_program(instance: Instance) -> str:
    return print_stored(decode(instance.answer))


def perturb(instance: Instance, correct_answer: str, rng: random.Random) -> list[str]:
    """At least two answers near ``correct_answer`` that the scorer rejects (checked, not assumed)."""
    return wrong_answers(correct_answer, rng, lambda text: not verify_instance(instance, text))


# --------------------------------------------------------------------------------------------- families

def _description(name: str) -> str:
    dataset_cls, _ = DATASETS[name]
    doc = (dataset_cls.__doc__ or "").strip().splitlines()
    return f"Reasoning-Gym {name}" + (f": {doc[0].strip()}" if doc else "")


def make_family(name: str, slow: bool = False) -> TaskFamily:
    """A task family for any Reasoning-Gym dataset (the survey also wraps the excluded ones)."""
    if name not in DATASETS or name in NOT_DATASETS:
        raise R1ciError(f"unknown Reasoning-Gym dataset {name!r}")
    return TaskFamily(
        name=name,
        source="rgym",
        generate=functools.partial(generate_instance, name),
        verify=verify_instance,
        reference_program=reference_program,
        reference_kind="stored",
        knobs=default_knobs(name),
        perturb=perturb,
        description=_description(name),
        slow=slow,
    )


def _families() -> list[TaskFamily]:
    selection = load_selection()
    slow = set(selection.get("slow", ()))
    return [make_family(name, slow=name in slow) for name in selection["selected"]]


FAMILIES = _families()
