"""Nonsense sizes are refused where they are given, naming the field; backward before forward says so."""

from __future__ import annotations

import numpy as np
import pytest

from miniclip import layers
from miniclip.encoders import CNNEncoder, PatchMLP, TextTransformer, ViT
from miniclip.encoders.bag_of_words import BagOfWords
from miniclip.encoders.cnn import ResidualBlock
from miniclip.model.config import ModelConfig, build_clip
from miniclip.teaching.gradient_cases.clip import tiny_config

SMALL = {"embed_dim": 8, "image_size": 8, "patch_size": 4, "image_width": 8, "text_width": 8, "vocab_size": 12}

BAD_FIELDS = {
    "image_depth 0": ({"image_depth": 0}, r"image_depth must be at least 1, got 0"),
    "image_depth -1": ({"image_depth": -1}, r"image_depth must be at least 1, got -1"),
    "text_depth 0": ({"text_depth": 0}, r"text_depth must be at least 1, got 0"),
    "image_size 0": ({"image_size": 0}, r"image_size must be at least 1, got 0"),
    "image_size -8": ({"image_size": -8}, r"image_size must be at least 1, got -8"),
    "vocab_size 0": ({"vocab_size": 0}, r"vocab_size must be at least 4 \(the special tokens\), got 0"),
    "mlp_ratio 0": ({"mlp_ratio": 0}, r"mlp_ratio must be at least 1, got 0"),
    "channels 0": ({"channels": 0}, r"channels must be at least 1, got 0"),
    "cnn_channels [0]": ({"image_encoder": "cnn", "cnn_channels": [8, 0]}, r"cnn_channels must be a non-empty list"),
    "cnn_channels []": ({"image_encoder": "cnn", "cnn_channels": []}, r"cnn_channels must be a non-empty list"),
    "stem patch > image": (
        {"image_encoder": "cnn", "cnn_stem_patch": 16},
        r"cnn_stem_patch 16 is larger than the image size 8",
    ),
    "cnn_blocks 0": ({"image_encoder": "cnn", "cnn_blocks": 0}, r"cnn_blocks must be at least 1, got 0"),
    "depth 2.5": ({"image_depth": 2.5}, r"image_depth must be a whole number, got 2.5"),
    "width True": ({"text_width": True}, r"text_width must be a whole number, got True"),
    "dropout 1": ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got 1.0"),
    "text_causal 1": ({"text_causal": 1}, r"text_causal must be true or false, got 1"),
    "patch_bias 'no'": ({"patch_bias": "no"}, r"patch_bias must be true or false, got 'no'"),
}


# Inconsistent choices on the tiny test model (4×4 images): one ValueError each, naming the values.
BAD_CHOICES = [
    ({"image_width": 6, "image_heads": 4}, r"image width 6 .*image heads 4"),
    ({"text_width": 6, "text_heads": 4}, r"text width 6 .*text heads 4"),
    ({"patch_size": 3}, r"patch size 3 .*image size 4"),
    ({"image_encoder": "patch_mlp", "patch_size": 3}, r"patch size 3 .*image size 4"),
    ({"context_length": 1}, r"context length .*got 1"),
    ({"image_encoder": "resnet"}, r"unknown image encoder 'resnet'.*patch_mlp"),
    ({"text_encoder": "lstm"}, r"unknown text encoder 'lstm'.*bag_of_words"),
    ({"text_pool": "max"}, r"unknown text pool 'max'.*end"),
    ({"image_pool": "max"}, r"unknown image pool 'max'.*class"),
    ({"activation": "relu"}, r"unknown activation 'relu'.*quick_gelu"),
]


def _refused_everywhere(cfg: ModelConfig, message: str) -> None:
    """validate(), build_clip() and from_dict() all refuse ``cfg`` with a message matching ``message``."""
    with pytest.raises(ValueError, match=message):
        cfg.validate()
    with pytest.raises(ValueError, match=message):
        build_clip(cfg, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict(cfg.to_dict())


@pytest.mark.parametrize("case", list(BAD_FIELDS))
def test_bad_field_is_a_value_error_naming_it(case):
    changes, message = BAD_FIELDS[case]
    _refused_everywhere(ModelConfig(**(SMALL | changes)), message)


@pytest.mark.parametrize(("changes", "message"), BAD_CHOICES)
def test_bad_choice_is_a_value_error_naming_it(changes, message):
    _refused_everywhere(tiny_config(**changes), message)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, bool])
def test_an_integer_dtype_is_refused(dtype):
    with pytest.raises(ValueError, match=r"dtype must be a floating-point type"):
        build_clip(ModelConfig(**SMALL), rng=np.random.default_rng(0), dtype=dtype)


def test_the_defaults_and_small_sizes_still_build():
    for image_encoder in ("patch_mlp", "cnn", "vit"):
        for text_encoder in ("bag_of_words", "transformer"):
            cfg = ModelConfig(**SMALL, image_encoder=image_encoder, text_encoder=text_encoder, cnn_channels=[4, 8])
            build_clip(cfg, rng=np.random.default_rng(0), dtype=np.float64)
    ModelConfig().validate()


def _fresh_modules():
    """One of every layer and encoder, never run forward."""
    rng = np.random.default_rng(0)
    return [
        layers.Linear(3, 2, rng=rng),
        layers.ReLU(),
        layers.GELU(),
        layers.LayerNorm(3),
        layers.Embedding(5, 3, rng=rng),
        layers.Dropout(0.5),
        layers.Dropout(0.0),
        layers.L2Normalize(),
        layers.LogitScale(),
        layers.MeanPool(),
        layers.EndTokenPool(),
        layers.PositionalEmbedding(4, 3, rng=rng),
        layers.Similarity(),
        layers.ContrastiveLoss(),
        layers.MultiHeadSelfAttention(4, 2, rng=rng),
        layers.BatchNorm2d(3),
        layers.Conv2d(3, 2, 3, 1, 1, rng=rng),
        layers.Patchify(2),
        layers.MaxPool2d(2),
        layers.AvgPool2d(2),
        layers.GlobalAvgPool(),
        layers.MLP(4, 8, rng=rng),
        layers.TransformerBlock(4, 2, rng=rng),
        ResidualBlock(3, 3, 1, rng=rng),
        CNNEncoder((4,), 1, 3, 4, rng=rng),
        PatchMLP(channels=3, patch_size=2, width=4, embed_dim=4, rng=rng),
        ViT(image_size=4, patch_size=2, width=4, depth=1, heads=2, embed_dim=4, rng=rng),
        BagOfWords(vocab_size=5, word_dim=4, width=4, embed_dim=4, rng=rng),
        TextTransformer(vocab_size=5, context_length=4, width=4, depth=1, heads=2, embed_dim=4, rng=rng),
        build_clip(ModelConfig(**SMALL), rng=rng),
    ]


@pytest.mark.parametrize("module", _fresh_modules(), ids=lambda m: type(m).__name__)
def test_backward_before_forward_is_a_runtime_error(module):
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward\(\): run forward first"):
        module.backward(np.ones((2, 2, 2, 2)))
