"""Vision Transformer (ViT) image encoder: the walkthrough's patches, read by attention.

    images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear→ (N, P, D) ─+ positions→
    ─blocks (pre-norm transformer)→ (N, P, D) ─LayerNorm→ ─mean pool over patches→ (N, D)
    ─project→ (N, d)

Compared with the walkthrough's image encoder, the per-patch linear+ReLU becomes a linear
patch embedding plus a learned position for each patch, and a stack of transformer blocks
lets every patch look at every other before pooling. The backward is the same chain in
reverse. Lesson 07 builds it and sets it beside the CNN; its blocks are lesson 06a's.

CLIP's image tower is this encoder with four options (lesson 16), all off by default:

    pool="class"      a learned class token before the patches (:mod:`miniclip.layers.class_token`),
                      P + 1 positions, and the image read at that token instead of the patches' mean
    ln_pre=True       a LayerNorm after the positions, before the first block (CLIP's ``ln_pre``)
    patch_bias=False  the patch embedding without bias: CLIP's strided convolution of kernel and
                      stride p, which is exactly patchify + this linear layer (its weight (D, C, p, p)
                      read as (D, C·p·p), in the order patchify flattens a patch)
    activation="quick_gelu"   the blocks' MLP activation (:mod:`miniclip.layers.quick_gelu`)

Mean pooling over patches works as well as a class token at the small sizes miniclip trains,
and keeps one idea fewer; the released weights need the class token.

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
from miniclip.layers.class_token import ClassToken, ClassTokenPool
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.linear import Linear, projection
from miniclip.layers.mean_pool import MeanPool
from miniclip.layers.mlp import check_activation
from miniclip.layers.patchify import Patchify
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.layers.transformer_block import TransformerBlock
from miniclip.module import Module

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig

IMAGE_POOLS = ("mean", "class")  # the patches' mean, or a class token's final state


def check_image_pool(pool: str) -> None:
    """Raise ``ValueError`` unless ``pool`` is one of :data:`IMAGE_POOLS`."""
    if pool not in IMAGE_POOLS:
        raise ValueError(f"unknown image pool {pool!r}; choose from {IMAGE_POOLS}")


class ViT(Module):
    """Patch embedding + positions → ``depth`` transformer blocks → LayerNorm → pool → projection.

    With ``pool="class"`` a class token goes before the patches and is what is pooled; with
    ``ln_pre`` a LayerNorm comes before the blocks (see the module docstring for CLIP's options).
    """

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
        pool: str = "mean",
        ln_pre: bool = False,
        patch_bias: bool = True,
        activation: str = "gelu",
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        check_patch_size(image_size, patch_size)
        check_heads(width, heads)
        check_image_pool(pool)
        check_activation(activation)
        self.image_size = image_size
        num_patches = (image_size // patch_size) ** 2
        self.patchify = Patchify(patch_size)
        self.patch_embed = Linear(channels * patch_size**2, width, bias=patch_bias, rng=rng, dtype=dtype)
        self.class_token = ClassToken(width, rng=rng, dtype=dtype) if pool == "class" else None
        tokens = num_patches + (pool == "class")
        self.positions = PositionalEmbedding(tokens, width, rng=rng, dtype=dtype)
        self.ln_pre = LayerNorm(width, dtype=dtype) if ln_pre else None
        self.blocks = [
            TransformerBlock(width, heads, mlp_ratio, dropout, activation=activation, rng=rng, dtype=dtype)
            for _ in range(depth)
        ]
        self.norm = LayerNorm(width, dtype=dtype)
        self.pool = ClassTokenPool() if pool == "class" else MeanPool()
        self.project = projection(width, embed_dim, rng=rng, dtype=dtype)

    def forward(self, images: Any) -> Any:
        if images.ndim != 4 or images.shape[2] != self.image_size or images.shape[3] != self.image_size:
            raise ValueError(
                f"ViT expects images (N, C, {self.image_size}, {self.image_size}), got {tuple(images.shape)}"
            )
        x = self.patch_embed(self.patchify(images))  # (N, P, D)
        if self.class_token is not None:
            x = self.class_token(x)  # (N, P + 1, D)
        x = self.positions(x)
        if self.ln_pre is not None:
            x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x)  # (N, P [+ 1], D)
        return self.project(self.pool(self.norm(x)))  # (N, d)

    def backward(self, dy: Any, input_grad: bool = True) -> Any:
        dx = self.norm.backward(self.pool.backward(self.project.backward(dy)))  # (N, P [+ 1], D)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        if self.ln_pre is not None:
            dx = self.ln_pre.backward(dx)
        dx = self.positions.backward(dx)
        if self.class_token is not None:
            dx = self.class_token.backward(dx)  # (N, P, D)
        dpatches = self.patch_embed.backward(dx)  # (N, P, C·p·p)
        return self.patchify.backward(dpatches) if input_grad else None  # (N, C, H, W)


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
        pool=cfg.image_pool,
        ln_pre=cfg.image_ln_pre,
        patch_bias=cfg.patch_bias,
        activation=cfg.activation,
        rng=rng,
        dtype=dtype,
    )


def _validate(cfg: ModelConfig) -> None:
    check_patch_size(cfg.image_size, cfg.patch_size)
    check_heads(cfg.image_width, cfg.image_heads, "image width", "image heads")
    check_image_pool(cfg.image_pool)


def vit_cost(cfg: ModelConfig, prefix: str = "image.") -> list[LayerCost]:
    """patchify → patch embedding → [class token] → + positions → [ln_pre] → blocks → LayerNorm → pool →
    projection, per image."""
    patches = (cfg.image_size // cfg.patch_size) ** 2
    tokens = patches + (cfg.image_pool == "class")
    patch_values, width = cfg.channels * cfg.patch_size**2, cfg.image_width
    shape = (tokens, width)
    return [
        free_row(prefix + "patchify", (patches, patch_values)),
        linear_row(prefix + "patch_embed", patches, patch_values, width, bias=cfg.patch_bias, shape=(patches,)),
        *([free_row(prefix + "class_token", shape, width)] if cfg.image_pool == "class" else []),
        free_row(prefix + "positions", shape, tokens * width),
        *([free_row(prefix + "ln_pre", shape, 2 * width)] if cfg.image_ln_pre else []),
        *transformer_blocks_cost(prefix, tokens, width, cfg.image_depth, cfg.mlp_ratio),
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
            self.patch_embed = nn.Linear(cfg.channels * cfg.patch_size**2, width, bias=cfg.patch_bias)
            if cfg.image_pool == "class":
                self.class_token = nn.Module()
                self.class_token.token = nn.Parameter(torch.zeros(width))
            self.positions = positions(patches + (cfg.image_pool == "class"), width)
            self.ln_pre = nn.LayerNorm(width) if cfg.image_ln_pre else None
            self.blocks = transformer_blocks(cfg, width, cfg.image_depth, cfg.image_heads)
            self.norm, self.project = nn.LayerNorm(width), nn.Linear(width, cfg.embed_dim, bias=False)

        def forward(self, images: Any) -> Any:
            x = self.patch_embed(patchify(images, cfg.patch_size))
            if cfg.image_pool == "class":
                x = torch.cat([self.class_token.token.expand(x.shape[0], 1, -1), x], dim=1)
            x = x + self.positions.positions
            if self.ln_pre is not None:
                x = self.ln_pre(x)
            for block in self.blocks:
                x = block(x)
            x = self.norm(x)
            return self.project(x[:, 0] if cfg.image_pool == "class" else x.mean(dim=1))

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
            "image_pool",
            "image_ln_pre",
            "patch_bias",
            "activation",
        ),
        validate=_validate,
        torch_twin=torch_vit,
    )
)
