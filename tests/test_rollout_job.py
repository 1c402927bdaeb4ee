"""A rollout job's file output when things go wrong: the settings a ``.partial`` file was made with, what an
error leaves behind, and the summary of a resumed run. The generator is a scripted test double (loop logic
only); code runs in the real sandbox pool."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import replace

import orjson
import pytest
from test_rollout_loop import ScriptedGenerator, boolean_task, real_or_double_sandbox

from r1ci_cli.backends.base import BackendOptions, Completion
from r1ci_cli.errors import R1ciError
from r1ci_cli.rollout.job import RolloutJob, run_rollout
from r1ci_cli.rollout.loop import RolloutOptions
from r1ci_cli.streams import record_sink

CODE = "Check.\n```python\nprint(not (True and False))\n```"


class SlowFirst(ScriptedGenerator):
    """Task 0 writes code for two turns, task 1 answers at once; the ``fail_on``-th generate call raises (a
    server gone away), after task 1 finished but while task 0, before it in the output, is still going."""

    def __init__(self, fail_on: int | None = None):
        super().__init__([CODE, CODE, "So <<<True>>>"])
        self.calls, self.fail_on = 0, fail_on

    def generate(self, requests):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("the server went away")
        out = []
        for request in requests:
            if request.key.startswith("boolean_expressions/1/"):
                out.append(Completion("<<<True>>>", "stop", num_new_tokens=1))
            else:
                out.extend(super().generate([request]))
        return out


@pytest.fixture(scope="module")
def pool():
    with real_or_double_sandbox() as box:
        yield box


@pytest.fixture
def job(tmp_path, pool, monkeypatch):
    tasks = tmp_path / "tasks.jsonl"
    with record_sink(str(tasks)) as sink:
        sink.write(boolean_task(0))
        sink.write(replace(boolean_task(0), id="boolean_expressions/1"))
    monkeypatch.setattr("r1ci_cli.rollout.job.open_sandbox", lambda settings, timeout_s: nullcontext(pool))

    def make(generator, **kw):
        monkeypatch.setattr("r1ci_cli.rollout.job.open_generator", lambda opts: generator)
        rollout = kw.pop("rollout", RolloutOptions(max_in_flight=2, cohorts=1))
        return RolloutJob(src=str(tasks), output=str(tmp_path / "out.jsonl"), rollout=rollout,
                          backend=BackendOptions(kind="hf", model="m"), progress=False, **kw)

    return make


def partial_rows(tmp_path):
    return [orjson.loads(line) for line in (tmp_path / "out.jsonl.partial").read_bytes().splitlines()]


def test_every_finished_trajectory_is_written_before_an_error_stops_the_run(job, tmp_path):
    with pytest.raises(RuntimeError, match="went away"):
        run_rollout(job(SlowFirst(fail_on=3)))
    rows = [r for r in partial_rows(tmp_path) if "id" in r]
    assert [r["id"] for r in rows] == ["boolean_expressions/1/agent/t1/s0"]
    assert not (tmp_path / "out.jsonl").exists()


def test_a_partial_file_holds_the_settings_and_a_resume_with_others_is_refused_naming_one(job, tmp_path):
    with pytest.raises(RuntimeError):
        run_rollout(job(SlowFirst(fail_on=3)))
    colder = RolloutOptions(max_in_flight=2, cohorts=1, temperature=0.6)
    with pytest.raises(R1ciError, match=r"out.jsonl.partial.*temperature.*1\.0.*0\.6"):
        run_rollout(job(SlowFirst(), resume=True, rollout=colder))
    other_model = job(SlowFirst(), resume=True)
    with pytest.raises(R1ciError, match=r"model.*'m'.*'other'"):
        run_rollout(replace(other_model, backend=BackendOptions(kind="hf", model="other")))
    # Runtime settings (how the work is scheduled) may change.
    faster = RolloutOptions(max_in_flight=8, cohorts=2)
    stats = run_rollout(job(SlowFirst(), resume=True, rollout=faster))
    assert stats.num_trajectories == 2 and stats.num_resumed == 1
    assert "2 trajectories (1 resumed)" in stats.summary()
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_a_resume_against_a_finished_output_made_at_another_temperature_is_refused(job, tmp_path):
    run_rollout(job(SlowFirst()))
    with pytest.raises(R1ciError, match=r"out.jsonl.*temperature"):
        run_rollout(job(SlowFirst(), resume=True, rollout=RolloutOptions(temperature=0.6)))


def test_no_partial_file_without_a_finished_trajectory(job, tmp_path):
    with pytest.raises(RuntimeError):
        run_rollout(job(SlowFirst(fail_on=1)))
    assert list(tmp_path.glob("out.jsonl*")) == []
    with pytest.raises(R1ciError, match="no such file"):
        run_rollout(replace(job(SlowFirst()), src=str(tmp_path / "missing.jsonl")))
    assert list(tmp_path.glob("out.jsonl*")) == []


def test_the_summary_of_a_resumed_run_counts_every_trajectory(job, tmp_path, caplog):
    with pytest.raises(RuntimeError):
        run_rollout(job(SlowFirst(fail_on=3)))
    with caplog.at_level(logging.INFO, logger="r1ci"):
        stats = run_rollout(job(SlowFirst(), resume=True))
    assert stats.num_trajectories == 2 and stats.num_correct == 2
    assert "2 trajectories (1 resumed) | accuracy 1.000" in caplog.text
