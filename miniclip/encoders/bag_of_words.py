"""Bag-of-words text encoder: the walkthrough's text side, word vectors averaged.

    token ids (N, L) ─lookup→ (N, L, E) ─linear+ReLU→ (N, L, H) ─mean pool (real tokens)→ (N, H)
    ─project→ (N, d)

Each word is looked up and passed through the same linear+ReLU on its own; the mean over
the caption's real tokens (the padding mask leaves ``<pad>`` out) forgets word order, hence
the name. The backward runs the chain in reverse::

    dpooled = dT · W_projᵀ          dhidden[n, l] = dpooled[n] · m[n, l] / count[n]
    dwords  = (dhidden ⊙ relu') · W_encᵀ          d(table)[id] += dwords at every position holding id

With ten class names and a few templates a caption carries little word order worth reading,
which is why the ``cpu`` configuration uses this encoder; :mod:`.text_transformer` reads the
same word vectors with attention.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.layers import Embedding, Linear, MeanPool, ReLU, projection
from miniclip.module import Module


class BagOfWords(Module):
    """lookup → linear + ReLU → mean pool (over real tokens) → project."""

    def __init__(
        self,
        *,
        vocab_size: int,
        word_dim: int,
        width: int,
        embed_dim: int,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        self.lookup = Embedding(vocab_size, word_dim, rng=rng, dtype=dtype)
        self.encode = Linear(word_dim, width, rng=rng, dtype=dtype)
        self.relu = ReLU()
        self.pool = MeanPool()
        self.project = projection(width, embed_dim, rng=rng, dtype=dtype)

    def forward(self, token_ids: Any, mask: Any = None) -> Any:
        words = self.lookup(token_ids)  # (N, L, E)
        hidden = self.relu(self.encode(words))  # (N, L, H)
        pooled = self.pool(hidden, mask)  # (N, H)
        return self.project(pooled)  # (N, d)

    def backward(self, dt: Any) -> None:
        dpooled = self.project.backward(dt)  # (N, H)
        dhidden = self.pool.backward(dpooled)  # (N, L, H)
        dwords = self.encode.backward(self.relu.backward(dhidden))  # (N, L, E)
        self.lookup.backward(dwords)
