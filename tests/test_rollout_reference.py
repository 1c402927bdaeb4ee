"""The reference teacher over every registered task family: tasks, verifiers and the sandbox agree."""

from __future__ import annotations

import pytest
from test_rollout_loop import real_or_double_sandbox

from r1ci_cli.backends.reference import ReferenceGenerator
from r1ci_cli.errors import R1ciError
from r1ci_cli.records import Task
from r1ci_cli.rollout.loop import RolloutOptions, rollout
from r1ci_cli.seeds import derive_rng
from r1ci_cli.tasks import registry

NUM_PER_FAMILY = 2


def _generated_families() -> list[str]:
    return [f.name for f in registry.families() if f.has_generator]


def _tasks(name: str) -> list[Task]:
    family = registry.get_family(name)
    tasks = []
    for index in range(NUM_PER_FAMILY):
        inst = family.generate(derive_rng(0, "test-reference", name, index), family.knobs)
        tasks.append(Task(id=f"{name}/{index}", source=family.source, task=name, split="train", seed=index,
                          question=inst.question, check=dict(inst.check), answer=inst.answer))
    return tasks


@pytest.fixture(scope="module")
def sandbox():
    with real_or_double_sandbox(workers=2) as box:
        yield box


@pytest.mark.parametrize("name", _generated_families())
def test_reference_trajectories_are_correct(name, sandbox):
    trajs = list(rollout(_tasks(name), ReferenceGenerator(), sandbox, RolloutOptions(timeout_s=60.0)))
    assert len(trajs) == NUM_PER_FAMILY
    for traj in trajs:
        assert traj.finish == "answer", (traj.id, traj.turns[-1].text[-300:])
        assert traj.turns[1].role == "exec" and traj.turns[1].status == "ok", traj.turns[1].text[-500:]
        assert traj.correct, (traj.id, traj.answer, traj.extra["reference_answer"])
        assert traj.reward == pytest.approx(1.1) and traj.num_code_calls == 1


def test_reference_code_style_is_correct(sandbox):
    name = _generated_families()[0]
    trajs = list(rollout(_tasks(name), ReferenceGenerator(), sandbox, RolloutOptions(style="code")))
    assert all(t.correct and t.finish == "answer" and len(t.turns) == 2 for t in trajs)


def test_reference_answers_from_the_full_output_not_the_cut_observation(sandbox):
    """The observation is cut to 40 characters; the teacher still answers with everything the program printed."""
    tasks = [t for t in _tasks("word_sorting") if len(str(t.answer)) > 40]
    assert tasks, "word_sorting's default knobs give long answers"
    trajs = list(rollout(tasks, ReferenceGenerator(), sandbox, RolloutOptions(max_observation_chars=40)))
    assert all("characters cut" in t.turns[1].text for t in trajs)
    assert all(t.correct and t.answer == str(t.extra["reference_answer"]) for t in trajs), [t.answer for t in trajs]


def test_reference_refuses_text_style(sandbox):
    name = _generated_families()[0]
    with pytest.raises(R1ciError, match="text"):
        list(rollout(_tasks(name), ReferenceGenerator(), sandbox, RolloutOptions(style="text")))
