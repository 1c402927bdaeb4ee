"""The interaction format (where turns end, what observations look like) and the reward."""

from __future__ import annotations

import pytest

from r1ci_cli.answer import extract_answer
from r1ci_cli.interaction import OBSERVATION_HEADER, find_stop, format_observation, parse_observation, truncate_middle
from r1ci_cli.records import ExecResult
from r1ci_cli.rollout.reward import RewardOptions, reward


def result(status="ok", stdout="", stderr="", exit_code=0, truncated=False):
    return ExecResult("r", status, exit_code, stdout, stderr, 1.0, truncated)


@pytest.mark.parametrize("text, kind, end_marker", [
    ("Let me compute.\n```python\nprint(1)\n```", "code", "```"),
    ("```python\nprint(1)\n```\nmore text", "code", "```"),
    ("Answer: <<<42>>> done", "answer", ">>>"),
    ("<<<1>>> then\n```python\nprint(2)\n```", "answer", ">>>"),
    ("```python\nprint('<<<7>>>')\n```", "code", "```"),
    ("  ```python\nx = 1\n  ```", "code", "```"),
])
def test_find_stop_kinds_with_the_answer_stop(text, kind, end_marker):
    stop = find_stop(text, stop_at_answer=True)
    assert stop is not None and stop.kind == kind
    assert text[:stop.end].endswith(end_marker)


def test_by_default_an_answer_does_not_end_the_turn_only_a_closed_fence_does():
    """The verdict reads the last span: a draft answer followed by a correction must reach the grader whole."""
    assert find_stop("Draft <<<41>>>, no: <<<42>>> done") is None
    stop = find_stop("<<<1>>> then check\n```python\nprint(2)\n```")
    assert stop.kind == "code" and stop.code == "print(2)\n"
    assert find_stop("so <<<1>>>", allow_code=False) is None


@pytest.mark.parametrize("text", [
    "thinking", "```python\nprint(1)\n", "inline ```python``` is not a fence", "<<<open answer",
    "```bash\nls\n```", "x = 1 ```python\nprint(1)\n```",
])
def test_no_stop_yet(text):
    assert find_stop(text) is None


@pytest.mark.parametrize("text", ["<<<] >>>>", "so <<<a > b>>> done", "<<<x>>> then <<<y>>>"])
def test_the_turn_ends_where_the_verifiers_answer_span_ends(text):
    """One answer-span expression: the stop rule and the verifiers read the same span (``>>>>`` included)."""
    stop = find_stop(text, stop_at_answer=True)
    assert stop.kind == "answer"
    assert extract_answer(text[:stop.end]) == extract_answer(text.split(" then ")[0])
    assert text[:stop.end].endswith(">") and not text[stop.end:].startswith(">")


def test_answer_inside_code_does_not_end_the_turn_early():
    text = "```python\nprint('<<<7>>>')\n"
    assert find_stop(text, stop_at_answer=True) is None
    assert find_stop(text + "```", stop_at_answer=True).code == "print('<<<7>>>')\n"


def test_text_style_ignores_fences():
    assert find_stop("```python\nprint(1)\n```", allow_code=False) is None
    assert find_stop("```python\nprint('<<<1>>>')\n```", allow_code=False, stop_at_answer=True).kind == "answer"


def test_truncation_keeps_head_and_tail_and_counts():
    text = "H" * 100 + "M" * 1000 + "T" * 100
    cut = truncate_middle(text, 200)
    assert cut.startswith("H" * 100) and cut.endswith("T" * 100) and "[1000 characters cut" in cut
    assert truncate_middle("short", 200) == "short" and truncate_middle(text, 0) == text


def test_observation_formats():
    ok = format_observation(result(stdout="24\n"), 60)
    assert ok == f"\n{OBSERVATION_HEADER}\n24\n\n" and parse_observation(ok) == "24"
    assert "stopped after 60 seconds" in format_observation(result("timeout", exit_code=None), 60)
    assert "Traceback" in format_observation(result("error", stderr="Traceback ...\nNameError", exit_code=1), 60)
    assert "exited with code 3" in format_observation(result("error", exit_code=3), 60)
    assert "too much memory" in format_observation(result("oom", exit_code=None), 60)
    assert "(no output)" in format_observation(result(), 60)


@pytest.mark.parametrize("correct, formed, turns, want", [
    (True, True, 2, 1.1), (True, False, 2, 0.9), (False, True, 2, 0.1), (False, False, 2, -0.1),
    (True, True, 7, 1.0), (False, False, 9, -0.2),
])
def test_reward_terms(correct, formed, turns, want):
    assert reward(correct, formed, turns, RewardOptions()) == pytest.approx(want)


def test_reward_terms_can_be_switched_off():
    opts = RewardOptions(format_reward=0.0, turn_penalty=0.0)
    assert reward(True, False, 20, opts) == 1.0 and reward(False, True, 1, opts) == 0.0
