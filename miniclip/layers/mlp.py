"""The transformer's feed-forward network: widen, activate, narrow back, applied to each token alone.

    h = act(x @ W1 + b1)           x (N, L, D) → h (N, L, hidden)      hidden is usually 4·D
    y = h @ W2 + b2                h → y (N, L, D)

``act`` is GELU (tanh form, :mod:`miniclip.layers.gelu`) by default, or OpenAI CLIP's QuickGELU
(:mod:`miniclip.layers.quick_gelu`), chosen by name from :data:`ACTIVATIONS`. Backward runs the
chain in reverse: ``fc2.backward``, ``activation.backward``, ``fc1.backward`` (each layer's
equations are in its own file).

Lesson 06a builds it from its parts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.layers.gelu import GELU
from miniclip.layers.linear import Linear
from miniclip.layers.quick_gelu import QuickGELU
from miniclip.module import Module

ACTIVATIONS = {"gelu": GELU, "quick_gelu": QuickGELU}  # "gelu" is the tanh form (Hugging Face's "gelu_pytorch_tanh")


def check_activation(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is one of :data:`ACTIVATIONS`."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {tuple(ACTIVATIONS)}")


class MLP(Module):
    """Linear(dim, hidden) → activation → Linear(hidden, dim)."""

    def __init__(
        self, dim: int, hidden: int, *, activation: str = "gelu", rng: np.random.Generator, dtype: Any = np.float32
    ) -> None:
        check_activation(activation)
        self.fc1 = Linear(dim, hidden, rng=rng, dtype=dtype)
        self.activation = ACTIVATIONS[activation]()
        self.fc2 = Linear(hidden, dim, rng=rng, dtype=dtype)

    def forward(self, x: Any) -> Any:
        return self.fc2(self.activation(self.fc1(x)))  # (N, L, D) → (N, L, hidden) → (N, L, D)

    def backward(self, dy: Any) -> Any:
        return self.fc1.backward(self.activation.backward(self.fc2.backward(dy)))  # (N, L, D)
