"""Softmax with a choice of base, and its logarithm.

    softmax_b(x)_j = b^{x_j} / Σ_k b^{x_k}  =  e^{x_j ln b} / Σ_k e^{x_k ln b}

Base ``e`` is the usual softmax; base 3 is what the walkthrough does by hand (3^x is easy to
compute mentally and behaves like e^x). Subtracting the maximum first changes nothing in
the ratio but keeps ``exp`` from overflowing: that is what "numerically stable" means here.
"""

from __future__ import annotations

import math
from typing import Any

from miniclip.backend import get_array_module


def log_softmax(x: Any, axis: int, base: float = math.e) -> Any:
    """``log_b softmax_b(x)`` along ``axis``, computed stably: ``z − log_b Σ b^z`` with ``z = x − max``."""
    xp = get_array_module(x)
    ln_b = math.log(base)
    z = (x - x.max(axis=axis, keepdims=True)) * ln_b  # exponents in nats, largest is 0
    return (z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))) / ln_b


def softmax(x: Any, axis: int, base: float = math.e) -> Any:
    """``b^x / Σ b^x`` along ``axis`` (each slice along ``axis`` sums to 1)."""
    xp = get_array_module(x)
    z = (x - x.max(axis=axis, keepdims=True)) * math.log(base)
    e = xp.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
