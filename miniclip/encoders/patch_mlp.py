"""Patch MLP image encoder: the walkthrough's image side, patch vectors averaged.

    images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear+ReLU→ (N, P, W) ─mean pool→ (N, W)
    ─project→ (N, d)

Each p×p patch is flattened and passed through the same linear+ReLU on its own; the mean
over the patches forgets where each patch was. The backward runs the chain in reverse::

    dpooled = dI · W_projᵀ          dhidden[n, j] = dpooled[n] / P
    dpatches = (dhidden ⊙ relu') · W_encᵀ         dimages = the patches put back where they came from

:mod:`.vit` keeps the patches and the linear layer, adds a position to each patch, and lets
attention mix them before the pooling; :mod:`.cnn` replaces them with convolutions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.layers import Linear, MeanPool, Patchify, ReLU, projection
from miniclip.module import Module


class PatchMLP(Module):
    """patchify → linear + ReLU → mean pool (over patches) → project."""

    def __init__(
        self,
        *,
        channels: int,
        patch_size: int,
        width: int,
        embed_dim: int,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        self.patchify = Patchify(patch_size)
        self.encode = Linear(channels * patch_size**2, width, rng=rng, dtype=dtype)
        self.relu = ReLU()
        self.pool = MeanPool()
        self.project = projection(width, embed_dim, rng=rng, dtype=dtype)

    def forward(self, images: Any) -> Any:
        patches = self.patchify(images)  # (N, P, C·p·p)
        hidden = self.relu(self.encode(patches))  # (N, P, W)
        pooled = self.pool(hidden)  # (N, W)
        return self.project(pooled)  # (N, d)

    def backward(self, di: Any) -> Any:
        dpooled = self.project.backward(di)  # (N, W)
        dhidden = self.pool.backward(dpooled)  # (N, P, W)
        dpatches = self.encode.backward(self.relu.backward(dhidden))  # (N, P, C·p·p)
        return self.patchify.backward(dpatches)  # (N, C, H, W)
