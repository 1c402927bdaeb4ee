"""Properties of every generated SymBench family, and the helpers they share (``sampling``, ``parsers``,
``numbers``). Reference programs in the sandbox, perturbations, the registry-wide malformed answers and golden
hashes are tests/test_task_families.py's; task-specific rules and the reference data are in
tests/test_symbench_a.py and tests/test_symbench_b.py."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1ci_cli.errors import R1ciError
from r1ci_cli.seeds import derive_rng
from r1ci_cli.tasks.registry import Instance, TaskFamily, families
from r1ci_cli.tasks.symbench import combinatorial_calculation, eight_queens, number_multiply, standard_sudoku
from r1ci_cli.tasks.symbench.numbers import close, parse_exact
from r1ci_cli.tasks.symbench.parsers import parse_int_list, parse_str_list, to_int
from r1ci_cli.tasks.symbench.sampling import attempts, knob

FAMILIES = [f for f in families() if f.source == "symbench" and f.generate is not None]
IDS = [f.name for f in FAMILIES]

# Answers shaped like the SymBench formats but wrong for every instance (the registry-wide list is in
# test_task_families.py).
MALFORMED = ["", " ", "abc", "[]", "[[", "]]", "None", "null", "1e999", "nan", "((", "{}", "\x00", "9" * 5000,
             "[[1, 2], [3]]", "[{}]", "{'a': 1}", "__import__('os').system('true')", "Step 1: [(",
             "Move A from stack1", "[{\"Agent[0.5, 0.5]\": 3}]", "[[1, 'x']]", "1/0", "((((((((1))))))))"]
FUZZ_ALPHABET = "0123456789-+*/.,;:()[]{}'\" \n_=#<>eEnaxAgtStepMovfrckbqus"

# Knob ranges the generators must handle (the defaults are covered for every family).
KNOB_STRATEGIES = {
    "eight_queens": st.fixed_dictionaries({"size": st.integers(4, 12), "num_placed": st.integers(0, 4),
                                           "num_blocked": st.integers(0, 8)}),
    "combinatorial_calculation": st.fixed_dictionaries({"num_numbers": st.integers(3, 12), "min_target": st.just(10),
                                                        "max_target": st.sampled_from([100, 300, 500])}),
    "letter_logic_diagram": st.fixed_dictionaries({"num_blanks": st.integers(0, 49)}),
    "reversi": st.fixed_dictionaries({"size": st.sampled_from([4, 6, 8]), "num_moves": st.integers(1, 5),
                                      "prior_moves": st.integers(0, 6)}),
    "game2048": st.fixed_dictionaries({"size": st.integers(2, 6), "num_moves": st.integers(1, 8),
                                       "max_exponent": st.integers(1, 6), "empty_fraction": st.just(0.3)}),
    "permutations_and_combinations": st.fixed_dictionaries({"num_books": st.integers(3, 9),
                                                            "extra_constraints": st.integers(0, 3)}),
}


def _instances(family: TaskFamily, count: int) -> list[Instance]:
    return [family.generate(derive_rng(0, "test_symbench_properties", family.name, i), family.knobs)
            for i in range(count)]


@functools.lru_cache(maxsize=None)
def _one_instance(name: str) -> Instance:
    family = next(f for f in FAMILIES if f.name == name)
    return _instances(family, 1)[0]


def _run_in_process(source: str) -> str:
    """Our own reference program's answer, run in this process (fast, for property tests only)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<reference>", "exec"), {"__name__": "__main__"})  # noqa: S102 - our generated code
    return out.getvalue().strip()


# --------------------------------------------------------------------------------------- every family

@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_questions_ask_for_the_answer_span_and_generation_is_deterministic(family: TaskFamily) -> None:
    first, again = _instances(family, 3), _instances(family, 3)
    assert [(i.question, i.check, i.answer) for i in first] == [(i.question, i.check, i.answer) for i in again]
    for inst in first:
        assert "<<<" in inst.question.splitlines()[-1] or "<<<" in inst.question[-400:]
        json.dumps(inst.check)
        json.dumps(inst.answer)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_malformed_answers_rejected_without_exceptions(family: TaskFamily) -> None:
    for inst in _instances(family, 3):
        for text in MALFORMED:
            assert family.verify(inst, text) is False, (family.name, text[:50])


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(text=st.one_of(st.text(alphabet=FUZZ_ALPHABET, max_size=80), st.text(max_size=200),
                      st.from_regex(r"\[[0-9, ()+*/\-]{0,40}\]", fullmatch=True)))
def test_verifiers_never_raise_on_arbitrary_text(family: TaskFamily, text: str) -> None:
    assert family.verify(_one_instance(family.name), text) in (True, False)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32), data=st.data())
def test_generated_instances_are_solvable(family: TaskFamily, seed: int, data) -> None:
    knobs = dict(family.knobs)
    if family.name in KNOB_STRATEGIES:
        knobs.update(data.draw(KNOB_STRATEGIES[family.name]))
    inst = family.generate(random.Random(seed), knobs)
    answer = _run_in_process(family.reference_program(inst))
    assert family.verify(inst, answer), (family.name, answer[:200])
    if inst.answer is not None:  # unique-answer families: the canonical answer is the reference's
        assert family.verify(inst, inst.answer if isinstance(inst.answer, str) else json.dumps(inst.answer))


# --------------------------------------------------------------------------------------- shared helpers

def test_knob_sampling_and_bad_knobs() -> None:
    rng = random.Random(0)
    assert {knob(rng, {"k": [2, 4]}, "k") for _ in range(200)} == {2, 3, 4}
    assert knob(rng, {"k": 5}, "k") == 5
    assert knob(rng, {"k": [[1, 2], [3, 4]]}, "k") in ([1, 2], [3, 4])
    inst = number_multiply.generate(rng, {"digits": [3, 3, 3], "negative_prob": 0.0})
    assert [len(str(abs(v))) for v in inst.check["numbers"]] == [3, 3, 3]
    with pytest.raises(R1ciError):
        eight_queens.generate(rng, {**eight_queens.FAMILY.knobs, "size": 3})
    with pytest.raises(R1ciError):
        standard_sudoku.generate(rng, {"num_blanks": 70})
    with pytest.raises(R1ciError):
        combinatorial_calculation.generate(rng, {"num_numbers": 2, "min_target": 500, "max_target": 600})


def test_attempts_give_up_with_one_line_naming_task_and_knobs() -> None:
    assert list(zip(range(5), attempts("t", limit=5))) == [(k, k) for k in range(5)]
    with pytest.raises(R1ciError, match=r"^game24: no valid instance in 3 tries with knobs \{'target': 9\}; relax"):
        for _ in attempts("game24", {"target": 9}, limit=3):
            pass


def test_one_integer_rule() -> None:
    assert [to_int(v) for v in (3, " -2 ", 4.0, Fraction(6, 2), "7")] == [3, -2, 4, 3, 7]
    assert [to_int(v) for v in (True, 2.5, Fraction(1, 2), "1.0", "x", None, [1])] == [None] * 7
    assert parse_int_list("[1, 0, 2]") == parse_int_list("1 0 2") == parse_int_list('["1", "0", "2"]') == [1, 0, 2]
    assert parse_int_list("[1.0, 2]") is None and parse_int_list("[True]") is None and parse_int_list("") is None
    assert parse_str_list("A, B") == parse_str_list("['A', 'B']") == ["A", "B"] and parse_str_list("[[1]]") is None


def test_exact_numbers_and_rounding() -> None:
    assert parse_exact("1e3") == 1000 and parse_exact("7/2") == Fraction(7, 2) and parse_exact("x") is None
    assert close(Fraction("1.67"), Fraction(5, 3)) and not close(Fraction("1.7"), Fraction(5, 3))
