"""Gradient checks for the predictive (bag-of-words) baseline: the predictor, its loss, and both together.

Same shape as :data:`miniclip.teaching.gradient_cases.CASES`: each entry takes a seeded generator and returns
``(module, positional inputs, keyword inputs)`` for :func:`miniclip.teaching.gradcheck.gradcheck`, in
float64. The targets are keyword inputs (not differentiated): random soft rows that sum to 1,
or the bag of words of random token ids, with the zeros real targets have.

Lesson 13 derives what these check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import to_device
from miniclip.model.predictive import BagOfWordsPredictor, PredictiveLoss, word_count_targets
from miniclip.module import Module
from miniclip.teaching.gradient_cases.common import F64, Case, CaseBuilder, normal, padding_mask, randomise

N, D, V = 4, 3, 7  # images, feature width, vocabulary (4 special tokens and 3 words)
LENGTHS = [5, 3, 4, 3]  # real tokens per caption (context 5): each has at least one word between start and end


class PredictorWithLoss(Module):
    """The predictive head as the trainer runs it: features (N, D) → logits (N, V) → loss against targets."""

    def __init__(self, predictor: BagOfWordsPredictor) -> None:
        self.predictor = predictor
        self.loss = PredictiveLoss()

    def forward(self, features: Any, targets: Any) -> Any:
        return self.loss(self.predictor(features), targets)  # 0-d

    def backward(self, dloss: Any = 1.0) -> Any:
        return self.predictor.backward(self.loss.backward(dloss))  # (N, D)


def soft_targets(rng: np.random.Generator, n: int, v: int) -> Any:
    """Random positive targets (n, v), each row summing to 1."""
    q = rng.uniform(0.1, 1.0, (n, v))
    return to_device(q / q.sum(axis=1, keepdims=True))


def bag_of_words_targets(rng: np.random.Generator) -> Any:
    """The bag of words (N, V) of random captions: <start>, random words (repeats likely), <end>, <pad>."""
    ids = np.zeros((N, max(LENGTHS)), dtype=np.int64)  # (N, L) all <pad>
    for row, length in enumerate(LENGTHS):
        ids[row, 0], ids[row, 1 : length - 1], ids[row, length - 1] = 2, rng.integers(4, V, length - 2), 3
    return word_count_targets(to_device(ids), padding_mask(LENGTHS, max(LENGTHS)), V, dtype=F64)


def _predictor(rng: np.random.Generator) -> BagOfWordsPredictor:
    predictor = BagOfWordsPredictor(D, V, rng=rng, dtype=F64)
    randomise(predictor, rng)  # a bias that is not 0
    return predictor


def _head(targets: str) -> CaseBuilder:
    def case(rng: np.random.Generator) -> Case:
        q = soft_targets(rng, N, V) if targets == "soft" else bag_of_words_targets(rng)
        return PredictorWithLoss(_predictor(rng)), (normal(rng, N, D),), {"targets": q}

    return case


CASES: dict[str, CaseBuilder] = {
    "BagOfWordsPredictor": lambda r: (_predictor(r), (normal(r, N, D),), {}),
    "PredictiveLoss (soft targets)": lambda r: (
        PredictiveLoss(),
        (normal(r, N, V),),
        {"targets": soft_targets(r, N, V)},
    ),
    "PredictiveLoss (bag of words)": lambda r: (
        PredictiveLoss(),
        (normal(r, N, V),),
        {"targets": bag_of_words_targets(r)},
    ),
    "Predictor + PredictiveLoss (soft targets)": _head("soft"),
    "Predictor + PredictiveLoss (bag of words)": _head("bag of words"),
}
