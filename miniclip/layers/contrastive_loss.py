"""The contrastive (CLIP) loss on a square matrix of logits, in both directions.

``logits[i, j]`` scores text ``i`` against image ``j`` (the logits are T·Iᵀ, one row per
text); pair ``i`` is text ``i`` with image ``i``, so the targets ``Y`` are the identity matrix
(or, as an option, any matrix whose rows and columns each sum to 1). Two softmaxes are taken,
each direction named *query→what it ranks*, as everywhere in miniclip (the walkthrough, the
lessons, :mod:`miniclip.evaluation.retrieval`'s ``text_to_image`` and ``image_to_text``):

* **text→image**, along each **row**: for text ``i``, a distribution over the images
  (``p_rows``);
* **image→text**, along each **column**: for image ``j``, a distribution over the texts
  (``p_cols``).

CLIP's paper writes the matrix the other way up, I·Tᵀ with the images on the rows (OpenAI's
``logits_per_image``; our T·Iᵀ is its ``logits_per_text``): its row softmax is our column
softmax, and the loss is the same.

Each direction's loss is the cross-entropy against the targets, averaged over the N pairs,
and the CLIP loss is their mean::

    L_rows = −(1/N) Σ_ij Y_ij log_b P_rows[i, j]        L_cols likewise with P_cols
    L      = (L_rows + L_cols) / 2

The gradient of each direction is simply (probabilities − targets) / N, so::

    dL/dlogits = ((P_rows − Y) + (P_cols − Y)) / (2N)

That form needs every row *and* every column of ``Y`` to sum to 1, as the identity and the
label-aware targets do. For any other ``Y`` the row direction's gradient is
``P_rows · rowsum(Y) − Y`` (and likewise by columns); the backward uses that general form,
which is exactly ``P − Y`` whenever the sums are 1.

The logarithm is taken in the same base ``b`` as the softmax. For ``b = e`` (the default)
this is the usual loss in nats; for the walkthrough's ``b = 3`` it keeps the gradient
exactly (P − Y)/N, because the factor ln b from differentiating ``b^x`` cancels the
1/ln b of ``log_b``.

Lesson 02 derives the gradient by hand, the matching base included.
"""

from __future__ import annotations

import math
from typing import Any

from miniclip.backend import get_array_module
from miniclip.layers.softmax import softmax_and_log
from miniclip.module import Module


class ContrastiveLoss(Module):
    """Symmetric cross-entropy of a square logits matrix against identity (or given) targets."""

    def __init__(self, base: float = math.e) -> None:
        if base <= 1:
            raise ValueError(f"softmax base must be greater than 1, got {base}")
        self.base = base
        self.p_rows: Any = None  # (N, N) text→image: each row (a text's distribution over the images) sums to 1
        self.p_cols: Any = None  # (N, N) image→text: each column (an image's over the texts) sums to 1
        self.targets: Any = None

    def forward(self, logits: Any, targets: Any = None) -> Any:
        """Return the loss as a 0-d array (no device synchronisation)."""
        xp = get_array_module(logits)
        if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
            raise ValueError(
                f"contrastive loss needs a square (N, N) logits matrix, one text per image; got {tuple(logits.shape)}"
            )
        n = logits.shape[0]
        if targets is None:
            targets = xp.eye(n, dtype=logits.dtype)
        elif tuple(targets.shape) != (n, n):
            raise ValueError(f"targets must have shape {(n, n)}, got {tuple(targets.shape)}")
        self.targets = targets
        # one exponential per direction gives both the probabilities and their logarithms
        self.p_rows, log_p_rows = softmax_and_log(logits, axis=1, base=self.base)  # (N, N) each: text→image
        self.p_cols, log_p_cols = softmax_and_log(logits, axis=0, base=self.base)  # (N, N) each: image→text
        loss_rows = -(targets * log_p_rows).sum() / n
        loss_cols = -(targets * log_p_cols).sum() / n
        return (loss_rows + loss_cols) / 2

    def backward(self, dloss: Any = 1.0) -> Any:
        self._require_forward(self.p_rows)
        xp = get_array_module(self.p_rows)
        n = self.targets.shape[0]
        scale = xp.asarray(dloss, dtype=self.p_rows.dtype) / (2 * n)  # keeps float32 float32
        y = self.targets
        grad_rows = self.p_rows * y.sum(axis=1, keepdims=True) - y  # (N, N): P_rows − Y when rows of Y sum to 1
        grad_cols = self.p_cols * y.sum(axis=0, keepdims=True) - y  # (N, N): P_cols − Y when columns sum to 1
        return (grad_rows + grad_cols) * scale  # (N, N)
