"""The class token: one learned vector put in front of every image's patches, and read back at the end.

The original ViT, and CLIP's image tower, do not average the patches into one vector: they add
an extra token (``[CLS]``) before the first patch, let the transformer blocks mix it with every
patch, and take its final state as the image's summary. :class:`ClassToken` puts it in;
:class:`ClassTokenPool` reads it out.

Prepend, for patches ``x`` (N, P, D) and the learned ``token`` (D,)::

    y[n, 0]   = token                         y (N, P + 1, D)
    y[n, 1:]  = x[n]

    dtoken = Σ_n dy[n, 0]                     the same vector went to all N images
    dx     = dy[:, 1:]

Read back, from the blocks' output ``h`` (N, P + 1, D)::

    pooled[n] = h[n, 0]                       (N, D)
    dh[:, 0] = dpooled,  dh[:, 1:] = 0

The class token has no position of its own among the patches, so the positional embedding
that follows has P + 1 rows: row 0 is the class token's. Lesson 16 builds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import get_array_module
from miniclip.module import Module, Parameter


class ClassToken(Module):
    """Prepend the learned ``token`` (D,) to every item's sequence: (N, P, D) → (N, P + 1, D)."""

    def __init__(self, dim: int, *, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        self.token = Parameter.from_host(rng.normal(0.0, dim**-0.5, dim), dtype)  # CLIP draws it with std D^(−½)
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        dim = self.token.data.shape[0]
        if x.ndim != 3 or x.shape[2] != dim:
            raise ValueError(f"ClassToken expects (N, P, {dim}) inputs, got shape {tuple(x.shape)}")
        n = x.shape[0]
        self._shape = x.shape
        token = xp.broadcast_to(self.token.data.astype(x.dtype, copy=False), (n, 1, dim))
        return xp.concatenate([token, x], axis=1)  # (N, P + 1, D)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._shape)
        self.token.grad += dy[:, 0].sum(axis=0)  # (D,)
        return dy[:, 1:]  # (N, P, D)


class ClassTokenPool(Module):
    """Each item's vector at position 0, where :class:`ClassToken` put the class token: (N, L, D) → (N, D)."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: Any, mask: Any = None) -> Any:
        self._shape = x.shape
        return x[:, 0]  # (N, D)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._shape)
        dx = get_array_module(dy).zeros(self._shape, dtype=dy.dtype)  # (N, L, D)
        dx[:, 0] = dy
        return dx
