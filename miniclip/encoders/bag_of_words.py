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
same word vectors with attention. Lessons 01 and 03 derive it by hand (the walkthrough); lesson
05 shows what its mean forgets: the order of the words.

Registered as ``"bag_of_words"`` (:mod:`miniclip.encoders.registry`), with its cost rows and its
PyTorch twin below. Like every text encoder it tells the CLIP head its ``vocab_size``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from miniclip.encoders.counting import LayerCost, free_row, linear_row
from miniclip.encoders.registry import EncoderSpec, register
from miniclip.layers import Embedding, Linear, MeanPool, ReLU, projection
from miniclip.module import Module

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig


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

    @property
    def vocab_size(self) -> int:
        """Rows of the token table: token ids must lie in ``[0, vocab_size)``."""
        return self.lookup.vocab_size

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


# -- its place in the registry: built and costed from a ModelConfig -------------------------------


def _build(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> BagOfWords:
    return BagOfWords(
        vocab_size=cfg.vocab_size,
        word_dim=cfg.text_width,
        width=cfg.text_width,
        embed_dim=cfg.embed_dim,
        rng=rng,
        dtype=dtype,
    )


def bag_of_words_cost(cfg: ModelConfig, prefix: str = "text.") -> list[LayerCost]:
    """lookup → linear + ReLU (on every token) → mean pool → projection, per caption of ``context_length`` tokens."""
    length, width = cfg.context_length, cfg.text_width
    shape = (length, width)
    return [
        free_row(prefix + "lookup", shape, cfg.vocab_size * width),
        linear_row(prefix + "encode", length, width, width, shape=(length,)),
        free_row(prefix + "relu", shape),
        free_row(prefix + "pool", (width,)),
        linear_row(prefix + "project", 1, width, cfg.embed_dim, bias=False),
    ]


def torch_bag_of_words(cfg: ModelConfig) -> Any:
    """This encoder in PyTorch, parameters named as here (``miniclip bench``'s twin)."""
    import torch

    from miniclip.encoders.torch_parts import masked_mean

    nn, F = torch.nn, torch.nn.functional

    class TorchBagOfWords(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = cfg.text_width
            self.lookup, self.encode = nn.Embedding(cfg.vocab_size, width), nn.Linear(width, width)
            self.project = nn.Linear(width, cfg.embed_dim, bias=False)

        def forward(self, ids: Any, mask: Any) -> Any:
            return self.project(masked_mean(F.relu(self.encode(self.lookup(ids))), mask))

    return TorchBagOfWords()


register(
    EncoderSpec(
        name="bag_of_words",
        side="text",
        cls=BagOfWords,
        build=_build,
        cost=bag_of_words_cost,
        reads=("vocab_size", "context_length", "text_width", "embed_dim"),
        torch_twin=torch_bag_of_words,
    )
)
