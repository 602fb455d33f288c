"""End-token pooling: represent each caption by the vector at its last real token.

With captions laid out as ``<start> words… <end> <pad>…``, the end token sits at position
``count − 1`` where ``count`` is the number of real tokens (the padding mask's row sum).
After self-attention that position has seen the whole caption, so CLIP uses it as the
caption's summary (mean pooling over real tokens is the other choice).

    end[n] = Σ_l mask[n, l] − 1              :func:`end_positions`, the one place that finds it
    y[n] = x[n, end[n]]                      x (N, L, D) → y (N, D)
    dx[n, end[n]] = dy[n], zero elsewhere

The end position is read from the mask, not searched for in the ids: a sum on the device,
with nothing read back to the host, so a training step never waits for the GPU here.

Lesson 05 introduces the end token it reads.
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Module


def end_positions(mask: Any) -> Any:
    """The index of each row's last real token, ``mask.sum(axis=1) − 1``: (N, L) → (N,) int64.

    A row of padding only (mask all 0) gives 0. No device synchronisation: the result stays
    on the mask's device.
    """
    xp = get_array_module(mask)
    return xp.maximum(xp.asarray(mask).astype(xp.int64).sum(axis=1) - 1, 0)  # (N,)


class EndTokenPool(Module):
    """Pick, for each item, the vector at its last real (unpadded) position."""

    def __init__(self) -> None:
        self._rows: Any = None
        self._end: Any = None
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: Any, mask: Any = None) -> Any:
        xp = get_array_module(x)
        n, length, _ = x.shape
        end = xp.full((n,), length - 1, dtype=xp.int64) if mask is None else end_positions(mask)  # (N,)
        self._rows, self._end, self._shape = xp.arange(n), end, x.shape
        return x[self._rows, end]  # (N, D)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._shape)
        xp = get_array_module(dy)
        dx = xp.zeros(self._shape, dtype=dy.dtype)  # (N, L, D)
        dx[self._rows, self._end] = dy  # one position per row: no repeated index
        return dx
