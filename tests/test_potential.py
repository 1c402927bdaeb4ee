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


# ------------------------------------------------------------------------------------------ infra_error


def _infra(i: int, n: int, finish: str = "infra_error") -> list[Trajectory]:
    fields = task_fields_for_trajectory(_task(i))
    return [Trajectory(id=f"t{i}/x{k}", task_id=f"t{i}", style="agent", temperature=1.0, model="m",
                       turns=(Turn("model", "```python\nprint(1)\n```"),), answer=None, correct=False, reward=0.0,
                       num_code_calls=1, finish=finish, extra={**fields, "error": "sandbox_error: node lost"})
            for k in range(n)]


def test_infra_errors_are_not_samples_and_too_few_valid_ones_are_named(caplog):
    rows = _trajs(0, 2, 4) + _infra(0, 4) + _trajs(1, 1, 2) + _infra(1, 2) + _infra(1, 1, finish="error")
    with caplog.at_level("WARNING"):
        tasks = potential.score_groups(rows, potential.PotentialOptions(groups=1, min_samples=4))
    assert [(t.id, t.extra["num_samples"], t.extra["p"]) for t in tasks] == [("t0", 4, 0.5)]  # not 2/8
    assert "7 infra_error trajectories" in caplog.text
    assert "not scored: 1 instance(s) with fewer than 4 valid samples: t1 (2 valid, 3 infra_error)" in caplog.text


# ------------------------------------------------------------------------------------------ online re-estimation


def _staged(i: int, task: str, group: int, p: float) -> Task:
    return Task(id=f"{task}-{i}", source="bbh", task=task, split="train", seed=i, question=f"q{i}?",
                check={"target": "Yes"}, answer="Yes", extra={"group": group, "p": p, "potential": 4 * p * (1 - p)})


def test_pass_rates_latest_and_ema_by_hand():
    task = _staged(0, "a", 1, 0.5)
    latest, ema = potential.PassRates("latest"), potential.PassRates("ema", 0.5)
    for rates in (latest, ema):
        rates.update(task, 3, 4, stage=1, step=1)
    assert latest.entries[task.id].p == 0.75 and ema.entries[task.id].p == pytest.approx(0.625)  # from p = 0.5
    for rates in (latest, ema):
        rates.update(task, 1, 4, stage=2, step=3)
    assert latest.entries[task.id].p == 0.25 and ema.entries[task.id].p == pytest.approx(0.4375)
    entry = ema.entries[task.id]
    assert (entry.num_groups, entry.num_samples, entry.num_correct, entry.stage, entry.last_step) == (2, 8, 4, 2, 3)
    assert potential.PassRates.from_state(ema.state(), "ema", 0.5).state() == ema.state()
    fresh = potential.PassRates("ema", 0.5)
    fresh.update(Task.from_dict({**task.to_dict(), "p": None}), 1, 4, stage=1, step=1)
    assert fresh.entries[task.id].p == 0.25  # no static p: the first group's rate


def test_regroup_moves_unreached_instances_by_the_shift_of_their_task():
    """Stage 1 trained a-0 and b-0 (group 1): task a got better (0.5 -> 0.9), task b did not move. Unreached
    a-instances are re-estimated +0.4 and re-sorted into groups 2..4 by their new potential."""
    tasks = [_staged(0, "a", 1, 0.5), _staged(0, "b", 1, 0.5),
             _staged(1, "a", 2, 0.6), _staged(1, "b", 2, 0.45),   # Π 0.96, 0.99
             _staged(2, "a", 3, 0.1), _staged(2, "b", 3, 0.75),   # Π 0.36, 0.75
             _staged(3, "a", 4, 0.05), _staged(3, "b", 4, 0.9)]   # Π 0.19, 0.36
    rates = potential.PassRates("latest")
    rates.update(tasks[0], 9, 10, stage=1, step=6)
    rates.update(tasks[1], 5, 10, stage=1, step=6)
    out = potential.regroup(tasks, rates.entries, next_stage=2)
    assert [t.id for t in out] == [t.id for t in tasks]
    group = {t.id: t.extra["group"] for t in out}
    assert group["a-0"] == group["b-0"] == 1  # reached: kept
    # now: a-1 0.6+0.4 -> 1.0 (Π 0), a-2 0.5 (Π 1), a-3 0.45 (Π 0.99), b-1 0.45 (0.99), b-2 0.75, b-3 0.9 (0.36)
    p_online = {t.id: t.extra.get("p_online") for t in out}
    assert p_online["a-1"] == 1.0 and p_online["a-2"] == pytest.approx(0.5) and p_online["b-2"] == 0.75
    assert group["a-2"] == 2 and {group["a-3"], group["b-1"]} == {2, 3} and group["a-1"] == 4
    assert sorted(group[t.id] for t in tasks[2:]) == [2, 2, 3, 3, 4, 4]
    assert "a-0" not in p_online or p_online["a-0"] is None
    # stage 1 (nothing reached) regroups everything; past the last group nothing is left to regroup
    assert potential.regroup(tasks, rates.entries, next_stage=5) == tasks


def test_read_staged_names_the_line_without_a_group(tmp_path):
    path = tmp_path / "staged.jsonl"
    rows = [_staged(0, "a", 1, 0.5).to_dict(), {**_staged(1, "a", 1, 0.5).to_dict(), "group": None}]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    with pytest.raises(R1ciError, match=r"staged.jsonl:2: field 'group': missing \(run score-potential first"):
        potential.read_staged(str(path))


def test_score_potential_update_regroups_from_stage_stats(tmp_path):
    from r1ci_cli.streams import record_sink

    tasks = [_staged(0, "a", 1, 0.5), _staged(1, "a", 2, 0.6), _staged(2, "a", 2, 0.1), _staged(3, "a", 3, 0.2)]
    staged, stats = tmp_path / "staged.jsonl", tmp_path / "instance-stats.jsonl.zst"
    staged.write_bytes(b"".join(orjson.dumps(t.to_dict()) + b"\n" for t in tasks))
    rates = potential.PassRates("latest")
    rates.update(tasks[0], 9, 10, stage=1, step=6)
    with record_sink(str(stats)) as sink:
        sink.write_all(rates.records())
    result = CliRunner().invoke(cli, ["score-potential", str(staged), "--update", str(stats)])
    assert result.exit_code == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    expected = potential.regroup(tasks, rates.entries, next_stage=2)
    assert rows == [t.to_dict() for t in expected]
    assert [r["group"] for r in rows] == [1, 3, 2, 2]  # a-1: 0.6 + 0.4 = 1.0 falls back; a-2 and a-3 move up
    assert "online regroup for stage 2" in result.stderr
    bad = tmp_path / "bad-stats.jsonl"
    bad.write_bytes(orjson.dumps({**rates.records()[0], "p": 1.5}) + b"\n")
    result = CliRunner().invoke(cli, ["score-potential", str(staged), "--update", str(bad)])
    assert result.exit_code == 1 and "bad-stats.jsonl:1: field 'p'" in result.stderr
