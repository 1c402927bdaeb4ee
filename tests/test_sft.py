"""sft core: loss falls, observations get no gradient, exact resume, selection, schedule."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from r1ci_cli.errors import BadRecord, R1ciError
from r1ci_cli.models import InitModelOptions, init_model
from r1ci_cli.records import Trajectory
from r1ci_cli.seeds import derive_rng
from r1ci_cli.train import sft as sft_module
from r1ci_cli.train import sft_data
from r1ci_cli.train.schedule import lr_factor, warmup_steps_for
from r1ci_cli.train.checkpoint import CheckpointOptions
from r1ci_cli.train.engine import EngineOptions
from r1ci_cli.train.options import SftOptions
from r1ci_cli.train.sft import sft
from test_sequences import make_trajectory


def arithmetic_trajectories(count: int, seed: int = 0, tasks: int = 4) -> list[dict[str, Any]]:
    """Reference-style multiplication trajectories: code turn, its result, the answer."""
    rng = derive_rng(seed, "test-sft")
    out = []
    for i in range(count):
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        data = make_trajectory(i, question=f"What is {a} * {b}?", answer=str(a * b), task=f"mul{i % tasks}")
        data["turns"][0]["text"] = f"Let me compute it.\n```python\nprint({a} * {b})\n```"
        out.append(data)
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices on a shared machine (conftest.py)


@pytest.fixture(scope="module")
def micro_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A micro model whose tokenizer saw the built-in text and this test's trajectories (fast to build)."""
    from r1ci_cli.model_corpus import BUILTIN_TEXT, SYSTEM_TEXT

    corpus = [SYSTEM_TEXT, BUILTIN_TEXT] + [t["text"] for r in arithmetic_trajectories(64, seed=1)
                                            for t in r["turns"]]
    return str(init_model(tmp_path_factory.mktemp("m") / "m0",
                          InitModelOptions(preset="micro", seed=0, corpus=corpus)))


@pytest.fixture
def refs(tmp_path: Path) -> str:
    return write_jsonl(tmp_path / "refs.jsonl", arithmetic_trajectories(16))


ENGINE_FIELDS = ("lr", "micro_batch_size", "device", "precision", "gradient_checkpointing")
CHECKPOINT_FIELDS = ("save_every", "keep", "resume")


def _options(model: str, out: Path, **kw: Any) -> SftOptions:
    base = dict(epochs=2, batch_size=4, micro_batch_size=2, lr=3e-3, warmup_ratio=0.1, max_seq_len=512,
                save_every=3, device="cpu")
    base.update(kw)
    engine = EngineOptions(**{k: base.pop(k) for k in ENGINE_FIELDS if k in base})
    checkpoint = CheckpointOptions(output=str(out), **{k: base.pop(k) for k in CHECKPOINT_FIELDS if k in base})
    return SftOptions(model=model, checkpoint=checkpoint, engine=engine, **base)


def _metrics(out: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in sft_module.TIMING_FIELDS} for r in rows]


def _weights(directory: Path):
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def test_loss_falls_on_a_small_set(tmp_path: Path, micro_model: str, refs: str) -> None:
    result = sft([refs], _options(micro_model, tmp_path / "m1", epochs=4))
    losses = [r["loss"] for r in _metrics(tmp_path / "m1")]
    assert result.steps == len(losses) == 16
    assert sum(losses[-3:]) / 3 < 0.8 * losses[0]
    assert (tmp_path / "m1" / "config.json").is_file() and (tmp_path / "m1" / "tokenizer.json").is_file()


def test_observation_tokens_do_not_change_the_loss(micro_model: str) -> None:
    """A trajectory ending in an exec turn: rewriting that observation leaves the loss bit-identical."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1ci_cli.train.sequences import SequenceBuilder, collate

    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    model = AutoModelForCausalLM.from_pretrained(micro_model)
    builder = SequenceBuilder(tokenizer, 512)
    losses = []
    for observation in ("\nCode Execution Results:\n391\n", "\nCode Execution Results:\nTraceback: boom xyz\n"):
        data = make_trajectory(finish="max_calls")
        data["turns"] = data["turns"][:2]
        data["turns"][1]["text"] = observation
        batch = collate([builder.build(Trajectory.from_dict(data))], tokenizer.pad_token_id)
        with torch.no_grad():
            loss, count = sft_module._loss_sum(model, batch)
        losses.append((loss.item(), int(count)))
    assert losses[0] == losses[1]


def test_observation_positions_get_zero_gradient(micro_model: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1ci_cli.train.sequences import SequenceBuilder, collate

    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    model = AutoModelForCausalLM.from_pretrained(micro_model)
    seq = SequenceBuilder(tokenizer, 512).build(Trajectory.from_dict(make_trajectory()))
    batch = collate([seq], tokenizer.pad_token_id)
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits  # (1, T, V)
    logits.retain_grad()
    targets = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1][targets != -100], targets[targets != -100])
    loss.backward()
    per_position = logits.grad[0, :-1].abs().sum(-1)  # gradient on the logits that predict token t+1
    mask = torch.tensor(seq.loss_mask[1:], dtype=torch.bool)
    assert (per_position[~mask] == 0).all() and (per_position[mask] > 0).all()


def test_resume_after_crash_equals_uninterrupted(tmp_path: Path, micro_model: str, refs: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    full = tmp_path / "full"
    sft([refs], _options(micro_model, full))
    crashed = tmp_path / "crashed"
    real_step = sft_module._train_step
    calls = {"n": 0}

    def dying_step(*args: Any, **kw: Any):
        calls["n"] += 1
        if calls["n"] == 6:  # after the checkpoint at step 3, with steps 4-5 done and unsaved
            raise KeyboardInterrupt
        return real_step(*args, **kw)

    monkeypatch.setattr(sft_module, "_train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        sft([refs], _options(micro_model, crashed))
    assert len(_metrics(crashed)) == 5
    monkeypatch.setattr(sft_module, "_train_step", real_step)
    sft([refs], _options(micro_model, crashed, resume=True))
    assert _metrics(crashed) == _metrics(full)
    want, got = _weights(full), _weights(crashed)
    assert want.keys() == got.keys() and all((want[k] == got[k]).all() for k in want)


def test_a_kill_between_the_checkpoint_rename_and_the_latest_pointer_loses_no_step(
        tmp_path: Path, micro_model: str, refs: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after step-000006 is renamed into place but before ``latest`` names it: resume starts at step 6
    (the newest complete checkpoint), not at step 3, and ends where an uninterrupted run does."""
    from r1ci_cli.train import checkpoint as checkpoint_module

    full = tmp_path / "full"
    sft([refs], _options(micro_model, full))
    crashed = tmp_path / "crashed"
    real_write = checkpoint_module.write_bytes_atomic

    def dying_write(path: str, data: bytes) -> None:
        if path.endswith("/latest") and data.strip() == b"step-000006":
            raise KeyboardInterrupt
        real_write(path, data)

    monkeypatch.setattr(checkpoint_module, "write_bytes_atomic", dying_write)
    with pytest.raises(KeyboardInterrupt):
        sft([refs], _options(micro_model, crashed))
    monkeypatch.setattr(checkpoint_module, "write_bytes_atomic", real_write)
    assert (crashed / "checkpoints" / "latest").read_text().strip() == "step-000003"
    assert checkpoint_module.latest_checkpoint(crashed).name == "step-000006"
    steps = {"n": 0}
    real_step = sft_module._train_step

    def counting_step(*args: Any, **kw: Any):
        steps["n"] += 1
        return real_step(*args, **kw)

    monkeypatch.setattr(sft_module, "_train_step", counting_step)
    sft([refs], _options(micro_model, crashed, resume=True))
    assert steps["n"] == len(_metrics(full)) - 6
    assert _metrics(crashed) == _metrics(full)
    want, got = _weights(full), _weights(crashed)
    assert want.keys() == got.keys() and all((want[k] == got[k]).all() for k in want)


def test_latest_checkpoint_is_the_newest_complete_one(tmp_path: Path) -> None:
    from r1ci_cli.train.checkpoint import latest_checkpoint

    root = tmp_path / "checkpoints"
    assert latest_checkpoint(tmp_path) is None
    for name in ("step-000002", "step-000004", ".tmp-step-000006", "step-000008"):
        (root / name).mkdir(parents=True)
    for name in ("step-000002", "step-000004", ".tmp-step-000006"):  # step-000008 lacks its trainer state
        (root / name / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path).name == "step-000004"  # no pointer yet (killed before the first one)
    (root / "latest").write_text("step-000002\n")
    assert latest_checkpoint(tmp_path).name == "step-000004"  # the pointer is one save behind
    (root / "latest").write_text("step-000004\n")
    assert latest_checkpoint(tmp_path).name == "step-000004"
    (root / "latest").write_text("step-000008\n")
    with pytest.raises(R1ciError, match="not a complete checkpoint"):
        latest_checkpoint(tmp_path)


def test_resume_with_other_settings_is_refused_naming_the_setting(tmp_path: Path, micro_model: str,
                                                                   refs: str) -> None:
    sft([refs], _options(micro_model, tmp_path / "m1", max_steps=3))
    with pytest.raises(R1ciError, match=r"made with engine\.lr = 0\.003, this command has 0\.0001"):
        sft([refs], _options(micro_model, tmp_path / "m1", max_steps=3, lr=1e-4, resume=True))
    with pytest.raises(R1ciError, match="made with other training data"):
        other = write_jsonl(tmp_path / "other.jsonl", arithmetic_trajectories(12))
        sft([other], _options(micro_model, tmp_path / "m1", max_steps=3, resume=True))


def test_existing_output_needs_resume(tmp_path: Path, micro_model: str, refs: str) -> None:
    (tmp_path / "m1").mkdir()
    (tmp_path / "m1" / "x").write_text("")
    with pytest.raises(R1ciError, match="--resume"):
        sft([refs], _options(micro_model, tmp_path / "m1"))


def test_batch_geometry_checked_before_reading(tmp_path: Path, micro_model: str) -> None:
    with pytest.raises(R1ciError, match="multiple of --micro-batch-size"):
        sft([str(tmp_path / "missing.jsonl")], _options(micro_model, tmp_path / "m1", batch_size=5))


def test_too_few_sequences_for_a_batch(tmp_path: Path, micro_model: str) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", arithmetic_trajectories(3))
    with pytest.raises(R1ciError, match="only 3 training sequences"):
        sft([path], _options(micro_model, tmp_path / "m1"))


def test_checkpoints_pruned_and_latest_complete(tmp_path: Path, micro_model: str, refs: str) -> None:
    out = tmp_path / "m1"
    sft([refs], _options(micro_model, out, save_every=2, keep=2))
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["latest", "step-000006", "step-000008"]
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-000008"
    state = json.loads((out / "checkpoints" / "step-000008" / "trainer_state.json").read_text())
    assert state["step"] == 8 and state["metrics_rows"] == 8
    resolved = json.loads((out / "resolved_config.json").read_text())
    assert resolved["derived"]["total_steps"] == 8 and resolved["derived"]["grad_accum"] == 2


def test_bad_extra_field_names_path_and_line(tmp_path: Path, micro_model: str) -> None:
    rows = arithmetic_trajectories(8)
    rows[2]["prompt"] = "oops"
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    with pytest.raises(BadRecord, match=r"r.jsonl:3: field 'prompt'"):
        sft([path], _options(micro_model, tmp_path / "m1"))


def _located(rows: list[dict[str, Any]]) -> list[sft_data.Located]:
    return [sft_data.Located(Trajectory.from_dict(r), "x", i + 1) for i, r in enumerate(rows)]


def test_selection_keeps_correct_and_caps_per_task() -> None:
    rows = arithmetic_trajectories(20, tasks=2)
    for r in rows[:4]:
        r["correct"] = False
    chosen, stats = sft_data.select(_located(rows), only_correct=True, max_per_task=5, seed=0)
    assert stats.num_incorrect_skipped == 4 and stats.num_selected == 10 and stats.num_over_cap_skipped == 6
    assert all(r.trajectory.correct for r in chosen)
    again, _ = sft_data.select(list(reversed(_located(rows))), only_correct=True, max_per_task=5, seed=0)
    assert sorted(r.trajectory.id for r in again) == sorted(r.trajectory.id for r in chosen)
    everything, _ = sft_data.select(_located(rows), only_correct=False, max_per_task=100, seed=0)
    assert len(everything) == 20


def test_micro_batches_cover_the_batch_once_across_ranks() -> None:
    from r1ci_cli.train.sequences import TokenSequence

    seqs = [TokenSequence(str(i), tuple(range(i % 7 + 2)), (0, 1) + (1,) * (i % 7), False, False) for i in range(16)]
    batch = sft_data.global_batch(sft_data.epoch_order(0, 0, 16), 1, 8)
    parts = [sft_data.rank_micro_batches(batch, seqs, 2, 2, r) for r in range(2)]
    assert all(len(p) == 2 for p in parts)
    assert sorted(i for p in parts for mb in p for i in mb) == sorted(batch)
    assert sft_data.epoch_order(0, 1, 16) != sft_data.epoch_order(0, 0, 16)
    assert sft_data.epoch_order(0, 1, 16) == sft_data.epoch_order(0, 1, 16)


def test_schedule_warmup_then_cosine() -> None:
    assert warmup_steps_for(100, 0.03) == 3
    assert [lr_factor(s, 100, 3) for s in range(3)] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert lr_factor(3, 100, 3) == pytest.approx(1.0)
    assert lr_factor(99, 100, 3, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 96 / 97)))
    values = [lr_factor(s, 100, 3) for s in range(3, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_gradient_checkpointing_gives_the_same_losses(tmp_path: Path, micro_model: str, refs: str) -> None:
    sft([refs], _options(micro_model, tmp_path / "plain", max_steps=2))
    sft([refs], _options(micro_model, tmp_path / "ckpt", max_steps=2, gradient_checkpointing=True))
    plain = [r["loss"] for r in _metrics(tmp_path / "plain")]
    assert [r["loss"] for r in _metrics(tmp_path / "ckpt")] == pytest.approx(plain, rel=1e-5)


def test_bf16_autocast_runs_close_to_fp32(tmp_path: Path, micro_model: str, refs: str) -> None:
    sft([refs], _options(micro_model, tmp_path / "fp32", max_steps=2, precision="fp32"))
    sft([refs], _options(micro_model, tmp_path / "bf16", max_steps=2, precision="bf16"))
    fp32 = [r["loss"] for r in _metrics(tmp_path / "fp32")]
    assert [r["loss"] for r in _metrics(tmp_path / "bf16")] == pytest.approx(fp32, rel=5e-2)
    derived = json.loads((tmp_path / "bf16" / "resolved_config.json").read_text())["derived"]
    assert derived["precision"] == "bf16"


def test_two_runs_of_a_model_with_dropout_reach_the_same_weights(tmp_path: Path, micro_model: str, refs: str) -> None:
    """Dropout draws from torch's global generator: sft seeds it from --seed (before, the weights depended on
    whatever had drawn from it earlier in the process)."""
    import shutil

    import torch

    model = tmp_path / "dropout"
    shutil.copytree(micro_model, model)
    config = json.loads((model / "config.json").read_text())
    config["attention_dropout"] = 0.2
    (model / "config.json").write_text(json.dumps(config))
    sft([refs], _options(str(model), tmp_path / "a"))
    torch.rand(3)  # something else drew from the global generator in between
    sft([refs], _options(str(model), tmp_path / "b"))
    want, got = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all((want[k] == got[k]).all() for k in want)
