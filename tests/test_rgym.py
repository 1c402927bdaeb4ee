"""Reasoning-Gym families: the committed selection, verifier strictness, knobs, and determinism across processes."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import orjson
import pytest

from r1ci_cli.answer import extract_answer
from r1ci_cli.errors import R1ciError
from r1ci_cli.seeds import derive_rng
from r1ci_cli.tasks.rgym_codec import canonical_json, decode, encode
from r1ci_cli.tasks.rgym_perturb import wrong_answers

ROOT = Path(__file__).resolve().parents[1]
SELECTION = json.loads((ROOT / "r1ci_cli" / "tasks" / "rgym_selection.json").read_text())
SELECTED = SELECTION["selected"]
REUSABLE_NAMES = {"arc_agi", "figlet_font", "group_anagrams", "spell_backward"}
# Reasoning-Gym's adaptations of SymBench tasks (their module docstrings cite CodeSteer/SymBench).
SYMBENCH_ADAPTATIONS = {"string_insertion", "string_splitting", "string_synthesis", "string_manipulation",
                        "mahjong_puzzle"}
BBH_TASKS = {
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
    "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
    "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
    "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
    "word_sorting",
}
SYMBENCH_TASKS = {
    "blocksworld", "boxlift", "boxnet", "combinatorial_calculation", "constrained_linear_arrangement",
    "cryptanalysis", "eight_queens", "game2048", "game24", "letter_logic_diagram", "letters", "light_puzzles",
    "logic_puzzle", "logical_equation", "mahjong_pattern", "matrix_transformation", "new_operator",
    "number_multiply", "pattern_recognition", "permutations_and_combinations", "pooling", "reversi",
    "standard_sudoku", "statistical_counting", "string_deletion_and_modification", "string_insertion",
    "string_splitting", "string_synthesis", "synthesis_decomposition",
}
# Texts no dataset accepts as an answer, and plausible-looking ones that may happen to be right ("0").
NON_ANSWERS = ["", " ", "{", "<<<>>>", "\x00\ud7ff", "é" * 50, "1" * 20_000, "a b\n" * 3_000]
PLAUSIBLE = ["x", "0", "None", "[]", "True"]


@pytest.fixture(scope="module")
def rgym():
    from r1ci_cli.tasks import rgym as module

    return module


@pytest.fixture(scope="module")
def families(rgym):
    return {f.name: f for f in rgym.FAMILIES}


# ------------------------------------------------------------------------------------------- selection

def test_selection_has_84_and_21_reasons(rgym):
    excluded = SELECTION["excluded"]
    assert len(SELECTED) == 84 == len(set(SELECTED))
    assert len(excluded) == 21
    assert not set(SELECTED) & set(excluded)
    assert sorted(SELECTED + list(excluded)) == rgym.dataset_names()
    assert all(isinstance(r, str) and len(r) > 10 for r in excluded.values())


def test_selection_matches_the_installed_reasoning_gym(rgym):
    from importlib.metadata import version

    assert version("reasoning-gym") == SELECTION["reasoning_gym_version"]
    assert set(SELECTION["rates_per_s"]) == set(rgym.dataset_names())


def test_selection_has_no_symbench_or_bbh_duplicates():
    assert not set(SELECTED) & SYMBENCH_ADAPTATIONS
    assert not set(SELECTED) & SYMBENCH_TASKS
    assert not set(SELECTED) & BBH_TASKS


def test_slow_families_are_selected_and_flagged(families):
    assert set(SELECTION["slow"]) <= set(SELECTED)
    assert {n for n, f in families.items() if f.slow} == set(SELECTION["slow"])


def test_registry_loads_the_selection(rgym):
    from r1ci_cli.tasks import registry

    names = [f.name for f in registry.families(["rgym"])]
    assert names == sorted(SELECTED)
    fam = registry.get_family(SELECTED[0], "rgym")
    assert fam.source == "rgym" and fam.reference_kind == "stored" and fam.has_generator


# ---------------------------------------------------------------------------------------- per dataset

@pytest.mark.filterwarnings("ignore::UserWarning")  # pool_matrix's raw scorer warns on non-grid text
@pytest.mark.parametrize("name", SELECTED)
def test_stored_answer_verifies_and_near_misses_fail(name, families, rgym):
    family = families[name]
    inst = family.generate(derive_rng(3, "rgym-test", name), family.knobs)
    orjson.dumps({"check": inst.check, "answer": inst.answer})  # the record writer must accept it
    answer = decode(inst.answer)
    shown = extract_answer(f"some reasoning <<<{answer}>>>")
    assert family.verify(inst, shown) is True
    wrong = family.perturb(inst, answer, random.Random(0))
    assert len(wrong) >= 2
    # verify agrees with score_answer on the untouched entry (not the JSON round trip) for every text
    original = rgym.make_entry(name, inst.check["config"], inst.check["seed"], reuse=name in rgym.REUSABLE)
    scorer = rgym._loaded(name, "{}")
    for text in [shown, *wrong, *NON_ANSWERS, *PLAUSIBLE]:
        try:
            want = float(scorer.score_answer(text, original)) == 1.0
        except Exception:  # noqa: BLE001 - a raising scorer means wrong
            want = False
        assert family.verify(inst, text) is want, text[:60]
    assert not any(family.verify(inst, w) for w in wrong)
    assert not any(family.verify(inst, j) for j in NON_ANSWERS)


def test_reusable_list_is_the_one_tested(rgym):
    assert rgym.REUSABLE == REUSABLE_NAMES and REUSABLE_NAMES <= set(SELECTED)


@pytest.mark.parametrize("name", sorted(REUSABLE_NAMES))
def test_reused_dataset_objects_give_fresh_entries(name, rgym):
    for index in range(2):
        seed = derive_rng(5, name, index).getrandbits(31)
        reused = rgym.make_entry(name, {}, seed, reuse=True)
        assert canonical_json(reused) == canonical_json(rgym.make_entry(name, {}, seed, reuse=False))



@pytest.mark.parametrize("today", [(2020, 2, 29), (2031, 12, 31)])
def test_entries_do_not_depend_on_the_day(today, rgym, monkeypatch):
    """time_intervals parses time-only strings with dateutil, which fills in today's date: the same seed must
    give the same entry whatever day it is (the golden hashes broke a week after they were recorded)."""
    import datetime

    import dateutil.parser._parser as dateutil_parser

    def entries() -> list[str]:
        return [canonical_json(rgym.make_entry("time_intervals", {}, derive_rng(3, "ti", i).getrandbits(31)))
                for i in range(12)]

    before = entries()

    class OtherDay(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(*today, 9, 30)

    monkeypatch.setattr(dateutil_parser.datetime, "datetime", OtherDay)
    assert entries() == before

_RUN_ALL = """
import contextlib, io, json, sys
outs = []
for source in json.load(sys.stdin):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(source, "<reference>", "exec"), {"__name__": "__main__"})
    outs.append(buffer.getvalue())
sys.stdout.write(json.dumps(outs))
"""


def test_reference_programs_print_the_stored_answer(families):
    # One isolated interpreter (-I: no site, no project path) runs every program: each is self-contained.
    insts = {n: f.generate(derive_rng(4, "rgym-ref", n), f.knobs) for n, f in families.items()}
    sources = [families[n].reference_program(inst) for n, inst in insts.items()]
    proc = subprocess.run([sys.executable, "-I", "-c", _RUN_ALL], input=json.dumps(sources), capture_output=True,
                          text=True, timeout=120, check=True)
    for (name, inst), stdout in zip(insts.items(), json.loads(proc.stdout), strict=True):
        assert families[name].verify(inst, extract_answer(f"<<<{stdout}>>>")), name


# ---------------------------------------------------------------------------------------------- knobs

def test_knobs_are_reasoning_gym_defaults(rgym, families):
    from reasoning_gym.factory import DATASETS

    family = families["basic_arithmetic"]
    _, config_cls = DATASETS["basic_arithmetic"]
    assert family.knobs["max_terms"] == config_cls().max_terms
    assert "seed" not in family.knobs and "size" not in family.knobs
    orjson.dumps([f.knobs for f in families.values()])


def test_difficulty_override_reaches_the_generator(families):
    family = families["basic_arithmetic"]
    knobs = {**family.knobs, "min_terms": 5, "max_terms": 5, "operators": ["+"]}
    inst = family.generate(random.Random(1), knobs)
    assert inst.check["config"] == {"max_terms": 5, "min_terms": 5, "operators": ["+"]}
    entry = decode(inst.check["entry"])
    assert entry["metadata"]["num_terms"] == 5
    assert "*" not in entry["metadata"]["expression"] and "/" not in entry["metadata"]["expression"]
    assert family.verify(inst, str(decode(inst.answer)))


def test_unknown_knob_is_a_user_error(families):
    family = families["basic_arithmetic"]
    with pytest.raises(R1ciError, match="unknown difficulty knob"):
        family.generate(random.Random(1), {**family.knobs, "no_such_knob": 3})


def test_invalid_knob_value_is_a_user_error(families):
    family = families["basic_arithmetic"]
    with pytest.raises(R1ciError, match="invalid difficulty"):
        family.generate(random.Random(1), {**family.knobs, "min_terms": 0})


def test_tuple_knobs_are_lists_and_restored(rgym):
    from reasoning_gym.factory import DATASETS

    for name in SELECTED:
        _, config_cls = DATASETS[name]
        for key, value in rgym.default_knobs(name).items():
            assert not isinstance(value, tuple)
            if isinstance(getattr(config_cls(), key), tuple):
                config = rgym.make_config(name, {key: value}, 0)
                assert getattr(config, key) == getattr(config_cls(), key)


# ---------------------------------------------------------------------------------------- determinism

def test_generation_and_scoring_keep_stdout_clean(families, capsys):
    family = families["bf"]  # its compiler prints progress dots
    inst = family.generate(random.Random(5), family.knobs)
    family.verify(inst, str(decode(inst.answer)))
    assert capsys.readouterr().out == ""


def test_acre_keeps_reasoning_gyms_question_mix(rgym):
    from reasoning_gym.factory import DATASETS

    dataset_cls, config_cls = DATASETS["acre"]
    entry = rgym.make_entry("acre", {}, 77)
    assert entry == dataset_cls(config=config_cls(seed=77, size=5))[0]


def test_same_rng_gives_same_instance(families):
    family = families[SELECTED[0]]
    first = family.generate(random.Random(9), family.knobs)
    second = family.generate(random.Random(9), family.knobs)
    assert orjson.dumps(first.__dict__) == orjson.dumps(second.__dict__)
    other = family.generate(random.Random(10), family.knobs)
    assert other.check["seed"] != first.check["seed"]


_DIGEST_SCRIPT = """
import hashlib, sys, orjson
from r1ci_cli.seeds import derive_rng
from r1ci_cli.tasks import rgym
h = hashlib.sha256()
for family in rgym.FAMILIES:
    inst = family.generate(derive_rng(11, family.name, 0), family.knobs)
    h.update(orjson.dumps([family.name, inst.question, inst.check, inst.answer]))
sys.stdout.write(h.hexdigest())
"""


def test_generation_is_identical_under_different_hash_seeds():
    procs = [subprocess.Popen([sys.executable, "-c", _DIGEST_SCRIPT], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)})
             for seed in ("0", "4242")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    assert outs[0][0] == outs[1][0] and len(outs[0][0]) == 64


# ---------------------------------------------------------------------------------------------- codec

@pytest.mark.parametrize("value", [
    (1, (2, 3)), {1, 2, 3}, frozenset({"a"}), {(0, 1): "x", 2: [3]}, 2**80, -(2**70), math.inf, Fraction(3, 7),
    {"nested": [{"t": (1,)}, {"s": {4, 5}}]}, [], {}, None, "text", 1.5,
])
def test_codec_round_trips(value):
    encoded = encode(value)
    assert decode(orjson.loads(orjson.dumps(encoded))) == value


def test_codec_handles_numpy_and_nan():
    arr = np.arange(6, dtype=np.int64).reshape(2, 3)
    back = decode(orjson.loads(orjson.dumps(encode({"a": arr, "s": np.int32(4), "b": np.bool_(True)}))))
    assert np.array_equal(back["a"], arr) and back["a"].dtype == arr.dtype
    assert back["s"] == 4 and back["b"] is True
    assert math.isnan(decode(orjson.loads(orjson.dumps(encode(float("nan"))))))


def test_codec_sets_are_canonical():
    a, b = set(), set()
    for x in ["b", "a", "c"]:
        a.add(x)
    for x in ["c", "b", "a"]:
        b.add(x)
    assert canonical_json(a) == canonical_json(b)


def test_codec_refuses_unknown_types_and_the_tag_key():
    with pytest.raises(TypeError):
        encode(object())
    with pytest.raises(TypeError):
        encode({"__rgym__": 1})


# -------------------------------------------------------------------------------------------- perturb

def test_wrong_answers_are_filtered_by_the_checker():
    rejected = wrong_answers("12 34", random.Random(0), lambda text: text != "12 34" and "3" in text)
    assert len(rejected) >= 2 and all("3" in t and t != "12 34" for t in rejected)


def test_wrong_answers_fall_back_when_edits_stay_correct():
    correct = "aa"
    rejected = wrong_answers(correct, random.Random(0), lambda text: len(text) != 2)
    assert len(rejected) >= 2 and all(len(t) != 2 for t in rejected)


def test_verify_never_raises_on_a_raising_scorer(families, caplog):
    family = families[SELECTED[0]]
    inst = family.generate(random.Random(2), family.knobs)
    broken = type(inst)(question=inst.question, check={**inst.check, "entry": {"__rgym__": "bogus"}},
                        answer=inst.answer)
    assert family.verify(broken, str(decode(inst.answer))) is False
    assert "counted as wrong" in caplog.text
