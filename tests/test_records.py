"""Records: validation at the boundary, typed outcomes, unknown fields kept."""

from __future__ import annotations

import pytest

from r1ci_cli.errors import BadRecord
from r1ci_cli.records import ExecRequest, ExecResult, Task, Trajectory, Turn

TASK = {"id": "t1", "source": "bbh", "task": "navigate", "split": "train", "seed": 3, "question": "Q?",
        "answer": "Yes", "check": {"target": "Yes"}}
TRAJ = {"id": "t1/agent/0", "task_id": "t1", "style": "agent", "temperature": 1, "model": "m",
        "turns": [{"role": "model", "text": "```python\nprint(1)\n```", "ids": [1, 2]},
                  {"role": "exec", "text": "Code Execution Results:\n1\n", "status": "ok"},
                  {"role": "model", "text": "<<<1>>>"}],
        "answer": "1", "correct": True, "reward": 1.1, "num_code_calls": 1, "finish": "answer", "question": "Q?"}


def test_task_round_trip_keeps_extra_fields():
    task = Task.from_dict({**TASK, "group": 2, "potential": 0.5})
    assert task.extra == {"group": 2, "potential": 0.5}
    assert Task.from_dict(task.to_dict()) == task


def test_trajectory_parses_turns_and_round_trips():
    traj = Trajectory.from_dict(TRAJ, "x.jsonl", 4)
    assert traj.temperature == 1.0 and isinstance(traj.turns[0], Turn)
    assert traj.turns[0].ids == (1, 2) and traj.turns[1].status == "ok"
    assert traj.extra["question"] == "Q?"
    again = traj.to_dict()
    assert again["turns"][2] == {"role": "model", "text": "<<<1>>>"}
    assert Trajectory.from_dict(again) == traj


@pytest.mark.parametrize(
    ("patch", "field", "problem"),
    [
        ({"turns": []}, "turns", "at least one turn"),
        ({"turns": [{"role": "user", "text": "x"}]}, "turns[0].role", "must be one of"),
        ({"turns": [{"role": "model", "text": "x", "ids": [1, -2]}]}, "turns[0].ids", "non-negative"),
        ({"correct": "yes"}, "correct", "true or false"),
        ({"finish": "done"}, "finish", "must be one of"),
        ({"reward": float("nan")}, "reward", "finite"),
        ({"v": 99}, "v", "schema version"),
    ],
)
def test_trajectory_errors_name_the_field(patch, field, problem):
    with pytest.raises(BadRecord) as err:
        Trajectory.from_dict({**TRAJ, **patch}, "runs/x.jsonl", 7)
    assert str(err.value).startswith(f"runs/x.jsonl:7: field '{field}': ")
    assert problem in str(err.value)


def test_exec_result_status_is_typed():
    good = {"id": "a", "status": "timeout", "exit_code": None, "stdout": "", "stderr": "", "wall_ms": 12,
            "truncated": False}
    assert ExecResult.from_dict(good).exit_code is None
    with pytest.raises(BadRecord, match="field 'status'"):
        ExecResult.from_dict({**good, "status": "crashed"})


def test_task_split_must_be_train_or_test():
    with pytest.raises(BadRecord, match="field 'split'"):
        Task.from_dict({**TASK, "split": "dev"})


@pytest.mark.parametrize("timeout", ["NaN", "Infinity", "1e308", "0", "-1", "86401"])
def test_exec_request_timeout_must_be_a_sane_number_of_seconds(timeout):
    import json

    with pytest.raises(BadRecord, match="field 'timeout_s'"):
        ExecRequest.from_dict(json.loads('{"id": "a", "code": "print(1)", "timeout_s": %s}' % timeout), "req.jsonl", 3)
