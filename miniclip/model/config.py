"""Build a CLIP from a plain configuration: which image encoder, which text encoder, what sizes.

    image_encoder:  "patch_mlp"     the walkthrough's patchify → linear+ReLU → mean pool  encoders/patch_mlp.py
                    "cnn"           residual convolutional network                        encoders/cnn.py
                    "vit"           Vision Transformer                                    encoders/vit.py
    text_encoder:   "bag_of_words"  the walkthrough's lookup → linear+ReLU → mean pool    encoders/bag_of_words.py
                    "transformer"   text transformer                                      encoders/text_transformer.py

    objective:      "contrastive"   CLIP: both encoders under the normalised head        clip.py
                    "predictive"    the image encoder predicts the caption's words       predictive.py

The encoders are those of :mod:`miniclip.encoders.registry` (the built-in ones above, and any
registered since): an encoder is built, checked and costed by its registered spec, and a name
nobody registered is a ``ValueError`` naming it, never a default. The configuration is a dataclass
of plain values, so it saves to and loads from JSON beside a checkpoint, as one flat dict: its own
fields, then the chosen encoders' own fields (``encoder_options``, see the registry). Every
encoder ends in a projection to ``embed_dim``; the CLIP head normalises both sides and applies the
learned temperature. :func:`build_model` builds either objective's model, :func:`build_clip` the
CLIP alone.

Lesson 07 builds the CNN and the ViT from it.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from miniclip.encoders import registry
from miniclip.encoders.registry import EncoderSpec
from miniclip.encoders.text_transformer import check_text_input
from miniclip.encoders.vit import check_image_pool
from miniclip.layers.mlp import check_activation
from miniclip.model.clip import CLIP
from miniclip.model.predictive import BagOfWordsPredictor, PredictiveModel
from miniclip.model.tokenizer import SPECIALS
from miniclip.module import Module

OBJECTIVES = ("contrastive", "predictive")


# Fields that must be at least 1 whichever encoders are chosen (a zero would fail later, or never).
WHOLE_NUMBERS_FROM_1 = (
    "embed_dim",
    "image_size",
    "channels",
    "patch_size",
    "image_width",
    "image_depth",
    "image_heads",
    "cnn_blocks",
    "cnn_stem_patch",
    "text_width",
    "text_depth",
    "text_heads",
    "mlp_ratio",
)


def _whole(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass
class ModelConfig:
    """Every size of a CLIP model, with a comment on each."""

    objective: str = "contrastive"  # one of OBJECTIVES: CLIP's head, or the bag-of-words predictor (no text encoder)
    image_encoder: str = "vit"  # a registered image encoder: registry.names("image")
    text_encoder: str = "transformer"  # a registered text encoder: registry.names("text")
    embed_dim: int = 128  # width of the shared text–image space
    # images
    image_size: int = 32  # square images of this side
    channels: int = 3  # colour channels
    patch_size: int = 4  # patch side (patch_mlp, vit)
    image_width: int = 128  # hidden width of the image encoder (patch_mlp, vit)
    image_depth: int = 4  # transformer blocks (vit)
    image_heads: int = 4  # attention heads (vit)
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 128])  # channels per stage (cnn)
    cnn_blocks: int = 1  # residual blocks per stage (cnn)
    cnn_stem_patch: int = 1  # 1: 3×3 stem at full resolution; p > 1: p×p patchify stem, stride p (cnn)
    # text
    vocab_size: int = 1000  # tokenizer vocabulary size, special tokens included
    context_length: int = 16  # tokens per caption, <start> and <end> included
    text_width: int = 128  # hidden width of the text encoder
    text_depth: int = 2  # transformer blocks (transformer)
    text_heads: int = 4  # attention heads (transformer)
    text_pool: str = "end"  # "end" (CLIP) or "mean" over real tokens (transformer)
    text_causal: bool = False  # True: each token attends only to the tokens before it, as in CLIP (transformer)
    # CLIP's image tower (vit)
    image_pool: str = "mean"  # "mean" over patches, or "class": a class token before the patches, pooled (vit)
    image_ln_pre: bool = False  # a LayerNorm before the first block, CLIP's ln_pre (vit)
    patch_bias: bool = True  # the patch embedding's bias; CLIP's patch embedding has none (vit)
    # shared
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio × width
    activation: str = "gelu"  # the transformer blocks' MLP activation: "gelu" (tanh form) or CLIP's "quick_gelu"
    dropout: float = 0.0  # dropout inside transformer blocks
    # the chosen encoders' own fields (EncoderSpec.fields; none for the built-in ones), read with option()
    encoder_options: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str) -> Any:
        """A chosen encoder's own field: its value in ``encoder_options``, else the default its spec declares."""
        defaults = _own_fields(self.image_encoder, self.text_encoder)
        if name not in defaults:
            raise KeyError(
                f"{name!r} is not a field of image encoder {self.image_encoder!r} or text encoder "
                f"{self.text_encoder!r}; theirs: {sorted(defaults)}"
            )
        return self.encoder_options.get(name, defaults[name])

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field and value."""
        for f in dataclasses.fields(self):  # every size is a whole number: no 2.5 layers, no True channels
            if f.type == "int" and not _whole(getattr(self, f.name)):
                raise ValueError(f"{f.name} must be a whole number, got {getattr(self, f.name)!r}")
        for f in dataclasses.fields(self):  # a switch is True or False, not 1 or "yes"
            if f.type == "bool" and not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"{f.name} must be true or false, got {getattr(self, f.name)!r}")
        for name in WHOLE_NUMBERS_FROM_1:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.vocab_size < len(SPECIALS):
            raise ValueError(f"vocab_size must be at least {len(SPECIALS)} (the special tokens), got {self.vocab_size}")
        channels = self.cnn_channels
        if not isinstance(channels, list | tuple) or not channels or not all(_whole(c) and c >= 1 for c in channels):
            raise ValueError(f"cnn_channels must be a non-empty list of whole numbers >= 1, got {channels!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, numbers.Real) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {OBJECTIVES}")
        check_text_input(self.context_length, self.text_pool)
        check_activation(self.activation)
        check_image_pool(self.image_pool)
        specs = _specs(self)  # an unregistered encoder name is a ValueError naming it and the registered ones
        own = _own_fields(self.image_encoder, self.text_encoder)
        stray = sorted(set(self.encoder_options) - set(own))
        if stray:
            raise ValueError(
                f"encoder_options {stray} are not fields of image encoder {self.image_encoder!r} or text encoder "
                f"{self.text_encoder!r}; theirs: {sorted(own)}"
            )
        for spec in specs:  # what the chosen encoders need of the sizes (and of their own fields)
            spec.validate(self)

    def to_dict(self) -> dict[str, Any]:
        """One flat dict of plain values: the fields above, then the chosen encoders' own fields."""
        values = dataclasses.asdict(self)
        options = values.pop("encoder_options")
        return values | _own_fields(self.image_encoder, self.text_encoder, strict=False) | options

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a flat dict (e.g. loaded JSON); unknown keys are an error, not silently dropped.

        Keys beyond ModelConfig's own fields are accepted where they are fields of the encoders the
        dict chooses (kept in ``encoder_options``). A dict saved before encoders had fields of their
        own holds none, and gives the same configuration as it always did.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"encoder_options"}
        plain = {k: v for k, v in values.items() if k in known}
        image, text = (plain.get(f"{side}_encoder", _DEFAULTS[f"{side}_encoder"]) for side in ("image", "text"))
        own = _own_fields(image, text)  # a name nobody registered: ValueError naming it
        unknown = sorted(set(values) - known - set(own))
        if unknown:
            raise ValueError(f"unknown model configuration keys {unknown}; known keys: {sorted(known | set(own))}")
        cfg = cls(**plain, encoder_options={k: v for k, v in values.items() if k in own})
        cfg.validate()
        return cfg


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ModelConfig)}  # (MISSING where a factory makes it)


def _specs(cfg: ModelConfig) -> tuple[EncoderSpec, EncoderSpec]:
    """The registered specs of ``cfg``'s image and text encoders; ``ValueError`` naming one that is not."""
    return registry.get("image", cfg.image_encoder), registry.get("text", cfg.text_encoder)


def _own_fields(image_encoder: str, text_encoder: str, strict: bool = True) -> dict[str, Any]:
    """The two encoders' own fields with their defaults (``strict=False``: an unregistered name has none)."""
    sides = (("image", image_encoder), ("text", text_encoder))
    specs = [registry.get(side, name) for side, name in sides if strict or name in registry.names(side)]
    own: dict[str, Any] = {}
    for spec in specs:
        clash = sorted(set(spec.fields) & (set(_DEFAULTS) | set(own)))
        if clash:
            raise ValueError(
                f"{spec.side} encoder {spec.name!r} declares fields {clash}, which ModelConfig or the other encoder "
                f"already has: name an encoder's own fields after it"
            )
        own.update(spec.fields)
    return own


def _build(side: str, name: str, cfg: ModelConfig, rng: np.random.Generator, dtype: Any) -> Module:
    spec = registry.get(side, name)  # a name nobody registered: ValueError naming it
    encoder = spec.build(cfg, rng=rng, dtype=dtype)
    if not isinstance(encoder, spec.cls):
        raise TypeError(f"{side} encoder {spec.name!r} built a {type(encoder).__name__}, not a {spec.cls.__name__}")
    return encoder


def build_image_encoder(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> Module:
    """The image encoder named by ``cfg.image_encoder``, built by its registered spec."""
    return _build("image", cfg.image_encoder, cfg, rng, dtype)


def build_text_encoder(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> Module:
    """The text encoder named by ``cfg.text_encoder``, built by its registered spec.

    A text encoder tells its ``vocab_size`` (the CLIP head checks token ids against it): one that
    does not is a ``TypeError`` here, not an ``AttributeError`` at the first caption.
    """
    encoder = _build("text", cfg.text_encoder, cfg, rng, dtype)
    vocab = getattr(encoder, "vocab_size", None)
    if not _whole(vocab):
        raise TypeError(f"text encoder {cfg.text_encoder!r} has no whole-number vocab_size, which the CLIP head reads")
    return encoder


def _check(cfg: ModelConfig, dtype: Any) -> None:
    cfg.validate()
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a floating-point type (float32 or float64), got {np.dtype(dtype)}")


def build_clip(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any = np.float32) -> CLIP:
    """Validate ``cfg`` and build the CLIP it describes, weights drawn from ``rng`` on the host."""
    _check(cfg, dtype)
    image = build_image_encoder(cfg, rng=rng, dtype=dtype)
    text = build_text_encoder(cfg, rng=rng, dtype=dtype)
    return CLIP(image, text, dtype=dtype)


def build_model(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any = np.float32) -> CLIP | PredictiveModel:
    """The model ``cfg.objective`` names: a CLIP, or the image encoder under the bag-of-words predictor.

    Both draw the image encoder's weights first, so the two objectives start from the same
    image encoder for one seed.
    """
    if cfg.objective == "contrastive":
        return build_clip(cfg, rng=rng, dtype=dtype)
    _check(cfg, dtype)
    image = build_image_encoder(cfg, rng=rng, dtype=dtype)
    return PredictiveModel(image, BagOfWordsPredictor(cfg.embed_dim, cfg.vocab_size, rng=rng, dtype=dtype))
