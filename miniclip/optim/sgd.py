"""Stochastic gradient descent, plain or with (heavy-ball) momentum.

With gradient ``g = dL/dw``, learning rate ``lr`` and momentum ``μ``::

    plain (μ = 0):  w ← w − lr · g
    momentum:       v ← μ · v + g          (v starts at 0, so the first step is the plain one)
                    w ← w − lr · v

This is PyTorch's ``torch.optim.SGD`` without dampening or Nesterov. The velocity ``v`` is a
running sum of past gradients, each one ``μ`` times weaker per step: along a direction where
the gradients agree it grows to ``g / (1 − μ)``, where they alternate it cancels out.
Every array is updated in place, so layers that hold a reference to ``p.data`` see the change.

Lessons 01 and 03 take plain steps with it.
"""

from __future__ import annotations

import math
from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Parameter


def check_lr(lr: float) -> float:
    """A learning rate as a Python float (never a NumPy float64 that would upcast float32 arrays)."""
    lr = float(lr)
    if not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"learning rate must be a finite number >= 0, got {lr}")
    return lr


class SGD:
    """Update each parameter in place against its gradient, optionally with momentum."""

    def __init__(self, params: dict[str, Parameter], lr: float, momentum: float = 0.0) -> None:
        if not float(lr) > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.params = params
        self.lr = check_lr(lr)
        self.momentum = float(momentum)
        self.velocity: dict[str, Any] = {}  # created on the first step, same device and dtype as p

    def set_lr(self, lr: float) -> None:
        """Set the learning rate for the next steps (a schedule may set 0)."""
        self.lr = check_lr(lr)

    def step(self) -> None:
        for name, p in self.params.items():
            if self.momentum == 0.0:
                p.data -= self.lr * p.grad
                continue
            if name not in self.velocity:
                self.velocity[name] = get_array_module(p.data).zeros_like(p.data)
            v = self.velocity[name]
            v *= self.momentum  # v ← μ v + g, in place
            v += p.grad
            p.data -= self.lr * v

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad[...] = 0
