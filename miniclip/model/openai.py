"""OpenAI's CLIP architectures as miniclip configurations: the same blocks, at CLIP's sizes.

Nothing here is new code: OpenAI's CLIP is miniclip's ViT and text transformer with five
choices switched to the paper's (:data:`CLIP_CHOICES`, each a layer of its own, lesson 16)::

    image_pool="class"       a class token before the patches, read back after the blocks
    image_ln_pre=True        a LayerNorm before the first block (``ln_pre``)
    patch_bias=False         the patch embedding is a bias-free strided convolution = patchify + linear
    activation="quick_gelu"  x · σ(1.702 x) in every MLP
    text_causal=True         each token attends only to those before it; pooled at the end token

and the sizes of the released models (Radford et al., 2021, Table 19/20; the text tower is the
same 12-layer, 512-wide transformer for B/32 and B/16, and 768 wide for L/14)::

    name       image: size patch width depth heads   text: width depth heads   embed   parameters
    ViT-B/32           224    32   768    12    12          512    12     8     512     151 M
    ViT-B/16           224    16   768    12    12          512    12     8     512     150 M
    ViT-L/14           224    14  1024    24    16          768    12    12     768     428 M

Both towers use MLPs 4× as wide as the stream, a vocabulary of 49,408 byte-pair tokens and a
context of 77. :func:`openai_config` gives one by name; the weights come from
:mod:`miniclip.pretrained`.
"""

from __future__ import annotations

from typing import Any

from miniclip.model.config import ModelConfig

# The choices OpenAI's CLIP makes where miniclip's small models default otherwise.
CLIP_CHOICES: dict[str, Any] = {
    "image_pool": "class",
    "image_ln_pre": True,
    "patch_bias": False,
    "activation": "quick_gelu",
    "text_causal": True,
    "text_pool": "end",
}

_TEXT_BASE = {"vocab_size": 49408, "context_length": 77, "text_width": 512, "text_depth": 12, "text_heads": 8}
_IMAGE_BASE = {"image_size": 224, "channels": 3, "image_width": 768, "image_depth": 12, "image_heads": 12}

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "ViT-B/32": _TEXT_BASE | _IMAGE_BASE | {"patch_size": 32, "embed_dim": 512},
    "ViT-B/16": _TEXT_BASE | _IMAGE_BASE | {"patch_size": 16, "embed_dim": 512},
    "ViT-L/14": _TEXT_BASE
    | _IMAGE_BASE
    | {"patch_size": 14, "embed_dim": 768, "image_width": 1024, "image_depth": 24, "image_heads": 16}
    | {"text_width": 768, "text_heads": 12},
}


def openai_config(name: str, **changes: Any) -> ModelConfig:
    """The :class:`ModelConfig` of OpenAI's CLIP ``name`` (a key of :data:`ARCHITECTURES`), with ``changes``."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown CLIP architecture {name!r}; choose from {tuple(ARCHITECTURES)}")
    values = {"image_encoder": "vit", "text_encoder": "transformer", "mlp_ratio": 4, "dropout": 0.0}
    cfg = ModelConfig(**(values | CLIP_CHOICES | ARCHITECTURES[name] | changes))
    cfg.validate()
    return cfg
