"""Gradient checks for the real CLIP: its head layers, both transformer encoders, every model.

Same shape as :data:`miniclip.teaching.gradient_cases.CASES`: each entry takes a seeded generator and returns
``(module, positional inputs, keyword inputs)`` for :func:`miniclip.teaching.gradcheck.gradcheck`, in
float64. The models are tiny (:func:`tiny_config`: 4×4 images, width 4, one block) so that
central differences over every weight stay fast, and every weight is re-drawn at random so
that no bias sits at 0 and no gain at 1 (where some mistakes would cancel out). The CLIP checks
pair every image encoder of :mod:`miniclip.encoders.registry` with every text encoder.

Lesson 04 derives the two head layers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from miniclip.backend import to_device
from miniclip.encoders import registry
from miniclip.layers.end_token_pool import EndTokenPool
from miniclip.layers.l2_normalize import L2Normalize
from miniclip.layers.logit_scale import LogitScale
from miniclip.model.config import ModelConfig, build_clip, build_image_encoder, build_text_encoder
from miniclip.model.openai import CLIP_CHOICES  # OpenAI's architecture (lesson 16)
from miniclip.teaching.gradient_cases.common import F64, Case, CaseBuilder, Cases, normal, padding_mask, randomise

N = 4  # pairs per batch
LENGTHS = [5, 3, 1, 4]  # real tokens per caption (context 5): full, padded, start only, padded


def tiny_config(image_encoder: str = "vit", text_encoder: str = "transformer", **changes: Any) -> ModelConfig:
    """The smallest CLIP of each kind: few enough weights to difference every one of them.

    A registered encoder's own fields take the small values its spec gives as ``tiny``.
    """
    sizes: dict[str, Any] = {
        "embed_dim": 4,
        "image_size": 4,
        "channels": 2,
        "patch_size": 2,  # 4 patches of 2·2·2 = 8 numbers
        "image_width": 4,
        "image_depth": 1,
        "image_heads": 2,
        "cnn_channels": [2, 4],
        "cnn_blocks": 1,
        "vocab_size": 9,
        "context_length": 5,
        "text_width": 4,
        "text_depth": 1,
        "text_heads": 2,
        "mlp_ratio": 2,
    }
    options: dict[str, Any] = {}
    for side, name in (("image", image_encoder), ("text", text_encoder)):
        if name in registry.names(side):  # (an unregistered name is left for validate() to refuse)
            options |= registry.get(side, name).tiny
    sizes["encoder_options"] = options | changes.pop("encoder_options", {})
    return ModelConfig(image_encoder=image_encoder, text_encoder=text_encoder, **(sizes | changes))


def duplicate_caption_targets(n: int) -> Any:
    """Soft targets for a batch whose first two captions are the same: each may match either image."""
    y = np.eye(n)
    y[:2, :2] = 0.5  # rows and columns still sum to 1
    return to_device(y)


def _token_ids(rng: np.random.Generator, vocab: int, lengths: list[int], length: int) -> Any:
    ids = rng.integers(1, vocab, size=(len(lengths), length))
    ids[np.arange(length)[None, :] >= np.array(lengths)[:, None]] = 0  # <pad> after the real tokens
    return to_device(ids)


def _vit(rng: np.random.Generator) -> Case:
    cfg = tiny_config()
    vit = build_image_encoder(cfg, rng=rng, dtype=F64)
    return randomise(vit, rng), (normal(rng, 3, cfg.channels, cfg.image_size, cfg.image_size),), {}


def _vit_clip(rng: np.random.Generator) -> Case:
    cfg = tiny_config(**CLIP_CHOICES)
    vit = build_image_encoder(cfg, rng=rng, dtype=F64)
    return randomise(vit, rng), (normal(rng, 3, cfg.channels, cfg.image_size, cfg.image_size),), {}


def _text(pool: str, **options: Any) -> Callable[[np.random.Generator], Case]:
    def case(rng: np.random.Generator) -> Case:
        cfg = tiny_config(**(options | {"text_pool": pool}))
        text = build_text_encoder(cfg, rng=rng, dtype=F64)
        ids = _token_ids(rng, cfg.vocab_size, LENGTHS, cfg.context_length)
        return randomise(text, rng), (ids,), {"mask": padding_mask(LENGTHS, cfg.context_length)}

    return case


def _clip(
    image_encoder: str, text_encoder: str, soft_targets: bool, **options: Any
) -> Callable[[np.random.Generator], Case]:
    def case(rng: np.random.Generator) -> Case:
        cfg = tiny_config(image_encoder, text_encoder, **options)
        model = randomise(build_clip(cfg, rng=rng, dtype=F64), rng)
        ids = _token_ids(rng, cfg.vocab_size, LENGTHS, cfg.context_length)
        images = normal(rng, N, cfg.channels, cfg.image_size, cfg.image_size)
        kwargs = {"mask": padding_mask(LENGTHS, cfg.context_length)}
        if soft_targets:
            kwargs["targets"] = duplicate_caption_targets(N)
        return model, (ids, images), kwargs

    return case


_HEAD_AND_ENCODERS: dict[str, CaseBuilder] = {
    "L2Normalize": lambda r: (L2Normalize(), (to_device(r.uniform(-2, 2, (3, 5))),), {}),
    "LogitScale": lambda r: (LogitScale(r.uniform(0.5, 3.0), dtype=F64), (to_device(r.uniform(-1, 1, (4, 4))),), {}),
    "EndTokenPool (padding mask)": lambda r: (
        EndTokenPool(),
        (normal(r, 4, 5, 3),),
        {"mask": padding_mask(LENGTHS, 5)},
    ),
    "ViT": _vit,
    "TextTransformer (end, mask)": _text("end"),
    "TextTransformer (mean, mask)": _text("mean"),
    "ViT (CLIP: class token, ln_pre, no patch bias, QuickGELU)": _vit_clip,
    "TextTransformer (CLIP: causal, end, mask)": _text("end", **CLIP_CHOICES),
}


def _cases() -> dict[str, CaseBuilder]:
    """The head and encoder checks, then one CLIP check for every registered (image, text) pairing."""
    cases = dict(_HEAD_AND_ENCODERS)
    for image in registry.names("image"):
        for text in registry.names("text"):
            cases[f"CLIP ({image}, {text})"] = _clip(image, text, soft_targets=False)
    cases["CLIP (patch_mlp, bag_of_words, soft targets)"] = _clip("patch_mlp", "bag_of_words", soft_targets=True)
    cases["CLIP (vit, transformer, soft targets)"] = _clip("vit", "transformer", soft_targets=True)
    cases["CLIP (OpenAI's architecture)"] = _clip("vit", "transformer", soft_targets=False, **CLIP_CHOICES)
    return cases


CASES = Cases(_cases)  # read afresh each time: an encoder registered later is paired at once
