"""Targets for the contrastive loss: the identity, or every same-class pair counted as a match.

**Identity targets.** ``Y = I``: caption ``i`` belongs to image ``i`` and to no other. They
are the loss's own default (:class:`~miniclip.layers.ContrastiveLoss` and ``CLIP`` called
without ``targets``; ``--targets identity`` in training), so there is nothing to build here.

**The duplicate-caption problem.** On a labelled data set such as CIFAR-10 the captions
come from the class ("a photo of a cat"), so a batch of N images holds about N/C images of
each of the C classes, and their captions are interchangeable; with one caption per class
they are identical. Identity targets still call caption ``i`` wrong for image ``k`` of the
same class: the gradient ``(P − Y)/N`` is positive at ``(i, k)``, so it lowers that
similarity and pushes images of one class apart, although nothing could tell their captions
apart.

It also puts a floor under the loss. Let a group of ``m`` captions be identical. Their rows
of logits are then identical, so each holds the same softmax ``p``, and the group's row loss
is ``Σ_k −log p_k`` over its ``m`` images, whose probabilities sum to at most 1. By Jensen's
inequality that is at least ``m ln m``, reached with ``p_k = 1/m``; in each column the ``m``
identical captions likewise share at most 1, and the same bound holds. So::

    L ≥ (1/N) Σ_groups m ln m  ≥  ln(N / C)      (equal when each of C groups has N/C captions)

With one caption per class, a batch of 256 CIFAR-10 images cannot go below ln 25.6 ≈ 3.2
nats however good the model (chance is ln 256 ≈ 5.5).

**Label-aware targets.** Count every same-class pair as a match, each row normalised::

    Y_ij = [c_i = c_j] / n_{c_i}          n_c = how many items of class c are in the batch

Row ``i`` holds ``n_{c_i}`` entries ``1/n_{c_i}``, so it sums to 1. So does every column:
the same-class matrix ``S_ij = [c_i = c_j]`` is symmetric, and wherever ``S_ij = 1`` the two
classes agree, so ``n_{c_i} = n_{c_j}`` and ``Y_ij = Y_ji``. ``Y`` is symmetric and its
column sums are its row sums. (Sorted by class, ``Y`` is block diagonal, one block of
``1/n_c`` per class.) The loss's gradient is therefore still exactly ``(P − Y)/N`` in each
direction (:mod:`miniclip.layers.contrastive_loss`), and it vanishes once each caption
spreads its probability evenly over the images of its class, instead of pushing them apart.
The loss's floor does not move: its minimum is the entropy of the targets, the same
``(1/N) Σ n_c ln n_c``; compare losses against that, not against 0. With distinct labels
``Y`` is the identity.

Lesson 08 derives this by hand.
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module


def label_aware_targets(labels: Any, dtype: Any) -> Any:
    """``Y_ij = [c_i = c_j] / n_{c_i}`` (N, N) from integer class labels (N,), on the labels' device."""
    xp = get_array_module(labels)
    labels = xp.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class ids, got shape {tuple(labels.shape)}")
    same = (labels[:, None] == labels[None, :]).astype(dtype)  # (N, N): S_ij = [c_i = c_j]
    return same / same.sum(axis=1, keepdims=True)  # (N, N): row i divided by n_{c_i}
