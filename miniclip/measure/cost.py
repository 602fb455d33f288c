"""What a CLIP costs, layer by layer: output shape, parameters and multiply-adds per image.

Nothing is built or run: the numbers come from the sizes in a :class:`ModelConfig`. Each
encoder's rows are written beside the encoder, in its module under ``miniclip/encoders/``
(the ``cost`` of its :class:`~miniclip.encoders.registry.EncoderSpec`), from the pieces here
(:func:`linear_row`, :func:`conv_row`, :func:`free_row`, :func:`transformer_blocks_cost`);
every row is named by the module path of the layer it describes (``image.blocks.0.conv1``,
``text.lookup``, ...). Only the matrix products are counted — one multiply-add per weight per position::

    convolution        Ho · Wo · O · C · k · k          one multiply-add per weight per output pixel
    linear (D_in→D_out) n · D_in · D_out                 n = positions it runs on (tokens, patches, 1)
    attention          L · L · D  (scores Q Kᵀ)  +  L · L · D  (weights · V)    all heads together
    similarity T Iᵀ    N · d per image                  the (N, N) matrix costs N² · d per batch

Batch norm, LayerNorm, ReLU, GELU, softmax, pooling, the residual additions and the loss are
cheap by comparison (a few operations per value, not per weight) and count as zero. A FLOP is
half a multiply-add, so ``flops = 2 × multiply_adds``; a training step (forward, then backward
for the inputs and for the weights) costs about three forwards, ``training_flops = 3 × flops``,
the usual estimate. Feature-map shapes are written (C, H, W) per image, token maps (L, D); a
convolution's output size is :func:`miniclip.layers.im2col.conv_output_size`, the one its layer uses.

Lesson 07 counts the CNN's and the ViT's multiply-adds by hand and checks them against this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from miniclip.layers.im2col import conv_output_size

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig


@dataclass(frozen=True)
class LayerCost:
    """One layer of a model: its module path, output per image, own parameters and multiply-adds per image."""

    name: str
    output: tuple[int, ...]
    parameters: int
    multiply_adds: int


@dataclass(frozen=True)
class ModelCost:
    """Every layer of a model with its totals (per image)."""

    layers: list[LayerCost]

    @property
    def parameters(self) -> int:
        return sum(row.parameters for row in self.layers)

    @property
    def multiply_adds(self) -> int:
        return sum(row.multiply_adds for row in self.layers)

    @property
    def flops(self) -> int:
        """Forward FLOPs per image (2 per multiply-add)."""
        return 2 * self.multiply_adds

    @property
    def training_flops(self) -> int:
        """FLOPs per trained image: forward + backward ≈ 3 × forward."""
        return 3 * self.flops

    def part(self, prefix: str) -> ModelCost:
        """The rows whose name starts with ``prefix`` (e.g. ``"image."``)."""
        return ModelCost([row for row in self.layers if row.name.startswith(prefix)])

    def by_name(self) -> dict[str, LayerCost]:
        return {row.name: row for row in self.layers}


# -- one row per layer: the pieces every encoder's cost is written with -----------------------------


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
            free_row(name + "mlp.gelu", (length, hidden)),
            linear_row(name + "mlp.fc2", length, hidden, width, shape=(length,)),
            free_row(name + "drop2", shape),
        ]
    return rows


# -- the encoders (each one's rows are written beside it) and the head -----------------------------


def image_encoder_cost(cfg: ModelConfig, prefix: str = "image.") -> list[LayerCost]:
    """The image encoder that ``cfg.image_encoder`` names; an unregistered name is a ``ValueError`` naming it."""
    from miniclip.encoders import registry  # here, not above: the encoders import this module's rows

    return registry.get("image", cfg.image_encoder).cost(cfg, prefix)


def text_encoder_cost(cfg: ModelConfig, prefix: str = "text.") -> list[LayerCost]:
    """The text encoder that ``cfg.text_encoder`` names, on captions of ``context_length`` tokens (padding included)."""
    from miniclip.encoders import registry  # here, not above: the encoders import this module's rows

    return registry.get("text", cfg.text_encoder).cost(cfg, prefix)


def head_cost(embed_dim: int, batch_size: int) -> list[LayerCost]:
    """The CLIP head of :mod:`miniclip.model.clip`; the similarity's N² · d per batch is N · d per image."""
    return [
        free_row("text_norm", (embed_dim,)),
        free_row("image_norm", (embed_dim,)),
        LayerCost("similarity", (batch_size,), 0, batch_size * embed_dim),
        free_row("logit_scale", (batch_size,), 1),
        free_row("loss", ()),
    ]


def clip_cost(cfg: ModelConfig, batch_size: int) -> ModelCost:
    """Every layer of the CLIP that ``build_clip(cfg)`` builds, per image of a batch of ``batch_size``."""
    return ModelCost(text_encoder_cost(cfg) + image_encoder_cost(cfg) + head_cost(cfg.embed_dim, batch_size))


def format_cost(cost: ModelCost) -> str:
    """A table: one line per layer with its output, parameters and multiply-adds per image, then the totals."""
    lines = [f"{'layer':<32} {'output':<16} {'parameters':>11} {'multiply-adds':>14}"]
    for row in cost.layers:
        lines.append(f"{row.name:<32} {str(row.output):<16} {row.parameters:>11,} {row.multiply_adds:>14,}")
    lines.append(f"{'total':<49} {cost.parameters:>11,} {cost.multiply_adds:>14,}")
    return "\n".join(lines)
