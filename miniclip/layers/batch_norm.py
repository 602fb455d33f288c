"""Batch normalisation over the channels of images (Ioffe & Szegedy, 2015).

Each channel c is normalised with statistics taken over the M = N·H·W values it has in the
batch, then scaled and shifted by a learned gain γ (``weight``) and shift β (``bias``)::

    μ_c  = mean of x[:, c]                  σ²_c = mean of (x[:, c] − μ_c)²    (biased: divide by M)
    x̂    = (x − μ) / √(σ² + ε)
    y    = γ · x̂ + β                         x, x̂, y (N, C, H, W);  μ, σ², γ, β (C,)

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

The running statistics are *buffers*, not parameters: state that is saved with the model but
never receives a gradient or an optimiser update. :meth:`BatchNorm2d.buffers` returns them by
name (the arrays themselves, so a checkpoint loader can write into them in place).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import get_array_module, to_device
from miniclip.module import Module, Parameter


class BatchNorm2d(Module):
    """Per-channel normalisation of (N, C, H, W) activations with learned ``weight`` (γ) and ``bias`` (β)."""

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
        self._xhat: Any = None
        self._inv_std: Any = None  # (1, C, 1, 1): 1 / √(σ² + ε) as used by the last forward
        self._trained: bool = True  # which formula the last forward used

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        channels = self.weight.data.shape[0]
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"BatchNorm2d expects (N, {channels}, H, W) inputs, got shape {tuple(x.shape)}")
        m = x.shape[0] * x.shape[2] * x.shape[3]  # values per channel
        if self.training:
            if m < 2:
                raise ValueError(f"BatchNorm2d in training needs more than 1 value per channel, got shape {x.shape}")
            mean = x.mean(axis=(0, 2, 3))  # (C,)
            var = x.var(axis=(0, 2, 3))  # (C,) biased
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.running_var *= 1 - self.momentum
            self.running_var += (self.momentum * m / (m - 1)) * var
        else:
            mean, var = self.running_mean, self.running_var
        self._trained = self.training
        self._inv_std = (1 / xp.sqrt(var + self.eps)).reshape(1, -1, 1, 1)  # (1, C, 1, 1)
        self._xhat = (x - mean.reshape(1, -1, 1, 1)) * self._inv_std  # (N, C, H, W)
        return self.weight.data.reshape(1, -1, 1, 1) * self._xhat + self.bias.data.reshape(1, -1, 1, 1)

    def backward(self, dy: Any) -> Any:
        xhat, inv_std = self._xhat, self._inv_std
        self.bias.grad += dy.sum(axis=(0, 2, 3))  # dβ (C,)
        self.weight.grad += (dy * xhat).sum(axis=(0, 2, 3))  # dγ (C,)
        dxhat = dy * self.weight.data.reshape(1, -1, 1, 1)  # (N, C, H, W)
        if not self._trained:  # fixed statistics: a per-channel affine map
            return dxhat * inv_std
        mean_dxhat = dxhat.mean(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
        mean_dxhat_xhat = (dxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
        return (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * inv_std  # (N, C, H, W)
