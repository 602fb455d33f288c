"""Softmax in any base, and its logarithm, from one exponential: against the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miniclip.layers.softmax import log_softmax, softmax, softmax_and_log


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("base", [math.e, 3.0])
def test_softmax_and_log_are_the_definitions(base: float, axis: int) -> None:
    x = np.random.default_rng([int(base * 10), axis]).standard_normal((4, 5)) * 3
    power = base**x  # b^x: small enough here to need no shift
    expected = power / power.sum(axis=axis, keepdims=True)
    p, log_p = softmax_and_log(x, axis=axis, base=base)
    assert p.shape == log_p.shape == x.shape
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(log_p, np.log(expected) / math.log(base), rtol=1e-12, atol=1e-12)  # log base b
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-12)  # rows (axis 1) or columns (axis 0) sum to 1
    np.testing.assert_allclose(base**log_p, p, rtol=1e-12)  # the two agree with each other
    np.testing.assert_array_equal(softmax(x, axis=axis, base=base), p)
    np.testing.assert_array_equal(log_softmax(x, axis=axis, base=base), log_p)


def test_base_3_by_hand() -> None:
    """The walkthrough's numbers: 3^0, 3^1, 3^2 = 1, 3, 9 out of 13."""
    p, log_p = softmax_and_log(np.array([[0.0, 1.0, 2.0]]), axis=1, base=3.0)
    np.testing.assert_allclose(p, [[1 / 13, 3 / 13, 9 / 13]], rtol=1e-14)
    np.testing.assert_allclose(log_p, [[-math.log(13, 3), 1 - math.log(13, 3), 2 - math.log(13, 3)]], rtol=1e-14)


@pytest.mark.parametrize("base", [math.e, 3.0])
def test_large_logits_do_not_overflow(base: float) -> None:
    x = np.random.default_rng(1).standard_normal((3, 3))
    p, log_p = softmax_and_log(x, axis=0, base=base)
    p_big, log_p_big = softmax_and_log(x + 1000.0, axis=0, base=base)  # b^1000 overflows float64
    assert np.isfinite(p_big).all() and np.isfinite(log_p_big).all()
    np.testing.assert_allclose(p_big, p, rtol=1e-10)
    np.testing.assert_allclose(log_p_big, log_p, rtol=1e-10, atol=1e-10)


def test_float32_stays_float32() -> None:
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    p, log_p = softmax_and_log(x, axis=1, base=3.0)
    assert p.dtype == log_p.dtype == np.float32
