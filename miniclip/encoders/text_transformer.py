"""Text transformer encoder: the walkthrough's word lookup, read by attention.

    token ids (N, L) ─lookup→ (N, L, D) ─+ positions→ ─blocks (with the padding mask)→
    ─LayerNorm→ ─pool→ (N, D) ─project→ (N, d)

Pooling is either the mean over real tokens (``pool="mean"``, as in the walkthrough) or the
vector at the end token (``pool="end"``, as in CLIP), which after attention has seen the
whole caption. Padded positions are masked out of attention and out of the pooling, so a
caption's embedding does not depend on how much padding follows it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.layers.embedding import Embedding
from miniclip.layers.end_token_pool import EndTokenPool
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.linear import projection
from miniclip.layers.mean_pool import MeanPool
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.layers.transformer_block import TransformerBlock
from miniclip.module import Module

POOLS = {"mean": MeanPool, "end": EndTokenPool}


class TextTransformer(Module):
    """Token embedding + positions → ``depth`` masked transformer blocks → LayerNorm → pool → projection."""

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
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        if context_length < 2:
            raise ValueError(f"context length must be at least 2 (start and end tokens), got {context_length}")
        if heads < 1 or width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        if pool not in POOLS:
            raise ValueError(f"unknown text pooling {pool!r}; choose from {sorted(POOLS)}")
        self.lookup = Embedding(vocab_size, width, rng=rng, dtype=dtype)
        self.positions = PositionalEmbedding(context_length, width, rng=rng, dtype=dtype)
        self.blocks = [TransformerBlock(width, heads, mlp_ratio, dropout, rng=rng, dtype=dtype) for _ in range(depth)]
        self.norm = LayerNorm(width, dtype=dtype)
        self.pool = POOLS[pool]()
        self.project = projection(width, embed_dim, rng=rng, dtype=dtype)

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
