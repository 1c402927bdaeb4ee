"""score-potential: Π = 4p(1-p), equal groups with group 1 the highest Π, deterministic ties, cumulative stages."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from r1ci_cli import potential
from r1ci_cli.cli import cli
from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task, Trajectory, Turn, task_fields_for_trajectory


def _task(i: int) -> Task:
    return Task(id=f"t{i}", source="bbh", task="navigate", split="train", seed=i, question=f"q{i}?",
                check={"target": "Yes"}, answer="Yes", extra={"pool": "train"})


def _trajs(i: int, num_correct: int, num_samples: int) -> list[Trajectory]:
    fields = task_fields_for_trajectory(_task(i))
    return [Trajectory(id=f"t{i}/{k}", task_id=f"t{i}", style="agent", temperature=1.0, model="m",
                       turns=(Turn("model", "<<<Yes>>>"),), answer="Yes", correct=k < num_correct,
                       reward=1.1 if k < num_correct else 0.1, num_code_calls=0, finish="answer",
                       extra={**fields, "sample_index": k})
            for k in range(num_samples)]


def test_potential_formula():
    assert potential.potential(0.5) == 1.0
    assert potential.potential(0.0) == potential.potential(1.0) == 0.0
    assert potential.potential(0.25) == pytest.approx(0.75)


def test_groups_are_equal_cuts_sorted_by_potential():
    # p = correct/20 for 8 instances -> Π values; 4 groups of 2, highest Π first.
    correct = {0: 10, 1: 0, 2: 20, 3: 5, 4: 9, 5: 2, 6: 15, 7: 18}
    rows = [t for i, c in correct.items() for t in _trajs(i, c, 20)]
    tasks = potential.score_groups(rows, potential.PotentialOptions(groups=4, min_samples=4))
    assert [t.id for t in tasks][:2] == ["t0", "t4"]  # Π 1.0 and 0.99
    groups = {t.id: t.extra["group"] for t in tasks}
    assert groups["t0"] == groups["t4"] == 1
    assert {groups["t3"], groups["t6"]} == {2}  # both Π = 0.75: a tie broken by the id's stable hash
    assert groups["t5"] == groups["t7"] == 3  # Π 0.36
    assert groups["t1"] == groups["t2"] == 4  # Π 0
    t3 = next(t for t in tasks if t.id == "t3")
    assert (t3.extra["num_samples"], t3.extra["num_correct"], t3.extra["p"]) == (20, 5, 0.25)
    assert t3.answer == "Yes" and t3.seed == 3 and t3.extra["pool"] == "train"
    assert "sample_index" not in t3.extra


def test_ties_are_broken_by_id_hash_not_input_order():
    rows = [t for i in range(6) for t in _trajs(i, 2, 4)]
    forward = potential.score_groups(rows, potential.PotentialOptions(groups=2))
    backward = potential.score_groups(list(reversed(rows)), potential.PotentialOptions(groups=2))
    assert [t.to_dict() for t in forward] == [t.to_dict() for t in backward]


def test_uneven_counts_give_the_first_groups_one_more():
    assert potential.group_sizes(10, 4) == [3, 3, 2, 2]


def test_min_samples_drops_and_names(caplog):
    rows = _trajs(0, 1, 2) + _trajs(1, 2, 4)
    tasks = potential.score_groups(rows, potential.PotentialOptions(groups=1, min_samples=4))
    assert [t.id for t in tasks] == ["t1"]
    assert "t0" in caplog.text
    with pytest.raises(R1ciError):
        potential.score_groups(_trajs(0, 1, 2), potential.PotentialOptions(min_samples=4))


def test_stage_filter_is_cumulative():
    rows = [t for i, c in enumerate([10, 0, 20, 5, 9, 2, 15, 18]) for t in _trajs(i, c, 20)]
    tasks = potential.score_groups(rows, potential.PotentialOptions(groups=4))
    sizes = [len(list(potential.stage_filter(tasks, s))) for s in (1, 2, 3, 4)]
    assert sizes == [2, 4, 6, 8]
    stage2 = {t.id for t in potential.stage_filter(tasks, 2)}
    assert {t.id for t in potential.stage_filter(tasks, 1)} < stage2


def test_cli_writes_records_on_stdout_and_histogram_on_stderr(tmp_path):
    src = tmp_path / "trajs.jsonl"
    src.write_bytes(b"".join(orjson.dumps(t.to_dict()) + b"\n" for i in range(4) for t in _trajs(i, i, 4)))
    result = CliRunner().invoke(cli, ["score-potential", str(src), "--groups", "2"])
    assert result.exit_code == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["group"] for r in rows] == [1, 1, 2, 2]
    assert "potential histogram" in result.stderr and "group 2" in result.stderr


def test_a_warning_when_every_potential_is_zero(caplog):
    import logging

    rows = _trajs(0, 0, 4) + _trajs(1, 4, 4) + _trajs(2, 0, 4)
    with caplog.at_level(logging.WARNING, logger="r1ci"):
        potential.score_groups(rows, potential.PotentialOptions(groups=2, min_samples=4))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "every instance has potential 0" in warnings[0]
    assert "2 always wrong, 1 always right" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="r1ci"):
        potential.score_groups(rows + _trajs(3, 2, 4), potential.PotentialOptions(groups=2, min_samples=4))
    assert "potential 0" not in caplog.text
