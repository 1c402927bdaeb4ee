"""Pipeline helpers: shards, keep/cap filters, crash-safe resumable output, tasks rebuilt from trajectories."""

from __future__ import annotations

import json

import pytest

from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task, Trajectory, Turn, task_from_trajectory
from r1ci_cli.rollout.pipeline import Shard, keep_filter, output_order, parse_shard, shard_tasks
from r1ci_cli.rollout.resume import ResumableOutput


def row(task_id, sample, correct=True, finish="answer"):
    return {"id": f"{task_id}/agent/t1/s{sample}", "task_id": task_id, "sample_index": sample,
            "correct": correct, "finish": finish}


@pytest.mark.parametrize("text, want", [("0/4", Shard(0, 4)), (" 3 / 4 ", Shard(3, 4)), (None, None)])
def test_parse_shard(text, want):
    assert parse_shard(text) == want


@pytest.mark.parametrize("text", ["4/4", "-1/2", "1", "a/b", "0/0"])
def test_parse_shard_rejects(text):
    with pytest.raises(ValueError):
        parse_shard(text)


def test_shards_partition_the_input():
    tasks = [Task(f"t{i}", "bbh", "x", "train", i, "q", {}) for i in range(7)]
    parts = [[t.id for t in shard_tasks(tasks, Shard(i, 3))] for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(t.id for t in tasks) and parts[1] == ["t1", "t4"]
    with pytest.raises(R1ciError, match="twice"):
        list(shard_tasks(tasks + tasks[:1], None, {}))


def test_keep_correct_and_cap_per_task():
    rows = [row("a", 0, False), row("a", 1), row("a", 2), row("a", 3), row("b", 0, True, "error"), row("b", 1)]
    kept = list(keep_filter(rows, "correct", max_per_task=2))
    assert [r["id"] for r in kept] == ["a/agent/t1/s1", "a/agent/t1/s2", "b/agent/t1/s1"]
    assert len(list(keep_filter(rows, "all", max_per_task=1))) == 2


def test_cap_counts_per_task_family_not_per_instance():
    """docs/paper.md "SFT": at most 70 per task. Two instances of one family share the cap; rows without a ``task``
    field count as a family each (their task_id)."""
    rows = [{**row(f"game24/{i}", s), "task": "game24"} for i in range(3) for s in range(2)]
    rows += [{**row("sort/0", 0), "task": "word_sorting"}, row("lone", 0), row("lone", 1)]
    kept = [r["id"] for r in keep_filter(rows, "all", max_per_task=3)]
    assert kept == ["game24/0/agent/t1/s0", "game24/0/agent/t1/s1", "game24/1/agent/t1/s0",
                    "sort/0/agent/t1/s0", "lone/agent/t1/s0", "lone/agent/t1/s1"]


def test_resumable_output_survives_a_torn_line_and_orders(tmp_path):
    out = tmp_path / "out.jsonl"
    first = ResumableOutput(str(out), resume=False)
    first.write(row("b", 0))
    first.write(row("a", 1))
    first.close()
    with open(str(out) + ".partial", "ab") as handle:
        handle.write(b'{"id": "a/ag')
    again = ResumableOutput(str(out), resume=True)
    assert again.done_ids == {"b/agent/t1/s0", "a/agent/t1/s1"}
    again.write(row("a", 0))
    count = again.finish(output_order({"a": 0, "b": 1}))
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert count == 3 and ids == ["a/agent/t1/s0", "a/agent/t1/s1", "b/agent/t1/s0"]
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_without_resume_a_stale_partial_is_dropped(tmp_path):
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.partial").write_text(json.dumps(row("a", 0)) + "\n")
    fresh = ResumableOutput(str(out), resume=False)
    assert fresh.done_ids == set()
    assert fresh.finish(output_order({})) == 0


def test_task_round_trips_through_a_trajectory():
    task = Task("t1", "bbh", "web_of_lies", "test", 5, "Q?", {"target": "Yes"}, answer="Yes", extra={"group": 2})
    extra = {k: v for k, v in task.to_dict().items() if k not in ("id", "v", "answer")}
    extra["reference_answer"] = task.answer
    traj = Trajectory("t1/agent/t1/s0", "t1", "agent", 1.0, "m", (Turn("model", "x"),), "No", False, -0.1, 0,
                      "answer", extra=extra)
    again = task_from_trajectory(Trajectory.from_dict(traj.to_dict()))
    assert again.to_dict() == {**task.to_dict()}
