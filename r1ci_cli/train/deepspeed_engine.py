"""The DeepSpeed engine: ZeRO stages 0–3 on GPUs (nccl) or CPUs (gloo), one process per device.

Launch with ``deepspeed --num_gpus N $(which r1ci) sft …`` or ``torchrun --nproc-per-node N -m r1ci_cli sft …``
(multi-node under SLURM: ``srun`` sets the same variables through ``torchrun``'s rendezvous). DeepSpeed needs
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` even for a single process
(otherwise it looks for MPI); they are required here with a one-line error.

The JSON config chooses ZeRO stage, offload and precision sections; r1ci overwrites the batch geometry
(``train_micro_batch_size_per_gpu``, ``gradient_accumulation_steps``, ``train_batch_size``) and
``gradient_clipping`` from its flags, and supplies the optimizer (AdamW; ``DeepSpeedCPUAdam`` when the config
offloads the optimizer to CPU) and the warmup+cosine schedule, so a config must not define ``optimizer`` or
``scheduler`` sections. ``--precision bf16`` (or ``auto`` on a bf16 GPU) adds ``bf16.enabled`` unless the
config already has ``bf16`` or ``fp16``.

Gradient scaling (see engine.py): DeepSpeed averages gradients over ranks, and its own division by the
accumulation steps is turned off (``scale_wrt_gas=False``), so the loss is multiplied by the world size.

Checkpoints hold DeepSpeed's own (sharded) state under ``ds/`` plus a full ``save_pretrained`` model (gathered
on rank 0 under ZeRO-3), so each checkpoint is also a loadable model directory.

Not handled here (untested on this CPU-only project): fp16 loss scaling settings beyond DeepSpeed's defaults,
NVMe offload, pipeline parallelism.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import deepspeed
import torch
import torch.distributed as dist

from r1ci_cli.errors import R1ciError
from r1ci_cli.train.engine import (EngineOptions, load_model, parameter_groups, resolve_precision, rng_state,
                                   set_rng_state)
from r1ci_cli.train.schedule import make_scheduler

log = logging.getLogger("r1ci.engine")

DS_TAG = "ds"
REQUIRED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def read_config(path: str, options: EngineOptions, world_size: int, precision: str) -> dict[str, Any]:
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise R1ciError(f"--deepspeed {path}: cannot read the JSON config ({err})") from None
    if not isinstance(config, dict):
        raise R1ciError(f"--deepspeed {path}: the config must be a JSON object")
    for section in ("optimizer", "scheduler"):
        if section in config:
            raise R1ciError(f"--deepspeed {path}: remove the '{section}' section; r1ci sets the optimizer and "
                            "schedule from its flags (--lr, --weight-decay, --warmup-ratio)")
    config["train_micro_batch_size_per_gpu"] = options.micro_batch_size
    config["gradient_accumulation_steps"] = options.grad_accum
    config["train_batch_size"] = options.micro_batch_size * options.grad_accum * world_size
    config["gradient_clipping"] = options.grad_clip
    if precision == "bf16" and "bf16" not in config and "fp16" not in config:
        config["bf16"] = {"enabled": True}
    config.setdefault("steps_per_print", 10**9)  # progress is ours, on stderr
    return config


def _offloads_optimizer(config: dict[str, Any]) -> bool:
    offload = config.get("zero_optimization", {}).get("offload_optimizer") or {}
    return offload.get("device") in ("cpu", "nvme")


class DeepSpeedEngine:
    """One rank of a DeepSpeed data-parallel run."""

    def __init__(self, model_path: str | Path, options: EngineOptions):
        missing = [k for k in REQUIRED_ENV if k not in os.environ]
        if missing:
            raise R1ciError(f"--deepspeed needs {', '.join(missing)} in the environment: launch with deepspeed "
                            "or torchrun (one process: RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 MASTER_ADDR=127.0.0.1 "
                            "MASTER_PORT=29500)")
        self.options = options
        local_rank = int(os.environ["LOCAL_RANK"])
        if torch.cuda.is_available():
            self.device = torch.device("cuda", local_rank)
            torch.cuda.set_device(self.device)
            backend = "nccl"
        else:
            self.device = torch.device("cpu")
            backend = "gloo"
        deepspeed.init_distributed(dist_backend=backend)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.precision = resolve_precision(options.precision, self.device)
        config = read_config(options.deepspeed_config, options, self.world_size, self.precision)
        model = load_model(model_path, options.gradient_checkpointing)
        groups = parameter_groups(model, options.weight_decay)
        if _offloads_optimizer(config):
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            optimizer = DeepSpeedCPUAdam(groups, lr=options.lr, betas=options.betas, eps=options.eps)
        else:
            optimizer = torch.optim.AdamW(groups, lr=options.lr, betas=options.betas, eps=options.eps)
        scheduler = make_scheduler(optimizer, options.total_steps, options.warmup_steps, options.min_lr_ratio)
        self.ds, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config)
        self.model = self.ds.module
        self.stage = int(config.get("zero_optimization", {}).get("stage", 0))
        self._micro = 0

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # DeepSpeed holds bf16 weights itself when the config says so

    def backward(self, loss) -> None:
        self.ds.backward(loss * self.world_size, scale_wrt_gas=False)
        # DeepSpeed's step() is a no-op except at the accumulation boundary, where it updates.
        self.ds.step()
        self._micro += 1

    def step(self) -> float:
        if self._micro != self.options.grad_accum:
            raise RuntimeError(f"rank {self.rank}: {self._micro} micro-batches for accumulation "
                               f"{self.options.grad_accum}")
        self._micro = 0
        norm = self.ds.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def lr(self) -> float:
        return float(self.ds.get_lr()[0])

    def save(self, directory: Path) -> None:
        self.ds.save_checkpoint(str(directory), tag=DS_TAG, client_state={"rng": rng_state()}, save_latest=False)
        self.export(directory)

    def load(self, directory: Path) -> None:
        _path, client = self.ds.load_checkpoint(str(directory), tag=DS_TAG, load_optimizer_states=True,
                                                load_lr_scheduler_states=True)
        if _path is None:
            raise R1ciError(f"{directory}: no DeepSpeed state under {DS_TAG}/")
        set_rng_state(client["rng"])

    def export(self, directory: Path) -> None:
        """A full ``save_pretrained`` model on rank 0 (ZeRO-3 shards gathered first; collective)."""
        params = list(self.model.parameters())
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None, enabled=self.stage == 3):
            if self.rank == 0:
                state = {k: v.detach().to("cpu", torch.float32).clone() for k, v in self.model.state_dict().items()}
                self.model.save_pretrained(directory, state_dict=state)
        self.barrier()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def barrier(self) -> None:
        dist.barrier()
