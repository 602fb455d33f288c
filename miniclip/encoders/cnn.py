"""A small residual convolutional image encoder (a ResNet in the style of He et al., 2016).

    images (N, 3, H, W)
      ─to channels-last→                                        (N, H, W, 3)
      ─stem: conv → batch norm → ReLU→                          (N, H/s, W/s, C₁)
      ─stage 1: residual blocks at C₁ channels→                 (N, H/s, W/s, C₁)
      ─stage 2: residual blocks at C₂ channels, first stride 2→ (N, H/2s, W/2s, C₂)
      ─ ... one stage per entry of ``channels`` ...
      ─global average pool→                                     (N, C_last)
      ─projection (linear, no bias)→                            (N, embed_dim)

Images arrive (N, C, H, W), as every image encoder takes them; inside, the activations are
channels-last from the stem to the pool, the layout the convolutions' matrix products want
(:mod:`miniclip.layers.conv2d` says why). The one transpose happens on the way in, and its
reverse on the gradient on the way out.

A residual block adds its input back to what two convolutions made of it::

    main(x)  = bn₂(conv₂(relu(bn₁(conv₁(x)))))        conv₁ carries the block's stride
    skip(x)  = x, or bn_s(conv_s(x)) with a 1×1 conv when the stride or the channel count changes
    y        = relu(main(x) + skip(x))

Backward: the gradient reaching the sum goes down *both* paths unchanged, and the input's
gradient is the sum of what comes back from each::

    d = relu'(·) ⊙ dy           dx = main.backward(d) + skip.backward(d)   (skip.backward(d) = d for the identity)

The skip path gives every block a direct route for the gradient, which is what lets deep
stacks of convolutions train.

The stem is a 3×3 convolution (``stem_patch=1``, s = 1) or, with ``stem_patch=p``, a p×p
convolution with stride p (s = p): each non-overlapping p×p patch becomes one vector — the
walkthrough's patchify followed by a linear layer, in convolution form. A patch stem of 2
makes every later layer work on a quarter of the pixels, so the network costs about four
times less; that is what makes training on a laptop CPU practical. Lesson 07 derives the
convolution (im2col, its backward) and sets this network beside the ViT.

The shape rules are written once, in :func:`stem_geometry`, :func:`block_plan` and
:func:`projected_skip`: the encoder, its cost rows (:func:`cnn_cost`) and its PyTorch twin
(:func:`torch_cnn`) all follow them. Registered as ``"cnn"`` (:mod:`miniclip.encoders.registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from miniclip.encoders.counting import LayerCost, conv_row, free_row, linear_row
from miniclip.encoders.registry import EncoderSpec, register
from miniclip.layers import ReLU, projection
from miniclip.layers.batch_norm import BatchNorm2d
from miniclip.layers.conv2d import Conv2d
from miniclip.layers.pooling import GlobalAvgPool
from miniclip.module import Module

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig


def stem_geometry(stem_patch: int) -> tuple[int, int, int]:
    """The stem convolution's (kernel, stride, padding): 3×3 at full resolution, or p×p patches with stride p."""
    return (3, 1, 1) if stem_patch == 1 else (stem_patch, stem_patch, 0)


def block_plan(channels: Sequence[int], blocks_per_stage: int) -> list[tuple[int, int, int]]:
    """(input channels, output channels, stride) of every residual block in order: stride 2 where a stage begins."""
    plan, previous = [], channels[0]
    for stage, width in enumerate(channels):
        for b in range(blocks_per_stage):
            plan.append((previous, width, 2 if stage > 0 and b == 0 else 1))  # halve the resolution at a new stage
            previous = width
    return plan


def projected_skip(in_channels: int, out_channels: int, stride: int) -> bool:
    """Whether a block's skip path needs a 1×1 convolution: when the stride or the channel count changes."""
    return stride != 1 or in_channels != out_channels


class ResidualBlock(Module):
    """conv 3×3 → bn → ReLU → conv 3×3 → bn, plus the skip path, then ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> None:
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride, 1, bias=False, rng=rng, dtype=dtype)
        self.bn1 = BatchNorm2d(out_channels, dtype=dtype)
        self.relu1 = ReLU()
        self.conv2 = Conv2d(out_channels, out_channels, 3, 1, 1, bias=False, rng=rng, dtype=dtype)
        self.bn2 = BatchNorm2d(out_channels, dtype=dtype)
        self.shortcut_conv: Conv2d | None = None  # identity skip unless the shape changes
        self.shortcut_bn: BatchNorm2d | None = None
        if projected_skip(in_channels, out_channels, stride):
            self.shortcut_conv = Conv2d(in_channels, out_channels, 1, stride, 0, bias=False, rng=rng, dtype=dtype)
            self.shortcut_bn = BatchNorm2d(out_channels, dtype=dtype)
        self.relu_out = ReLU()

    def forward(self, x: Any) -> Any:
        main = self.relu1(self.bn1(self.conv1(x)))  # (N, Ho, Wo, O)
        main = self.bn2(self.conv2(main))  # (N, Ho, Wo, O)
        main += x if self.shortcut_conv is None else self.shortcut_bn(self.shortcut_conv(x))  # in place: main is ours
        return self.relu_out(main)

    def backward(self, dy: Any) -> Any:
        d = self.relu_out.backward(dy)  # (N, Ho, Wo, O): the sum hands it to both paths unchanged
        dmain = self.conv2.backward(self.bn2.backward(d))  # (N, Ho, Wo, O)
        dmain = self.conv1.backward(self.bn1.backward(self.relu1.backward(dmain)))  # (N, H, W, C)
        dmain += d if self.shortcut_conv is None else self.shortcut_conv.backward(self.shortcut_bn.backward(d))
        return dmain  # (N, H, W, C)


class CNNEncoder(Module):
    """stem → residual stages (stride 2 between stages) → global average pool → projection."""

    def __init__(
        self,
        channels: tuple[int, ...] = (32, 64, 128),
        blocks_per_stage: int = 1,
        in_channels: int = 3,
        embed_dim: int = 64,
        stem_patch: int = 1,
        *,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        channels = tuple(channels)
        if not channels or min(channels) < 1 or blocks_per_stage < 1 or in_channels < 1 or embed_dim < 1:
            raise ValueError(
                f"CNNEncoder needs at least one stage, positive channel counts, blocks_per_stage >= 1, "
                f"in_channels >= 1 and embed_dim >= 1; got channels={channels}, blocks_per_stage={blocks_per_stage}, "
                f"in_channels={in_channels}, embed_dim={embed_dim}"
            )
        self.channels, self.in_channels, self.embed_dim = channels, in_channels, embed_dim
        if stem_patch < 1:
            raise ValueError(f"stem_patch must be at least 1, got {stem_patch}")
        kernel, stride, padding = stem_geometry(stem_patch)  # 3×3 at full resolution, or a p×p patchify stem
        self.stem_conv = Conv2d(in_channels, channels[0], kernel, stride, padding, bias=False, rng=rng, dtype=dtype)
        self.stem_bn = BatchNorm2d(channels[0], dtype=dtype)
        self.stem_relu = ReLU()
        self.blocks = [
            ResidualBlock(c_in, c_out, stride, rng=rng, dtype=dtype)
            for c_in, c_out, stride in block_plan(channels, blocks_per_stage)
        ]
        self.pool = GlobalAvgPool()
        self.project = projection(channels[-1], embed_dim, rng=rng, dtype=dtype)

    def forward(self, images: Any) -> Any:
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"CNNEncoder expects images (N, {self.in_channels}, H, W), got shape {tuple(images.shape)}"
            )
        x = images.transpose(0, 2, 3, 1)  # (N, H, W, C): channels-last from here to the pool (a view)
        x = self.stem_relu(self.stem_bn(self.stem_conv(x)))  # (N, H/s, W/s, C₁)
        for block in self.blocks:
            x = block(x)  # (N, H_stage, W_stage, C_stage)
        return self.project(self.pool(x))  # (N, C_last) → (N, embed_dim)

    def backward(self, d: Any, input_grad: bool = True) -> Any:
        """The gradient of the images, or None with ``input_grad=False``: the stem then skips its ``dx`` entirely."""
        dx = self.pool.backward(self.project.backward(d))  # (N, H_last, W_last, C_last)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        dx = self.stem_bn.backward(self.stem_relu.backward(dx))
        dx = self.stem_conv.backward(dx, input_grad=input_grad)  # (N, H, W, 3), or None
        return None if dx is None else dx.transpose(0, 3, 1, 2)  # (N, 3, H, W), as the images came in


# -- its place in the registry: built, checked and costed from a ModelConfig ---------------------


def _build(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> CNNEncoder:
    return CNNEncoder(
        tuple(cfg.cnn_channels),
        cfg.cnn_blocks,
        cfg.channels,
        cfg.embed_dim,
        cfg.cnn_stem_patch,
        rng=rng,
        dtype=dtype,
    )


def _validate(cfg: ModelConfig) -> None:
    if cfg.cnn_stem_patch > cfg.image_size:
        raise ValueError(f"cnn_stem_patch {cfg.cnn_stem_patch} is larger than the image size {cfg.image_size}")


def cnn_cost(
    image_shape: tuple[int, int, int],
    channels: Sequence[int],
    blocks_per_stage: int,
    embed_dim: int,
    stem_patch: int = 1,
    prefix: str = "",
) -> list[LayerCost]:
    """The rows of a :class:`CNNEncoder` on images of shape (C, H, W), each named ``prefix`` + its module path."""
    c, h, w = image_shape

    def bn(name: str, shape: tuple[int, ...]) -> LayerCost:
        return free_row(prefix + name, shape, 2 * shape[0])  # γ and β per channel (running statistics not counted)

    rows = [conv_row(prefix + "stem_conv", c, channels[0], *stem_geometry(stem_patch), h, w)]
    shape = rows[0].output
    rows += [bn("stem_bn", shape), free_row(prefix + "stem_relu", shape)]
    for index, (c_in, c_out, stride) in enumerate(block_plan(channels, blocks_per_stage)):
        name, (_, h, w) = f"blocks.{index}.", shape
        conv1 = conv_row(prefix + name + "conv1", c_in, c_out, 3, stride, 1, h, w)
        shape = conv1.output
        rows += [conv1, bn(name + "bn1", shape), free_row(prefix + name + "relu1", shape)]
        rows += [conv_row(prefix + name + "conv2", c_out, c_out, 3, 1, 1, shape[1], shape[2]), bn(name + "bn2", shape)]
        if projected_skip(c_in, c_out, stride):
            rows += [conv_row(prefix + name + "shortcut_conv", c_in, c_out, 1, stride, 0, h, w)]
            rows += [bn(name + "shortcut_bn", shape)]
        rows.append(free_row(prefix + name + "relu_out", shape))
    rows.append(free_row(prefix + "pool", (channels[-1],)))
    rows.append(linear_row(prefix + "project", 1, channels[-1], embed_dim, bias=False))
    return rows


def _cost(cfg: ModelConfig, prefix: str = "image.") -> list[LayerCost]:
    image_shape = (cfg.channels, cfg.image_size, cfg.image_size)
    return cnn_cost(image_shape, cfg.cnn_channels, cfg.cnn_blocks, cfg.embed_dim, cfg.cnn_stem_patch, prefix)


def torch_cnn(cfg: ModelConfig) -> Any:
    """This encoder in PyTorch (channels-first, as PyTorch's convolutions are), parameters named as here."""
    import torch

    nn, F = torch.nn, torch.nn.functional

    class TorchResidualBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)
            self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
            self.shortcut_conv = self.shortcut_bn = None
            if projected_skip(c_in, c_out, stride):
                self.shortcut_conv = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)
                self.shortcut_bn = nn.BatchNorm2d(c_out)

        def forward(self, x: Any) -> Any:
            main = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            skip = x if self.shortcut_conv is None else self.shortcut_bn(self.shortcut_conv(x))
            return F.relu(main + skip)

    class TorchCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            channels = cfg.cnn_channels
            self.stem_conv = nn.Conv2d(cfg.channels, channels[0], *stem_geometry(cfg.cnn_stem_patch), bias=False)
            self.stem_bn = nn.BatchNorm2d(channels[0])
            plan = block_plan(channels, cfg.cnn_blocks)
            self.blocks = nn.ModuleList(TorchResidualBlock(c_in, c_out, stride) for c_in, c_out, stride in plan)
            self.project = nn.Linear(channels[-1], cfg.embed_dim, bias=False)

        def forward(self, images: Any) -> Any:
            x = F.relu(self.stem_bn(self.stem_conv(images)))
            for block in self.blocks:
                x = block(x)
            return self.project(x.mean(dim=(2, 3)))  # global average pool, then project

    return TorchCNN()


register(
    EncoderSpec(
        name="cnn",
        side="image",
        cls=CNNEncoder,
        build=_build,
        cost=_cost,
        reads=("image_size", "channels", "cnn_channels", "cnn_blocks", "cnn_stem_patch", "embed_dim"),
        validate=_validate,
        torch_twin=torch_cnn,
    )
)
