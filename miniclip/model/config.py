"""Build a CLIP from a plain configuration: which image encoder, which text encoder, what sizes.

    image_encoder:  "patch_mlp"     the walkthrough's patchify → linear+ReLU → mean pool  encoders/patch_mlp.py
                    "cnn"           residual convolutional network                        encoders/cnn.py
                    "vit"           Vision Transformer                                    encoders/vit.py
    text_encoder:   "bag_of_words"  the walkthrough's lookup → linear+ReLU → mean pool    encoders/bag_of_words.py
                    "transformer"   text transformer                                      encoders/text_transformer.py

    objective:      "contrastive"   CLIP: both encoders under the normalised head        clip.py
                    "predictive"    the image encoder predicts the caption's words       predictive.py

The configuration is a dataclass of plain values, so it saves to and loads from JSON
beside a checkpoint. Every encoder ends in a projection to ``embed_dim``; the CLIP head
normalises both sides and applies the learned temperature. :func:`build_model` builds either
objective's model, :func:`build_clip` the CLIP alone.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from miniclip.encoders import BagOfWords, CNNEncoder, PatchMLP, TextTransformer, ViT
from miniclip.model.clip import CLIP
from miniclip.model.predictive import BagOfWordsPredictor, PredictiveModel
from miniclip.model.tokenizer import SPECIALS
from miniclip.module import Module

OBJECTIVES = ("contrastive", "predictive")
IMAGE_ENCODERS = ("patch_mlp", "cnn", "vit")
TEXT_ENCODERS = ("bag_of_words", "transformer")
TEXT_POOLS = ("end", "mean")


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
    image_encoder: str = "vit"  # one of IMAGE_ENCODERS
    text_encoder: str = "transformer"  # one of TEXT_ENCODERS
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
    # shared
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio × width
    dropout: float = 0.0  # dropout inside transformer blocks

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field and value."""
        for f in dataclasses.fields(self):  # every size is a whole number: no 2.5 layers, no True channels
            if f.type == "int" and not _whole(getattr(self, f.name)):
                raise ValueError(f"{f.name} must be a whole number, got {getattr(self, f.name)!r}")
        for name in WHOLE_NUMBERS_FROM_1:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.vocab_size < len(SPECIALS):
            raise ValueError(f"vocab_size must be at least {len(SPECIALS)} (the special tokens), got {self.vocab_size}")
        channels = self.cnn_channels
        if not isinstance(channels, list | tuple) or not channels or not all(_whole(c) and c >= 1 for c in channels):
            raise ValueError(f"cnn_channels must be a non-empty list of whole numbers >= 1, got {channels!r}")
        if self.cnn_stem_patch > self.image_size:
            raise ValueError(f"cnn_stem_patch {self.cnn_stem_patch} is larger than the image size {self.image_size}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, numbers.Real) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {OBJECTIVES}")
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"unknown image encoder {self.image_encoder!r}; choose from {IMAGE_ENCODERS}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"unknown text encoder {self.text_encoder!r}; choose from {TEXT_ENCODERS}")
        if self.image_encoder in ("patch_mlp", "vit") and (self.patch_size < 1 or self.image_size % self.patch_size):
            raise ValueError(f"patch size {self.patch_size} does not divide the image size {self.image_size}")
        if self.image_encoder == "vit" and self.image_width % self.image_heads:
            raise ValueError(f"image width {self.image_width} is not divisible by image heads {self.image_heads}")
        if self.text_encoder == "transformer" and self.text_width % self.text_heads:
            raise ValueError(f"text width {self.text_width} is not divisible by text heads {self.text_heads}")
        if self.text_pool not in TEXT_POOLS:
            raise ValueError(f"unknown text pool {self.text_pool!r}; choose from {TEXT_POOLS}")
        if self.context_length < 2:
            raise ValueError(f"context length must be at least 2 (start and end tokens), got {self.context_length}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a dict (e.g. loaded JSON); unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model configuration keys {unknown}; known keys: {sorted(known)}")
        cfg = cls(**values)
        cfg.validate()
        return cfg


def build_image_encoder(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> Module:
    """The image encoder named by ``cfg.image_encoder``."""
    if cfg.image_encoder == "patch_mlp":
        return PatchMLP(
            channels=cfg.channels,
            patch_size=cfg.patch_size,
            width=cfg.image_width,
            embed_dim=cfg.embed_dim,
            rng=rng,
            dtype=dtype,
        )
    if cfg.image_encoder == "cnn":
        return CNNEncoder(
            tuple(cfg.cnn_channels),
            cfg.cnn_blocks,
            cfg.channels,
            cfg.embed_dim,
            cfg.cnn_stem_patch,
            rng=rng,
            dtype=dtype,
        )
    return ViT(
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        channels=cfg.channels,
        width=cfg.image_width,
        depth=cfg.image_depth,
        heads=cfg.image_heads,
        mlp_ratio=cfg.mlp_ratio,
        dropout=cfg.dropout,
        embed_dim=cfg.embed_dim,
        rng=rng,
        dtype=dtype,
    )


def build_text_encoder(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> Module:
    """The text encoder named by ``cfg.text_encoder``."""
    if cfg.text_encoder == "bag_of_words":
        return BagOfWords(
            vocab_size=cfg.vocab_size,
            word_dim=cfg.text_width,
            width=cfg.text_width,
            embed_dim=cfg.embed_dim,
            rng=rng,
            dtype=dtype,
        )
    return TextTransformer(
        vocab_size=cfg.vocab_size,
        context_length=cfg.context_length,
        width=cfg.text_width,
        depth=cfg.text_depth,
        heads=cfg.text_heads,
        mlp_ratio=cfg.mlp_ratio,
        dropout=cfg.dropout,
        embed_dim=cfg.embed_dim,
        pool=cfg.text_pool,
        rng=rng,
        dtype=dtype,
    )


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
