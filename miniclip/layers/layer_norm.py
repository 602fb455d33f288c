"""Layer normalisation: give each token's vector zero mean and unit variance, then scale and shift.

Forward, over the last axis (length D) of ``x`` (..., D), separately for every token::

    μ = mean(x)        σ = sqrt(mean((x − μ)²) + ε)
    x̂ = (x − μ) / σ
    y = γ ⊙ x̂ + β                          γ (``weight``, ones), β (``bias``, zeros): (D,)

Backward, with ``dy = dL/dy`` and ``ĝ = dy ⊙ γ`` (the gradient reaching x̂)::

    dγ = Σ over all tokens of dy ⊙ x̂       dβ = Σ over all tokens of dy
    dx = (1/σ) (ĝ − mean(ĝ) − x̂ ⊙ mean(ĝ ⊙ x̂))

The compact ``dx`` comes from differentiating through μ and σ as well as through x: moving
one entry of x also moves the mean (hence ``− mean(ĝ)``) and the spread (hence the
``x̂ ⊙ mean(ĝ ⊙ x̂)`` term); the means are over the D entries of the same token.
(Ba, Kiros & Hinton, 2016, "Layer Normalization".)

Lesson 06a derives it by hand on two tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import get_array_module
from miniclip.module import Module, Parameter


class LayerNorm(Module):
    """Normalise over the last axis, then apply a learned gain ``weight`` and shift ``bias``."""

    def __init__(self, dim: int, eps: float = 1e-5, *, dtype: Any = np.float32) -> None:
        self.eps = eps
        self.weight = Parameter.from_host(np.ones(dim), dtype)  # γ
        self.bias = Parameter.from_host(np.zeros(dim), dtype)  # β
        self._x_hat: Any = None
        self._inv_std: Any = None

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        dim = self.weight.data.shape[0]
        if x.shape[-1] != dim:
            raise ValueError(f"LayerNorm expects inputs (..., {dim}), got shape {tuple(x.shape)}")
        centred = x - x.mean(axis=-1, keepdims=True)  # (..., D)
        var = (centred * centred).mean(axis=-1, keepdims=True)  # (..., 1)
        self._inv_std = 1.0 / xp.sqrt(var + self.eps)  # (..., 1)   1/σ
        self._x_hat = centred * self._inv_std  # (..., D)
        return self._x_hat * self.weight.data + self.bias.data

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._x_hat)
        x_hat, dim = self._x_hat, self.weight.data.shape[0]
        self.weight.grad += (dy * x_hat).reshape(-1, dim).sum(axis=0)  # (D,)
        self.bias.grad += dy.reshape(-1, dim).sum(axis=0)  # (D,)
        g = dy * self.weight.data  # (..., D)   ĝ
        return self._inv_std * (
            g - g.mean(axis=-1, keepdims=True) - x_hat * (g * x_hat).mean(axis=-1, keepdims=True)
        )  # (..., D)
