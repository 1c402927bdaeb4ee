"""What the trainers are told: ``SftOptions`` (sft) and ``RlOptions`` (rl-stage), each nesting the options of
its run directory (``CheckpointOptions``), its optimizer (``EngineOptions``), where its metrics are reported
(``ReportOptions``) and its evaluations during training (``EvalOptions``), and for rl-stage those of its
rollouts (``RolloutOptions``). The command line fills them through one flag bundle each
(``commands/options.py``), taking its defaults from the fields here; ``settings.fingerprint`` of them is the
run key a resume must match (``runtime`` fields aside).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1ci_cli.rollout.loop import RolloutOptions
from r1ci_cli.settings import RUNTIME
from r1ci_cli.train.checkpoint import CheckpointOptions
from r1ci_cli.train.engine import EngineOptions
from r1ci_cli.train.evaluation import EvalOptions
from r1ci_cli.train.report import ReportOptions


@dataclass(frozen=True)
class SftOptions:
    """The sft command's options. Defaults are the paper's (docs/paper.md "SFT": 3 epochs, batch 32, at most 70
    per task, correct only) where it gives them; it gives no learning rate: 1e-5 (ours) is the usual full
    fine-tuning rate for 3B–14B Qwen2.5 models (a tiny random-init model wants ~1e-3)."""

    model: str  # the model directory to start from
    checkpoint: CheckpointOptions
    epochs: int = 3
    batch_size: int = 32  # sequences per optimizer step, over all ranks
    warmup_ratio: float = 0.03
    max_seq_len: int = 4096
    max_per_task: int = 70
    only_correct: bool = True
    max_steps: int | None = None
    seed: int = 0
    engine: EngineOptions = field(default_factory=lambda: EngineOptions(lr=1e-5, micro_batch_size=4))
    report: ReportOptions = field(default_factory=ReportOptions, metadata=RUNTIME)
    eval: EvalOptions = field(default_factory=EvalOptions, metadata=RUNTIME)


@dataclass(frozen=True)
class RlOptions:
    """The rl-stage command's options: its own, the rollouts' (``rollout``: agent style, ``group_size`` samples
    per instance, seeds from (seed, stage, step); smaller token budgets than rollout's) and the optimizer's
    (``engine``: docs/paper.md "GRPO" lr 1e-6, constant after warmup since the paper gives no decay)."""

    stage: int
    model: str  # the stage's starting checkpoint
    checkpoint: CheckpointOptions
    ref_model: str | None = None  # the frozen KL reference; None: ``model``
    batch_size: int = 128  # docs/paper.md "GRPO": batch 128 prompts
    group_size: int = 5  # docs/paper.md "GRPO": group size 5
    steps: int = 150  # docs/paper.md "Multi-stage curriculum": 150 steps per stage
    clip: float = 0.2  # docs/paper.md "GRPO"
    kl_coef: float = 0.001  # docs/paper.md "GRPO": k3 estimator as a loss term
    update_epochs: int = 1
    filter_zero_variance: str = "off"  # off | drop | refill
    filter_on: str = "correct"  # correct: a group is zero-variance when its members' correctness is all equal; reward
    refill_rounds: int = 2
    is_correction: str = "auto"  # none | token-tis | seq-mask; auto: token-tis with the vllm generator, none with hf
    is_cap: float = 2.0  # the importance ratio's cap (token-tis) or bound [1/cap, cap] (seq-mask)
    regroup: str = "static"  # static: score-potential's groups; online: regroup the unreached ones by the running p
    stage_stats: str | None = None  # the previous stage's instance stats; None: MODEL/instance-stats.jsonl.zst if present
    p_update: str = "latest"  # the running p of an instance: latest group's pass rate, or ema
    p_ema: float = 0.5  # with ema: the newest group's weight
    max_seq_len: int = 4096
    warmup_steps: int = 0
    generation_batch_size: int = 16  # trajectories generated together (hf batch and trajectories in flight)
    generator: str = "hf"  # hf: the live torch policy; vllm: a colocated vLLM engine synced after every update
    vllm_gpu_memory: float = field(default=0.3, metadata=RUNTIME)  # the GPU share vLLM may take beside the trainer
    seed: int = 0
    rollout: RolloutOptions = field(default_factory=lambda: RolloutOptions(max_new_tokens=512, max_total_tokens=2048))
    engine: EngineOptions = field(default_factory=lambda: EngineOptions(lr=1e-6, min_lr_ratio=1.0, micro_batch_size=8))
    report: ReportOptions = field(default_factory=ReportOptions, metadata=RUNTIME)
    eval: EvalOptions = field(default_factory=EvalOptions, metadata=RUNTIME)
