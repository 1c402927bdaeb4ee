"""Learning-rate schedule: linear warmup, then cosine decay to ``min_lr_ratio`` of the peak (pure functions).

``lr_factor(step, ...)`` is the multiplier applied to the peak learning rate *for* optimizer step ``step``
(0-based). A torch ``LambdaLR`` built from it is checkpointed like any scheduler, and because the factor is a
pure function of the step count, a resumed run gets exactly the same rates.
"""

from __future__ import annotations

import math


def warmup_steps_for(total_steps: int, warmup_ratio: float) -> int:
    """Warmup length: ``ceil(ratio × total)``, and at least one step when the ratio is positive."""
    if not 0.0 <= warmup_ratio < 1.0:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
    return math.ceil(warmup_ratio * total_steps)


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float = 0.0) -> float:
    """Multiplier of the peak rate: (step+1)/warmup during warmup, then cosine from 1 to ``min_lr_ratio``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer, total_steps: int, warmup_steps: int, min_lr_ratio: float = 0.0):
    """A ``torch.optim.lr_scheduler.LambdaLR`` over ``lr_factor`` (state: just the step count)."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, warmup_steps, min_lr_ratio))
