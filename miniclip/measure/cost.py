"""What a CLIP costs, layer by layer: output shape, parameters and multiply-adds per image.

Nothing is built or run: the numbers come from the sizes in a :class:`ModelConfig`, walking
each encoder's structure the way ``miniclip/encoders/`` builds it, so every row is named by
the module path of the layer it describes (``image.blocks.0.conv1``, ``text.lookup``, ...).
Only the matrix products are counted — one multiply-add per weight per position::

    convolution        Ho · Wo · O · C · k · k          one multiply-add per weight per output pixel
    linear (D_in→D_out) n · D_in · D_out                 n = positions it runs on (tokens, patches, 1)
    attention          L · L · D  (scores Q Kᵀ)  +  L · L · D  (weights · V)    all heads together
    similarity T Iᵀ    N · d per image                  the (N, N) matrix costs N² · d per batch

Batch norm, LayerNorm, ReLU, GELU, softmax, pooling, the residual additions and the loss are
cheap by comparison (a few operations per value, not per weight) and count as zero. A FLOP is
half a multiply-add, so ``flops = 2 × multiply_adds``; a training step (forward, then backward
for the inputs and for the weights) costs about three forwards, ``training_flops = 3 × flops``,
the usual estimate. Feature-map shapes are written (C, H, W) per image, token maps (L, D).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _conv_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _linear(name: str, n: int, d_in: int, d_out: int, *, bias: bool = True, shape: tuple[int, ...] = ()) -> LayerCost:
    """A linear layer run on ``n`` positions per image (``shape`` is the output's leading axes)."""
    return LayerCost(name, (*shape, d_out), d_in * d_out + (d_out if bias else 0), n * d_in * d_out)


def _patches(cfg: ModelConfig) -> int:
    return (cfg.image_size // cfg.patch_size) ** 2


def _free(name: str, output: tuple[int, ...], parameters: int = 0) -> LayerCost:
    """A layer whose arithmetic is not counted (norms, activations, pooling, lookups)."""
    return LayerCost(name, output, parameters, 0)


# -- the image encoders ---------------------------------------------------------------------------


def cnn_cost(
    image_shape: tuple[int, int, int],
    channels: tuple[int, ...] | list[int],
    blocks_per_stage: int,
    embed_dim: int,
    stem_patch: int = 1,
    prefix: str = "",
) -> list[LayerCost]:
    """The residual CNN of :mod:`miniclip.encoders.cnn` on images of shape (C, H, W)."""
    c, h, w = image_shape
    k, s, p = (3, 1, 1) if stem_patch == 1 else (stem_patch, stem_patch, 0)

    def conv(name: str, cin: int, cout: int, k: int, s: int, p: int, h: int, w: int) -> LayerCost:
        ho, wo = _conv_size(h, k, s, p), _conv_size(w, k, s, p)
        return LayerCost(prefix + name, (cout, ho, wo), cout * cin * k * k, ho * wo * cout * cin * k * k)

    def bn(name: str, shape: tuple[int, ...]) -> LayerCost:
        return _free(prefix + name, shape, 2 * shape[0])  # γ and β per channel (running statistics not counted)

    rows = [conv("stem_conv", c, channels[0], k, s, p, h, w)]
    shape = rows[0].output
    rows += [bn("stem_bn", shape), _free(prefix + "stem_relu", shape)]
    previous, (_, h, w) = channels[0], shape
    index = 0
    for stage, width in enumerate(channels):
        for b in range(blocks_per_stage):
            stride = 2 if stage > 0 and b == 0 else 1
            name = f"blocks.{index}."
            conv1 = conv(name + "conv1", previous, width, 3, stride, 1, h, w)
            shape = conv1.output
            rows += [conv1, bn(name + "bn1", shape), _free(prefix + name + "relu1", shape)]
            rows += [conv(name + "conv2", width, width, 3, 1, 1, shape[1], shape[2]), bn(name + "bn2", shape)]
            if stride != 1 or previous != width:
                shortcut = conv(name + "shortcut_conv", previous, width, 1, stride, 0, h, w)
                rows += [shortcut, bn(name + "shortcut_bn", shape)]
            rows.append(_free(prefix + name + "relu_out", shape))
            previous, (_, h, w), index = width, shape, index + 1
    rows.append(_free(prefix + "pool", (previous,)))
    rows.append(_linear(prefix + "project", 1, previous, embed_dim, bias=False))
    return rows


def transformer_blocks_cost(prefix: str, length: int, width: int, depth: int, mlp_ratio: int) -> list[LayerCost]:
    """``depth`` pre-norm blocks (:mod:`miniclip.layers.transformer_block`) on ``length`` tokens of ``width``."""
    rows: list[LayerCost] = []
    shape, hidden = (length, width), mlp_ratio * width
    for i in range(depth):
        name = f"{prefix}blocks.{i}."
        rows += [
            _free(name + "ln1", shape, 2 * width),
            _linear(name + "attn.qkv", length, width, 3 * width, shape=(length,)),
            LayerCost(name + "attn", shape, 0, 2 * length * length * width),  # Q Kᵀ and weights · V, all heads
            _linear(name + "attn.out", length, width, width, shape=(length,)),
            _free(name + "drop1", shape),
            _free(name + "ln2", shape, 2 * width),
            _linear(name + "mlp.fc1", length, width, hidden, shape=(length,)),
            _free(name + "mlp.gelu", (length, hidden)),
            _linear(name + "mlp.fc2", length, hidden, width, shape=(length,)),
            _free(name + "drop2", shape),
        ]
    return rows


def vit_cost(cfg: ModelConfig, prefix: str = "image.") -> list[LayerCost]:
    """The Vision Transformer of :mod:`miniclip.encoders.vit`."""
    patches, patch_values, width = _patches(cfg), cfg.channels * cfg.patch_size**2, cfg.image_width
    shape = (patches, width)
    return [
        _free(prefix + "patchify", (patches, patch_values)),
        _linear(prefix + "patch_embed", patches, patch_values, width, shape=(patches,)),
        _free(prefix + "positions", shape, patches * width),
        *transformer_blocks_cost(prefix, patches, width, cfg.image_depth, cfg.mlp_ratio),
        _free(prefix + "norm", shape, 2 * width),
        _free(prefix + "pool", (width,)),
        _linear(prefix + "project", 1, width, cfg.embed_dim, bias=False),
    ]


def patch_mlp_cost(cfg: ModelConfig, prefix: str = "image.") -> list[LayerCost]:
    """The walkthrough's image encoder: patchify → linear + ReLU → mean pool → projection."""
    patches, patch_values, width = _patches(cfg), cfg.channels * cfg.patch_size**2, cfg.image_width
    return [
        _free(prefix + "patchify", (patches, patch_values)),
        _linear(prefix + "encode", patches, patch_values, width, shape=(patches,)),
        _free(prefix + "relu", (patches, width)),
        _free(prefix + "pool", (width,)),
        _linear(prefix + "project", 1, width, cfg.embed_dim, bias=False),
    ]


def image_encoder_cost(cfg: ModelConfig, prefix: str = "image.") -> list[LayerCost]:
    """The image encoder that ``cfg.image_encoder`` names."""
    if cfg.image_encoder == "cnn":
        image_shape = (cfg.channels, cfg.image_size, cfg.image_size)
        return cnn_cost(image_shape, cfg.cnn_channels, cfg.cnn_blocks, cfg.embed_dim, cfg.cnn_stem_patch, prefix)
    if cfg.image_encoder == "vit":
        return vit_cost(cfg, prefix)
    return patch_mlp_cost(cfg, prefix)


# -- the text encoders and the head ---------------------------------------------------------------


def text_encoder_cost(cfg: ModelConfig, prefix: str = "text.") -> list[LayerCost]:
    """The text encoder that ``cfg.text_encoder`` names, on captions of ``context_length`` tokens (padding included)."""
    length, width = cfg.context_length, cfg.text_width
    shape = (length, width)
    if cfg.text_encoder == "bag_of_words":
        return [
            _free(prefix + "lookup", shape, cfg.vocab_size * width),
            _linear(prefix + "encode", length, width, width, shape=(length,)),
            _free(prefix + "relu", shape),
            _free(prefix + "pool", (width,)),
            _linear(prefix + "project", 1, width, cfg.embed_dim, bias=False),
        ]
    return [
        _free(prefix + "lookup", shape, cfg.vocab_size * width),
        _free(prefix + "positions", shape, length * width),
        *transformer_blocks_cost(prefix, length, width, cfg.text_depth, cfg.mlp_ratio),
        _free(prefix + "norm", shape, 2 * width),
        _free(prefix + "pool", (width,)),
        _linear(prefix + "project", 1, width, cfg.embed_dim, bias=False),
    ]


def head_cost(embed_dim: int, batch_size: int) -> list[LayerCost]:
    """The CLIP head of :mod:`miniclip.model.clip`; the similarity's N² · d per batch is N · d per image."""
    return [
        _free("text_norm", (embed_dim,)),
        _free("image_norm", (embed_dim,)),
        LayerCost("similarity", (batch_size,), 0, batch_size * embed_dim),
        _free("logit_scale", (batch_size,), 1),
        _free("loss", ()),
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
