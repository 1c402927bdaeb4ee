"""Answer extraction (last <<<…>>> span) and normalisers: exact on good text, None on anything else."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1ci_cli import answer


def test_last_span_counts():
    assert answer.extract_answer("first <<<1>>> then\n<<< [1, 2] >>>") == "[1, 2]"
    assert answer.extract_answer("no span") is None
    assert answer.extract_answer("<<<multi\nline>>>") == "multi\nline"
    assert answer.extract_answer("closing: <<<] ) >>>>") == "] ) >"
    assert answer.extract_answer("<<<" + "9" * 30_000 + ">>>") is None


@pytest.mark.parametrize(("text", "value"), [
    ("42", Fraction(42)), ("-3.5", Fraction(-7, 2)), ("1,234", Fraction(1234)), ("7/2", Fraction(7, 2)),
    ("$12", Fraction(12)), ("'5'", Fraction(5)), ("1e3", 1000.0), ("answer: 8", Fraction(8)),
])
def test_parse_number(text, value):
    assert answer.parse_number(text) == value


@pytest.mark.parametrize("text", ["abc", "1,23", "1/0", "", "12 apples and 3", "1e999"])
def test_parse_number_rejects(text):
    assert answer.parse_number(text) is None


@pytest.mark.parametrize(("text", "letter"), [
    ("(C)", "C"), ("C", "C"), ("c)", "C"), ("Option B", "B"), ("(A) the red one", "A"), ("D.", "D"),
])
def test_parse_option(text, letter):
    assert answer.parse_option(text) == letter


@pytest.mark.parametrize("text", ["Cat", "Answer", "(Z)", "", "(AB)"])
def test_parse_option_rejects(text):
    assert answer.parse_option(text) is None


def test_lists_and_matrices():
    assert answer.parse_list("[1, 2, 3]") == [1, 2, 3]
    assert answer.parse_list("a, b, c") == ["a", "b", "c"]
    assert answer.parse_matrix("[[1, 2], [3, 4]]") == [[1, 2], [3, 4]]
    assert answer.parse_matrix("1 2\n3 4") == [["1", "2"], ["3", "4"]]
    assert answer.parse_matrix("1 2\n3") is None
    assert answer.parse_literal("__import__('os').system('x')") is None


def test_yes_no_and_text():
    assert answer.parse_yes_no(" yes. ") == "Yes"
    assert answer.parse_yes_no("maybe") is None
    assert answer.normalize_text('  "Hello   World" ') == "hello world"


def test_numbers_equal_is_exact_for_rationals():
    assert answer.numbers_equal(Fraction(1, 3), Fraction(1, 3))
    assert not answer.numbers_equal(Fraction(333333, 1000000), Fraction(1, 3))
    assert answer.numbers_equal(0.3333333, Fraction(1, 3))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parsers_never_raise(text):
    answer.extract_answer(text)
    answer.parse_number(text)
    answer.parse_list(text)
    answer.parse_matrix(text)
    answer.parse_option(text)
    answer.parse_yes_no(text)
    answer.parse_literal(text)
