"""Gradient checks for the transformer parts: each layer on its own, then a whole block.

Each entry is a case as described in :mod:`miniclip.teaching.gradient_cases.common`.

Lessons 05, 06 and 06a introduce these layers; lesson 16 the pieces of OpenAI's CLIP (QuickGELU,
the class token, the causal mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import to_device
from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.layers.class_token import ClassToken, ClassTokenPool
from miniclip.layers.dropout import Dropout
from miniclip.layers.gelu import GELU
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.mlp import MLP
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.layers.quick_gelu import QuickGELU
from miniclip.layers.transformer_block import TransformerBlock
from miniclip.teaching.gradient_cases.common import F64, Case, CaseBuilder, normal, randomise


def _mask(*rows: list[int]) -> Any:
    """A key padding mask from explicit rows: 1 = real token, 0 = padding."""
    return to_device(np.array(rows, dtype=F64))


def _layer_norm(rng: np.random.Generator) -> Case:
    return randomise(LayerNorm(5, dtype=F64), rng), (normal(rng, 2, 3, 5),), {}


def _attention(rng: np.random.Generator) -> Case:
    attn = randomise(MultiHeadSelfAttention(4, 2, rng=rng, dtype=F64), rng)
    return attn, (normal(rng, 2, 3, 4),), {}


def _attention_masked(rng: np.random.Generator) -> Case:
    attn = randomise(MultiHeadSelfAttention(4, 2, rng=rng, dtype=F64), rng)
    mask = _mask([1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0])  # partly padded, unpadded, fully padded
    return attn, (normal(rng, 3, 4, 4),), {"key_padding_mask": mask}


def _attention_causal(rng: np.random.Generator) -> Case:
    attn = randomise(MultiHeadSelfAttention(4, 2, causal=True, rng=rng, dtype=F64), rng)
    mask = _mask([1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0])  # partly padded, unpadded, start token only
    return attn, (normal(rng, 3, 4, 4),), {"key_padding_mask": mask}


def _block_clip(rng: np.random.Generator) -> Case:
    block = TransformerBlock(4, 2, mlp_ratio=2, activation="quick_gelu", causal=True, rng=rng, dtype=F64)
    block = randomise(block, rng)
    return block, (normal(rng, 2, 3, 4),), {"key_padding_mask": _mask([1, 1, 0], [1, 1, 1])}


def _block_masked(rng: np.random.Generator) -> Case:
    block = randomise(TransformerBlock(4, 2, mlp_ratio=2, rng=rng, dtype=F64), rng)
    return block, (normal(rng, 2, 3, 4),), {"key_padding_mask": _mask([1, 1, 0], [1, 1, 1])}


def _block_dropout(rng: np.random.Generator) -> Case:
    block = randomise(TransformerBlock(4, 2, mlp_ratio=2, dropout=0.3, rng=rng, dtype=F64), rng)
    block.drop1.seed, block.drop2.seed = 1, 2  # fixed masks: the block is then a function of x
    return block, (normal(rng, 2, 3, 4),), {"key_padding_mask": _mask([1, 0, 0], [1, 1, 1])}


CASES: dict[str, CaseBuilder] = {
    "LayerNorm": _layer_norm,
    "GELU (tanh)": lambda r: (GELU(), (normal(r, 3, 4) * 2,), {}),
    "QuickGELU": lambda r: (QuickGELU(), (normal(r, 3, 4) * 2,), {}),
    "Dropout (fixed mask)": lambda r: (Dropout(0.4, seed=3), (normal(r, 4, 5),), {}),
    "PositionalEmbedding": lambda r: (PositionalEmbedding(5, 3, rng=r, dtype=F64), (normal(r, 2, 4, 3),), {}),
    "MultiHeadSelfAttention": _attention,
    "Attention (padding mask)": _attention_masked,
    "Attention (causal + padding mask)": _attention_causal,
    "ClassToken": lambda r: (randomise(ClassToken(3, rng=r, dtype=F64), r), (normal(r, 2, 4, 3),), {}),
    "ClassTokenPool": lambda r: (ClassTokenPool(), (normal(r, 2, 4, 3),), {}),
    "MLP": lambda r: (randomise(MLP(3, 6, rng=r, dtype=F64), r), (normal(r, 2, 2, 3),), {}),
    "TransformerBlock (mask)": _block_masked,
    "TransformerBlock (dropout)": _block_dropout,
    "TransformerBlock (CLIP: causal, QuickGELU)": _block_clip,
}
