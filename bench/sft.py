"""SFT training throughput: r1ci's ``sft`` against TRL's ``SFTTrainer`` on the same model, data and batch.

Not a shipped command. Run from the repository root:

    .venv/bin/python bench/sft.py [--model DIR] [--trajectories 64] [--batch-size 8] [--steps 8] [--threads 2]

Both trainers get the same token ids and loss mask (r1ci's ``SequenceBuilder``; TRL receives them as a
pre-tokenised dataset with its ``assistant_masks`` column, i.e. assistant-only loss), the same model directory
(default: a fresh ``tiny`` model from ``init-model``), batch size, learning rate, warmup+cosine schedule, fp32 on
CPU, no gradient accumulation, no packing. Throughput is training tokens (non-pad input tokens) per second
over steps 2..N; step 1 (allocation, first-call overheads) is left out for both. The runs alternate
(r1ci, TRL, r1ci, TRL …) for ``--repeats`` rounds so a noisy shared machine hurts both alike; the median of
each is reported. Goal: ratio r1ci/TRL ≥ 1.0. One JSON line goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.sft")


def trajectories(count: int, seed: int) -> list[dict[str, Any]]:
    """Reference-style trajectories: a code turn, its result, an answer (arithmetic, varied lengths)."""
    from r1ci_cli.seeds import derive_rng

    rng = derive_rng(seed, "bench-sft")
    rows = []
    for i in range(count):
        values = [rng.randint(2, 999) for _ in range(rng.randint(2, 24))]
        total = sum(values)
        question = f"What is the sum of {values}? Answer in <<<...>>>."
        code = "values = " + repr(values) + "\ntotal = 0\nfor v in values:\n    total += v\nprint(total)\n"
        rows.append({
            "id": f"b{i}", "task_id": f"sum-{i}", "style": "agent", "temperature": 1.0, "model": "reference",
            "answer": str(total), "correct": True, "reward": 1.1, "num_code_calls": 1, "finish": "answer",
            "turns": [{"role": "model", "text": f"I will add them with a program.\n```python\n{code}```"},
                      {"role": "exec", "text": f"\nCode Execution Results:\n{total}\n"},
                      {"role": "model", "text": f"The sum is {total}.\n<<<{total}>>>"}],
            "task": "sum", "question": question,
            "prompt": [{"role": "system", "content": "Reason step by step; you may run Python."},
                       {"role": "user", "content": question}],
        })
    return rows


def run_r1ci(model: str, refs: str, out: Path, args: argparse.Namespace) -> float:
    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions
    from r1ci_cli.train.options import SftOptions
    from r1ci_cli.train.sft import sft

    engine = EngineOptions(lr=args.lr, micro_batch_size=args.batch_size, device="cpu", precision="fp32")
    sft([refs], SftOptions(model=model, checkpoint=CheckpointOptions(str(out), save_every=10**9), epochs=1000,
                           batch_size=args.batch_size, warmup_ratio=0.1, max_seq_len=args.max_seq_len,
                           max_steps=args.steps, seed=args.seed, engine=engine), progress=False)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    tokens = sum(r["num_tokens"] for r in rows[1:])
    return tokens / (rows[-1]["elapsed_s"] - rows[0]["elapsed_s"])


def run_trl(model_dir: str, sequences: list[Any], out: Path, args: argparse.Namespace) -> float:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from r1ci_cli.train.schedule import warmup_steps_for

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []
            self.tokens: list[float] = []

        def on_step_end(self, _args, state, _control, **_kw) -> None:
            self.ends.append(time.perf_counter())

        def on_log(self, _args, state, _control, logs=None, **_kw) -> None:
            if logs and "num_tokens" in logs:
                self.tokens.append(float(logs["num_tokens"]))

    data = Dataset.from_dict({"input_ids": [list(s.input_ids) for s in sequences],
                              "assistant_masks": [list(s.loss_mask) for s in sequences]})
    config = SFTConfig(output_dir=str(out), per_device_train_batch_size=args.batch_size,
                       gradient_accumulation_steps=1, max_steps=args.steps, learning_rate=args.lr,
                       lr_scheduler_type="cosine", warmup_steps=warmup_steps_for(args.steps, 0.1), logging_steps=1, save_strategy="no",
                       report_to=[], use_cpu=True, bf16=False, fp16=False, dataloader_num_workers=0,
                       max_length=args.max_seq_len, packing=False, padding_free=False, seed=args.seed,
                       disable_tqdm=True, max_grad_norm=1.0, weight_decay=0.0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    clock = Clock()
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                         callbacks=[clock])
    with contextlib.redirect_stdout(sys.stderr):  # its log printer writes to stdout; ours is one JSON line
        trainer.train()
    # num_tokens is cumulative; step 1 left out, as for r1ci.
    return (clock.tokens[-1] - clock.tokens[0]) / (clock.ends[-1] - clock.ends[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Model directory (default: a fresh tiny init-model).")
    parser.add_argument("--trajectories", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")

    import torch
    from transformers import AutoTokenizer

    from r1ci_cli.models import InitModelOptions, init_model
    from r1ci_cli.records import Trajectory
    from r1ci_cli.train.sequences import SequenceBuilder

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-sft-"))
    model = args.model or str(init_model(work / "m0", InitModelOptions(preset="tiny", seed=args.seed)))
    rows = trajectories(args.trajectories, args.seed)
    refs = work / "refs.jsonl"
    refs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    builder = SequenceBuilder(AutoTokenizer.from_pretrained(model), args.max_seq_len)
    sequences = [builder.build(Trajectory.from_dict(r)) for r in rows]

    ours, theirs = [], []
    for round_index in range(args.repeats):
        ours.append(run_r1ci(model, str(refs), work / f"r1ci-{round_index}", args))
        theirs.append(run_trl(model, sequences, work / f"trl-{round_index}", args))
        log.info("round %d: r1ci %.0f tokens/s, TRL %.0f tokens/s", round_index + 1, ours[-1], theirs[-1])
    result = {"bench": "sft", "model": model, "batch_size": args.batch_size, "steps": args.steps,
              "threads": args.threads, "mean_tokens_per_sequence": round(builder.stats.num_tokens / len(rows), 1),
              "r1ci_tokens_per_s": round(statistics.median(ours), 1),
              "trl_tokens_per_s": round(statistics.median(theirs), 1),
              "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
              "rounds": {"r1ci": [round(x, 1) for x in ours], "trl": [round(x, 1) for x in theirs]}}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
