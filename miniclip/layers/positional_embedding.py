"""Learned positional embedding: add a trainable vector for each position to each token.

Attention by itself cannot tell the order of its inputs, so every position ``l`` gets its
own learned vector (the rows of ``positions``, ``(max_len, D)``, initialised small, from a
normal of standard deviation 0.02, as in GPT-2; CLIP draws its text positions with 0.01 —
released weights overwrite either)::

    y[n, l] = x[n, l] + positions[l]            x, y: (N, L, D), L <= max_len

Backward: the addition passes ``dy`` straight through to ``x``, and position ``l`` was
added to all N items of the batch, so it collects their sum::

    dx = dy             dpositions[l] = Σ_n dy[n, l]      (rows L.. max_len−1 get nothing)

Lesson 05 shows why it is needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.module import Module, Parameter


class PositionalEmbedding(Module):
    """``x + positions[:L]`` for sequences of up to ``max_len`` tokens."""

    def __init__(self, max_len: int, dim: int, *, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        self.positions = Parameter.from_host(rng.normal(0.0, 0.02, (max_len, dim)), dtype)
        self._length: int | None = None

    def forward(self, x: Any) -> Any:
        max_len, dim = self.positions.data.shape
        if x.ndim != 3 or x.shape[2] != dim:
            raise ValueError(f"PositionalEmbedding expects (N, L, {dim}) inputs, got shape {tuple(x.shape)}")
        if x.shape[1] > max_len:
            raise ValueError(
                f"sequence length {x.shape[1]} exceeds max_len {max_len} of the positional embedding "
                f"(inputs of shape {tuple(x.shape)})"
            )
        self._length = x.shape[1]
        return x + self.positions.data[: self._length]  # (N, L, D) + (L, D)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._length)
        self.positions.grad[: self._length] += dy.sum(axis=0)  # (L, D)
        return dy  # (N, L, D)
