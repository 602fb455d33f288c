"""Vision Transformer (ViT) image encoder: the walkthrough's patches, read by attention.

    images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear→ (N, P, D) ─+ positions→
    ─blocks (pre-norm transformer)→ (N, P, D) ─LayerNorm→ ─mean pool over patches→ (N, D)
    ─project→ (N, d)

Compared with the walkthrough's image encoder, the per-patch linear+ReLU becomes a linear
patch embedding plus a learned position for each patch, and a stack of transformer blocks
lets every patch look at every other before pooling. (The original ViT/CLIP pools at an extra
class token; mean pooling over patches works as well at this size and keeps one idea fewer.)
The backward is the same chain in reverse.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.linear import Linear, projection
from miniclip.layers.mean_pool import MeanPool
from miniclip.layers.patchify import Patchify
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.layers.transformer_block import TransformerBlock
from miniclip.module import Module


class ViT(Module):
    """Patch embedding + positions → ``depth`` transformer blocks → LayerNorm → mean pool → projection."""

    def __init__(
        self,
        *,
        image_size: int = 32,
        patch_size: int = 4,
        channels: int = 3,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        embed_dim: int = 128,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"patch size {patch_size} does not divide the image size {image_size}")
        if heads < 1 or width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.image_size = image_size
        num_patches = (image_size // patch_size) ** 2
        self.patchify = Patchify(patch_size)
        self.patch_embed = Linear(channels * patch_size**2, width, rng=rng, dtype=dtype)
        self.positions = PositionalEmbedding(num_patches, width, rng=rng, dtype=dtype)
        self.blocks = [TransformerBlock(width, heads, mlp_ratio, dropout, rng=rng, dtype=dtype) for _ in range(depth)]
        self.norm = LayerNorm(width, dtype=dtype)
        self.pool = MeanPool()
        self.project = projection(width, embed_dim, rng=rng, dtype=dtype)

    def forward(self, images: Any) -> Any:
        if images.ndim != 4 or images.shape[2] != self.image_size or images.shape[3] != self.image_size:
            raise ValueError(
                f"ViT expects images (N, C, {self.image_size}, {self.image_size}), got {tuple(images.shape)}"
            )
        x = self.positions(self.patch_embed(self.patchify(images)))  # (N, P, D)
        for block in self.blocks:
            x = block(x)  # (N, P, D)
        return self.project(self.pool(self.norm(x)))  # (N, d)

    def backward(self, dy: Any) -> Any:
        dx = self.norm.backward(self.pool.backward(self.project.backward(dy)))  # (N, P, D)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        return self.patchify.backward(self.patch_embed.backward(self.positions.backward(dx)))  # (N, C, H, W)
