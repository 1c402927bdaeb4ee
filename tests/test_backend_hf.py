"""The transformers backend on a tiny random Qwen2 model (CPU): stops, token-in/token-out, seeding."""

from __future__ import annotations

import pytest
from test_rollout_loop import boolean_task, real_or_double_sandbox

from r1ci_cli.rollout.loop import RolloutOptions, rollout

torch = pytest.importorskip("torch")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    try:
        from r1ci_cli.models import InitModelOptions, init_model
    except ImportError as err:
        pytest.skip(f"r1ci_cli.models (init-model) is not available yet: {err}")
    return str(init_model(tmp_path_factory.mktemp("tiny") / "model", InitModelOptions(preset="tiny", seed=0)))


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices on a shared machine (conftest.py)


@pytest.fixture(scope="module")
def generator(tiny_model_dir):
    from r1ci_cli.backends.hf import HfGenerator

    return HfGenerator(tiny_model_dir, device="cpu", batch_size=4)


class Forced:
    """Wraps the model and forces the logits to spell a script: script[k] is written by the k-th generate
    call (a prefill starts a call); past the script's end it writes the end-of-message token."""

    def __init__(self, model, scripts, end_id):
        self.model, self.scripts, self.end_id = model, scripts, end_id
        self.call, self.step = -1, 0
        self.contexts = []
        self.forward = model.forward
        self.config = model.config

    def __call__(self, input_ids, attention_mask, **kwargs):
        if input_ids.shape[1] > 1:
            self.call, self.step = self.call + 1, 0
            self.contexts.append([row[mask.bool()].tolist() for row, mask in zip(input_ids, attention_mask)])
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        script = self.scripts[min(self.call, len(self.scripts) - 1)]
        token = script[self.step] if self.step < len(script) else self.end_id
        out.logits[:, -1, :] = -1e9
        out.logits[:, -1, token] = 0.0
        self.step += 1
        return out


@pytest.fixture
def forced(generator):
    real = generator.model
    sampled = []
    real_sample = generator._sample

    def recording_sample(logits, request, rng):
        token, logprob = real_sample(logits, request, rng)
        sampled.append((request.key, token))
        return token, logprob

    def install(texts):
        generator.model = Forced(real, [generator.encode_text(t) for t in texts], min(generator.end_ids))
        generator._sample = recording_sample
        return generator.model, sampled

    yield install
    generator.model = real
    generator._sample = real_sample


@pytest.fixture(scope="module")
def sandbox():
    with real_or_double_sandbox() as box:
        yield box


@pytest.fixture
def _run(sandbox):
    def run(generator, tasks, **kw):
        return list(rollout(tasks, generator, sandbox, RolloutOptions(**kw)))
    return run


def test_stops_at_fence_executes_and_stops_at_answer(generator, forced, _run):
    forced(["Let me compute.\n```python\nprint(6 * 4)\n```\nEXTRA words", "So it is <<<24>>> and more"])
    (traj,) = _run(generator, [boolean_task()], temperature=0.0, stop_at_answer=True)
    assert [t.role for t in traj.turns] == ["model", "exec", "model"]
    assert "EXTRA" not in traj.turns[0].text and traj.turns[0].text.rstrip().endswith("```")
    assert traj.turns[1].text.startswith("\nCode Execution Results:\n24") and traj.turns[1].status == "ok"
    assert "more" not in traj.turns[2].text and traj.answer == "24" and traj.finish == "answer"
    assert traj.extra["usage"]["completion_tokens"] == len(traj.turns[0].ids) + len(traj.turns[2].ids)


def test_ids_for_training_are_the_sampled_ids(generator, forced, _run):
    model, sampled = forced(["Go.\n```python\nprint('hi')\n```", "Done <<<hi>>>"])
    (traj,) = _run(generator, [boolean_task()], temperature=1.0)
    prompt = traj.extra["prompt_ids"]
    model_ids = [list(t.ids) for t in traj.turns if t.role == "model"]
    assert sum(model_ids, []) == [token for key, token in sampled if key == traj.id]
    assert model.contexts[0] == [prompt]
    assert model.contexts[1] == [prompt + list(traj.turns[0].ids) + list(traj.turns[1].ids)]
    assert list(traj.turns[1].ids) == list(generator.encode_text(traj.turns[1].text))
    assert traj.extra["tokenizer"] == generator.tokenizer_fingerprint


def test_by_default_the_turn_runs_past_a_draft_answer_to_the_end_of_the_message(generator, forced, _run):
    forced(["Draft <<<False>>>. No, it is <<<True>>> in the end."])
    (traj,) = _run(generator, [boolean_task()], temperature=0.0)
    assert traj.turns[0].text == "Draft <<<False>>>. No, it is <<<True>>> in the end."
    assert traj.answer == "True" and traj.correct and traj.finish == "answer"
    assert traj.turns[0].ids[-1] in generator.end_ids


def test_a_full_context_ends_the_trajectory_as_context(generator, forced, _run):
    forced(["a b c d e f g h i j k l m n o p"])
    prompt = len(generator.encode_prompt(boolean_and_prompt_messages()))
    generator.max_len, before = prompt + 3, generator.max_len
    try:
        (traj,) = _run(generator, [boolean_task()], temperature=0.0)
    finally:
        generator.max_len = before
    assert traj.finish == "context" and len(traj.turns[0].ids) == 3


def boolean_and_prompt_messages():
    from r1ci_cli.rollout.styles import get_style

    style = get_style("agent", "paper")
    return [{"role": "system", "content": style.system_prompt},
            {"role": "user", "content": style.user_message(boolean_task().question)}]


def test_end_of_message_without_answer(generator, forced, _run):
    forced([""])
    (traj,) = _run(generator, [boolean_task()])
    assert traj.finish == "stop" and traj.answer is None and not traj.correct
    assert traj.turns[0].text == "" and len(traj.turns[0].ids) == 1 and traj.turns[0].ids[0] in generator.end_ids


def test_turn_budget_gives_max_tokens(generator, _run):
    (traj,) = _run(generator, [boolean_task()], max_new_tokens=5, max_total_tokens=5)
    assert traj.finish in ("max_tokens", "answer", "stop", "max_calls")
    assert len(traj.turns[0].ids) <= 5 and traj.extra["usage"]["completion_tokens"] <= 5


def test_same_seed_same_trajectories(generator, _run):
    task = boolean_task()
    runs = [_run(generator, [task], samples=2, seed=seed, max_new_tokens=8, max_total_tokens=16, cohorts=2)
            for seed in (7, 7, 8)]
    first, again, other = ([t.to_dict() for t in run] for run in runs)
    assert first == again
    assert [t["turns"] for t in first] != [t["turns"] for t in other]


def test_random_model_trajectories_are_well_formed_records(generator, _run):
    from r1ci_cli.records import Trajectory

    trajs = _run(generator, [boolean_task(), boolean_task(5)], samples=2, max_new_tokens=12, max_total_tokens=24)
    assert len(trajs) == 4
    for traj in trajs:
        again = Trajectory.from_dict(traj.to_dict())
        assert again.to_dict() == traj.to_dict()
        assert all(t.ids is not None for t in traj.turns)
        assert traj.finish in ("answer", "stop", "max_tokens", "max_calls")


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.7), (0.0, 1.0)])
def test_sampled_logprob_is_of_the_distribution_it_was_drawn_from(temperature, top_p):
    """log-softmax(logits / T) of the token; under top-p the nucleus renormalised; greedy 0."""
    import math

    import torch

    from r1ci_cli.backends.base import GenRequest
    from r1ci_cli.backends.hf import HfGenerator

    generator = HfGenerator.__new__(HfGenerator)
    generator.torch = torch
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    request = GenRequest(key="k", messages=(), turns=(), max_new_tokens=1, temperature=temperature, seed=0,
                         top_p=top_p, logprobs=True)
    for seed in range(20):
        token, logprob = generator._sample(logits, request, torch.Generator().manual_seed(seed))
        if temperature == 0:
            assert (token, logprob) == (0, 0.0)
            continue
        probs = torch.softmax(logits / temperature, dim=-1).tolist()
        kept = [p for p in sorted(probs, reverse=True)]
        nucleus, total = [], 0.0
        for p in kept:
            if total < top_p:
                nucleus.append(p)
            total += p
        assert probs[token] in nucleus
        assert logprob == pytest.approx(math.log(probs[token] / sum(nucleus)), abs=1e-6)
