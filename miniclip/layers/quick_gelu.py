"""QuickGELU, the activation OpenAI's CLIP was trained with: ``x · σ(1.702 x)``.

GELU is ``x · Φ(x)``, with Φ the standard normal CDF. The logistic sigmoid σ, stretched by
1.702, lies within 0.01 of Φ everywhere, and was cheaper than ``erf`` or ``tanh`` on the
hardware of 2020; OpenAI trained every released CLIP with it, so their weights only give
their numbers through this exact function (``hidden_act: "quick_gelu"`` in Hugging Face's
configuration)::

    s = σ(a x) = 1 / (1 + e^(−a x))          a = 1.702
    y = x · s

Backward, by the product rule, with ``σ' = σ (1 − σ)``::

    dy/dx = s + x · a · s (1 − s)
    dx    = dy_out ⊙ dy/dx

The layer keeps ``x`` and ``s``: everything its backward needs. Lesson 16 sets it beside the
tanh GELU of :mod:`miniclip.layers.gelu`.
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Module

A = 1.702  # a Python float: does not upcast float32 arrays


class QuickGELU(Module):
    """``x · σ(1.702 x)``, element-wise (OpenAI CLIP's activation)."""

    def __init__(self) -> None:
        self._x: Any = None
        self._s: Any = None

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self._x = x
        # σ(ax) written as ½(1 + tanh(ax/2)): the same number, and no overflow of e^(−ax) for large −x
        self._s = 0.5 * (1.0 + xp.tanh((0.5 * A) * x))
        return x * self._s

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._x)
        x, s = self._x, self._s
        return dy * (s + A * x * s * (1.0 - s))
