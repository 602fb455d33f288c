"""Mean pooling: average the vectors of each item's tokens (or patches) into one vector.

    y[n] = Σ_l m[n, l] · x[n, l] / Σ_l m[n, l]         x (N, L, D) → y (N, D)

``m`` is an optional padding mask, 1 for a real token and 0 for padding (all ones when
omitted). Each real token contributed 1/count of the mean, so the backward hands each one
that share of the gradient and gives padding nothing::

    dx[n, l] = dy[n] · m[n, l] / count[n]

An item with no real token at all pools to a zero vector (its count is taken as 1).

Lesson 01 uses it by hand; lesson 03 derives its backward.
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Module


class MeanPool(Module):
    """Mean over axis 1 (tokens or patches), optionally ignoring padded positions."""

    def __init__(self) -> None:
        self._weights: Any = None  # (N, L, 1): m / count, the share of each position

    def forward(self, x: Any, mask: Any = None) -> Any:
        xp = get_array_module(x)
        if x.ndim != 3:
            raise ValueError(f"MeanPool expects (N, L, D) inputs, got shape {tuple(x.shape)}")
        if mask is None:
            mask = xp.ones(x.shape[:2], dtype=x.dtype)
        elif tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match inputs {tuple(x.shape)}")
        m = xp.asarray(mask, dtype=x.dtype)  # (N, L)
        count = xp.maximum(m.sum(axis=1, keepdims=True), 1)  # (N, 1)
        self._weights = (m / count)[:, :, None]  # (N, L, 1)
        return (x * self._weights).sum(axis=1)  # (N, D)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._weights)
        return dy[:, None, :] * self._weights  # (N, L, D)
