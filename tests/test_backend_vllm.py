"""The vLLM backend: a clear error without vllm; on a GPU, the same trajectory contract as the hf backend."""

from __future__ import annotations

import importlib.util

import pytest

from r1ci_cli.backends import BackendOptions, open_generator
from r1ci_cli.errors import MissingDependency

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_missing_vllm_is_a_one_line_error(tmp_path):
    with pytest.raises(MissingDependency, match="install r1ci\\[gpu\\] or use --backend hf"):
        open_generator(BackendOptions(kind="vllm", model=str(tmp_path)))


def test_backend_module_imports_without_vllm():
    import r1ci_cli.backends.vllm_backend as module

    assert "vllm" not in module.__dict__


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
def test_vllm_rollout_keeps_sampled_ids(tmp_path):
    if not _cuda() or not HAS_VLLM:
        pytest.skip("needs CUDA and vllm")
    from test_rollout_loop import boolean_task, real_or_double_sandbox

    from r1ci_cli.models import InitModelOptions, init_model
    from r1ci_cli.rollout.loop import RolloutOptions, rollout

    from r1ci_cli.backends.tokens import tokenizer_fingerprint
    from r1ci_cli.interaction import find_stop

    model = init_model(tmp_path / "model", InitModelOptions(preset="tiny", seed=0))
    generator = open_generator(BackendOptions(kind="vllm", model=str(model), gpu_memory_utilization=0.3))
    opts = RolloutOptions(samples=4, max_new_tokens=64, max_total_tokens=256)
    with real_or_double_sandbox() as box:
        trajs = list(rollout([boolean_task(), boolean_task(4)], generator, box, opts))
    assert len(trajs) == 8 and len({t.id for t in trajs}) == 8
    for traj in trajs:
        assert traj.extra["tokenizer"] == tokenizer_fingerprint(generator.tokenizer)
        assert list(traj.extra["prompt_ids"]) == list(generator.encode_prompt(traj.extra["prompt"]))
        model_ids = 0
        for index, turn in enumerate(traj.turns):
            assert turn.ids, (traj.id, index, turn.role)  # every turn, model or exec, keeps its token ids
            if turn.role == "exec":
                assert list(turn.ids) == list(generator.encode_text(turn.text))
                continue
            model_ids += len(turn.ids)
            assert len(turn.ids) <= opts.max_new_tokens
            shown = turn.ids[:-1] if turn.ids[-1] in generator.end_ids else turn.ids
            assert generator.decode(shown) == turn.text  # text is the decoding of the sampled ids
            if index + 1 < len(traj.turns):  # a turn followed by an execution ended at a complete block
                stop = find_stop(turn.text)
                assert stop is not None and stop.kind == "code", turn.text[-200:]
        assert model_ids == traj.extra["usage"]["completion_tokens"] <= opts.max_total_tokens
        assert traj.extra["usage"]["prompt_tokens"] == len(traj.extra["prompt_ids"])
        assert traj.finish in ("answer", "stop", "max_tokens", "max_calls", "context")
