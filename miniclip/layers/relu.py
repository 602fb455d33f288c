"""ReLU: ``y = max(x, 0)``. Backward passes the gradient where the input was positive.

    dx = dy * [x > 0]

The layer keeps only the boolean mask ``x > 0``: that is all its backward needs.

Lesson 01 uses it by hand; lesson 03 derives its backward.
"""

from __future__ import annotations

from typing import Any

from miniclip.module import Module


class ReLU(Module):
    """Rectified linear unit, element-wise."""

    def __init__(self) -> None:
        self._mask: Any = None

    def forward(self, x: Any) -> Any:
        self._mask = x > 0
        return x * self._mask

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._mask)
        return dy * self._mask
