"""Pooling: shrink feature maps by summarising each window with its maximum or its mean.

Max and average pooling reuse im2col with every channel treated as its own one-channel image,
so each row of ``cols`` is one k×k window of one channel (no padding; stride defaults to k)::

    x (N, C, H, W) → cols (N·C·Ho·Wo, k·k)             Ho = ⌊(H − k) / stride⌋ + 1, Wo likewise

    max pooling:      y = max of each row               dcols[r, argmax_r] = dy[r], 0 elsewhere
    average pooling:  y = mean of each row              dcols[r, :] = dy[r] / (k·k)

and ``dx = col2im(dcols)``, which adds up the gradients a pixel receives from every window it
belongs to (windows overlap when stride < k).

Max pooling routes the whole gradient of a window to the element that won it. On a tie the
winner is the *first* maximal element in row-major order inside the window (what ``argmax``
returns) and only it receives the gradient; with continuous random inputs ties do not occur.

Global average pooling averages each channel over the whole image::

    y[n, c] = (1 / (H·W)) · Σ_ij x[n, c, i, j]          (N, C, H, W) → (N, C)
    dx[n, c, i, j] = dy[n, c] / (H·W)
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module
from miniclip.layers.im2col import col2im, conv_output_size, im2col
from miniclip.module import Module


class _WindowPool(Module):
    """Shared bookkeeping: check the input and cut it into one k×k window per row."""

    def __init__(self, kernel: int, stride: int | None = None) -> None:
        stride = kernel if stride is None else stride
        if kernel < 1 or stride < 1:
            raise ValueError(f"{type(self).__name__} needs kernel >= 1 and stride >= 1, got {kernel} and {stride}")
        self.kernel, self.stride = kernel, stride
        self._x_shape: tuple[int, ...] | None = None

    def _windows(self, x: Any) -> Any:
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects (N, C, H, W) inputs, got shape {tuple(x.shape)}")
        n, c, h, w = x.shape
        if self.kernel > h or self.kernel > w:
            raise ValueError(f"{type(self).__name__} kernel {self.kernel} is larger than the input {h}x{w}")
        self._x_shape = tuple(x.shape)
        return im2col(x.reshape(n * c, 1, h, w), self.kernel, self.stride)  # (N·C·Ho·Wo, k·k)

    def _output_shape(self) -> tuple[int, int, int, int]:
        assert self._x_shape is not None, "backward before forward"
        n, c, h, w = self._x_shape
        k, s = self.kernel, self.stride
        return n, c, conv_output_size(h, k, s, 0), conv_output_size(w, k, s, 0)

    def _to_image(self, dcols: Any) -> Any:
        assert self._x_shape is not None, "backward before forward"
        n, c, h, w = self._x_shape
        return col2im(dcols, (n * c, 1, h, w), self.kernel, self.stride).reshape(n, c, h, w)  # (N, C, H, W)


class MaxPool2d(_WindowPool):
    """The maximum of each k×k window; the gradient goes to the (first) maximal element."""

    def __init__(self, kernel: int, stride: int | None = None) -> None:
        super().__init__(kernel, stride)
        self._argmax: Any = None

    def forward(self, x: Any) -> Any:
        cols = self._windows(x)  # (N·C·Ho·Wo, k·k)
        self._argmax = cols.argmax(axis=1)  # (N·C·Ho·Wo,) first maximum of each window
        return cols.max(axis=1).reshape(self._output_shape())  # (N, C, Ho, Wo)

    def backward(self, dy: Any) -> Any:
        xp = get_array_module(dy)
        rows = self._argmax.shape[0]
        dcols = xp.zeros((rows, self.kernel * self.kernel), dtype=dy.dtype)  # (N·C·Ho·Wo, k·k)
        dcols[xp.arange(rows), self._argmax] = dy.reshape(-1)  # one entry per row: no repeated index
        return self._to_image(dcols)


class AvgPool2d(_WindowPool):
    """The mean of each k×k window; each element receives 1/(k·k) of its window's gradient."""

    def forward(self, x: Any) -> Any:
        cols = self._windows(x)  # (N·C·Ho·Wo, k·k)
        return cols.mean(axis=1).reshape(self._output_shape())  # (N, C, Ho, Wo)

    def backward(self, dy: Any) -> Any:
        xp = get_array_module(dy)
        share = dy.reshape(-1, 1) / (self.kernel * self.kernel)  # (N·C·Ho·Wo, 1)
        dcols = xp.repeat(share, self.kernel * self.kernel, axis=1)  # (N·C·Ho·Wo, k·k): the same share for each
        return self._to_image(dcols)


class GlobalAvgPool(Module):
    """Average each channel over all its pixels: (N, C, H, W) → (N, C)."""

    def __init__(self) -> None:
        self._x_shape: tuple[int, ...] | None = None

    def forward(self, x: Any) -> Any:
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool expects (N, C, H, W) inputs, got shape {tuple(x.shape)}")
        self._x_shape = tuple(x.shape)
        return x.mean(axis=(2, 3))  # (N, C)

    def backward(self, dy: Any) -> Any:
        assert self._x_shape is not None, "backward before forward"
        xp = get_array_module(dy)
        n, c, h, w = self._x_shape
        return xp.broadcast_to(dy[:, :, None, None] / (h * w), (n, c, h, w)).copy()  # (N, C, H, W)
