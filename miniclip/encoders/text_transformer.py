"""Text transformer encoder: the walkthrough's word lookup, read by attention.

    token ids (N, L) ─lookup→ (N, L, D) ─+ positions→ ─blocks (with the padding mask)→
    ─LayerNorm→ ─pool→ (N, D) ─project→ (N, d)

Pooling is either the mean over real tokens (``pool="mean"``, as in the walkthrough) or the
vector at the end token (``pool="end"``, as in CLIP), which after attention has seen the
whole caption. Padded positions are masked out of attention and out of the pooling, so a
caption's embedding does not depend on how much padding follows it. Lesson 05 derives the
lookup and the positions, lesson 06 attention and lesson 06a the block.

CLIP's text tower is this encoder with ``causal=True`` (each token attends only to itself and
the tokens before it, as in GPT-2) and ``activation="quick_gelu"``, pooled at the end token:
with the causal mask, the end token sees every word only because it comes last. Lesson 16
builds it at CLIP's size (12 blocks, width 512) and loads OpenAI's weights into it.

Registered as ``"transformer"`` (:mod:`miniclip.encoders.registry`), with its cost rows and its
PyTorch twin below. Like every text encoder it tells the CLIP head its ``vocab_size``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from miniclip.encoders.counting import LayerCost, free_row, linear_row, transformer_blocks_cost
from miniclip.encoders.registry import EncoderSpec, register
from miniclip.layers.attention import check_heads
from miniclip.layers.embedding import Embedding
from miniclip.layers.end_token_pool import EndTokenPool
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.linear import projection
from miniclip.layers.mean_pool import MeanPool
from miniclip.layers.mlp import check_activation
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.layers.transformer_block import TransformerBlock
from miniclip.module import Module

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig

POOLS = {"end": EndTokenPool, "mean": MeanPool}  # how a caption's tokens become one vector


def check_text_input(context_length: int, pool: str) -> None:
    """The one check of a caption's token budget (start and end tokens need two) and of the text pooling."""
    if context_length < 2:
        raise ValueError(f"context length must be at least 2 (start and end tokens), got {context_length}")
    if pool not in POOLS:
        raise ValueError(f"unknown text pool {pool!r}; choose from {tuple(POOLS)}")


class TextTransformer(Module):
    """Token embedding + positions → ``depth`` masked transformer blocks → LayerNorm → pool → projection.

    ``causal=True`` adds CLIP's causal mask to the padding mask; ``activation`` names the blocks' MLP activation.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        context_length: int = 16,
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        embed_dim: int = 128,
        pool: str = "end",
        causal: bool = False,
        activation: str = "gelu",
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        check_text_input(context_length, pool)
        check_heads(width, heads)
        check_activation(activation)
        self.lookup = Embedding(vocab_size, width, rng=rng, dtype=dtype)
        self.positions = PositionalEmbedding(context_length, width, rng=rng, dtype=dtype)
        kinds = {"activation": activation, "causal": causal}
        self.blocks = [
            TransformerBlock(width, heads, mlp_ratio, dropout, **kinds, rng=rng, dtype=dtype) for _ in range(depth)
        ]
        self.norm = LayerNorm(width, dtype=dtype)
        self.pool = POOLS[pool]()
        self.project = projection(width, embed_dim, rng=rng, dtype=dtype)

    @property
    def vocab_size(self) -> int:
        """Rows of the token table: token ids must lie in ``[0, vocab_size)``."""
        return self.lookup.vocab_size

    def forward(self, token_ids: Any, mask: Any = None) -> Any:
        x = self.positions(self.lookup(token_ids))  # (N, L, D)
        for block in self.blocks:
            x = block(x, key_padding_mask=mask)  # (N, L, D)
        return self.project(self.pool(self.norm(x), mask))  # (N, d)

    def backward(self, dy: Any) -> None:
        dx = self.norm.backward(self.pool.backward(self.project.backward(dy)))  # (N, L, D)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        self.lookup.backward(self.positions.backward(dx))


# -- its place in the registry: built, checked and costed from a ModelConfig ---------------------


def _build(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> TextTransformer:
    return TextTransformer(
        vocab_size=cfg.vocab_size,
        context_length=cfg.context_length,
        width=cfg.text_width,
        depth=cfg.text_depth,
        heads=cfg.text_heads,
        mlp_ratio=cfg.mlp_ratio,
        dropout=cfg.dropout,
        embed_dim=cfg.embed_dim,
        pool=cfg.text_pool,
        causal=cfg.text_causal,
        activation=cfg.activation,
        rng=rng,
        dtype=dtype,
    )


def _validate(cfg: ModelConfig) -> None:
    check_heads(cfg.text_width, cfg.text_heads, "text width", "text heads")


def text_transformer_cost(cfg: ModelConfig, prefix: str = "text.") -> list[LayerCost]:
    """lookup → + positions → blocks → LayerNorm → pool → projection, per caption of ``context_length`` tokens."""
    length, width = cfg.context_length, cfg.text_width
    shape = (length, width)
    return [
        free_row(prefix + "lookup", shape, cfg.vocab_size * width),
        free_row(prefix + "positions", shape, length * width),
        *transformer_blocks_cost(prefix, length, width, cfg.text_depth, cfg.mlp_ratio),
        free_row(prefix + "norm", shape, 2 * width),
        free_row(prefix + "pool", (width,)),
        linear_row(prefix + "project", 1, width, cfg.embed_dim, bias=False),
    ]


def torch_text_transformer(cfg: ModelConfig) -> Any:
    """This encoder in PyTorch, parameters named as here (``miniclip bench``'s twin)."""
    import torch

    from miniclip.encoders.torch_parts import masked_mean, positions, transformer_blocks

    nn = torch.nn

    class TorchTextTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = cfg.text_width
            self.lookup, self.positions = nn.Embedding(cfg.vocab_size, width), positions(cfg.context_length, width)
            self.blocks = transformer_blocks(cfg, width, cfg.text_depth, cfg.text_heads, causal=cfg.text_causal)
            self.norm, self.project = nn.LayerNorm(width), nn.Linear(width, cfg.embed_dim, bias=False)

        def forward(self, ids: Any, mask: Any) -> Any:
            x = self.lookup(ids) + self.positions.positions[: ids.shape[1]]  # (N, L, D)
            keep = (mask != 0)[:, None, None, :]  # (N, 1, 1, L)
            for block in self.blocks:
                x = block(x, keep)
            x = self.norm(x)
            if cfg.text_pool == "end":
                end = (mask.sum(dim=1).long() - 1).clamp(min=0)
                return self.project(x[torch.arange(x.shape[0], device=x.device), end])
            return self.project(masked_mean(x, mask))

    return TorchTextTransformer()


register(
    EncoderSpec(
        name="transformer",
        side="text",
        cls=TextTransformer,
        build=_build,
        cost=text_transformer_cost,
        reads=(
            "vocab_size",
            "context_length",
            "text_width",
            "text_depth",
            "text_heads",
            "text_pool",
            "text_causal",
            "mlp_ratio",
            "dropout",
            "embed_dim",
            "activation",
        ),
        validate=_validate,
        torch_twin=torch_text_transformer,
    )
)
