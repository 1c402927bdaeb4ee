"""Evaluation summaries on hand-built trajectories; report and plot rendering."""

from __future__ import annotations

import io

import pytest
from matplotlib.patches import Rectangle

from r1ci_cli.evaluate import accuracy as evaluate  # the module
from r1ci_cli.evaluate.report import plot, render_report
from r1ci_cli.records import Trajectory, Turn


def _traj(task: str, source: str, split: str, instance: int, correct: bool, code_calls: int = 0,
          turns: tuple[Turn, ...] | None = None, answer: str = "7", finish: str = "answer") -> Trajectory:
    turns = turns or (Turn("model", f"<<<{answer}>>>", ids=(1, 2, 3)),)
    return Trajectory(id=f"{task}-{instance}-{len(turns)}-{correct}", task_id=f"{task}-{instance}", style="agent",
                      temperature=0.6, model="m", turns=turns, answer=answer, correct=correct,
                      reward=1.1 if correct else 0.1, num_code_calls=code_calls, finish=finish,
                      extra={"task": task, "source": source, "split": split})


def _data() -> list[Trajectory]:
    rows = [_traj("navigate", "bbh", "train", i, i < 3) for i in range(4)]  # 3/4
    rows += [_traj("web_of_lies", "bbh", "test", i, i < 1) for i in range(2)]  # 1/2
    rows += [_traj("game24", "symbench", "train", i, True, code_calls=1) for i in range(5)]  # 5/5
    return rows


def test_task_source_split_and_overall_are_macro_averages():
    rows = {(r.level, r.name): r for r in evaluate.summarize(_data(), "m")}
    assert rows[("task", "navigate")].accuracy == 0.75
    assert rows[("source", "BBH")].accuracy == pytest.approx((0.75 + 0.5) / 2)
    assert rows[("split", "train")].accuracy == pytest.approx((0.75 + 1.0) / 2)
    assert rows[("overall", "all")].accuracy == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    assert rows[("overall", "all")].num_trajectories == 11
    assert rows[("overall", "all")].code_use_rate == pytest.approx(5 / 11)
    assert rows[("source", "SymBench")].mean_response_tokens == 3


def test_wilson_interval_by_hand():
    low, high = evaluate.wilson(3, 4)
    assert (round(low, 4), round(high, 4)) == (0.3006, 0.9544)
    assert evaluate.wilson(0, 0) == (0.0, 0.0)


def test_macro_interval_uses_task_variances():
    rows = {(r.level, r.name): r for r in evaluate.summarize(_data(), "m")}
    bbh = rows[("source", "BBH")]
    half = evaluate.Z95 * ((0.75 * 0.25 / 4 + 0.5 * 0.5 / 2) / 4) ** 0.5
    assert bbh.ci_low == pytest.approx(0.625 - half) and bbh.ci_high == min(1.0, 0.625 + half)


def test_pass_at_k():
    assert evaluate.pass_at_k(5, 0, 1) == 0.0
    assert evaluate.pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert evaluate.pass_at_k(5, 1, 5) == 1.0
    assert evaluate.pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)
    twice = [_traj("navigate", "bbh", "train", i // 2, i in (0, 2, 3)) for i in range(4)]  # instance 0: 1/2, 1: 2/2
    nav = next(r for r in evaluate.summarize(twice, "m", k=2) if r.name == "navigate")
    assert nav.pass_at_k == pytest.approx(1.0) and nav.accuracy == 0.75
    with pytest.raises(ValueError):
        evaluate.pass_at_k(1, 1, 2)


def test_self_check_is_more_code_after_the_answer_was_printed():
    checked = (Turn("model", "```python\nprint(7)\n```"), Turn("exec", "Code Execution Results:\n7\n"),
               Turn("model", "```python\nassert 7 == 3 + 4\nprint('ok')\n```"), Turn("exec", "Code Execution Results:\nok\n"),
               Turn("model", "<<<7>>>"))
    plain = (Turn("model", "```python\nprint(3)\n```"), Turn("exec", "Code Execution Results:\n3\n"),
             Turn("model", "```python\nprint(7)\n```"), Turn("exec", "Code Execution Results:\n7\n"),
             Turn("model", "<<<7>>>"))
    assert evaluate.self_checks(_traj("t", "bbh", "train", 0, True, 2, checked))
    assert not evaluate.self_checks(_traj("t", "bbh", "train", 0, True, 2, plain))
    assert evaluate.response_tokens(_traj("t", "bbh", "train", 0, True, 2, plain)) == 7  # whitespace words


def test_report_and_plot(tmp_path):
    base = evaluate.summarize([_traj("navigate", "bbh", "train", i, False) for i in range(4)], "base")
    sft = evaluate.summarize(_data(), "sft")
    text = render_report({"base": base, "sft": sft}, image="report.png")
    headline = text.split("## Behaviour")[0]
    assert "| base | – | 0.0 [0.0, " in headline
    assert "| sft | 100.0 [" in headline and "| 75.0 [" in headline
    assert "| navigate | 0.0 (4) | 75.0 (4) |" in text
    buffer = io.BytesIO()
    figure = plot({"base": base, "sft": sft}, buffer, stages=["base", "sft"])
    data = buffer.getvalue()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    bars = [p for p in figure.axes[0].patches if isinstance(p, Rectangle)]
    assert len(bars) == 2 * 3  # two models x (SymBench, BBH, overall)
    assert len(figure.axes[1].lines) == 2  # all tasks, train tasks (base has no test-split rows)


def test_sign_test_is_the_exact_two_sided_binomial():
    assert evaluate.sign_test(7, 3) == pytest.approx(2 * (1 + 10 + 45 + 120) / 1024)  # 0.34375
    assert evaluate.sign_test(3, 7) == evaluate.sign_test(7, 3)
    assert evaluate.sign_test(24, 4) < 0.001
    assert evaluate.sign_test(5, 5) == 1.0 and evaluate.sign_test(0, 0) == 1.0
    assert evaluate.sign_test(6, 0) == pytest.approx(2 / 64)


def test_paired_counts_instances_where_the_models_differ():
    base = [_traj("navigate", "bbh", "train", i, i < 2) for i in range(6)]  # instances 0, 1 right
    new = [_traj("navigate", "bbh", "train", i, i in (1, 2, 3, 4)) for i in range(6)]  # 0 lost; 2, 3, 4 won
    new.append(_traj("navigate", "bbh", "train", 9, True))  # an instance the baseline never saw: left out
    pair = evaluate.paired("rl1", evaluate.instance_scores(new), "sft", evaluate.instance_scores(base))
    assert (pair.instances, pair.wins, pair.losses) == (6, 3, 1)
    assert pair.delta == pytest.approx(2 / 6) and pair.p_value == pytest.approx(evaluate.sign_test(3, 1))
    # Several samples per instance: its score is the share of correct samples.
    two = [_traj("navigate", "bbh", "train", 0, c) for c in (True, False)]
    assert evaluate.instance_scores(two) == {"navigate-0": 0.5}


def test_report_shows_the_paired_table():
    sft, rl = _data(), [_traj("navigate", "bbh", "train", i, True) for i in range(4)]
    pairs = [evaluate.paired("rl1", evaluate.instance_scores(rl), "sft", evaluate.instance_scores(sft))]
    text = render_report({"sft": evaluate.summarize(sft, "sft"), "rl1": evaluate.summarize(rl, "rl1")}, pairs=pairs)
    assert "## Paired on the same instances" in text
    assert "| rl1 | sft | 4 | 1 | 0 | +25.0 | 1.000 |" in text
    assert "Paired" not in render_report({"sft": evaluate.summarize(sft, "sft")})
