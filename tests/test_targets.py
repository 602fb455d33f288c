"""Contrastive targets: label-aware targets are doubly stochastic, and the loss handles them exactly."""

import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.layers import ContrastiveLoss
from miniclip.model.targets import label_aware_targets

LABELS = np.array([3, 1, 3, 0, 1, 3, 7])  # classes of 3, 2, 1 and 1 items


def test_label_aware_targets_rows_and_columns_sum_to_one():
    y = label_aware_targets(LABELS, np.float32)
    assert y.shape == (7, 7) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(y.sum(axis=0), 1, rtol=1e-6)
    np.testing.assert_array_equal(y, y.T)
    assert y[0, 2] == y[0, 5] == y[0, 0] == pytest.approx(1 / 3)  # class 3 has three items
    assert y[1, 4] == pytest.approx(0.5) and y[1, 0] == 0 and y[6, 6] == 1


def test_distinct_labels_give_the_loss_default_identity():
    labels = np.array([4, 0, 9, 2])
    y = label_aware_targets(labels, np.float64)
    np.testing.assert_array_equal(y, np.eye(4))
    logits = np.random.default_rng(4).standard_normal((4, 4))
    default, given = ContrastiveLoss(), ContrastiveLoss()
    assert float(default(logits)) == float(given(logits, targets=y))  # targets=None is the identity
    np.testing.assert_array_equal(default.backward(1.0), given.backward(1.0))


def test_label_aware_targets_rejects_a_matrix():
    with pytest.raises(ValueError, match=r"1-D .* shape \(2, 2\)"):
        label_aware_targets(np.zeros((2, 2), dtype=np.int64), np.float32)


def test_gradient_is_exactly_p_minus_y_with_label_aware_targets():
    # Finite differences check the same loss in the gradient check "ContrastiveLoss (label-aware targets)"
    # (tests/test_gradcheck.py runs every check); here the backward is compared with the closed form.
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((7, 7))
    y = label_aware_targets(LABELS, np.float64)
    loss = ContrastiveLoss()
    loss(logits, targets=y)
    p_rows = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p_cols = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(loss.backward(1.0), ((p_rows - y) + (p_cols - y)) / (2 * 7), atol=1e-15)


def test_duplicate_captions_put_a_floor_under_the_identity_loss():
    """Identical captions give identical rows of logits: the loss cannot go below (1/N) Σ m ln m."""
    rng = np.random.default_rng(2)
    labels = np.array([0, 0, 0, 1, 1, 2])  # one caption per class: groups of 3, 2 and 1
    floor = (3 * math.log(3) + 2 * math.log(2)) / 6
    class_logits = rng.standard_normal((3, 6)) * 5  # (C, N): caption of class c against every image
    logits = class_logits[labels]  # (N, N): rows of the same class are identical
    assert float(ContrastiveLoss()(logits)) >= floor
    perfect = 50.0 * (labels[:, None] == labels[None, :])  # a model that matches every class exactly
    assert float(ContrastiveLoss()(perfect)) == pytest.approx(floor, abs=1e-9)
    # the same floor is the minimum under label-aware targets, where the gradient vanishes there
    y = label_aware_targets(labels, np.float64)
    loss = ContrastiveLoss()
    assert float(loss(perfect, targets=y)) == pytest.approx(floor, abs=1e-9)
    np.testing.assert_allclose(loss.backward(1.0), 0, atol=1e-12)


def test_matches_torch_cross_entropy_with_probability_targets():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((7, 7)) * 2
    y = label_aware_targets(LABELS, np.float64)
    loss = ContrastiveLoss()
    ours = float(loss(logits, targets=y))
    grad = loss.backward(1.0)

    t_logits = torch.tensor(logits, requires_grad=True)
    t_y = torch.tensor(y)
    expected = (F.cross_entropy(t_logits, t_y) + F.cross_entropy(t_logits.T, t_y.T)) / 2
    expected.backward()
    assert ours == pytest.approx(expected.item(), abs=1e-12)
    np.testing.assert_allclose(grad, t_logits.grad.numpy(), atol=1e-12)


@pytest.mark.gpu
def test_targets_stay_on_the_labels_device():
    import cupy

    with backend.using("gpu"):
        y = label_aware_targets(cupy.asarray(LABELS), np.float32)
        assert isinstance(y, cupy.ndarray) and y.dtype == np.float32
        np.testing.assert_allclose(cupy.asnumpy(y), label_aware_targets(LABELS, np.float32))
