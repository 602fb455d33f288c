"""The walkthrough's CLIP: one linear+ReLU encoder per side, mean pooling, projection, loss.

    text:   token ids (N, L) ─lookup→ (N, L, E) ─linear+ReLU→ (N, L, Ht) ─mean pool→ (N, Ht) ─project→ T (N, d)
    image:  images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear+ReLU→ (N, P, Hi) ─mean pool→ (N, Hi) ─project→ I (N, d)
    head:   logits = T @ Iᵀ (N, N) → softmax by rows and by columns → cross-entropy against the identity

The backward runs the same chain in reverse: (P − Y)/N into the logits, then through the
matrix product into T and I, and from there down each encoder to its weights and biases.

The two encoders are the real package's smallest ones, :class:`~miniclip.encoders.bag_of_words.BagOfWords`
and :class:`~miniclip.encoders.patch_mlp.PatchMLP`, at the walkthrough's sizes; this module only
joins them under the walkthrough's head (raw dot products, a softmax base of your choice).

Lesson 01 runs its forward by hand; lesson 03 its backward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from miniclip.encoders.bag_of_words import BagOfWords
from miniclip.encoders.patch_mlp import PatchMLP
from miniclip.layers import ContrastiveLoss, Similarity
from miniclip.model.clip import check_pairs
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


class WalkthroughCLIP(Module):
    """The whole walkthrough: two encoders, the similarity matrix and the two-way loss."""

    def __init__(self, cfg: WalkthroughConfig | None = None, *, rng: np.random.Generator, dtype: Any = np.float32):
        self.cfg = cfg or WalkthroughConfig()
        c = self.cfg
        self.text = BagOfWords(
            vocab_size=c.vocab_size,
            word_dim=c.word_dim,
            width=c.text_hidden,
            embed_dim=c.embed_dim,
            rng=rng,
            dtype=dtype,
        )
        self.image = PatchMLP(
            channels=c.channels,
            patch_size=c.patch_size,
            width=c.image_hidden,
            embed_dim=c.embed_dim,
            rng=rng,
            dtype=dtype,
        )
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
