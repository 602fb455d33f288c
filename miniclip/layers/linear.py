"""Linear layer and the projection (a linear layer without bias).

Forward, for inputs with any number of leading axes (items, tokens, ...)::

    y = x @ W + b                      x: (..., D_in)   W: (D_in, D_out)   y: (..., D_out)

Backward, with ``dy = dL/dy`` and all leading axes flattened into one of length M::

    dW = xᵀ @ dy                       (D_in, M) @ (M, D_out)
    db = sum of dy over the M rows     (D_out,)
    dx = dy @ Wᵀ                       (..., D_out) @ (D_out, D_in)

``W`` is stored as (D_in, D_out) so the forward reads the way it is drawn by hand: a row
vector times a matrix. (PyTorch stores the transpose.)

Speed: the products are taken on the inputs flattened to (M, D_in), as the backward already
does. NumPy's ``@`` on an (N, L, D_in) array runs N separate (L, D_in) products, each too small
to keep the cores busy; one (N·L, D_in) product is the same arithmetic in one BLAS call (about
1.5× faster for the MLP of a ViT-B/32 block on a 2-core CPU).

Lesson 01 uses it by hand; lesson 03 derives its backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.module import Module, Parameter


class Linear(Module):
    """``y = x @ W + b``; with ``bias=False`` it is the walkthrough's *projection*."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        # Uniform in ±1/sqrt(D_in), as PyTorch does: keeps activations of order one.
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter.from_host(rng.uniform(-bound, bound, (in_features, out_features)), dtype)
        self.bias = Parameter.from_host(np.zeros(out_features), dtype) if bias else None
        self._x: Any = None

    def forward(self, x: Any) -> Any:
        if x.shape[-1] != self.weight.data.shape[0]:
            raise ValueError(f"Linear expects inputs (..., {self.weight.data.shape[0]}), got shape {tuple(x.shape)}")
        self._x = x
        d_in, d_out = self.weight.data.shape
        y = (x.reshape(-1, d_in) @ self.weight.data).reshape(*x.shape[:-1], d_out)  # (..., D_out), one product
        if self.bias is not None:
            y = y + self.bias.data
        return y

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._x)
        x = self._x
        d_in, d_out = self.weight.data.shape
        self.weight.grad += x.reshape(-1, d_in).T @ dy.reshape(-1, d_out)  # (D_in, D_out)
        if self.bias is not None:
            self.bias.grad += dy.reshape(-1, d_out).sum(axis=0)  # (D_out,)
        return (dy.reshape(-1, d_out) @ self.weight.data.T).reshape(*dy.shape[:-1], d_in)  # (..., D_in)


def projection(in_features: int, out_features: int, *, rng: np.random.Generator, dtype: Any = np.float32) -> Linear:
    """The projection into the shared text–image space: a linear layer with no bias."""
    return Linear(in_features, out_features, bias=False, rng=rng, dtype=dtype)
