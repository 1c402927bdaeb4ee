"""Held-out check of an SFT run: is m1 better than m0 on unseen instances of the training tasks?

Not a shipped command. Run from the repository root, e.g.:

    r1ci gen-tasks --source bbh --tasks boolean_expressions,web_of_lies --num-per-task 20 --pool eval \\
        | r1ci rollout --backend reference -o heldout.jsonl
    .venv/bin/python bench/sft_heldout.py heldout.jsonl m0 m1

Two measures per model, both without a sandbox (cheap enough for a loaded 2-core machine):

* ``nll``: mean negative log-likelihood per model-written token of the held-out reference trajectories (same
  loss mask as training).
* ``answer_accuracy``: the model gets the prompt and every turn up to the final answer turn (code and its real
  execution result) and decodes greedily for ``--max-new-tokens``; the last ``<<<…>>>`` is checked by the task's
  own verifier. ``answer_rate`` is the share that wrote any ``<<<…>>>`` at all.

The full agent loop (the model writing its own code) is measured by ``r1ci rollout --backend hf``; on this
machine that takes far longer, so it is not done here. One JSON line per model goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys


def evaluate(model_dir: str, rows: list[dict], max_new_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1ci_cli.records import Trajectory
    from r1ci_cli.tasks.registry import Instance, get_family, score
    from r1ci_cli.train.sequences import SequenceBuilder, collate

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    builder = SequenceBuilder(tokenizer, 100_000)
    trajectories = [Trajectory.from_dict(r) for r in rows]
    total_nll, total_tokens, correct, answered = 0.0, 0, 0, 0
    with torch.no_grad():
        for traj in trajectories:
            batch = collate([builder.build(traj)], tokenizer.pad_token_id)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            targets = batch["labels"][:, 1:]
            where = targets != -100
            total_nll += float(torch.nn.functional.cross_entropy(logits[:, :-1][where], targets[where],
                                                                 reduction="sum"))
            total_tokens += int(where.sum())
            pieces, _ = builder.pieces(traj)
            context = [i for ids, _ in pieces[:len(traj.turns)] for i in ids]  # prompt + all but the last turn
            out = model.generate(torch.tensor([context]), max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            text = tokenizer.decode(out[0, len(context):], skip_special_tokens=True)
            family = get_family(traj.extra["task"])
            instance = Instance(traj.extra["question"], traj.extra["check"], traj.extra.get("reference_answer"))
            verdict = score(family, instance, text)
            answered += verdict.answer is not None
            correct += verdict.correct
    n = len(trajectories)
    return {"model": model_dir, "num_trajectories": n, "nll": round(total_nll / max(1, total_tokens), 4),
            "answer_rate": round(answered / n, 3), "answer_accuracy": round(correct / n, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trajectories", help="Held-out reference trajectories (JSONL).")
    parser.add_argument("models", nargs="+", help="Model directories to compare.")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    from r1ci_cli.streams import read_all

    rows = read_all(args.trajectories)
    for model_dir in args.models:
        sys.stdout.write(json.dumps(evaluate(model_dir, rows, args.max_new_tokens)) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
