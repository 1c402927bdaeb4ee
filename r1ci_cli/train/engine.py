"""Training engines behind one small interface, shared by ``sft`` and ``rl-stage``.

* ``TorchEngine``: plain torch on one device (CPU or one GPU). AdamW (no decay on biases and norms), the
  warmup+cosine schedule, gradient clipping, bf16 autocast when asked for (``--precision auto`` picks it on
  a GPU that supports it; on CPU fp32, which MACHINE-NOTES.md measured faster there), gradient
  checkpointing.
* ``DeepSpeedEngine`` (``train/deepspeed_engine.py``, imported only when ``--deepspeed CONFIG`` is given):
  ZeRO stages 0–3, launched by ``deepspeed`` or ``torchrun``, multi-node under SLURM.

Gradient scaling contract: callers pass ``backward`` each micro-batch's loss already weighted so that the
weighted losses of all micro-batches of a global batch (on all ranks) add up to that batch's loss; the engine
adds the gradients and steps once. sft divides each micro-batch's sum of token losses by the number of loss
tokens of the whole global batch (a token mean over the batch); rl-stage weights each micro-batch's loss (a
mean over its sequences of their token means) by its share of the batch's sequences. ``TorchEngine``
accumulates the gradients as they are; the DeepSpeed engine undoes DeepSpeed's own division by the
accumulation steps and its rank averaging, so both engines take the same optimizer step for the same global
batch. DeepSpeed's accumulation boundary is a fixed ``grad_accum`` micro-batches per step: sft sets it from its
batch geometry; rl-stage's batches vary in size (dropped groups, truncation), so under DeepSpeed it trains
each step as one micro-batch.

Checkpoints: ``save(directory)`` writes model (``save_pretrained``), optimizer, scheduler and RNG states into
an existing directory; the caller makes the directory appear atomically (``train/checkpoint.py``).
Resuming builds the engine from the checkpoint directory (the model is loaded from it) and calls ``load``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from r1ci_cli.errors import MissingDependency, R1ciError
from r1ci_cli.settings import RUNTIME

log = logging.getLogger("r1ci.engine")

ENGINE_STATE = "engine_state.pt"


@dataclass(frozen=True)
class EngineOptions:
    """Optimizer and runtime settings (the engine options of sft and rl-stage; each trainer's defaults are its
    options' ``engine`` field). The schedule's length, ``total_steps`` and ``warmup_steps`` (optimizer steps),
    and ``grad_accum`` are set by the trainer from its data and batch geometry. ``device`` is ``runtime``
    (``settings.py``): a resumed run may continue elsewhere."""

    lr: float = 1e-5
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    precision: str = "auto"  # auto | fp32 | bf16
    gradient_checkpointing: bool = False
    micro_batch_size: int = 1
    deepspeed_config: str | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    device: str = field(default="auto", metadata=RUNTIME)  # auto | cpu | cuda | cuda:N
    total_steps: int = 1
    warmup_steps: int = 0
    grad_accum: int = 1


class TrainEngine(Protocol):
    """What a training loop needs from an engine."""

    model: Any
    device: Any
    rank: int
    world_size: int

    def backward(self, loss: Any) -> None: ...
    def step(self) -> float: ...
    def autocast(self) -> contextlib.AbstractContextManager: ...
    def lr(self) -> float: ...
    def save(self, directory: Path) -> None: ...
    def load(self, directory: Path) -> None: ...
    def export(self, directory: Path) -> None: ...
    def all_reduce_sum(self, values: list[float]) -> list[float]: ...
    def barrier(self) -> None: ...


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise R1ciError(f"--device {name}: CUDA is not available on this host; use --device cpu")
    return device


def resolve_precision(precision: str, device) -> str:
    import torch

    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision not in ("fp32", "bf16"):
        raise R1ciError(f"--precision {precision}: choose auto, fp32 or bf16")
    return precision


def load_model(path: str | Path, gradient_checkpointing: bool, flag: str = "--model"):
    """An fp32 causal LM from a model directory or a cached hub name (``model_source``; master weights stay
    fp32; bf16 runs under autocast). ``flag``: the option that named ``path``, for the error message."""
    import torch
    from transformers import AutoModelForCausalLM

    from r1ci_cli.model_source import load_errors, load_failure, resolve_model
    from r1ci_cli.models import quiet_transformers

    resolve_model(str(path), flag)
    quiet_transformers()
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except load_errors() as err:
        raise load_failure(str(path), err, flag) from None
    if gradient_checkpointing:
        # transformers 5 renamed the switch (the old name warns and will go in v6).
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model


def load_frozen(path: str | Path, device: Any, flag: str = "--model"):
    """A model for log-probs only (rl-stage's KL reference): on ``device``, in eval mode, no gradients."""
    model = load_model(path, gradient_checkpointing=False, flag=flag).to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def parameter_groups(model, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only: biases and norm weights (1-D tensors) are not decayed."""
    decay, no_decay = [], []
    for _name, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def rng_state() -> dict[str, Any]:
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class TorchEngine:
    """Plain torch on one device."""

    rank = 0
    world_size = 1

    def __init__(self, model_path: str | Path, options: EngineOptions):
        import torch

        from r1ci_cli.train.schedule import make_scheduler

        self.options = options
        self.device = resolve_device(options.device)
        self.precision = resolve_precision(options.precision, self.device)
        self.model = load_model(model_path, options.gradient_checkpointing).to(self.device)
        self.model.train()
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, options.weight_decay), lr=options.lr,
                                           betas=options.betas, eps=options.eps)
        self.scheduler = make_scheduler(self.optimizer, options.total_steps, options.warmup_steps,
                                        options.min_lr_ratio)

    def autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss) -> None:
        loss.backward()

    def step(self) -> float:
        import torch

        max_norm = self.options.grad_clip if self.options.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm)

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save(self, directory: Path) -> None:
        import torch

        self.model.save_pretrained(directory)
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "rng": rng_state()}, directory / ENGINE_STATE)

    def load(self, directory: Path) -> None:
        """Optimizer, scheduler and RNG states (the model was already loaded from ``directory``)."""
        import torch

        state = torch.load(directory / ENGINE_STATE, map_location=self.device, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])

    def export(self, directory: Path) -> None:
        self.model.save_pretrained(directory)

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        return list(values)

    def barrier(self) -> None:
        """Nothing to wait for with one process."""


def open_engine(model_path: str | Path, options: EngineOptions) -> TrainEngine:
    """The DeepSpeed engine when ``options.deepspeed_config`` is set, plain torch otherwise."""
    if options.deepspeed_config:
        try:
            from r1ci_cli.train.deepspeed_engine import DeepSpeedEngine
        except ImportError as err:
            if "deepspeed" not in str(err):
                raise
            raise MissingDependency("deepspeed", "install r1ci[deepspeed] or drop --deepspeed") from None
        return DeepSpeedEngine(model_path, options)
    return TorchEngine(model_path, options)
