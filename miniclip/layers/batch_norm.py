"""Batch normalisation over the channels of images (Ioffe & Szegedy, 2015).

Each channel c is normalised with statistics taken over the M = N·H·W values it has in the
batch, then scaled and shifted by a learned gain γ (``weight``) and shift β (``bias``). The
images are channels-last, (N, H, W, C), so they are a (M, C) matrix with no copy: one row per
pixel, one column per channel, and every statistic below is a sum down the columns::

    μ_c  = mean of x[:, c]                  σ²_c = mean of (x[:, c] − μ_c)²    (biased: divide by M)
    x̂    = (x − μ) / √(σ² + ε)
    y    = γ · x̂ + β                         x, x̂, y (N, H, W, C);  μ, σ², γ, β (C,)

Training mode uses the batch's μ and σ² and updates running averages for later use::

    running_mean ← (1 − momentum) · running_mean + momentum · μ
    running_var  ← (1 − momentum) · running_var  + momentum · σ² · M / (M − 1)   (unbiased, as PyTorch)

Evaluation mode uses ``running_mean`` and ``running_var`` instead, so y is a fixed per-channel
affine map of x and the output of one image no longer depends on the rest of the batch.

Backward, with sums Σ over the M values of a channel. In training μ and σ² depend on every x,
which gives the compact formula::

    dβ = Σ dy          dγ = Σ dy · x̂          dx̂ = dy · γ
    dx = (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) / √(σ² + ε)

In evaluation the statistics are constants, so ``dx = dy · γ / √(running_var + ε)``.

Across processes (``world``, :mod:`miniclip.distributed`): when the batch is split over W
ranks, each with M values per channel, the statistics are those of the whole batch if every
sum above is summed over the ranks before it is used — Σ x and Σ (x − μ)² in the forward,
Σ dy and Σ dy·x̂ in the backward's dx — with W·M in place of M. The gradients of γ and β are
left as each rank's own sums: the trainer sums every parameter's gradient over the ranks
afterwards, as for any other layer. With ``world`` None (one process) nothing changes.

Speed: the column sums Σ x and Σ dy are matrix–vector products with a vector of ones
(:func:`column_sums`, ``ones @ X``): one streaming BLAS pass on NumPy, several times faster than
``X.sum(axis=0)``, and one cuBLAS call on CuPy. The sums of products Σ (x − μ)² and Σ dy·x̂ are
:func:`miniclip.backend.column_dots`, which picks the form for each backend: NumPy's
``einsum("mc,mc->c", a, b)`` multiplies and adds in one pass without building the (M, C)
product, while CuPy's einsum (without its optional cuTENSOR) would copy both operands
transposed and run C tiny batched products, so there it is ``ones @ (a * b)``: one elementwise
kernel and one cuBLAS call. The forward makes x̂ in place from x − μ, and the backward's dx is
built in one output array.

The running statistics are *buffers*, not parameters: state that is saved with the model but
never receives a gradient or an optimiser update. :meth:`BatchNorm2d.buffers` returns them by
name (the arrays themselves, so a checkpoint loader can write into them in place).

Lesson 06b derives it by hand, in both modes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import column_dots, get_array_module, to_device
from miniclip.module import Module, Parameter


class BatchNorm2d(Module):
    """Per-channel normalisation of (N, H, W, C) activations with learned ``weight`` (γ) and ``bias`` (β)."""

    BUFFERS = ("running_mean", "running_var")  # saved with the model, never trained

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5, *, dtype: Any = np.float32) -> None:
        if channels < 1 or not 0 <= momentum <= 1 or eps <= 0:
            raise ValueError(
                f"BatchNorm2d needs channels >= 1, 0 <= momentum <= 1 and eps > 0; "
                f"got channels={channels}, momentum={momentum}, eps={eps}"
            )
        self.momentum, self.eps = momentum, eps
        self.weight = Parameter.from_host(np.ones(channels), dtype)  # γ
        self.bias = Parameter.from_host(np.zeros(channels), dtype)  # β
        self.running_mean = to_device(np.zeros(channels), dtype=dtype)  # (C,)
        self.running_var = to_device(np.ones(channels), dtype=dtype)  # (C,)
        self._xhat: Any = None  # (M, C)
        self._inv_std: Any = None  # (C,): 1 / √(σ² + ε) as used by the last forward
        self._trained: bool = True  # which formula the last forward used
        self.world: Any = None  # the ranks whose batches share the statistics (None: this batch alone)

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        channels = self.weight.data.shape[0]
        if x.ndim != 4 or x.shape[3] != channels:
            raise ValueError(
                f"BatchNorm2d expects channels-last (N, H, W, {channels}) inputs, got shape {tuple(x.shape)}"
            )
        rows = x.reshape(-1, channels)  # (M, C): one row per pixel (no copy for a contiguous x)
        m = rows.shape[0] * self._ranks()  # values per channel, over every rank
        if self.training:
            if m < 2:
                raise ValueError(f"BatchNorm2d in training needs more than 1 value per channel, got shape {x.shape}")
            mean = self._over_ranks(column_sums(rows)) / m  # (C,)
            centred = rows - mean  # (M, C)
            var = self._over_ranks(column_dots(centred, centred)) / m  # (C,) biased
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.running_var *= 1 - self.momentum
            self.running_var += (self.momentum * m / (m - 1)) * var
        else:
            mean, var = self.running_mean, self.running_var
            centred = rows - mean  # (M, C)
        self._trained = self.training
        self._inv_std = 1 / xp.sqrt(var + self.eps)  # (C,)
        centred *= self._inv_std  # in place: x̂ = (x − μ) / √(σ² + ε), kept for the backward
        self._xhat = centred
        y = centred * self.weight.data  # (M, C)
        y += self.bias.data
        return y.reshape(x.shape)  # (N, H, W, C)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._xhat)
        xhat, inv_std, gamma = self._xhat, self._inv_std, self.weight.data
        channels = xhat.shape[1]
        m = xhat.shape[0] * self._ranks()
        dy_rows = dy.reshape(-1, channels)  # (M, C)
        dbeta = column_sums(dy_rows)  # Σ dy (C,)
        dgamma = column_dots(dy_rows, xhat)  # Σ dy·x̂ (C,)
        self.bias.grad += dbeta
        self.weight.grad += dgamma
        scale = gamma * inv_std  # (C,): dx̂ · inv_std = dy · γ · inv_std
        if not self._trained:  # fixed statistics: a per-channel affine map
            return (dy_rows * scale).reshape(dy.shape)
        if self.world is not None:  # the whole batch's sums, in one call: [Σ dy, Σ dy·x̂]
            dbeta, dgamma = self.world.all_reduce(get_array_module(dy).stack([dbeta, dgamma]))
        # dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) · inv_std with dx̂ = γ·dy, so mean(dx̂) = γ·dβ/M, mean(dx̂·x̂) = γ·dγ/M
        dx = xhat * (-scale * dgamma / m)  # (M, C)
        dx += dy_rows * scale
        dx -= scale * dbeta / m
        return dx.reshape(dy.shape)  # (N, H, W, C)

    def _ranks(self) -> int:
        return 1 if self.world is None else self.world.size

    def _over_ranks(self, sums: Any) -> Any:
        """Per-channel sums of this rank's values, summed over every rank."""
        return sums if self.world is None else self.world.all_reduce(sums)


def column_sums(rows: Any) -> Any:
    """Σ over the rows of an (M, C) matrix, as ``ones(M) @ rows``: one BLAS pass, faster than ``sum(axis=0)``."""
    xp = get_array_module(rows)
    return xp.ones(rows.shape[0], dtype=rows.dtype) @ rows  # (C,)
