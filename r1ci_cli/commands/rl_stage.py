"""``r1ci rl-stage``: one GRPO stage of the improvement-potential curriculum."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from r1ci_cli.commands.base import (R1ciCommand, common_options, input_argument, prompts_option, resolved_params,
                                    seed_option, threads_option)


@click.command("rl-stage", cls=R1ciCommand)
@input_argument
@click.option("--stage", type=click.IntRange(min=1), required=True,
              help="Train on the instances whose group <= STAGE (cumulative; groups from score-potential).")
@click.option("--model", required=True, help="Starting checkpoint: the SFT model, or the previous stage's output.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Run directory: final model, metrics.jsonl, resolved_config.json, checkpoints/.")
@click.option("--ref-model", default=None, help="Frozen KL reference (default: --model, the stage's start).")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Prompts per step (PAPER.md 'GRPO': 128).")
@click.option("--group-size", type=click.IntRange(min=2), default=5, show_default=True,
              help="Samples per prompt (PAPER.md 'GRPO': 5).")
@click.option("--steps", type=click.IntRange(min=1), default=150, show_default=True,
              help="Optimizer steps of this stage (PAPER.md: 150 per stage).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True,
              help="Learning rate (PAPER.md 'GRPO': 1e-6).")
@click.option("--clip", type=click.FloatRange(min=0, min_open=True), default=0.2, show_default=True,
              help="PPO clip range (PAPER.md 'GRPO': 0.2).")
@click.option("--kl-coef", type=click.FloatRange(min=0), default=0.001, show_default=True,
              help="Weight of the k3 KL to the reference (PAPER.md 'GRPO': 0.001); 0 loads no reference.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Sampling temperature in training (PAPER.md 'GRPO': 1.0).")
@click.option("--update-epochs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Optimizer steps per rollout batch (PPO epochs, against the stored sampling log-probs).")
@click.option("--micro-batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Sequences per forward pass; gradients accumulate over the batch.")
@click.option("--filter-zero-variance", type=click.Choice(["off", "drop", "refill"]), default="off",
              show_default=True, help="Groups whose rewards are all equal: keep, drop, or replace from the pool.")
@click.option("--refill-rounds", type=click.IntRange(min=0), default=2, show_default=True,
              help="With refill: extra rollout rounds per step at most.")
@click.option("--max-seq-len", type=click.IntRange(min=2), default=4096, show_default=True,
              help="Longer sequences are truncated (counted in metrics).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=512, show_default=True,
              help="Token budget of one model turn.")
@click.option("--max-total-tokens", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Token budget of all model turns of a trajectory.")
@click.option("--max-code-calls", type=click.IntRange(min=1), default=8, show_default=True,
              help="Code executions per trajectory (PAPER.md: 8).")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Wall-clock limit per execution (PAPER.md: 60 s).")
@click.option("--sandbox", "sandbox_address", default=None, metavar="HOST:PORT",
              help="A sandbox service (r1ci exec-sandbox --serve) instead of a local pool.")
@click.option("--sandbox-token-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="File holding the sandbox service's token.")
@click.option("--sandbox-workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Local sandbox pool size.")
@click.option("--generation-batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Trajectories generated together.")
@click.option("--generator", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True,
              help="Rollouts from the live torch policy (hf) or from vLLM in this process, synced after every "
                   "update (vllm; needs r1ci[gpu]).")
@click.option("--vllm-gpu-memory", type=click.FloatRange(0, 1, min_open=True), default=0.3, show_default=True,
              help="With --generator vllm: the share of the GPU vLLM may take (weights + KV cache).")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=0, show_default=True, help="Linear warmup.")
@click.option("--min-lr-ratio", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="1.0 keeps the rate constant after warmup; below 1, cosine decay to this share of --lr.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True, help="AdamW decay.")
@click.option("--grad-clip", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Clip the global gradient norm; 0 turns clipping off.")
@click.option("--save-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Checkpoint every N steps (and at the end).")
@click.option("--keep-checkpoints", type=click.IntRange(min=1), default=2, show_default=True,
              help="How many newest checkpoints to keep.")
@click.option("--resume", is_flag=True, help="Continue the run in -o from its newest checkpoint.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 autocast on a GPU that has it, fp32 elsewhere.")
@click.option("--deepspeed", "deepspeed", type=click.Path(dir_okay=False, exists=True), default=None,
              help="DeepSpeed JSON config (ZeRO 0-3) for the policy's memory.")
@click.option("--local_rank", "--local-rank", "local_rank", type=int, default=None, hidden=True,
              help="Set by the deepspeed launcher.")
@prompts_option
@threads_option
@seed_option
@common_options
def rl_stage_cmd(src: str, stage: int, model: str, output: str, ref_model: str | None, batch_size: int,
                 group_size: int, steps: int, lr: float, clip: float, kl_coef: float, temperature: float,
                 update_epochs: int, micro_batch_size: int, filter_zero_variance: str, refill_rounds: int,
                 max_seq_len: int, max_new_tokens: int, max_total_tokens: int, max_code_calls: int,
                 timeout_s: float, sandbox_address: str | None, sandbox_token_file: str | None,
                 sandbox_workers: int, generation_batch_size: int, generator: str, vllm_gpu_memory: float,
                 warmup_steps: int, min_lr_ratio: float, weight_decay: float,
                 grad_clip: float, save_every: int, keep_checkpoints: int, resume: bool, device: str,
                 precision: str, deepspeed: str | None, local_rank: int | None, prompts: str, seed: int,
                 quiet: bool) -> None:
    """Train one curriculum stage with GRPO on the instances of groups 1..STAGE (reads all tasks first).

    Example:  r1ci rl-stage staged.jsonl.zst --stage 2 --model ckpt/rl1 -o ckpt/rl2
    """
    from r1ci_cli.records import Task
    from r1ci_cli.sandbox import SandboxOptions, open_sandbox
    from r1ci_cli.streams import read_all
    from r1ci_cli.train.rl import RlOptions, rl_stage

    opts = RlOptions(
        stage=stage, model=model, output=output, ref_model=ref_model, batch_size=batch_size,
        group_size=group_size, steps=steps, lr=lr, clip=clip, kl_coef=kl_coef, temperature=temperature,
        update_epochs=update_epochs, micro_batch_size=micro_batch_size, filter_zero_variance=filter_zero_variance,
        refill_rounds=refill_rounds, max_seq_len=max_seq_len, max_new_tokens=max_new_tokens,
        max_total_tokens=max_total_tokens, max_code_calls=max_code_calls, timeout_s=timeout_s,
        warmup_steps=warmup_steps, min_lr_ratio=min_lr_ratio, weight_decay=weight_decay, grad_clip=grad_clip, seed=seed,
        save_every=save_every, keep=keep_checkpoints, resume=resume, device=device, precision=precision,
        deepspeed_config=deepspeed, generation_batch_size=generation_batch_size, prompts=prompts,
        generator=generator, vllm_gpu_memory=vllm_gpu_memory)
    token = Path(sandbox_token_file).read_text().strip() if sandbox_token_file else None
    tasks = read_all(src, Task)
    Path(output).mkdir(parents=True, exist_ok=True)
    resolved = resolved_params(click.get_current_context())
    (Path(output) / "resolved_config.json").write_text(json.dumps(resolved, indent=2, default=str) + "\n")
    sandbox_opts = SandboxOptions(workers=sandbox_workers, timeout_s=timeout_s)
    with contextlib.redirect_stdout(sys.stderr), open_sandbox(sandbox_address, sandbox_opts, token=token) as box:
        rl_stage(tasks, opts, box)
