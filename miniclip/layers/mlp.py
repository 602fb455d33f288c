"""The transformer's feed-forward network: widen, GELU, narrow back, applied to each token alone.

    h = GELU(x @ W1 + b1)          x (N, L, D) → h (N, L, hidden)      hidden is usually 4·D
    y = h @ W2 + b2                h → y (N, L, D)

Backward runs the chain in reverse: ``fc2.backward``, ``gelu.backward``, ``fc1.backward``
(each layer's equations are in its own file).

Lesson 06a builds it from its parts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.layers.gelu import GELU
from miniclip.layers.linear import Linear
from miniclip.module import Module


class MLP(Module):
    """Linear(dim, hidden) → GELU → Linear(hidden, dim)."""

    def __init__(self, dim: int, hidden: int, *, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        self.fc1 = Linear(dim, hidden, rng=rng, dtype=dtype)
        self.gelu = GELU()
        self.fc2 = Linear(hidden, dim, rng=rng, dtype=dtype)

    def forward(self, x: Any) -> Any:
        return self.fc2(self.gelu(self.fc1(x)))  # (N, L, D) → (N, L, hidden) → (N, L, D)

    def backward(self, dy: Any) -> Any:
        return self.fc1.backward(self.gelu.backward(self.fc2.backward(dy)))  # (N, L, D)
