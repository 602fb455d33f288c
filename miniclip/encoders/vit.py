"""Vision Transformer (ViT) image encoder: the walkthrough's patches, read by attention.

    images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear→ (N, P, D) ─+ positions→
    ─blocks (pre-norm transformer)→ (N, P, D) ─LayerNorm→ ─mean pool over patches→ (N, D)
    ─project→ (N, d)

Compared with the walkthrough's image encoder, the per-patch linear+ReLU becomes a linear
patch embedding plus a learned position for each patch, and a stack of transformer blocks
lets every patch look at every other before pooling. (The original ViT/CLIP pools at an extra
class token; mean pooling over patches works as well at this size and keeps one idea fewer.)
The backward is the same chain in reverse. Lesson 07 builds it and sets it beside the CNN;
its blocks are lesson 06a's.

Registered as ``"vit"`` (:mod:`miniclip.encoders.registry`), with its cost rows and its PyTorch
twin below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from miniclip.encoders.counting import LayerCost, free_row, linear_row, transformer_blocks_cost
from miniclip.encoders.patch_mlp import check_patch_size
from miniclip.encoders.registry import EncoderSpec, register
from miniclip.layers.attention import check_heads
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.linear import Linear, projection
from miniclip.layers.mean_pool import MeanPool
from miniclip.layers.patchify import Patchify
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.layers.transformer_block import TransformerBlock
from miniclip.module import Module

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig


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
        check_patch_size(image_size, patch_size)
        check_heads(width, heads)
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


# -- its place in the registry: built, checked and costed from a ModelConfig ---------------------


def _build(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> ViT:
    return ViT(
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        channels=cfg.channels,
        width=cfg.image_width,
        depth=cfg.image_depth,
        heads=cfg.image_heads,
        mlp_ratio=cfg.mlp_ratio,
        dropout=cfg.dropout,
        embed_dim=cfg.embed_dim,
        rng=rng,
        dtype=dtype,
    )


def _validate(cfg: ModelConfig) -> None:
    check_patch_size(cfg.image_size, cfg.patch_size)
    check_heads(cfg.image_width, cfg.image_heads, "image width", "image heads")


def vit_cost(cfg: ModelConfig, prefix: str = "image.") -> list[LayerCost]:
    """patchify → patch embedding → + positions → blocks → LayerNorm → mean pool → projection, per image."""
    patches = (cfg.image_size // cfg.patch_size) ** 2
    patch_values, width = cfg.channels * cfg.patch_size**2, cfg.image_width
    shape = (patches, width)
    return [
        free_row(prefix + "patchify", (patches, patch_values)),
        linear_row(prefix + "patch_embed", patches, patch_values, width, shape=(patches,)),
        free_row(prefix + "positions", shape, patches * width),
        *transformer_blocks_cost(prefix, patches, width, cfg.image_depth, cfg.mlp_ratio),
        free_row(prefix + "norm", shape, 2 * width),
        free_row(prefix + "pool", (width,)),
        linear_row(prefix + "project", 1, width, cfg.embed_dim, bias=False),
    ]


def torch_vit(cfg: ModelConfig) -> Any:
    """This encoder in PyTorch, parameters named as here (``miniclip bench``'s twin)."""
    import torch

    from miniclip.encoders.torch_parts import patchify, positions, transformer_blocks

    nn = torch.nn

    class TorchViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width, patches = cfg.image_width, (cfg.image_size // cfg.patch_size) ** 2
            self.patch_embed = nn.Linear(cfg.channels * cfg.patch_size**2, width)
            self.positions = positions(patches, width)
            self.blocks = transformer_blocks(cfg, width, cfg.image_depth, cfg.image_heads)
            self.norm, self.project = nn.LayerNorm(width), nn.Linear(width, cfg.embed_dim, bias=False)

        def forward(self, images: Any) -> Any:
            x = self.patch_embed(patchify(images, cfg.patch_size)) + self.positions.positions
            for block in self.blocks:
                x = block(x)
            return self.project(self.norm(x).mean(dim=1))

    return TorchViT()


register(
    EncoderSpec(
        name="vit",
        side="image",
        cls=ViT,
        build=_build,
        cost=vit_cost,
        reads=(
            "image_size",
            "channels",
            "patch_size",
            "image_width",
            "image_depth",
            "image_heads",
            "mlp_ratio",
            "dropout",
            "embed_dim",
        ),
        validate=_validate,
        torch_twin=torch_vit,
    )
)
