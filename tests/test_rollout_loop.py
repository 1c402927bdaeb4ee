"""The rollout loop with a scripted generator (a test double for loop logic) and the real sandbox pool.

``SubprocessSandbox`` below is a test-only stand-in: it injects sandbox failures, and it stands in for the
pool where ``r1ci_cli.sandbox`` cannot be imported.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from r1ci_cli.backends.base import Completion
from r1ci_cli.records import ExecResult, Task
from r1ci_cli.rollout.reward import well_formed
from r1ci_cli.rollout.loop import RolloutOptions, RolloutStats, rollout
from r1ci_cli.rollout.pipeline import keep_filter
from sandbox_helpers import FailingSandbox


class SubprocessSandbox:
    """Runs code with ``python -I -c`` in threads (test double); ``fail_with`` injects a sandbox failure."""

    def __init__(self, workers: int = 2, fail_with: str | None = None):
        self._pool = ThreadPoolExecutor(workers)
        self.fail_with = fail_with
        self.codes: list[str] = []

    def _run(self, code: str, timeout_s: float, request_id: str) -> ExecResult:
        if self.fail_with is not None:
            return ExecResult(request_id, "sandbox_error", None, "", self.fail_with, 0.0, False)
        try:
            proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            return ExecResult(request_id, "timeout", None, out, "", timeout_s * 1000, False)
        status = "ok" if proc.returncode == 0 else "error"
        return ExecResult(request_id, status, proc.returncode, proc.stdout, proc.stderr, 1.0, False)

    def submit(self, code: str, timeout_s: float | None = None, request_id: str = "x") -> Future:
        self.codes.append(code)
        return self._pool.submit(self._run, code, timeout_s or 60.0, request_id)

    def run(self, code: str, timeout_s: float | None = None) -> ExecResult:
        return self.submit(code, timeout_s).result()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown()


def real_or_double_sandbox(workers: int = 2):
    try:
        from r1ci_cli.sandbox import SandboxOptions, open_sandbox
    except ImportError:
        return SubprocessSandbox(workers)
    return open_sandbox(None, SandboxOptions(workers=workers, timeout_s=10.0))


@pytest.fixture(scope="module")
def sandbox():
    with real_or_double_sandbox() as box:
        yield box


class ScriptedGenerator:
    """Replays fixed model turns, chosen by how many model turns the trajectory already has."""

    model_name = "scripted"
    tokenizer_fingerprint = None

    def __init__(self, turns: list[str], finish: str = "stop"):
        self.turns, self.finish = turns, finish
        self.requests = []

    def encode_prompt(self, messages):
        return None

    def encode_text(self, text):
        return None

    def generate(self, requests):
        out = []
        for request in requests:
            self.requests.append(request)
            done = sum(1 for role, _ in request.turns if role == "model")
            text = self.turns[min(done, len(self.turns) - 1)]
            out.append(Completion(text, self.finish, num_new_tokens=len(text.split())))
        return out

    def close(self):
        pass


def boolean_task(seed: int = 0) -> Task:
    """A generated boolean_expressions instance whose answer is ``True`` (seeds searched in order)."""
    from r1ci_cli.seeds import derive_rng
    from r1ci_cli.tasks.registry import get_family

    family = get_family("boolean_expressions")
    task_id = f"boolean_expressions/{seed}"
    while True:
        inst = family.generate(derive_rng(seed, "test-rollout"), family.knobs)
        if str(inst.answer) == "True":
            return Task(id=task_id, source=family.source, task=family.name, split="train",
                        seed=seed, question=inst.question, check=dict(inst.check), answer=inst.answer)
        seed += 1


def run(turns, task=None, sandbox=None, finish="stop", **kw):
    generator = ScriptedGenerator(turns, finish)
    opts = RolloutOptions(**kw)
    with (sandbox or real_or_double_sandbox()) as box:
        return list(rollout([task or boolean_task()], generator, box, opts)), generator


def _verify_ok(task: Task) -> bool:
    from r1ci_cli.tasks.registry import Instance, get_family, score

    family = get_family(task.task)
    return score(family, Instance(task.question, task.check, task.answer), f"<<<{task.answer}>>>").correct


def test_code_then_answer_is_correct_and_shows_output():
    task = boolean_task()
    assert _verify_ok(task)
    (traj,), _ = run(["Compute.\n```python\nprint(not (True and False))\n```", "So <<<True>>>"], task)
    assert traj.finish == "answer" and traj.correct and traj.num_code_calls == 1
    assert [t.role for t in traj.turns] == ["model", "exec", "model"]
    assert traj.turns[1].text.startswith("\nCode Execution Results:\nTrue") and traj.turns[1].status == "ok"
    assert traj.reward == pytest.approx(1.1)
    assert traj.extra["well_formed"] is True and traj.extra["reference_answer"] == "True"


def test_max_code_calls_ends_without_running_the_extra_block():
    block = "```python\nprint(1)\n```"
    (traj,), _ = run([block], max_code_calls=6)
    assert traj.finish == "max_calls" and traj.num_code_calls == 6
    assert [t.role for t in traj.turns] == ["model", "exec"] * 6 + ["model"]
    assert traj.reward == pytest.approx(-0.1 - 0.1)  # not formed; 7 model turns > 6


def test_error_and_timeout_are_shown_to_the_model():
    (traj,), _ = run(["```python\nimport time; time.sleep(5)\n```", "```python\n1/0\n```", "<<<x>>>"],
                     timeout_s=0.5)
    assert traj.turns[1].status == "timeout" and "0.5 seconds" in traj.turns[1].text
    assert traj.turns[3].status == "error" and "ZeroDivisionError" in traj.turns[3].text
    assert traj.finish == "answer" and not traj.correct


def test_sandbox_failure_is_typed_and_never_kept():
    (traj,), _ = run(["```python\nprint(1)\n```", "<<<True>>>"], sandbox=SubprocessSandbox(fail_with="worker died"))
    assert traj.finish == "infra_error" and traj.reward == 0.0 and not traj.correct
    assert "worker died" in traj.extra["error"]
    assert list(keep_filter([traj], "correct")) == []


def test_length_finish_is_max_tokens():
    (traj,), _ = run(["thinking " * 10], finish="length")
    assert traj.finish == "max_tokens" and traj.answer is None and traj.reward == pytest.approx(-0.1)


def test_total_token_budget_shrinks_each_turn():
    block = "a b c\n```python\nprint(2)\n```"
    (traj,), gen = run([block], max_total_tokens=12, max_new_tokens=100)
    assert [r.max_new_tokens for r in gen.requests][:2] == [12, 6]
    assert traj.finish == "max_tokens"


def test_code_style_takes_the_programs_output_as_answer():
    (traj,), _ = run(["```python\nprint('<<<' + str(not (True and False)) + '>>>')\n```"], style="code")
    assert traj.finish == "answer" and traj.answer == "True" and traj.num_code_calls == 1
    assert traj.extra["well_formed"] is True


def test_text_style_ignores_fences():
    (traj,), gen = run(["```python\nprint(1)\n```\nso <<<True>>>"], style="text")
    assert traj.num_code_calls == 0 and [t.role for t in traj.turns] == ["model"]
    assert not gen.requests[0].allow_code


def test_steer_adds_guide_messages():
    (traj,), gen = run(["```python\nprint(1)\n```", "<<<True>>>"], style="steer")
    assert "Guide: use code" in gen.requests[0].messages[1]["content"]
    assert "Guide: use text" in traj.turns[1].text


def test_samples_ids_seeds_and_skip(sandbox):
    tasks = [boolean_task()]
    gen = ScriptedGenerator(["<<<True>>>"])
    opts = RolloutOptions(samples=3, temperature=0.6, cohorts=2, max_in_flight=2)
    stats = RolloutStats()
    skip = {"boolean_expressions/0/agent/t0.6/s1"}
    trajs = list(rollout(tasks, gen, sandbox, opts, skip=skip, stats=stats))
    assert [t.id for t in trajs] == ["boolean_expressions/0/agent/t0.6/s0", "boolean_expressions/0/agent/t0.6/s2"]
    assert len({r.seed for r in gen.requests}) == 2 and stats.num_trajectories == 2
    assert "accuracy" in stats.summary()


class _Timed:
    """The sandbox, recording when each execution was submitted and when its result came back (before the
    loop can see the result, so a span never seems to outlast the loop's wait for it)."""

    def __init__(self, sandbox):
        self.sandbox, self.spans = sandbox, []

    def submit(self, code, timeout_s=None, request_id=""):
        import time

        start, outer = time.monotonic(), Future()

        def done(inner):
            self.spans.append((start, time.monotonic()))
            outer.set_result(inner.result())

        self.sandbox.submit(code, timeout_s=timeout_s, request_id=request_id).add_done_callback(done)
        return outer


def _overlaps(cohorts: int) -> tuple[list[list[str]], int]:
    """Batches generated, and how many generate calls ran while some code was running."""
    import time

    batches, calls = [], []

    class Recording(ScriptedGenerator):
        def generate(self, requests):
            began = time.monotonic()
            time.sleep(0.1)  # a generation step that takes time, like a model's
            batches.append(sorted(r.key for r in requests))
            calls.append((began, time.monotonic()))
            return super().generate(requests)

    sleeper = "```python\nimport time; time.sleep(0.4); print(1)\n```"
    gen = Recording([sleeper, "<<<True>>>"])
    with real_or_double_sandbox(workers=4) as box:
        timed = _Timed(box)
        trajs = list(rollout([boolean_task()], gen, timed, RolloutOptions(samples=4, cohorts=cohorts, max_in_flight=4)))
    assert len(trajs) == 4 and all(t.num_code_calls == 1 for t in trajs)
    overlapping = sum(any(start < end and began < stop for start, stop in timed.spans) for began, end in calls)
    return batches, overlapping


def test_code_of_a_batch_runs_in_parallel_with_other_cohorts():
    """Two cohorts: the second cohort generates while the first one's code is still running; with one cohort
    (strict rounds) no generate call ever overlaps an execution, so the overlap is the schedule's doing."""
    batches, overlapping = _overlaps(cohorts=2)
    assert len(batches[0]) == 2 and len(batches[1]) == 2 and set(batches[0]).isdisjoint(batches[1])
    assert overlapping >= 1
    assert _overlaps(cohorts=1)[1] == 0


def test_observation_is_truncated_head_and_tail():
    (traj,), _ = run(["```python\nprint('a' * 5000 + 'END')\n```", "<<<x>>>"], max_observation_chars=200)
    text = traj.turns[1].text
    assert "characters cut" in text and text.rstrip().endswith("END") and len(text) < 400


def test_well_formed_requires_code_turns_then_answer():
    assert well_formed(["code", "answer"], "answer")
    assert not well_formed(["code", None, "answer"], "answer")
    assert not well_formed(["code"], "max_calls")


def test_a_model_that_ends_without_an_answer_finishes_as_stop():
    (traj,), _ = run(["I cannot tell."])
    assert traj.finish == "stop" and traj.answer is None and not traj.correct
    assert traj.extra["well_formed"] is False


def test_a_context_that_no_longer_fits_ends_the_trajectory_as_context():
    (traj,), _ = run(["half a thought"], finish="context")
    assert traj.finish == "context" and not traj.correct and traj.answer is None


def test_an_answer_before_a_block_no_longer_ends_the_turn_and_the_final_answer_is_graded():
    task = boolean_task()
    turns = ["First guess <<<False>>>; let me check.\n```python\nprint(not (True and False))\n```",
             "The check says <<<True>>>"]
    (traj,), _ = run(turns, task)
    assert traj.num_code_calls == 1 and traj.answer == "True" and traj.correct and traj.finish == "answer"
    (early,), _ = run(turns, task, stop_at_answer=True)
    assert early.num_code_calls == 0 and early.answer == "False" and not early.correct


# ------------------------------------------------------------------------------------------ infra_error


def _code_tasks(n: int) -> list[Task]:
    return [boolean_task(seed) for seed in range(0, 10 * n, 10)]


def _without(trajs, *keys):
    return [{k: v for k, v in t.to_dict().items() if k not in keys} for t in trajs]


def test_transient_sandbox_failures_are_retried_into_the_clean_run(sandbox):
    turns = ["```python\nprint(not False)\n```", "<<<True>>>"]
    opts = RolloutOptions(samples=2, max_code_calls=2)
    clean = list(rollout(_code_tasks(4), ScriptedGenerator(turns), sandbox, opts))
    failing = FailingSandbox(sandbox, every=3)
    stats = RolloutStats()
    retried = list(rollout(_code_tasks(4), ScriptedGenerator(turns), failing, opts, stats=stats))
    assert failing.failed >= 2 and stats.num_infra_retries == failing.failed
    assert all(t.finish == "answer" and t.correct for t in retried)
    assert sum(t.extra.get("infra_retries", 0) for t in retried) == failing.failed
    assert _without(retried, "infra_retries") == _without(clean)


def test_without_retries_a_sandbox_failure_ends_as_infra_error(sandbox):
    turns = ["```python\nprint(not False)\n```", "<<<True>>>"]
    opts = RolloutOptions(samples=3, max_code_calls=2, infra_retries=0)
    failing = FailingSandbox(sandbox, every=3)
    trajs = list(rollout(_code_tasks(2), ScriptedGenerator(turns), failing, opts))
    infra = [t for t in trajs if t.finish == "infra_error"]
    assert len(infra) == failing.failed == 2
    assert all(t.reward == 0.0 and not t.correct and "node preempted" in t.extra["error"] for t in infra)
    assert all(t.finish == "answer" and t.correct for t in trajs if t not in infra)


class FlakyBackend(ScriptedGenerator):
    """Fails the first ``failures`` requests of every trajectory (a server error that outlived its retries)."""

    def __init__(self, turns, failures: int):
        super().__init__(turns)
        self.failures, self.seen = failures, {}

    def generate(self, requests):
        out = super().generate(requests)
        for k, request in enumerate(requests):
            self.seen[request.key] = self.seen.get(request.key, 0) + 1
            if self.seen[request.key] <= self.failures:
                out[k] = Completion("", "error", error="HTTP 503 after 5 retries")
        return out


def test_a_failed_backend_request_is_an_infra_error_and_retried():
    (traj,), _ = run_with(FlakyBackend(["<<<True>>>"], failures=1), RolloutOptions())
    assert traj.finish == "answer" and traj.correct and traj.extra["infra_retries"] == 1
    (traj,), _ = run_with(FlakyBackend(["<<<True>>>"], failures=5), RolloutOptions(infra_retries=2))
    assert traj.finish == "infra_error" and traj.reward == 0.0 and traj.extra["infra_retries"] == 2
    assert traj.extra["error"] == "backend_error: HTTP 503 after 5 retries"
    assert [t.role for t in traj.turns] == ["model"]  # a record always holds a turn
    assert list(keep_filter([traj], "correct")) == []


def test_a_verifier_exception_is_recorded_as_infra_error_and_not_retried():
    task = boolean_task()
    broken = Task(id=task.id, source=task.source, task=task.task, split=task.split, seed=task.seed,
                  question=task.question, check={"kind": "truth"}, answer=task.answer)  # no 'target': KeyError
    generator = ScriptedGenerator(["<<<True>>>"])
    (traj,), _ = run_with(generator, RolloutOptions(), task=broken)
    assert traj.finish == "infra_error" and not traj.correct and traj.reward == 0.0
    assert traj.extra["verify_error"] == "KeyError: 'target'" and traj.answer == "True"
    assert len(generator.requests) == 1 and "infra_retries" not in traj.extra


def run_with(generator, opts, task=None):
    with real_or_double_sandbox() as box:
        return list(rollout([task or boolean_task()], generator, box, opts)), generator
