"""A Hugging Face CLIP ``config.json`` read as a miniclip :class:`~miniclip.model.config.ModelConfig`.

The file holds the two towers' sizes under ``text_config`` and ``vision_config`` and the shared
width under ``projection_dim``. Older files leave out what equals Hugging Face's default, so a
missing key takes the default of ``CLIPTextConfig`` / ``CLIPVisionConfig`` (:data:`TEXT_DEFAULTS`,
:data:`VISION_DEFAULTS`: ViT-B/32's sizes). Each size goes to the miniclip field of the same
meaning, and OpenAI's architectural choices (:data:`miniclip.model.openai.CLIP_CHOICES`) are
switched on::

    text_config.hidden_size / num_hidden_layers / num_attention_heads  →  text_width / text_depth / text_heads
    text_config.vocab_size / max_position_embeddings                     →  vocab_size / context_length
    vision_config.hidden_size / num_hidden_layers / num_attention_heads  →  image_width / image_depth / image_heads
    vision_config.image_size / patch_size / num_channels                 →  image_size / patch_size / channels
    intermediate_size / hidden_size (both towers, equal)                 →  mlp_ratio
    projection_dim                                                       →  embed_dim

What miniclip's layers cannot reproduce is refused by name rather than approximated: an
activation other than QuickGELU and the tanh GELU (:data:`HF_ACTIVATIONS`; Hugging Face's
``"gelu"`` is the erf form, which miniclip does not compute: close, not equal), a LayerNorm ε
other than 10⁻⁵, MLP widths that are not the same whole multiple of the stream in both
towers. Lesson 16 reads one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from miniclip.atomic import strict_json
from miniclip.model.config import ModelConfig
from miniclip.model.openai import CLIP_CHOICES

TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 512,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}
VISION_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 32,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}
HF_ACTIVATIONS = {"quick_gelu": "quick_gelu", "gelu_pytorch_tanh": "gelu"}  # Hugging Face's name → miniclip's


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, strictly (no NaN or Infinity); ``ValueError`` naming the file otherwise."""
    try:
        data = strict_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _tower(config: dict[str, Any], key: str, defaults: dict[str, Any], where: str) -> dict[str, Any]:
    values = config.get(key) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{where}: {key!r} must be an object")
    tower = defaults | {k: values[k] for k in defaults if k in values}
    for name, default in defaults.items():
        value = tower[name]
        if isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{where}: {key}.{name} must be a whole number >= 1, got {value!r}")
        if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{where}: {key}.{name} must be a number, got {value!r}")
    act = tower["hidden_act"]
    if act not in HF_ACTIVATIONS:
        raise ValueError(
            f"{where}: {key}.hidden_act {act!r} is not one miniclip computes exactly; it has QuickGELU "
            f"('quick_gelu', OpenAI's CLIP) and the tanh GELU ('gelu_pytorch_tanh')"
        )
    if not math.isclose(float(tower["layer_norm_eps"]), 1e-5, rel_tol=1e-6):
        raise ValueError(
            f"{where}: {key}.layer_norm_eps {tower['layer_norm_eps']} is not CLIP's 1e-5, which miniclip uses"
        )
    ratio, rest = divmod(tower["intermediate_size"], tower["hidden_size"])
    if rest:
        raise ValueError(
            f"{where}: {key}.intermediate_size {tower['intermediate_size']} is not a whole multiple of "
            f"hidden_size {tower['hidden_size']}"
        )
    return tower | {"mlp_ratio": ratio, "activation": HF_ACTIVATIONS[act]}


def model_config_from_hf(config: dict[str, Any], where: str = "config.json") -> ModelConfig:
    """The miniclip configuration of the CLIP that the Hugging Face ``config`` describes; ``ValueError`` if none."""
    if config.get("model_type", "clip") != "clip":
        raise ValueError(f"{where}: model_type {config.get('model_type')!r} is not 'clip'")
    text = _tower(config, "text_config", TEXT_DEFAULTS, where)
    vision = _tower(config, "vision_config", VISION_DEFAULTS, where)
    if (text["mlp_ratio"], text["activation"]) != (vision["mlp_ratio"], vision["activation"]):
        raise ValueError(
            f"{where}: the towers differ in MLP width ratio or activation ({text['mlp_ratio']}, {text['activation']} "
            f"against {vision['mlp_ratio']}, {vision['activation']}); miniclip shares one of each"
        )
    values = dict(CLIP_CHOICES) | {
        "image_encoder": "vit",
        "text_encoder": "transformer",
        "embed_dim": config.get("projection_dim", 512),
        "image_size": vision["image_size"],
        "channels": vision["num_channels"],
        "patch_size": vision["patch_size"],
        "image_width": vision["hidden_size"],
        "image_depth": vision["num_hidden_layers"],
        "image_heads": vision["num_attention_heads"],
        "vocab_size": text["vocab_size"],
        "context_length": text["max_position_embeddings"],
        "text_width": text["hidden_size"],
        "text_depth": text["num_hidden_layers"],
        "text_heads": text["num_attention_heads"],
        "mlp_ratio": text["mlp_ratio"],
        "activation": text["activation"],
        "dropout": 0.0,
    }
    try:
        return ModelConfig.from_dict(values)  # validated: heads divide widths, patches tile the image, ...
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_hf_config(folder: str | os.PathLike[str]) -> ModelConfig:
    """:func:`model_config_from_hf` of ``folder/config.json``."""
    path = Path(folder) / "config.json"
    return model_config_from_hf(read_json(path), where=str(path))
