"""Gradient checks for the walkthrough: its layers, the contrastive head and the whole model.

Lessons 02 and 03 derive what these check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import to_device
from miniclip.layers import ContrastiveLoss, Embedding, Linear, MeanPool, Patchify, ReLU, Similarity, projection
from miniclip.model.targets import label_aware_targets
from miniclip.teaching.gradient_cases.common import F64, Case, CaseBuilder, normal
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig


def _padding_mask(rng: np.random.Generator, n: int, length: int) -> Any:
    lengths = rng.integers(1, length + 1, size=n)  # every item keeps at least one real token
    return to_device((np.arange(length)[None, :] < lengths[:, None]).astype(F64))


def _soft_targets(rng: np.random.Generator, n: int) -> Any:
    """A doubly stochastic target matrix (rows and columns sum to 1), as for duplicate captions."""
    y = rng.uniform(0.1, 1.0, (n, n)) + np.eye(n) * 3
    for _ in range(200):  # Sinkhorn: alternate row and column normalisation
        y /= y.sum(axis=1, keepdims=True)
        y /= y.sum(axis=0, keepdims=True)
    return to_device(y)


def _walkthrough(rng: np.random.Generator) -> Case:
    cfg = WalkthroughConfig(vocab_size=7, channels=2)
    model = WalkthroughCLIP(cfg, rng=rng, dtype=F64)
    ids = to_device(rng.integers(0, cfg.vocab_size, size=(4, 3)))  # repeated ids across the batch
    images = normal(rng, 4, 2, 4, 4)
    return model, (ids, images), {"mask": _padding_mask(rng, 4, 3)}


CASES: dict[str, CaseBuilder] = {
    "Linear": lambda r: (Linear(5, 4, rng=r, dtype=F64), (normal(r, 3, 2, 5),), {}),
    "projection": lambda r: (projection(5, 3, rng=r, dtype=F64), (normal(r, 4, 5),), {}),
    "ReLU": lambda r: (ReLU(), (normal(r, 3, 4),), {}),
    "Patchify": lambda r: (Patchify(2), (normal(r, 2, 3, 4, 6),), {}),
    "Embedding (repeated ids)": lambda r: (
        Embedding(5, 3, rng=r, dtype=F64),
        (to_device(np.array([[0, 1, 1], [4, 1, 0]])),),
        {},
    ),
    "MeanPool": lambda r: (MeanPool(), (normal(r, 3, 4, 5),), {}),
    "MeanPool (padding mask)": lambda r: (MeanPool(), (normal(r, 3, 4, 5),), {"mask": _padding_mask(r, 3, 4)}),
    "Similarity": lambda r: (Similarity(), (normal(r, 3, 2), normal(r, 3, 2)), {}),
    "ContrastiveLoss (base e)": lambda r: (ContrastiveLoss(), (normal(r, 4, 4),), {}),
    "ContrastiveLoss (base 3)": lambda r: (ContrastiveLoss(base=3), (normal(r, 4, 4),), {}),
    "ContrastiveLoss (soft targets)": lambda r: (
        ContrastiveLoss(),
        (normal(r, 4, 4),),
        {"targets": _soft_targets(r, 4)},
    ),
    "ContrastiveLoss (label-aware targets)": lambda r: (
        ContrastiveLoss(),
        (normal(r, 6, 6),),
        {"targets": label_aware_targets(to_device(np.array([2, 0, 2, 1, 0, 2])), F64)},  # classes of 3, 2 and 1
    ),
    "WalkthroughCLIP (base e)": _walkthrough,
    "WalkthroughCLIP (base 3)": lambda r: (
        WalkthroughCLIP(WalkthroughConfig(base=3), rng=r, dtype=F64),
        (to_device(r.integers(0, 6, size=(3, 2))), normal(r, 3, 1, 2, 4)),
        {},
    ),
}
