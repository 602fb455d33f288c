"""GELU, the smooth ReLU of transformers, in its tanh approximation.

The exact GELU is ``x · Φ(x)`` with Φ the standard normal CDF, which needs ``erf``; NumPy
has no ``erf`` (CuPy and SciPy do, but miniclip should not depend on them), so we use the
approximation of Hendrycks & Gimpel (2016), which is what PyTorch computes for
``GELU(approximate="tanh")`` and what GPT-2 used::

    u = √(2/π) · (x + 0.044715 x³)
    t = tanh(u)
    y = ½ x (1 + t)

Backward, by the product rule, with ``dt/du = 1 − t²`` and ``du/dx = √(2/π) (1 + 3·0.044715 x²)``::

    dy/dx = ½ (1 + t) + ½ x (1 − t²) · √(2/π) (1 + 3·0.044715 x²)
    dx    = dy_out ⊙ dy/dx

The layer keeps ``x`` and ``t``: everything its backward needs.

Lesson 06a derives it by hand, against ReLU and the exact x·Φ(x).
"""

from __future__ import annotations

import math
from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Module

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # a Python float: does not upcast float32 arrays
CUBIC = 0.044715


class GELU(Module):
    """Gaussian error linear unit (tanh approximation), element-wise."""

    def __init__(self) -> None:
        self._x: Any = None
        self._t: Any = None

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self._x = x
        self._t = xp.tanh(SQRT_2_OVER_PI * (x + CUBIC * x * x * x))  # t = tanh(u)
        return 0.5 * x * (1.0 + self._t)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._x)
        x, t = self._x, self._t
        du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * x * x)
        return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx)
