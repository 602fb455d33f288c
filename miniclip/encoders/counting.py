"""Counting an encoder's cost, one row per layer: output shape, parameters and multiply-adds per image.

Every encoder writes its own rows beside its class (the ``cost`` of its
:class:`~miniclip.encoders.registry.EncoderSpec`) from these pieces; :mod:`miniclip.measure.cost`
adds the head, sums the rows and explains what is counted (the matrix products only). A row is
named by the module path of the layer it describes (``image.blocks.0.conv1``, ``text.lookup``).
Lesson 07 counts the CNN's and the ViT's multiply-adds by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from miniclip.layers.im2col import conv_output_size


@dataclass(frozen=True)
class LayerCost:
    """One layer of a model: its module path, output per image, own parameters and multiply-adds per image."""

    name: str
    output: tuple[int, ...]
    parameters: int
    multiply_adds: int


def linear_row(
    name: str, n: int, d_in: int, d_out: int, *, bias: bool = True, shape: tuple[int, ...] = ()
) -> LayerCost:
    """A linear layer run on ``n`` positions per image (``shape`` is the output's leading axes)."""
    return LayerCost(name, (*shape, d_out), d_in * d_out + (d_out if bias else 0), n * d_in * d_out)


def conv_row(name: str, c_in: int, c_out: int, kernel: int, stride: int, padding: int, h: int, w: int) -> LayerCost:
    """A bias-free convolution on a (``c_in``, ``h``, ``w``) feature map; its output is (``c_out``, Ho, Wo)."""
    ho, wo = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
    weights = c_out * c_in * kernel * kernel
    return LayerCost(name, (c_out, ho, wo), weights, ho * wo * weights)


def free_row(name: str, output: tuple[int, ...], parameters: int = 0) -> LayerCost:
    """A layer whose arithmetic is not counted (norms, activations, pooling, lookups)."""
    return LayerCost(name, output, parameters, 0)


def transformer_blocks_cost(prefix: str, length: int, width: int, depth: int, mlp_ratio: int) -> list[LayerCost]:
    """``depth`` pre-norm blocks (:mod:`miniclip.layers.transformer_block`) on ``length`` tokens of ``width``."""
    rows: list[LayerCost] = []
    shape, hidden = (length, width), mlp_ratio * width
    for i in range(depth):
        name = f"{prefix}blocks.{i}."
        rows += [
            free_row(name + "ln1", shape, 2 * width),
            linear_row(name + "attn.qkv", length, width, 3 * width, shape=(length,)),
            LayerCost(name + "attn", shape, 0, 2 * length * length * width),  # Q Kᵀ and weights · V, all heads
            linear_row(name + "attn.out", length, width, width, shape=(length,)),
            free_row(name + "drop1", shape),
            free_row(name + "ln2", shape, 2 * width),
            linear_row(name + "mlp.fc1", length, width, hidden, shape=(length,)),
            free_row(name + "mlp.activation", (length, hidden)),
            linear_row(name + "mlp.fc2", length, hidden, width, shape=(length,)),
            free_row(name + "drop2", shape),
        ]
    return rows
