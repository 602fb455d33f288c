"""Softmax with a choice of base, and its logarithm.

    softmax_b(x)_j = b^{x_j} / Σ_k b^{x_k}  =  e^{x_j ln b} / Σ_k e^{x_k ln b}

Base ``e`` is the usual softmax; base 3 is what the walkthrough does by hand (3^x is easy to
compute mentally and behaves like e^x). Subtracting the maximum first changes nothing in
the ratio but keeps ``exp`` from overflowing: that is what "numerically stable" means here.

Lesson 02 works it by hand, base 3 beside base e.
"""

from __future__ import annotations

import math
from typing import Any

from miniclip.backend import get_array_module


def softmax_and_log(x: Any, axis: int, base: float = math.e) -> tuple[Any, Any]:
    """``softmax_b(x)`` and ``log_b softmax_b(x)`` along ``axis``, from one exponential.

    With ``z = (x − max) · ln b`` (exponents in nats, the largest 0) and ``S = Σ e^z``::

        softmax = e^z / S            log_b softmax = (z − ln S) / ln b
    """
    xp = get_array_module(x)
    ln_b = math.log(base)
    z = (x - x.max(axis=axis, keepdims=True)) * ln_b
    e = xp.exp(z)
    total = e.sum(axis=axis, keepdims=True)
    return e / total, (z - xp.log(total)) / ln_b


def log_softmax(x: Any, axis: int, base: float = math.e) -> Any:
    """``log_b softmax_b(x)`` along ``axis``, computed stably (see :func:`softmax_and_log`)."""
    return softmax_and_log(x, axis, base)[1]


def softmax(x: Any, axis: int = -1, base: float = math.e) -> Any:
    """``b^x / Σ b^x`` along ``axis`` (each slice along ``axis`` sums to 1; by default the last, each row of (N, K))."""
    return softmax_and_log(x, axis, base)[0]
