"""2-D convolution as im2col + one matrix product (GEMM).

Each output pixel is a dot product between a k×k window of all input channels and one
filter per output channel. ``im2col`` lays the windows out as rows, so with the filters
flattened into a matrix the whole layer is a linear layer applied to every window::

    cols = im2col(x)                      x (N, C, H, W)  →  cols (N·Ho·Wo, k·k·C)
    Wm   = weight as a (k·k·C, O) matrix  row (ki, kj, c), column o  =  weight[o, c, ki, kj]
    y    = cols @ Wm + b                  (N·Ho·Wo, O)  →  reshaped to (N, O, Ho, Wo)

    Ho = ⌊(H + 2·padding − k) / stride⌋ + 1,   Wo likewise

``weight`` has PyTorch's layout (out_channels, in_channels, k, k), so weights copy across
unchanged. The backward is the linear layer's, followed by col2im (the adjoint of im2col,
which adds the gradients of overlapping windows back onto the shared pixels)::

    dWm = colsᵀ @ dy                      (k·k·C, N·Ho·Wo) @ (N·Ho·Wo, O)   → reordered to weight's shape
    db  = Σ dy over the N·Ho·Wo rows      (O,)
    dx  = col2im(dy @ Wmᵀ)                (N·Ho·Wo, k·k·C)  →  (N, C, H, W)

Initial weights are He/Kaiming-uniform: U(±√(6 / fan_in)) with fan_in = C·k·k, which keeps the
variance of activations roughly constant through a stack of convolutions followed by ReLU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.layers.im2col import col2im, conv_output_size, im2col
from miniclip.module import Module, Parameter


class Conv2d(Module):
    """``y = conv(x, weight) + bias`` with square kernels; ``weight`` is (out_channels, in_channels, k, k)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        *,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        if min(in_channels, out_channels, kernel, stride) < 1 or padding < 0:
            raise ValueError(
                f"Conv2d needs positive channels, kernel and stride and padding >= 0; got in_channels={in_channels}, "
                f"out_channels={out_channels}, kernel={kernel}, stride={stride}, padding={padding}"
            )
        self.kernel, self.stride, self.padding = kernel, stride, padding
        fan_in = in_channels * kernel * kernel
        bound = np.sqrt(6.0 / fan_in)  # He/Kaiming uniform
        self.weight = Parameter.from_host(
            rng.uniform(-bound, bound, (out_channels, in_channels, kernel, kernel)), dtype
        )
        self.bias = Parameter.from_host(np.zeros(out_channels), dtype) if bias else None
        self._cols: Any = None
        self._x_shape: tuple[int, ...] | None = None

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """The (Ho, Wo) this layer produces from an H×W input."""
        k, s, p = self.kernel, self.stride, self.padding
        return conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)

    def _weight_matrix(self) -> Any:
        """The weight (O, C, k, k) as the (k·k·C, O) matrix whose rows line up with the columns of im2col."""
        out_channels = self.weight.data.shape[0]
        return self.weight.data.transpose(2, 3, 1, 0).reshape(-1, out_channels)  # (k·k·C, O)

    def forward(self, x: Any) -> Any:
        out_channels, in_channels, k, _ = self.weight.data.shape
        if x.ndim != 4 or x.shape[1] != in_channels:
            raise ValueError(f"Conv2d expects (N, {in_channels}, H, W) inputs, got shape {tuple(x.shape)}")
        n, _, h, w = x.shape
        if k > h + 2 * self.padding or k > w + 2 * self.padding:
            raise ValueError(
                f"kernel {k} is larger than the padded input {h + 2 * self.padding}x{w + 2 * self.padding} "
                f"(input {tuple(x.shape)}, padding {self.padding})"
            )
        ho, wo = self.output_size(h, w)
        self._x_shape = tuple(x.shape)
        self._cols = im2col(x, k, self.stride, self.padding)  # (N·Ho·Wo, k·k·C)
        y = self._cols @ self._weight_matrix()  # (N·Ho·Wo, O)
        if self.bias is not None:
            y += self.bias.data
        return y.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2)  # (N, O, Ho, Wo)

    def backward(self, dy: Any) -> Any:
        assert self._x_shape is not None, "backward before forward"
        out_channels, in_channels, k, _ = self.weight.data.shape
        dy = dy.transpose(0, 2, 3, 1).reshape(-1, out_channels)  # (N·Ho·Wo, O), rows as in cols
        dwm = self._cols.T @ dy  # (k·k·C, O)
        self.weight.grad += dwm.reshape(k, k, in_channels, out_channels).transpose(3, 2, 0, 1)  # (O, C, k, k)
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=0)  # (O,)
        dcols = dy @ self._weight_matrix().T  # (N·Ho·Wo, k·k·C)
        return col2im(dcols, self._x_shape, k, self.stride, self.padding)  # (N, C, H, W)
