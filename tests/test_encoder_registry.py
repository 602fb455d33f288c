"""The encoder registry: one place per encoder, read by every consumer.

A toy image encoder (each image's mean colour, then a linear layer to ``embed_dim``) is written
and registered in this file alone, and is then built (``build_model``), costed
(``miniclip.measure.cost``), gradient-checked (the CLIP pairings of
``miniclip.teaching.gradient_cases``) and listed (``registry.names``, what the command line's
choices come from). The ``toy`` fixture unregisters it afterwards, so every other test sees the
built-in encoders only. An unregistered name is refused by name by the builder and by the cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from miniclip.backend import get_array_module
from miniclip.encoders import registry
from miniclip.encoders.counting import LayerCost, linear_row
from miniclip.encoders.registry import EncoderSpec, names
from miniclip.layers import Linear
from miniclip.measure.cost import clip_cost, image_encoder_cost, text_encoder_cost
from miniclip.measure.torch_twin import unsupported
from miniclip.model.clip import CLIP
from miniclip.model.config import (
    ModelConfig,
    build_clip,
    build_image_encoder,
    build_model,
    build_text_encoder,
)
from miniclip.model.predictive import PredictiveModel
from miniclip.module import Module, named_modules
from miniclip.teaching.gradient_cases import CASES, run_checks
from miniclip.teaching.gradient_cases.clip import tiny_config

BUILT_IN = {"image": ("patch_mlp", "cnn", "vit"), "text": ("bag_of_words", "transformer")}
SMALL = {"embed_dim": 5, "image_size": 8, "channels": 3, "vocab_size": 12, "context_length": 6, "text_width": 8}


# --- the toy: everything it takes to add an encoder, in one place ----------------------------------------------------


class MeanColour(Module):
    """images (N, C, H, W) ─mean over the pixels→ (N, C) ─linear→ (N, embed_dim).

    Backward: the linear layer's, then each pixel of channel c receives 1/(H·W) of d(mean)[n, c].
    """

    def __init__(self, channels: int, embed_dim: int, *, bias: bool, rng: np.random.Generator, dtype: Any) -> None:
        self.linear = Linear(channels, embed_dim, bias=bias, rng=rng, dtype=dtype)
        self._shape: tuple[int, ...] | None = None

    def forward(self, images: Any) -> Any:
        self._shape = tuple(images.shape)  # (N, C, H, W)
        return self.linear(images.mean(axis=(2, 3)))  # (N, C) → (N, d)

    def backward(self, dy: Any, input_grad: bool = True) -> Any:
        self._require_forward(self._shape)
        n, c, h, w = self._shape
        dmean = self.linear.backward(dy)  # (N, C)
        if not input_grad:
            return None
        xp = get_array_module(dmean)
        return xp.broadcast_to(dmean[:, :, None, None] / (h * w), (n, c, h, w)).copy()  # (N, C, H, W)


def _build_toy(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> MeanColour:
    return MeanColour(cfg.channels, cfg.embed_dim, bias=cfg.option("toy_bias"), rng=rng, dtype=dtype)


def _validate_toy(cfg: ModelConfig) -> None:
    if not isinstance(cfg.option("toy_bias"), bool):
        raise ValueError(f"toy_bias must be true or false, got {cfg.option('toy_bias')!r}")


def _toy_cost(cfg: ModelConfig, prefix: str) -> list[LayerCost]:
    return [linear_row(prefix + "linear", 1, cfg.channels, cfg.embed_dim, bias=cfg.option("toy_bias"))]


TOY = EncoderSpec(
    name="toy",
    side="image",
    cls=MeanColour,
    build=_build_toy,
    cost=_toy_cost,
    fields={"toy_bias": True},
    reads=("channels", "embed_dim"),
    validate=_validate_toy,
)


@pytest.fixture
def toy() -> Iterator[EncoderSpec]:
    registry.register(TOY)
    try:
        yield TOY
    finally:
        registry.unregister("image", "toy")


def _toy_config(**changes: Any) -> ModelConfig:
    return ModelConfig.from_dict({**SMALL, "image_encoder": "toy", "text_encoder": "bag_of_words", **changes})


# --- the toy, seen by every consumer ---------------------------------------------------------------------------------


def test_the_toy_is_listed_after_the_built_in_encoders(toy) -> None:
    assert names("image") == (*BUILT_IN["image"], "toy")  # what the command line offers as --image-encoder
    assert names("text") == BUILT_IN["text"]
    assert registry.get("image", "toy") is toy


def test_the_command_line_offers_the_toy(toy, capsys) -> None:
    from miniclip.cli import build_parser, main

    args = build_parser().parse_args(["train", "--image-encoder", "toy"])  # choices are read when the parser is built
    assert args.image_encoder == "toy"
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "toy" in capsys.readouterr().out


def test_build_model_builds_the_toy(toy) -> None:
    cfg = _toy_config()
    clip = build_model(cfg, rng=np.random.default_rng(0), dtype=np.float64)
    assert isinstance(clip, CLIP) and isinstance(clip.image, MeanColour)
    ids = np.array([[2, 5, 3, 0, 0, 0], [2, 6, 7, 3, 0, 0]])
    mask = (ids != 0).astype(np.float64)
    images = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    loss = clip(ids, images, mask)
    assert np.isfinite(loss) and clip.backward().shape == images.shape
    predictive = build_model(dataclasses.replace(cfg, objective="predictive"), rng=np.random.default_rng(0))
    assert isinstance(predictive, PredictiveModel) and isinstance(predictive.image, MeanColour)


@pytest.mark.parametrize("bias", [True, False])
def test_the_cost_counts_the_toy_as_by_hand(toy, bias: bool) -> None:
    cfg = _toy_config(toy_bias=bias)
    image = clip_cost(cfg, 4).part("image.")
    c, d = 3, 5
    assert [row.name for row in image.layers] == ["image.linear"]
    assert image.multiply_adds == c * d == 15  # one multiply-add per weight, on one position (the mean colour)
    assert image.parameters == c * d + (d if bias else 0)
    model = build_clip(cfg, rng=np.random.default_rng(0))
    assert image.parameters == sum(p.data.size for n, p in model.parameters().items() if n.startswith("image."))


def test_the_gradient_checks_pair_the_toy_and_pass(toy) -> None:
    pairings = [f"CLIP (toy, {text})" for text in BUILT_IN["text"]]
    assert all(name in CASES for name in pairings)
    assert list(CASES).index(pairings[0]) == list(CASES).index("CLIP (vit, transformer)") + 1  # after the built-ins
    for result in run_checks(pairings):
        assert result.ok, result.report()
        checked = [t.name for t in result.tensors]
        assert "d(image.linear.weight)" in checked and "d(image.linear.bias)" in checked, checked
        assert not [t.name for t in result.tensors if t.zero]


def test_the_toys_field_is_flat_in_the_dict_and_checked_by_its_spec(toy) -> None:
    cfg = _toy_config(toy_bias=False)
    assert cfg.encoder_options == {"toy_bias": False} and cfg.option("toy_bias") is False
    values = cfg.to_dict()
    assert values["toy_bias"] is False and "encoder_options" not in values  # one flat dict, as checkpoints hold
    assert ModelConfig.from_dict(values).to_dict() == values
    assert _toy_config().option("toy_bias") is True  # the default its spec declares
    assert _toy_config().to_dict()["toy_bias"] is True
    with pytest.raises(ValueError, match=r"toy_bias must be true or false, got 'yes'"):
        _toy_config(toy_bias="yes")
    with pytest.raises(ValueError, match=r"unknown model configuration keys \['toy_bias'\]"):
        ModelConfig.from_dict({**SMALL, "image_encoder": "vit", "toy_bias": False})  # not a field of vit
    with pytest.raises(ValueError, match=r"encoder_options \['toy_bias'\] are not fields of image encoder 'cnn'"):
        dataclasses.replace(cfg, image_encoder="cnn").validate()


def test_the_toy_has_no_pytorch_twin_and_bench_says_so(toy) -> None:
    assert unsupported(_toy_config()) == "the image encoder 'toy' has no PyTorch twin"
    pytest.importorskip("torch")
    from miniclip.measure.torch_twin import torch_clip

    with pytest.raises(ValueError, match=r"the image encoder 'toy' has no PyTorch twin"):
        torch_clip(_toy_config())


def test_the_gradient_checks_take_an_encoders_tiny_sizes(toy) -> None:
    registry.register(dataclasses.replace(TOY, name="tiny_toy", tiny={"toy_bias": False}))
    try:
        assert tiny_config("tiny_toy", "bag_of_words").option("toy_bias") is False
        assert tiny_config("toy", "bag_of_words").option("toy_bias") is True  # no tiny: the default
    finally:
        registry.unregister("image", "tiny_toy")
    with pytest.raises(ValueError, match=r"encoder 'bad': tiny sets \['toy_width'\], which are not among its fields"):
        dataclasses.replace(TOY, name="bad", tiny={"toy_width": 2})


def test_register_refuses_a_second_encoder_of_one_name(toy) -> None:
    with pytest.raises(ValueError, match=r"image encoder 'toy' is already registered \(MeanColour\)"):
        registry.register(TOY)
    with pytest.raises(ValueError, match=r"already registered"):
        registry.register(dataclasses.replace(registry.get("text", "transformer")))


def test_an_encoders_own_field_may_not_shadow_a_model_config_field() -> None:
    spec = dataclasses.replace(TOY, name="shadow", fields={"image_width": 3})
    registry.register(spec)
    try:
        with pytest.raises(ValueError, match=r"image encoder 'shadow' declares fields \['image_width'\]"):
            ModelConfig(image_encoder="shadow").validate()
    finally:
        registry.unregister("image", "shadow")


# --- an unregistered name is refused by name, everywhere -------------------------------------------------------------


@pytest.mark.parametrize(("side", "name"), [("image", "resnet"), ("text", "lstm")])
def test_an_unknown_encoder_is_refused_by_name_in_build_and_cost(side: str, name: str) -> None:
    cfg = ModelConfig(**SMALL, **{f"{side}_encoder": name})  # not validated: the builder and the cost refuse it
    message = rf"unknown {side} encoder '{name}'; choose from \('{BUILT_IN[side][0]}'"
    build = build_image_encoder if side == "image" else build_text_encoder
    with pytest.raises(ValueError, match=message):
        build(cfg, rng=np.random.default_rng(0), dtype=np.float32)  # never a ViT or a transformer by default
    with pytest.raises(ValueError, match=message):
        (image_encoder_cost if side == "image" else text_encoder_cost)(cfg)  # never costed as a patch MLP
    with pytest.raises(ValueError, match=message):
        clip_cost(cfg, 4)
    with pytest.raises(ValueError, match=message):
        build_model(cfg, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict(cfg.to_dict())
    with pytest.raises(ValueError, match=message):
        registry.get(side, name)
    with pytest.raises(ValueError, match=message):
        unsupported(cfg)


def test_the_built_in_encoders_are_registered_in_lesson_order() -> None:
    assert names("image") == BUILT_IN["image"] and names("text") == BUILT_IN["text"]  # the toy has gone again
    with pytest.raises(ValueError, match=r"unknown encoder side 'audio'"):
        names("audio")


# --- what every spec says is true of its encoder ---------------------------------------------------------------------

TINY = {**SMALL, "image_size": 4, "channels": 2, "patch_size": 2, "image_width": 4, "image_heads": 2, "image_depth": 1}
TINY |= {"cnn_channels": [2, 4], "text_width": 4, "text_heads": 2, "text_depth": 1, "mlp_ratio": 2, "embed_dim": 4}
SIDES = [("image", name) for name in BUILT_IN["image"]] + [("text", name) for name in BUILT_IN["text"]]


def _encoder_config(spec: EncoderSpec, **changes: Any) -> ModelConfig:
    return ModelConfig(**{**TINY, f"{spec.side}_encoder": spec.name, **changes})


def _changed(value: Any) -> Any:
    """Another valid value of the same kind."""
    if isinstance(value, list):
        return [v + 1 for v in value]
    if isinstance(value, bool):
        return not value
    if isinstance(value, float):
        return value + 0.1
    if isinstance(value, int):
        return 2 * value
    return {"end": "mean", "mean": "class", "gelu": "quick_gelu"}[value]  # text_pool, image_pool, activation


@pytest.mark.parametrize(("side", "name"), SIDES + [("image", "toy")])
def test_cost_rows_are_the_built_encoders_modules(side: str, name: str, toy) -> None:
    """Every row names a module of the encoder (so bench's per-layer FLOPs find it) and holds its own parameters."""
    spec = registry.get(side, name)
    cfg = _encoder_config(spec)
    encoder = spec.build(cfg, rng=np.random.default_rng(0), dtype=np.float32)
    assert isinstance(encoder, spec.cls)
    modules = dict(named_modules(encoder))
    rows = {row.name: row for row in spec.cost(cfg, "")}
    assert {name for name, m in modules.items() if not list(m.children()) and name} <= set(rows) <= set(modules)
    assert sum(row.parameters for row in rows.values()) == sum(p.data.size for p in encoder.parameters().values())


@pytest.mark.parametrize(("side", "name"), SIDES)
def test_reads_names_every_field_an_encoder_reads(side: str, name: str) -> None:
    """Changing any field a built-in spec does not list in ``reads`` changes neither its weights nor its cost."""
    spec = registry.get(side, name)
    base = _encoder_config(spec)
    expected = spec.build(base, rng=np.random.default_rng(0), dtype=np.float64).state(), spec.cost(base, "")
    unread = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in spec.reads]
    unread = [f for f in unread if f not in ("objective", "image_encoder", "text_encoder", "encoder_options")]
    assert unread
    for field in unread:
        cfg = dataclasses.replace(base, **{field: _changed(getattr(base, field))})
        state = spec.build(cfg, rng=np.random.default_rng(0), dtype=np.float64).state()
        assert state.keys() == expected[0].keys(), field
        assert all(np.array_equal(state[k], expected[0][k]) for k in state), field
        assert spec.cost(cfg, "") == expected[1], field


def test_a_dict_saved_before_the_registry_loads_as_it_always_did() -> None:
    """A checkpoint's model configuration from before encoders had fields of their own: the same, field for field."""
    saved = {
        "objective": "contrastive",
        "image_encoder": "cnn",
        "text_encoder": "bag_of_words",
        "embed_dim": 128,
        "image_size": 32,
        "channels": 3,
        "patch_size": 4,
        "image_width": 128,
        "image_depth": 4,
        "image_heads": 4,
        "cnn_channels": [32, 64, 128],
        "cnn_blocks": 1,
        "cnn_stem_patch": 2,
        "vocab_size": 40,
        "context_length": 12,
        "text_width": 128,
        "text_depth": 2,
        "text_heads": 4,
        "text_pool": "end",
        "mlp_ratio": 4,
        "dropout": 0.0,
    }
    cfg = ModelConfig.from_dict(saved)
    # fields added since (OpenAI's architectural choices) take the defaults that build the model it always was
    added = {
        "text_causal": False,
        "image_pool": "mean",
        "image_ln_pre": False,
        "patch_bias": True,
        "activation": "gelu",
    }
    assert cfg.encoder_options == {} and cfg.to_dict() == saved | added
    assert cfg == ModelConfig(**saved)
