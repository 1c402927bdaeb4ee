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


def _mixed(sandbox, share: float, seed: int = 0, tasks: list[Task] | None = None):
    if tasks is None:
        tasks = [t for name in ("number_multiply", "word_sorting") for t in _tasks(name)] * 20
        tasks = [Task.from_dict({**t.to_dict(), "id": f"{t.id}#{k}"}) for k, t in enumerate(tasks)]
    opts = RolloutOptions(timeout_s=60.0, seed=seed)
    return list(rollout(tasks, ReferenceGenerator(text_share=share), sandbox, opts))


def test_text_share_mixes_direct_text_answers_with_programs(sandbox):
    trajs = _mixed(sandbox, 0.3)
    text = [t for t in trajs if t.num_code_calls == 0]
    assert 0.15 * len(trajs) < len(text) < 0.45 * len(trajs)  # 80 draws at 0.3: outside is beyond 3 sigma
    for traj in trajs:
        assert traj.correct and traj.finish == "answer" and traj.reward == pytest.approx(1.1), traj.id
        assert traj.style == "agent"
    for traj in text:
        assert len(traj.turns) == 1 and traj.turns[0].text.startswith("I will answer directly.")
    # The choice is a function of the seed and the trajectory id: same seed, same choice; another seed differs.
    assert [t.num_code_calls for t in _mixed(sandbox, 0.3)] == [t.num_code_calls for t in trajs]
    assert [t.num_code_calls for t in _mixed(sandbox, 0.3, seed=1)] != [t.num_code_calls for t in trajs]
    assert all(t.num_code_calls == 1 for t in _mixed(sandbox, 0.0))
    assert all(t.num_code_calls == 0 and t.correct for t in _mixed(sandbox, 1.0))


def test_text_share_writes_only_answers_the_verifier_accepts(sandbox):
    """A stored answer that does not verify (here a wrong one) or none at all: the program, never a wrong text."""
    wrong = [Task.from_dict({**t.to_dict(), "answer": f"{t.answer}1"}) for t in _tasks("number_multiply")]
    missing = [Task.from_dict({**t.to_dict(), "id": f"{t.id}#none", "answer": None})
               for t in _tasks("number_multiply")]
    trajs = _mixed(sandbox, 1.0, tasks=wrong + missing)
    assert all(t.num_code_calls == 1 and t.correct for t in trajs), [(t.id, t.answer) for t in trajs]


def test_text_share_is_the_reference_teachers_only():
    from r1ci_cli.backends import BackendOptions, open_generator

    with pytest.raises(R1ciError, match="--text-share is the reference teacher's"):
        open_generator(BackendOptions(kind="hf", model="m", text_share=0.5))
    with pytest.raises(R1ciError, match="between 0 and 1"):
        ReferenceGenerator(text_share=1.5)
    # eval measures: it has no such flag.
    from click.testing import CliRunner

    from r1ci_cli.cli import cli

    result = CliRunner().invoke(cli, ["eval", "run", "/nonexistent.jsonl", "--backend", "reference",
                                      "--text-share", "0.3"])
    assert result.exit_code == 2 and "No such option '--text-share'" in result.stderr
