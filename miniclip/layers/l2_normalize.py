"""L2 normalisation: scale each vector to length one, so dot products become cosines.

    y = x / ‖x‖                                  x (N, d) → y (N, d)

Differentiating ``x / ‖x‖`` (quotient rule, with ∂‖x‖/∂x = x/‖x‖ = y) gives the backward::

    dx = (dy − y · (y·dy)) / ‖x‖

that is: remove from ``dy`` its component along ``y`` (moving along ``y`` only changes the
length, which normalisation throws away), then divide by the length. A zero vector would
divide by zero, so the length is floored at ``eps`` as PyTorch's ``F.normalize`` does.

Lesson 04 shows why CLIP needs it and checks this backward.
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Module


class L2Normalize(Module):
    """Divide each row by its Euclidean length (last axis)."""

    def __init__(self, eps: float = 1e-12) -> None:
        self.eps = eps
        self._y: Any = None
        self._norm: Any = None

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self._norm = xp.maximum(xp.sqrt((x * x).sum(axis=-1, keepdims=True)), self.eps)  # (N, 1)
        self._y = x / self._norm  # (N, d)
        return self._y

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._y)
        y = self._y
        return (dy - y * (y * dy).sum(axis=-1, keepdims=True)) / self._norm  # (N, d)
