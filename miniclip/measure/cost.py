"""What a CLIP costs, layer by layer: output shape, parameters and multiply-adds per image.

Nothing is built or run: the numbers come from the sizes in a :class:`ModelConfig`. Each
encoder's rows are written beside the encoder, in its module under ``miniclip/encoders/``
(the ``cost`` of its :class:`~miniclip.encoders.registry.EncoderSpec`), from the pieces in
:mod:`miniclip.encoders.counting` (``linear_row``, ``conv_row``, ``free_row``, ``transformer_blocks_cost``);
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

from miniclip.encoders.counting import LayerCost, free_row

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig


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
