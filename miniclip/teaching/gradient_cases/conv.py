"""Gradient checks for the convolutional image encoder and its layers.

Each entry is a case as described in :mod:`miniclip.teaching.gradient_cases.common`.

Kinks: ReLU and max pooling are not differentiable where an input sits exactly on a kink
(a ReLU input at 0, two window elements equal). Central differences with ε = 1e-5 only see
the kink if a value lies within about 1e-5 of it. Max-pooling inputs are therefore a shuffle
of values spaced 0.01 apart, so no window ever holds a near-tie. The ReLU inputs inside the
residual blocks come out of batch norm at roughly unit scale, so each lies within 1e-5 of 0
with a probability of order 1e-5; the shapes below are kept small (a few hundred ReLU inputs)
so that this stays rare. Measured over 200 random draws each: the residual-block checks never
failed, the encoder check failed once. A kink shows up as a few entries off by about 1e-2
for one draw only: a different seed tells a kink from a wrong backward, which fails for all.

Lessons 06b and 07 derive the convolution, im2col and batch norm.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import to_device
from miniclip.encoders.cnn import CNNEncoder, ResidualBlock
from miniclip.layers.batch_norm import BatchNorm2d
from miniclip.layers.conv2d import Conv2d
from miniclip.layers.im2col import col2im, im2col
from miniclip.layers.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d
from miniclip.module import Module
from miniclip.teaching.gradient_cases.common import F64, Case, CaseBuilder, normal


class Im2Col(Module):
    """im2col as a layer whose backward is col2im: its gradient check proves col2im is im2col's adjoint."""

    def __init__(self, kernel: int, stride: int, padding: int) -> None:
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self._x_shape: tuple[int, ...] | None = None

    def forward(self, x: Any) -> Any:
        self._x_shape = tuple(x.shape)
        return im2col(x, self.kernel, self.stride, self.padding)

    def backward(self, dcols: Any) -> Any:
        assert self._x_shape is not None, "backward before forward"
        return col2im(dcols, self._x_shape, self.kernel, self.stride, self.padding)


def _distinct(rng: np.random.Generator, *shape: int) -> Any:
    """Values spaced 0.01 apart in random order: every max-pooling window has a clear winner."""
    return to_device(rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 - 0.5)


def _conv(rng: np.random.Generator, stride: int, padding: int, backward_by: str = "auto") -> Case:
    conv = Conv2d(2, 3, 3, stride=stride, padding=padding, rng=rng, dtype=F64, backward_by=backward_by)
    conv.bias.data[...] = to_device(rng.standard_normal(3))  # a non-zero bias
    return conv, (normal(rng, 2, 5, 6, 2),), {}


def _batch_norm(rng: np.random.Generator, training: bool) -> Case:
    bn = BatchNorm2d(3, dtype=F64)
    bn.weight.data[...] = to_device(rng.uniform(0.5, 1.5, 3))  # γ and β away from 1 and 0
    bn.bias.data[...] = to_device(rng.standard_normal(3))
    for _ in range(3):  # some training steps, so the running statistics are not the initial 0 and 1
        bn(normal(rng, 4, 3, 3, 3) * 2 + 1)
    bn.train(training)
    return bn, (normal(rng, 4, 3, 3, 3) * 2 + 1,), {}


# Images are channels-last: every input below is (N, H, W, C).
CASES: dict[str, CaseBuilder] = {
    "im2col (backward: col2im)": lambda r: (Im2Col(3, 2, 1), (normal(r, 2, 5, 6, 2),), {}),
    "Conv2d (stride 2, padding 1)": lambda r: _conv(r, 2, 1),
    "Conv2d (stride 1, padding 1, flipped kernel)": lambda r: _conv(r, 1, 1),
    "Conv2d (stride 1, padding 0, flipped kernel)": lambda r: _conv(r, 1, 0),
    "Conv2d (stride 1, padding 1, col2im)": lambda r: _conv(r, 1, 1, "col2im"),
    "Conv2d (1x1, no bias)": lambda r: (Conv2d(3, 2, 1, bias=False, rng=r, dtype=F64), (normal(r, 2, 3, 4, 3),), {}),
    "BatchNorm2d (train)": lambda r: _batch_norm(r, training=True),
    "BatchNorm2d (eval)": lambda r: _batch_norm(r, training=False),
    "MaxPool2d (2)": lambda r: (MaxPool2d(2), (_distinct(r, 2, 4, 6, 2),), {}),
    "MaxPool2d (3, stride 2)": lambda r: (MaxPool2d(3, stride=2), (_distinct(r, 2, 5, 5, 2),), {}),
    "AvgPool2d (2)": lambda r: (AvgPool2d(2), (normal(r, 2, 4, 6, 2),), {}),
    "AvgPool2d (3, stride 2)": lambda r: (AvgPool2d(3, stride=2), (normal(r, 2, 5, 5, 2),), {}),
    "GlobalAvgPool": lambda r: (GlobalAvgPool(), (normal(r, 2, 4, 5, 3),), {}),
    "ResidualBlock (identity skip)": lambda r: (ResidualBlock(3, 3, rng=r, dtype=F64), (normal(r, 2, 4, 4, 3),), {}),
    "ResidualBlock (1x1 conv skip)": lambda r: (
        ResidualBlock(2, 3, stride=2, rng=r, dtype=F64),
        (normal(r, 2, 6, 6, 2),),
        {},
    ),
    # the encoder itself takes (N, C, H, W) images, like every image encoder, and turns them channels-last
    "CNNEncoder": lambda r: (
        CNNEncoder(channels=(3, 4), in_channels=3, embed_dim=3, rng=r, dtype=F64),
        (normal(r, 2, 3, 6, 6),),
        {},
    ),
}
