"""im2col and col2im: turn a convolution into one matrix product, and back.

A k×k convolution looks at one k×k window of every input channel per output pixel. ``im2col``
copies each window into one row of a matrix, so the convolution becomes a single GEMM::

    x (N, C, H, W)  →  cols (N·Ho·Wo, k·k·C)        row r = (n, i, j): the window under output pixel (i, j)
                                                     columns ordered kernel row, kernel column, channel

    Ho = ⌊(H + 2·padding − k) / stride⌋ + 1          Wo = ⌊(W + 2·padding − k) / stride⌋ + 1

(the input is first padded with ``padding`` zeros on every side).

``col2im`` is the *adjoint* (transpose) of ``im2col``, not its inverse: every entry of a row is
added back to the pixel it was copied from. When windows overlap (stride < k) a pixel was
copied into several rows, so it receives the *sum* of their values. That is exactly the
backward of ``im2col``: for any x and c, ``⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩``. Padding
positions are dropped at the end: they were constants, not inputs.

Both loop only over the k·k kernel offsets (ki, kj): for each offset one strided slice of the
padded input holds, for every output pixel at once, the value that sits at that offset of its
window. No Python loop runs over pixels, so the same code runs on NumPy and CuPy.

Inside the loop the image is held channels-last, (N, H, W, C), and the channel is the last
column index of ``cols``: each copy then moves runs of C neighbouring numbers instead of single
scattered ones, which makes both functions about twice as fast for wide layers. (The weight
of :class:`~miniclip.layers.conv2d.Conv2d` is reordered to match; with one channel the two
orders are the same.)
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis: ``⌊(size + 2·padding − kernel) / stride⌋ + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def _check(shape: tuple[int, ...], kernel: int, stride: int, padding: int) -> tuple[int, int]:
    if len(shape) != 4:
        raise ValueError(f"im2col expects (N, C, H, W) inputs, got shape {tuple(shape)}")
    if kernel < 1 or stride < 1 or padding < 0:
        raise ValueError(f"need kernel >= 1, stride >= 1, padding >= 0; got {kernel}, {stride}, {padding}")
    h, w = shape[2], shape[3]
    if kernel > h + 2 * padding or kernel > w + 2 * padding:
        raise ValueError(f"kernel {kernel} is larger than the padded input {h + 2 * padding}x{w + 2 * padding}")
    return conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)


def im2col(x: Any, kernel: int, stride: int = 1, padding: int = 0) -> Any:
    """Copy every k×k window of ``x`` (N, C, H, W) into one row: returns (N·Ho·Wo, k·k·C)."""
    xp = get_array_module(x)
    ho, wo = _check(tuple(x.shape), kernel, stride, padding)
    n, c, h, w = x.shape
    p = padding
    padded = xp.zeros((n, h + 2 * p, w + 2 * p, c), dtype=x.dtype)  # channels last, zeros around
    padded[:, p : p + h, p : p + w, :] = x.transpose(0, 2, 3, 1)
    cols = xp.empty((n, ho, wo, kernel, kernel, c), dtype=x.dtype)
    for ki in range(kernel):
        for kj in range(kernel):
            # the pixel at offset (ki, kj) of every window: rows ki, ki+s, ...; columns kj, kj+s, ...
            rows = slice(ki, ki + stride * (ho - 1) + 1, stride)
            columns = slice(kj, kj + stride * (wo - 1) + 1, stride)
            cols[:, :, :, ki, kj, :] = padded[:, rows, columns, :]  # (N, Ho, Wo, C)
    return cols.reshape(n * ho * wo, kernel * kernel * c)  # (N·Ho·Wo, k·k·C)


def col2im(cols: Any, x_shape: tuple[int, ...], kernel: int, stride: int = 1, padding: int = 0) -> Any:
    """Add every row of ``cols`` (N·Ho·Wo, k·k·C) back onto the pixels it came from: returns ``x_shape``."""
    xp = get_array_module(cols)
    ho, wo = _check(tuple(x_shape), kernel, stride, padding)
    n, c, h, w = x_shape
    if tuple(cols.shape) != (n * ho * wo, kernel * kernel * c):
        raise ValueError(
            f"col2im expects cols of shape {(n * ho * wo, kernel * kernel * c)} for x {tuple(x_shape)}, "
            f"got {tuple(cols.shape)}"
        )
    p = padding
    windows = cols.reshape(n, ho, wo, kernel, kernel, c)
    padded = xp.zeros((n, h + 2 * p, w + 2 * p, c), dtype=cols.dtype)  # channels last, as in im2col
    for ki in range(kernel):
        for kj in range(kernel):
            # within one offset every window hits a different pixel, so += loses nothing;
            # overlaps between windows are summed across the offsets of this loop
            rows = slice(ki, ki + stride * (ho - 1) + 1, stride)
            columns = slice(kj, kj + stride * (wo - 1) + 1, stride)
            padded[:, rows, columns, :] += windows[:, :, :, ki, kj, :]  # (N, Ho, Wo, C)
    return padded[:, p : p + h, p : p + w, :].transpose(0, 3, 1, 2)  # (N, C, H, W): padding dropped
