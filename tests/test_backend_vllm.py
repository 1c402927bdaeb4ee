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

    model = init_model(tmp_path / "model", InitModelOptions(preset="tiny", seed=0))
    generator = open_generator(BackendOptions(kind="vllm", model=str(model), gpu_memory_utilization=0.3))
    with real_or_double_sandbox() as box:
        trajs = list(rollout([boolean_task(), boolean_task(4)], generator, box,
                             RolloutOptions(samples=4, max_new_tokens=64, max_total_tokens=256)))
    assert len(trajs) == 8
    for traj in trajs:
        context = list(traj.extra["prompt_ids"])
        for turn in traj.turns:
            assert turn.ids is not None and len(turn.ids) > 0 or turn.role == "model"
            if turn.role == "exec":
                assert list(turn.ids) == list(generator.encode_text(turn.text))
            context += list(turn.ids)
        assert len(context) >= len(traj.extra["prompt_ids"])
        assert traj.finish in ("answer", "max_tokens", "max_calls")
