"""Gradient checks for the linear probe's objective: softmax regression with an L2 penalty on W.

Same shape as :data:`miniclip.teaching.gradient_cases.CASES`: each entry takes a seeded generator and returns
``(module, positional inputs, keyword inputs)`` for :func:`miniclip.teaching.gradcheck.gradcheck`, in
float64. The module is :class:`~miniclip.evaluation.linear_probe.SoftmaxRegressionLoss` with random W and b
(so no logit sits at 0); the features and labels are keyword inputs (frozen, not differentiated),
and the loss is a scalar, so the checker's random upstream gradient is a random scalar.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from miniclip.backend import to_device
from miniclip.evaluation.linear_probe import SoftmaxRegressionLoss
from miniclip.teaching.gradient_cases.common import Case, CaseBuilder, normal

N, D, K = 7, 3, 4  # feature rows, feature width, classes
LABELS = [0, 1, 2, 3, 1, 0, 2]  # every class present, some twice


def _softmax_regression(l2: float) -> Callable[[np.random.Generator], Case]:
    def case(rng: np.random.Generator) -> Case:
        loss = SoftmaxRegressionLoss(normal(rng, D, K), normal(rng, K), l2=l2)
        return loss, (), {"features": normal(rng, N, D), "labels": to_device(np.array(LABELS))}

    return case


CASES: dict[str, CaseBuilder] = {
    "SoftmaxRegressionLoss (λ = 0.3)": _softmax_regression(0.3),
    "SoftmaxRegressionLoss (no penalty)": _softmax_regression(0.0),
}
