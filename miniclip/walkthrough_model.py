"""The walkthrough's CLIP: one linear+ReLU encoder per side, mean pooling, projection, loss.

    text:   token ids (N, L) ─lookup→ (N, L, E) ─linear+ReLU→ (N, L, Ht) ─mean pool→ (N, Ht) ─project→ T (N, d)
    image:  images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear+ReLU→ (N, P, Hi) ─mean pool→ (N, Hi) ─project→ I (N, d)
    head:   logits = T @ Iᵀ (N, N) → softmax by rows and by columns → cross-entropy against the identity

The backward runs the same chain in reverse: (P − Y)/N into the logits, then through the
matrix product into T and I, and from there down each encoder to its weights and biases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from miniclip.layers import ContrastiveLoss, Embedding, Linear, MeanPool, Patchify, ReLU, Similarity, projection
from miniclip.module import Module


@dataclass
class WalkthroughConfig:
    """Sizes of the walkthrough model (defaults: the 3-pair example of the walkthrough)."""

    vocab_size: int = 6  # words in the lookup table
    word_dim: int = 3  # each word is a 3-D vector
    text_hidden: int = 3  # text encoder width
    channels: int = 1  # image channels
    patch_size: int = 2  # square patches of 2×2 pixels → 4 numbers each
    image_hidden: int = 4  # image encoder width (different from the text side's, on purpose)
    embed_dim: int = 2  # the shared space is 2-D
    base: float = math.e  # softmax base (3 for the by-hand version)


def check_pairs(token_ids: Any, images: Any) -> None:
    """Raise ``ValueError`` unless there are as many captions as images (one pair each)."""
    if token_ids.shape[0] != images.shape[0]:
        raise ValueError(
            f"batch sizes differ: {token_ids.shape[0]} texts (token_ids {tuple(token_ids.shape)}) "
            f"but {images.shape[0]} images (images {tuple(images.shape)})"
        )


class TextEncoder(Module):
    """lookup → linear + ReLU → mean pool (over real tokens) → project."""

    def __init__(self, cfg: WalkthroughConfig, *, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        self.lookup = Embedding(cfg.vocab_size, cfg.word_dim, rng=rng, dtype=dtype)
        self.encode = Linear(cfg.word_dim, cfg.text_hidden, rng=rng, dtype=dtype)
        self.relu = ReLU()
        self.pool = MeanPool()
        self.project = projection(cfg.text_hidden, cfg.embed_dim, rng=rng, dtype=dtype)

    def forward(self, token_ids: Any, mask: Any = None) -> Any:
        words = self.lookup(token_ids)  # (N, L, E)
        hidden = self.relu(self.encode(words))  # (N, L, Ht)
        pooled = self.pool(hidden, mask)  # (N, Ht)
        return self.project(pooled)  # (N, d)

    def backward(self, dt: Any) -> None:
        dpooled = self.project.backward(dt)
        dhidden = self.pool.backward(dpooled)
        dwords = self.encode.backward(self.relu.backward(dhidden))
        self.lookup.backward(dwords)


class ImageEncoder(Module):
    """patchify → linear + ReLU → mean pool (over patches) → project."""

    def __init__(self, cfg: WalkthroughConfig, *, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        self.patchify = Patchify(cfg.patch_size)
        self.encode = Linear(cfg.channels * cfg.patch_size**2, cfg.image_hidden, rng=rng, dtype=dtype)
        self.relu = ReLU()
        self.pool = MeanPool()
        self.project = projection(cfg.image_hidden, cfg.embed_dim, rng=rng, dtype=dtype)

    def forward(self, images: Any) -> Any:
        patches = self.patchify(images)  # (N, P, C·p·p)
        hidden = self.relu(self.encode(patches))  # (N, P, Hi)
        pooled = self.pool(hidden)  # (N, Hi)
        return self.project(pooled)  # (N, d)

    def backward(self, di: Any) -> Any:
        dpooled = self.project.backward(di)
        dhidden = self.pool.backward(dpooled)
        dpatches = self.encode.backward(self.relu.backward(dhidden))
        return self.patchify.backward(dpatches)  # (N, C, H, W)


class WalkthroughCLIP(Module):
    """The whole walkthrough: two encoders, the similarity matrix and the two-way loss."""

    def __init__(self, cfg: WalkthroughConfig | None = None, *, rng: np.random.Generator, dtype: Any = np.float32):
        self.cfg = cfg or WalkthroughConfig()
        self.text = TextEncoder(self.cfg, rng=rng, dtype=dtype)
        self.image = ImageEncoder(self.cfg, rng=rng, dtype=dtype)
        self.similarity = Similarity()
        self.loss = ContrastiveLoss(base=self.cfg.base)
        self.logits: Any = None

    def forward(self, token_ids: Any, images: Any, mask: Any = None) -> Any:
        """Return the loss (0-d array) for a batch of N (caption, image) pairs."""
        if token_ids.ndim != 2:
            raise ValueError(f"token_ids must be (N, L) integers, got shape {tuple(token_ids.shape)}")
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        check_pairs(token_ids, images)
        t = self.text(token_ids, mask)  # (N, d)
        i = self.image(images)  # (N, d)
        self.logits = self.similarity(t, i)  # (N, N)
        return self.loss(self.logits)

    def backward(self, dloss: Any = 1.0) -> Any:
        """Fill every parameter's gradient; return d(loss)/d(images)."""
        dlogits = self.loss.backward(dloss)
        dt, di = self.similarity.backward(dlogits)
        self.text.backward(dt)
        return self.image.backward(di)
