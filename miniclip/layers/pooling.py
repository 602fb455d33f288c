"""Pooling: shrink feature maps by summarising each window with its maximum or its mean.

Images are channels-last, (N, H, W, C). Max and average pooling reuse im2col (no padding;
stride defaults to k); each row of ``cols`` holds one k×k window of every channel, which a
reshape turns into k·k values per channel::

    x (N, H, W, C) → cols (N·Ho·Wo, k·k, C)            Ho = ⌊(H − k) / stride⌋ + 1, Wo likewise

    max pooling:      y = max over the k·k axis         dcols[r, argmax_r, c] = dy[r, c], 0 elsewhere
    average pooling:  y = mean over the k·k axis        dcols[r, :, c] = dy[r, c] / (k·k)

and ``dx = col2im(dcols)``, which adds up the gradients a pixel receives from every window it
belongs to (windows overlap when stride < k).

Max pooling routes the whole gradient of a window to the element that won it. On a tie the
winner is the *first* maximal element in row-major order inside the window (what ``argmax``
returns) and only it receives the gradient; with continuous random inputs ties do not occur.

Global average pooling averages each channel over the whole image::

    y[n, c] = (1 / (H·W)) · Σ_ij x[n, i, j, c]          (N, H, W, C) → (N, C)
    dx[n, i, j, c] = dy[n, c] / (H·W)

The CNN of lesson 07 ends with the global average pooling.
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
            raise ValueError(
                f"{type(self).__name__} expects channels-last (N, H, W, C) inputs, got shape {tuple(x.shape)}"
            )
        n, h, w, c = x.shape
        if self.kernel > h or self.kernel > w:
            raise ValueError(f"{type(self).__name__} kernel {self.kernel} is larger than the input {h}x{w}")
        self._x_shape = tuple(x.shape)
        return im2col(x, self.kernel, self.stride).reshape(-1, self.kernel * self.kernel, c)  # (N·Ho·Wo, k·k, C)

    def _output_shape(self) -> tuple[int, int, int, int]:
        assert self._x_shape is not None, "backward before forward"
        n, h, w, c = self._x_shape
        k, s = self.kernel, self.stride
        return n, conv_output_size(h, k, s, 0), conv_output_size(w, k, s, 0), c

    def _to_image(self, dcols: Any) -> Any:
        assert self._x_shape is not None, "backward before forward"
        rows = dcols.reshape(dcols.shape[0], -1)  # (N·Ho·Wo, k·k·C)
        return col2im(rows, self._x_shape, self.kernel, self.stride)  # (N, H, W, C)


class MaxPool2d(_WindowPool):
    """The maximum of each k×k window; the gradient goes to the (first) maximal element."""

    def __init__(self, kernel: int, stride: int | None = None) -> None:
        super().__init__(kernel, stride)
        self._argmax: Any = None

    def forward(self, x: Any) -> Any:
        cols = self._windows(x)  # (N·Ho·Wo, k·k, C)
        self._argmax = cols.argmax(axis=1)  # (N·Ho·Wo, C) first maximum of each window, per channel
        return cols.max(axis=1).reshape(self._output_shape())  # (N, Ho, Wo, C)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._argmax)
        xp = get_array_module(dy)
        positions = xp.arange(self.kernel * self.kernel)[None, :, None]  # (1, k·k, 1)
        winner = positions == self._argmax[:, None, :]  # (N·Ho·Wo, k·k, C): True at each window's maximum
        dcols = winner * dy.reshape(-1, 1, dy.shape[-1])  # the whole gradient to the winner, 0 elsewhere
        return self._to_image(dcols)


class AvgPool2d(_WindowPool):
    """The mean of each k×k window; each element receives 1/(k·k) of its window's gradient."""

    def forward(self, x: Any) -> Any:
        cols = self._windows(x)  # (N·Ho·Wo, k·k, C)
        return cols.mean(axis=1).reshape(self._output_shape())  # (N, Ho, Wo, C)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._x_shape)
        xp = get_array_module(dy)
        share = dy.reshape(-1, 1, dy.shape[-1]) / (self.kernel * self.kernel)  # (N·Ho·Wo, 1, C)
        dcols = xp.repeat(share, self.kernel * self.kernel, axis=1)  # (N·Ho·Wo, k·k, C): the same share for each
        return self._to_image(dcols)


class GlobalAvgPool(Module):
    """Average each channel over all its pixels: (N, H, W, C) → (N, C)."""

    def __init__(self) -> None:
        self._x_shape: tuple[int, ...] | None = None

    def forward(self, x: Any) -> Any:
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool expects channels-last (N, H, W, C) inputs, got shape {tuple(x.shape)}")
        self._x_shape = tuple(x.shape)
        return x.mean(axis=(1, 2))  # (N, C)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._x_shape)
        xp = get_array_module(dy)
        n, h, w, c = self._x_shape
        return xp.broadcast_to(dy[:, None, None, :] / (h * w), (n, h, w, c)).copy()  # (N, H, W, C)
