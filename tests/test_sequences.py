"""Sequences: loss mask on model tokens only, stored ids vs chat template, explicit truncation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from r1ci_cli.models import IM_END, InitModelOptions, init_model, render_prompt
from r1ci_cli.records import Trajectory
from r1ci_cli.backends.tokens import tokenizer_fingerprint
from r1ci_cli.train.sequences import SequenceBuilder, SequenceError, collate

SYSTEM = "Reason step by step; you may write Python; finish with <<<answer>>>."


def make_trajectory(index: int = 0, question: str = "What is 17 * 23?", answer: str = "391",
                    task: str = "arith", correct: bool = True, **extra: Any) -> dict[str, Any]:
    """A reference-style trajectory dict: code turn, execution result, final answer turn."""
    code = f"```python\nprint(17 * 23)\n```"
    record = {
        "id": f"t{index}", "task_id": f"{task}-{index}", "style": "agent", "temperature": 0.0,
        "model": "reference", "answer": answer, "correct": correct, "reward": 1.1 if correct else 0.1,
        "num_code_calls": 1, "finish": "answer",
        "turns": [
            {"role": "model", "text": f"Let me compute it.\n{code}"},
            {"role": "exec", "text": f"\nCode Execution Results:\n{answer}\n", "status": "ok"},
            {"role": "model", "text": f"The result is {answer}. <<<{answer}>>>"},
        ],
        "question": question, "task": task, "source": "symbench", "split": "train",
        "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
    }
    record.update(extra)
    return record


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    directory = init_model(tmp_path_factory.mktemp("m") / "m0", InitModelOptions(seed=0))
    return AutoTokenizer.from_pretrained(directory)


def _traj(**kw: Any) -> Trajectory:
    return Trajectory.from_dict(make_trajectory(**kw))


def test_mask_covers_exactly_model_turns_and_eos(tokenizer) -> None:
    traj = _traj()
    seq = SequenceBuilder(tokenizer, 4096).build(traj)
    prompt_ids = tokenizer(render_prompt(traj.extra["prompt"]), add_special_tokens=False)["input_ids"]
    turn_ids = [tokenizer(t.text, add_special_tokens=False)["input_ids"] for t in traj.turns]
    expected_ids = prompt_ids + turn_ids[0] + turn_ids[1] + turn_ids[2] + [tokenizer.eos_token_id]
    expected_mask = [0] * len(prompt_ids) + [1] * len(turn_ids[0]) + [0] * len(turn_ids[1]) + \
        [1] * (len(turn_ids[2]) + 1)
    assert list(seq.input_ids) == expected_ids
    assert list(seq.loss_mask) == expected_mask
    assert tokenizer.convert_ids_to_tokens(seq.input_ids[-1]) == IM_END
    assert not seq.from_stored_ids and not seq.truncated


def test_exec_text_never_in_loss(tokenizer) -> None:
    seq = SequenceBuilder(tokenizer, 4096).build(_traj())
    learned = [i for i, m in zip(seq.input_ids, seq.loss_mask) if m]
    assert "Code Execution Results" not in tokenizer.decode(learned)
    assert "Code Execution Results" in tokenizer.decode(list(seq.input_ids))


def test_stored_ids_used_only_when_fingerprint_matches(tokenizer) -> None:
    fingerprint = tokenizer_fingerprint(tokenizer)
    data = make_trajectory(prompt_ids=[5, 6, 7], tokenizer=fingerprint)
    for turn, ids in zip(data["turns"], ([10, 11], [12], [13, 14, 15])):
        turn["ids"] = ids
    builder = SequenceBuilder(tokenizer, 4096)
    seq = builder.build(Trajectory.from_dict(data))
    assert seq.from_stored_ids
    assert list(seq.input_ids) == [5, 6, 7, 10, 11, 12, 13, 14, 15, tokenizer.eos_token_id]
    assert list(seq.loss_mask) == [0, 0, 0, 1, 1, 0, 1, 1, 1, 1]
    data["tokenizer"] = "sha256:" + "0" * 64
    assert not builder.build(Trajectory.from_dict(data)).from_stored_ids
    assert builder.stats.num_from_stored_ids == 1


def test_fingerprint_stable_across_loads_and_differs_between_tokenizers(tmp_path: Path, tokenizer) -> None:
    from transformers import AutoTokenizer

    path = tmp_path / "tok"
    tokenizer.save_pretrained(path)
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(path)) == tokenizer_fingerprint(tokenizer)
    other = init_model(tmp_path / "other", InitModelOptions(corpus=["zzz yyy xxx " * 20], vocab_size=300))
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(other)) != tokenizer_fingerprint(tokenizer)


def test_truncation_is_counted(tokenizer) -> None:
    builder = SequenceBuilder(tokenizer, 4096)
    full = builder.build(_traj())
    short = SequenceBuilder(tokenizer, len(full.input_ids) - 3)
    seq = short.build(_traj())
    assert seq.truncated and len(seq.input_ids) == len(full.input_ids) - 3
    assert short.stats.num_truncated == 1 and short.stats.num_tokens_cut == 3


def test_sequence_without_model_tokens_is_dropped_and_counted(tokenizer) -> None:
    builder = SequenceBuilder(tokenizer, 8)  # the prompt alone is longer than 8 tokens
    assert builder.build(_traj()) is None
    assert builder.stats.num_dropped_no_loss == 1 and builder.stats.dropped_ids == ["t0"]


def test_question_only_fallback(tokenizer) -> None:
    data = make_trajectory()
    del data["prompt"]
    seq = SequenceBuilder(tokenizer, 4096).build(Trajectory.from_dict(data))
    text = tokenizer.decode(list(seq.input_ids))
    assert text.startswith("<|im_start|>user\nWhat is 17 * 23?<|im_end|>")


@pytest.mark.parametrize("extra,field", [
    ({"prompt": "not a list"}, "prompt"),
    ({"prompt": [{"role": "user"}]}, "prompt"),
    ({"prompt": None, "question": 3}, "prompt"),
])
def test_bad_extra_fields_raise_sequence_error(tokenizer, extra: dict[str, Any], field: str) -> None:
    data = make_trajectory()
    data.update(extra)
    if data.get("prompt") is None:
        data.pop("prompt", None)
    with pytest.raises(SequenceError) as info:
        SequenceBuilder(tokenizer, 4096).build(Trajectory.from_dict(data))
    assert info.value.field == field and "\n" not in str(info.value)


def test_bad_stored_prompt_ids(tokenizer) -> None:
    data = make_trajectory(prompt_ids=["a"], tokenizer=tokenizer_fingerprint(tokenizer))
    for turn in data["turns"]:
        turn["ids"] = [1]
    with pytest.raises(SequenceError, match="prompt_ids"):
        SequenceBuilder(tokenizer, 4096).build(Trajectory.from_dict(data))


def test_collate_pads_and_masks(tokenizer) -> None:
    builder = SequenceBuilder(tokenizer, 4096)
    a = builder.build(_traj())
    b = builder.build(_traj(question="Hi?", answer="1"))
    batch = collate([a, b], pad_id=tokenizer.pad_token_id)
    width = max(len(a.input_ids), len(b.input_ids))
    assert batch["input_ids"].shape == (2, width)
    for row, seq in enumerate((a, b)):
        n = len(seq.input_ids)
        assert batch["attention_mask"][row].sum().item() == n
        assert (batch["labels"][row, n:] == -100).all()
        assert ((batch["labels"][row, :n] != -100).long().tolist()) == list(seq.loss_mask)
