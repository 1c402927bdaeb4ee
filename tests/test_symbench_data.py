"""The data-backed SymBench tasks (GSM-Hard, MATH geometry, MATH counting & probability) and the numeric /
LaTeX answer normalisation they share. The data files here are small made-up stand-ins written by the
tests in the real layouts; the real datasets are never read or copied."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1ci_cli.errors import BadRecord, R1ciError
from r1ci_cli.tasks.registry import score
from r1ci_cli.tasks.symbench import _mathnorm, gsm_hard, math_counting_probability, math_geometry
from r1ci_cli.tasks.symbench._mathnorm import equivalent, last_boxed, number_equivalent

EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "1/2"), ("\\dfrac{3}{4}", "3/4"), ("\\tfrac34", "0.75"),
    ("\\frac12", "\\frac{1}{2}"), ("\\sqrt{2}", "\\sqrt2"), ("\\sqrt{2}", "sqrt(2)"), ("2\\sqrt{3}", "\\sqrt{12}"),
    ("3+2\\sqrt{5}", "2\\sqrt5+3"), ("\\frac{5\\sqrt{5}}{3}", "5\\sqrt{5}/3"),
    ("12+12\\sqrt{3}", "AB=12(\\sqrt{3} + 1)"),
    ("10", "10\\text{ inches}"), ("42", "41.99999999999998"), ("\\frac{63}{64}", "0.984375"), ("(18, -18)", "(18,-18)"),
    ("30^\\circ", "30"), ("30", "30°"), ("\\$12.50", "12.5"), ("12.50", "$12.5$"), ("(1,2)", "\\left( 1, 2 \\right)"),
    ("[-2, 3)", "[-2,3)"), ("(-\\infty, 3]", "(-\\infty,3]"), ("5", "x = 5"), ("2\\pi", "2*pi"), ("2\\pi", "2π"),
    ("\\frac{\\pi}{4}", "pi/4"), ("1000", "1,000"), ("1{,}000", "1000"), ("25\\%", "25"), ("25", "25%"),
    ("\\text{(C)}", "C"), ("\\text{Monday}", "monday"), ("\\frac{1}{3}", "0.333"), ("\\frac{1}{3}", "0.3333"),
    ("\\frac{1}{3}", "0.33"),
    ("\\frac{\\sqrt{3}}{2}", "0.87"), ("\\frac{1}{3}", "0.33333333333333"),
    ("\\pi", "3.14"), ("\\binom{8}{3}", "56"), ("5!", "120"), ("2x+3", "3+2x"), ("x^2", "x*x"), ("x^2", "x x"),
    ("2xy", "2 x y"),
    ("\\{1, 2\\}", "\\{2, 1\\}"), ("-2, 1", "1, -2"), ("(1,2)", "1, 2"), ("1500", "1.5\\times10^{3}"),
    ("1500", "1.5e3"), ("2", "\\sqrt[3]{8}"), ("\\frac{\\sqrt{3}}{2}", "0.866"), ("1024", "2^{10}"), ("1024", "2**10"),
    ("10", "\\boxed{10}"), ("6", "6 ways"), ("9\\pi", "9 \\pi \\text{ square units}"), ("8", "The answer is 8."),
    ("\\frac{1}{4}", "\\frac{1}{4}."), ("-\\frac{1}{2}", "\\frac{-1}{2}"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
    ("\\frac{9}{2}", "4\\frac{1}{2}"), ("-\\frac{9}{2}", "-4\\frac12"), ("2\\sqrt{3}", "4\\frac{\\sqrt{3}}{2}"),
    ("1234", "1 234"), ("\\frac{7}{2}", "3.5"), ("(0,\\infty)", "(0, \\infty)"),
    ("[1,2] \\cup [3,4]", "[1, 2]\\cup[3, 4]"),
    ("3\\sqrt{2}", "3 \\sqrt{2}\\,\\text{cm}"), ("\\frac{1}{6}", "\\frac{1}{6}\\!"), ("\\text{even}", "Even"),
]

NOT_EQUIVALENT = [
    ("\\frac{1033}{4}+30\\sqrt{3}", "169.0"), ("5\\sqrt{13}", "15.97112779602377"), ("[1, 2)", "(1, 2)"),
    ("\\pi", "3.1"), ("\\frac{1}{3}", "0.3"), ("\\frac{1}{3}", "0.34"), ("\\frac{1}{3}", "0.332"), ("x^2", "y^2"),
    ("\\frac{1}{2}", "\\frac{1}{3}"),
    ("12", "13"), ("3", "-3"), ("\\frac{\\sqrt{3}}{2}", "0.86"), ("\\frac{9}{2}", "4\\frac{2}{1}"), ("24", "2 12"),
    ("\\{1,2\\}", "(1,2)"),
    ("(1,2)", "(2,1)"), ("-2, 1", "-2, 1, 3"), ("4", "9^9^9^9"), ("4", "99999999999!"), ("0", "1/0"), ("2", ""),
    ("10", "10 11"), ("\\text{(C)}", "D"), ("1000", "1,001"), ("56", "\\binom{8}{4}"), ("2x+3", "2x+4"),
    ("\\infty", "-\\infty"), ("100000000000000000001", "100000000000000000000"), ("\\sqrt{2}", "1.4"),
    ("(1,2)", "[1,2]"), ("\\text{Monday}", "Tuesday"), ("5", "5 \\pm 1"), ("\\text{no}", "on"),
]


@pytest.mark.parametrize("gold, answer", EQUIVALENT)
def test_equivalent_pairs(gold, answer):
    assert equivalent(answer, gold)


@pytest.mark.parametrize("gold, answer", NOT_EQUIVALENT)
def test_non_equivalent_pairs(gold, answer):
    assert not equivalent(answer, gold)


@pytest.mark.parametrize("answer, target, expected", [
    ("1,234.5", 1234.5, True), ("28571.43", 28571.428571428572, True), ("200000/7", 28571.428571428572, True),
    ("12346", 12345.5, False), ("\\$5", 5, True), ("5 dollars", 5.0, True), ("<-9867", -9867, False),
    ("-9867", -9867, True), ("1.2e3", 1200, True), ("7", 7.333, False), ("12%", 12, True), ("125.0", 125, True),
    ("1000000000000001", 1e15, False), ("1000000000000000", 1e15, True), ("0.00001", 1e-05, True),
    ("x = 42", 42, True), ("forty-two", 42, False), ("42", float("nan"), False), ("42", True, False),
])
def test_number_equivalent(answer, target, expected):
    assert number_equivalent(answer, target) is expected


@pytest.mark.parametrize("text, boxed", [
    ("so \\boxed{\\frac{1}{2}} then \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\frac{\\sqrt{3}}{2}"),
    ("nested \\boxed{\\{1, \\{2\\}\\}}", "\\{1, \\{2\\}\\}"),
    ("old style \\fbox{3}", "3"),
    ("no braces $\\boxed 5$.", "5"),
    ("spaced \\boxed {7}", "7"),
    ("none here", None),
    ("\\boxed{unclosed", None),
])
def test_last_boxed(text, boxed):
    assert last_boxed(text) == boxed


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("0123456789+-*/^()[]{},.=!%$ xyzπ√\\") +
                               ["\\frac", "\\sqrt", "\\pi", "\\boxed", "\\binom", "\\text{", "\\cup",
                                "\\infty", "\\left(", "e", "9^9^9"]), max_size=40).map("".join) | st.text(max_size=60))
def test_parsers_never_raise(text):
    equivalent(text, "\\frac{1}{2}")
    equivalent("2", text)
    number_equivalent(text, 3.5)
    last_boxed(text)
    _mathnorm.text_key(text)


@pytest.mark.parametrize("text", ["9^9^9^9^9", "2^{2^{2^{2^{2^{2}}}}}", "(10^{300})^{10^{300}}", "1000!!",
                                  "\\binom{100000}{50000}", "(" * 200 + "1" + ")" * 200, "1" * 5000,
                                  "\\sqrt{" * 60 + "2" + "}" * 60, "9" * 300 + "^" + "9" * 300,
                                  "1 " + "a" * 300 + "!", "1 " + "ab " * 300 + "!", "x" * 1500 + "=" * 100])
def test_pathological_answers_are_refused_quickly(text):
    start = time.perf_counter()
    assert not equivalent(text, "4")
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------------------------------------- GSM-Hard

GSM_ROWS = [
    {"input": "Tom buys 3 boxes of 1234567 pens. How many pens?", "code": "print(3*1234567)", "target": 3703701},
    {"input": "A tank holds 7 liters shared by 3 cups. Liters per cup?", "code": "", "target": 2.3333333333333335},
    {"input": "Ann has 12.5 dollars and spends 20 dollars. Balance?", "code": "", "target": -7.5},
]


def write_gsm(folder: Path, rows=GSM_ROWS, name: str = gsm_hard.FILE_NAME) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("place", ["gsmhardv2.jsonl", "gsm_hard/gsmhardv2.jsonl", "dataset_gather/gsmhardv2.jsonl"])
def test_gsm_hard_loads_from_each_documented_place(tmp_path, place):
    write_gsm(tmp_path, name=place)
    instances = gsm_hard.FAMILY.load(tmp_path)
    assert [i.check["target"] for i in instances] == [r["target"] for r in GSM_ROWS]
    assert instances[0].question == GSM_ROWS[0]["input"] + (
        "\n\nOutput final answer with the format <<<answer>>> such as <<<123.42>>>, <<<125.0>>>, <<<-9867>>>."
        "\nYour answer: ")
    assert [i.answer for i in instances] == ["3703701", "2.3333333333333335", "-7.5"]


def test_gsm_hard_load_is_stable(tmp_path):
    write_gsm(tmp_path)
    assert gsm_hard.FAMILY.load(tmp_path) == gsm_hard.FAMILY.load(tmp_path)


def test_gsm_hard_without_data_raises_one_line(tmp_path):
    for data_dir in (tmp_path, None):
        with pytest.raises(R1ciError, match="gsm_hard needs data") as info:
            gsm_hard.FAMILY.load(data_dir)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("line, field, message", [
    ('{"input": "q", "target": "12"}', "target", "must be a finite number"),
    ('{"input": "q", "target": true}', "target", "must be a finite number"),
    ('{"input": "q", "target": NaN}', "target", "must be a finite number"),
    ('{"input": "", "target": 1}', "input", "non-empty string"),
    ('{"input": "q", "target": 1', None, "bad JSON"),
    ('[1, 2]', None, "expected a JSON object"),
])
def test_gsm_hard_bad_rows_name_file_line_and_field(tmp_path, line, field, message):
    path = tmp_path / gsm_hard.FILE_NAME
    path.write_text(json.dumps(GSM_ROWS[0]) + "\n\n" + line + "\n")
    with pytest.raises(BadRecord, match=message) as info:
        gsm_hard.FAMILY.load(tmp_path)
    assert info.value.path == str(path) and info.value.line == 3 and info.value.field == field


def test_gsm_hard_reference_programs_pass_and_perturbations_fail(tmp_path, run_programs):
    write_gsm(tmp_path)
    family = gsm_hard.FAMILY
    instances = family.load(tmp_path)
    outputs = run_programs([family.reference_program(i) for i in instances])
    for instance, (stdout, stderr, code) in zip(instances, outputs):
        assert code == 0, stderr
        assert score(family, instance, f"<<<{stdout.strip()}>>>").correct
        wrong = family.perturb(instance, stdout.strip(), random.Random(0))
        assert len(wrong) >= 2 and not any(family.verify(instance, w) for w in wrong)


def test_gsm_hard_accepts_rounded_decimals():
    instance = gsm_hard.instance_from_row(GSM_ROWS[1], "x", 1)
    assert gsm_hard.verify(instance, "2.33") and gsm_hard.verify(instance, "7/3")
    assert not gsm_hard.verify(instance, "2.3") and not gsm_hard.verify(instance, "2")


def test_gsm_hard_family_is_data_backed():
    family = gsm_hard.FAMILY
    assert family.generate is None and family.reference_kind == "stored"
    assert "gsmhardv2.jsonl" in family.needs_data


# ---------------------------------------------------------------------------------------------- MATH

MATH_PROBLEMS = {
    "0.json": ("A square has side 3. Area?", "The area is $3^2=\\boxed{9}$."),
    "10.json": ("Circle radius 2, area?", "Area $=\\pi r^2 = \\boxed{4\\pi}$ square units."),
    "2.json": ("Hypotenuse of a 1-1 right triangle?", "It is $\\sqrt{1+1}=\\boxed{\\sqrt{2}}$."),
    "3.json": ("Ratio?", "First \\boxed{1} is wrong; the ratio is $\\boxed{\\frac{\\sqrt{3}}{2}}$."),
    "4.json": ("Old style?", "So the answer is \\fbox{12}."),
    "5.json": ("No box", "The answer is 7."),
}


def write_math(root: Path, subject: str, problems=MATH_PROBLEMS) -> Path:
    folder = root / subject
    folder.mkdir(parents=True, exist_ok=True)
    for name, (problem, solution) in problems.items():
        row = {"problem": problem, "level": "Level 2", "type": "Geometry", "solution": solution}
        (folder / name).write_text(json.dumps(row))
    return folder


@pytest.mark.parametrize("family, subject", [(math_geometry.FAMILY, "geometry"),
                                             (math_counting_probability.FAMILY, "counting_and_probability")])
@pytest.mark.parametrize("root", ["MATH/train", "dataset_gather/MATH/train", "."])
def test_math_loads_in_numeric_file_order(tmp_path, family, subject, root, caplog):
    write_math(tmp_path / root, subject)
    with caplog.at_level(logging.WARNING):
        instances = family.load(tmp_path)
    assert [i.check["answer"] for i in instances] == ["9", "\\sqrt{2}", "\\frac{\\sqrt{3}}{2}", "12", "4\\pi"]
    assert [i.check["file"] for i in instances][:2] == [f"{subject}/0.json", f"{subject}/2.json"]
    assert instances[0].question.startswith("A square has side 3. Area?\n\nOutput final answer with the format")
    assert "1 problem(s) without a \\boxed answer skipped" in caplog.text


def test_math_without_data_raises_one_line(tmp_path):
    write_math(tmp_path / "MATH/train", "geometry")
    with pytest.raises(R1ciError, match="math_counting_probability needs data") as info:
        math_counting_probability.FAMILY.load(tmp_path)
    assert "MATH/train/counting_and_probability" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content, field, message", [
    ('{"problem": "p", "solution": 3}', "solution", "non-empty string"),
    ('{"solution": "\\\\boxed{1}"}', "problem", "non-empty string"),
    ('{"problem": "p",\n "solution": ', None, "bad JSON"),
])
def test_math_bad_files_name_the_file_and_field(tmp_path, content, field, message):
    folder = write_math(tmp_path / "MATH/train", "geometry")
    (folder / "7.json").write_text(content)
    with pytest.raises(BadRecord, match=message) as info:
        math_geometry.FAMILY.load(tmp_path)
    assert info.value.path.endswith("7.json") and info.value.field == field


def test_math_reference_programs_pass_and_perturbations_fail(tmp_path, run_programs):
    write_math(tmp_path / "MATH/train", "geometry")
    family = math_geometry.FAMILY
    instances = family.load(tmp_path)
    outputs = run_programs([family.reference_program(i) for i in instances])
    for instance, (stdout, stderr, code) in zip(instances, outputs):
        assert code == 0, stderr
        assert score(family, instance, f"The answer: <<<{stdout.strip()}>>>").correct
        wrong = family.perturb(instance, stdout.strip(), random.Random(0))
        assert len(wrong) >= 2 and not any(family.verify(instance, w) for w in wrong)


def test_math_verifier_accepts_equivalent_forms(tmp_path):
    write_math(tmp_path / "MATH/train", "geometry")
    by_answer = {i.check["answer"]: i for i in math_geometry.FAMILY.load(tmp_path)}
    assert math_geometry.verify(by_answer["4\\pi"], "12.566")
    assert math_geometry.verify(by_answer["\\frac{\\sqrt{3}}{2}"], "\\dfrac{\\sqrt3}{2}")
    assert math_geometry.verify(by_answer["\\sqrt{2}"], "2^{1/2}")
    assert not math_geometry.verify(by_answer["9"], "8")


def test_math_families_are_data_backed():
    for family in (math_geometry.FAMILY, math_counting_probability.FAMILY):
        assert family.generate is None and family.reference_kind == "stored" and family.load is not None
        assert "MATH/train/" in family.needs_data
