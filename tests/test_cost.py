"""miniclip.measure.cost: the counted multiply-adds and parameters, against hand formulas and the built models."""

from __future__ import annotations

import numpy as np
import pytest

from miniclip.encoders.cnn import CNNEncoder, cnn_cost
from miniclip.encoders.registry import names
from miniclip.measure.cost import clip_cost, format_cost, image_encoder_cost, text_encoder_cost
from miniclip.model.config import ModelConfig, build_clip
from miniclip.module import Module, Parameter, named_modules

TINY = {"vocab_size": 20, "context_length": 6, "image_size": 8, "patch_size": 4, "embed_dim": 5}
TINY_SIZES = {"image_width": 8, "image_depth": 2, "image_heads": 2, "text_width": 8, "text_depth": 1, "text_heads": 2}


def _own_parameters(module: Module) -> int:
    """Parameters held by ``module`` itself, not by its sub-modules."""
    return sum(int(v.data.size) for v in vars(module).values() if isinstance(v, Parameter))


def test_default_cnn_by_hand() -> None:
    rows = cnn_cost((3, 32, 32), (32, 64, 128), 1, 64)
    stem = 32 * 32 * 32 * 3 * 9  # output pixels × output channels × (input channels · 3 · 3)
    stage1 = 2 * 32 * 32 * 32 * 32 * 9
    stage2 = 16 * 16 * 64 * (32 * 9 + 64 * 9 + 32)  # conv1, conv2 and the 1×1 shortcut
    stage3 = 8 * 8 * 128 * (64 * 9 + 128 * 9 + 64)
    assert sum(r.multiply_adds for r in rows) == stem + stage1 + stage2 + stage3 + 128 * 64 == 49_127_424
    assert sum(r.parameters for r in rows) == 315_552
    by_name = {r.name: r for r in rows}
    assert by_name["blocks.1.shortcut_conv"].output == (64, 16, 16)
    assert "blocks.0.shortcut_conv" not in by_name  # same shape in and out: identity skip


CNN_CASES = [
    ((32, 64, 128), 1, 64, 1, (3, 32, 32)),
    ((4, 8, 16), 2, 5, 2, (3, 12, 8)),  # not square, patch stem, two blocks per stage
    ((6,), 3, 7, 4, (2, 16, 16)),
]


@pytest.mark.parametrize(("channels", "blocks", "embed", "stem", "shape"), CNN_CASES)
def test_cnn_rows_match_the_built_encoder(channels, blocks, embed, stem, shape) -> None:
    """Every row names a real module and carries its parameters; the shapes are those a forward pass makes."""
    enc = CNNEncoder(channels, blocks, shape[0], embed, stem, rng=np.random.default_rng(0))
    rows = cnn_cost(shape, channels, blocks, embed, stem)
    params = enc.parameters()
    assert sum(r.parameters for r in rows) == sum(p.data.size for p in params.values())
    for row in rows:
        assert row.parameters == sum(p.data.size for n, p in params.items() if n.startswith(row.name + ".")), row.name
    x = np.zeros((2, shape[1], shape[2], shape[0]), dtype=np.float32)  # channels-last, as inside the encoder
    x = enc.stem_relu(enc.stem_bn(enc.stem_conv(x)))
    by_name = {r.name: r for r in rows}
    assert by_name["stem_relu"].output == (x.shape[3], x.shape[1], x.shape[2])
    for i, block in enumerate(enc.blocks):
        x = block(x)
        assert by_name[f"blocks.{i}.relu_out"].output == (x.shape[3], x.shape[1], x.shape[2])
        ho, wo = x.shape[1], x.shape[2]
        convs = [block.conv1, block.conv2] + ([block.shortcut_conv] if block.shortcut_conv is not None else [])
        macs = sum(ho * wo * conv.weight.data.size for conv in convs)  # each output pixel: one multiply-add per weight
        assert sum(r.multiply_adds for r in rows if r.name.startswith(f"blocks.{i}.")) == macs


def test_text_transformer_by_hand() -> None:
    cfg = ModelConfig(text_encoder="transformer", **TINY, **TINY_SIZES, mlp_ratio=2)
    L, D, d, r = 6, 8, 5, 2
    per_block = L * D * 3 * D + L * L * D + L * L * D + L * D * D + 2 * L * D * r * D  # qkv, QKᵀ, PV, out, MLP
    rows = {row.name: row for row in text_encoder_cost(cfg)}
    assert sum(row.multiply_adds for row in rows.values()) == per_block + D * d == 3688
    assert rows["text.blocks.0.attn"].multiply_adds == 2 * L * L * D
    assert rows["text.blocks.0.mlp.fc1"].parameters == D * r * D + r * D
    assert rows["text.lookup"].parameters == 20 * D and rows["text.lookup"].multiply_adds == 0


def test_vit_by_hand() -> None:
    cfg = ModelConfig(image_encoder="vit", **TINY, **TINY_SIZES, mlp_ratio=4)
    P, Cp2, D, r, d = 4, 3 * 16, 8, 4, 5  # 4 patches of 4×4×3 values
    per_block = P * D * 3 * D + 2 * P * P * D + P * D * D + 2 * P * D * r * D
    rows = image_encoder_cost(cfg)
    assert sum(row.multiply_adds for row in rows) == P * Cp2 * D + 2 * per_block + D * d == 8232
    assert rows[0].name == "image.patchify" and rows[0].output == (P, Cp2)


def test_walkthrough_encoders_by_hand() -> None:
    cfg = ModelConfig(image_encoder="patch_mlp", text_encoder="bag_of_words", **TINY, image_width=8, text_width=8)
    assert sum(r.multiply_adds for r in image_encoder_cost(cfg)) == 4 * 48 * 8 + 8 * 5
    assert sum(r.multiply_adds for r in text_encoder_cost(cfg)) == 6 * 8 * 8 + 8 * 5


def test_head_is_per_image_and_totals_add_up() -> None:
    cfg = ModelConfig(image_encoder="patch_mlp", text_encoder="bag_of_words", **TINY, image_width=8, text_width=8)
    small, large = clip_cost(cfg, 4), clip_cost(cfg, 40)
    assert small.by_name()["similarity"].multiply_adds == 4 * 5  # the (N, N) matrix: N² · d per batch, N · d per image
    assert large.multiply_adds - small.multiply_adds == 36 * 5
    assert small.flops == 2 * small.multiply_adds and small.training_flops == 3 * small.flops
    assert small.part("image.").multiply_adds + small.part("text.").multiply_adds + 20 == small.multiply_adds
    table = format_cost(small)
    assert "image.encode" in table and f"{small.multiply_adds:,}" in table.splitlines()[-1]


@pytest.mark.parametrize("image_encoder", names("image"))
@pytest.mark.parametrize("text_encoder", names("text"))
def test_rows_are_the_models_modules(image_encoder: str, text_encoder: str) -> None:
    """Every row names a module of the built model and holds exactly that module's own parameters."""
    sizes = {**TINY, **TINY_SIZES, "cnn_channels": [4, 8], "cnn_blocks": 2}
    cfg = ModelConfig(image_encoder=image_encoder, text_encoder=text_encoder, **sizes)
    model = build_clip(cfg, rng=np.random.default_rng(0))
    modules = dict(named_modules(model))
    leaves = {name for name, m in modules.items() if not list(m.children())}
    rows = clip_cost(cfg, 4).by_name()
    assert leaves <= set(rows) <= set(modules)
    assert {name: rows[name].parameters for name in rows} == {name: _own_parameters(modules[name]) for name in rows}
    assert clip_cost(cfg, 4).parameters == sum(p.data.size for p in model.parameters().values())
