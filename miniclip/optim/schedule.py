"""The learning-rate schedule: linear warm-up, then cosine decay.

For step ``s`` of ``S`` (``total_steps``) with ``W`` warm-up steps::

    s < W:       lr = base · s / W                                         0 → base, linearly
    W <= s <= S: lr = min + (base − min) · ½ (1 + cos(π (s − W) / (S − W)))  base → min
    s > S:       lr = min

Warm-up keeps the first steps small while Adam's moment estimates are still poor; the
cosine then spends most of training at a high rate and slows down gently at the end.
Set ``optimiser.set_lr(warmup_cosine(step, ...))`` before each ``optimiser.step()``.

Lesson 06b works it by hand at a few steps.
"""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float = 0.0) -> float:
    """The learning rate at ``step`` (counting from 0) as a Python float."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must lie in [0, total_steps={total_steps}), got {warmup_steps}")
    if not (math.isfinite(base_lr) and base_lr > 0):
        raise ValueError(f"base_lr must be a finite positive number, got {base_lr}")
    if not 0 <= min_lr <= base_lr:
        raise ValueError(f"min_lr must lie in [0, base_lr={base_lr}], got {min_lr}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return float(min_lr)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)  # 0 → 1
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
