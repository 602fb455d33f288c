"""The name table: every tensor of Hugging Face's CLIP, and the miniclip parameter it becomes.

Released CLIP weights name their tensors after Hugging Face's modules
(``vision_model.encoder.layers.3.self_attn.q_proj.weight``); miniclip's parameters are named
after its own (``image.blocks.3.attn.qkv.weight``). The table below is the whole translation,
written out so it can be read line by line. Four kinds of conversion, each a line of NumPy:

    as_is       the same array (LayerNorm gains and shifts, biases, embeddings, the logit scale)
    transposed  a linear layer's weight: PyTorch stores (out, in), miniclip (in, out) so that
                y = x @ W reads as drawn by hand (:mod:`miniclip.layers.linear`)
    patches     the patch embedding, a bias-free convolution of kernel = stride = p, weight
                (D, C, p, p): flattened to (D, C·p·p) in the order patchify flattens a patch
                (channel, row, column), then transposed: the convolution *is* patchify + linear
    fused       query, key and value: three (D, D) projections in the file, one (D, 3D) matrix
                in miniclip's attention (``[W_qᵀ | W_kᵀ | W_vᵀ]``, biases likewise)

:func:`hf_to_miniclip` applies it and refuses, by name, a tensor the table expects and the file
lacks, a tensor the file holds and the table does not know, and a tensor of the wrong shape —
so a file for another architecture can never be half-loaded. :func:`miniclip_to_hf` runs the
table backwards (the test suite writes miniclip's weights into Hugging Face's model with it).
Two buffers some files carry, ``*.embeddings.position_ids`` (the numbers 0, 1, 2, …), are
positions, not weights: they are checked and set aside (:data:`SET_ASIDE`).

Lesson 16 prints the table for ViT-B/32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from miniclip.model.config import ModelConfig

Convert = Callable[..., np.ndarray]


def as_is(a: np.ndarray) -> np.ndarray:
    return a


def transposed(w: np.ndarray) -> np.ndarray:
    return w.T  # (out, in) → (in, out)


def patches(w: np.ndarray) -> np.ndarray:
    return w.reshape(w.shape[0], -1).T  # (D, C, p, p) → (D, C·p·p) → (C·p·p, D)


def fused_weights(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.concatenate([q.T, k.T, v.T], axis=1)  # three (out, in) → one (in, 3·out)


def fused_biases(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.concatenate([q, k, v])  # (3·out,)


@dataclass(frozen=True)
class Row:
    """One miniclip parameter, the file's tensors it is made from, and how."""

    miniclip: str
    hf: tuple[str, ...]
    convert: Convert


# One transformer block, the same in both towers: miniclip's name ← Hugging Face's, under each block's prefix.
BLOCK: tuple[tuple[str, tuple[str, ...], Convert], ...] = (
    ("ln1.weight", ("layer_norm1.weight",), as_is),
    ("ln1.bias", ("layer_norm1.bias",), as_is),
    (
        "attn.qkv.weight",
        ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"),
        fused_weights,
    ),
    ("attn.qkv.bias", ("self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"), fused_biases),
    ("attn.out.weight", ("self_attn.out_proj.weight",), transposed),
    ("attn.out.bias", ("self_attn.out_proj.bias",), as_is),
    ("ln2.weight", ("layer_norm2.weight",), as_is),
    ("ln2.bias", ("layer_norm2.bias",), as_is),
    ("mlp.fc1.weight", ("mlp.fc1.weight",), transposed),
    ("mlp.fc1.bias", ("mlp.fc1.bias",), as_is),
    ("mlp.fc2.weight", ("mlp.fc2.weight",), transposed),
    ("mlp.fc2.bias", ("mlp.fc2.bias",), as_is),
)

# Everything outside the blocks.
IMAGE: tuple[tuple[str, tuple[str, ...], Convert], ...] = (
    ("image.patch_embed.weight", ("vision_model.embeddings.patch_embedding.weight",), patches),
    ("image.class_token.token", ("vision_model.embeddings.class_embedding",), as_is),
    ("image.positions.positions", ("vision_model.embeddings.position_embedding.weight",), as_is),
    ("image.ln_pre.weight", ("vision_model.pre_layrnorm.weight",), as_is),  # sic: Hugging Face's spelling
    ("image.ln_pre.bias", ("vision_model.pre_layrnorm.bias",), as_is),
    ("image.norm.weight", ("vision_model.post_layernorm.weight",), as_is),
    ("image.norm.bias", ("vision_model.post_layernorm.bias",), as_is),
    ("image.project.weight", ("visual_projection.weight",), transposed),
)
TEXT: tuple[tuple[str, tuple[str, ...], Convert], ...] = (
    ("text.lookup.table", ("text_model.embeddings.token_embedding.weight",), as_is),
    ("text.positions.positions", ("text_model.embeddings.position_embedding.weight",), as_is),
    ("text.norm.weight", ("text_model.final_layer_norm.weight",), as_is),
    ("text.norm.bias", ("text_model.final_layer_norm.bias",), as_is),
    ("text.project.weight", ("text_projection.weight",), transposed),
)
HEAD: tuple[tuple[str, tuple[str, ...], Convert], ...] = (("logit_scale.log_scale", ("logit_scale",), as_is),)

SET_ASIDE = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")  # 0, 1, 2, …: not weights


def _blocks(depth: int, ours: str, theirs: str) -> list[Row]:
    """:data:`BLOCK` for each of ``depth`` blocks: ``{ours}.{i}.…`` ← ``{theirs}.{i}.…``."""
    return [
        Row(f"{ours}.{i}.{m}", tuple(f"{theirs}.{i}.{h}" for h in hf), convert)
        for i in range(depth)
        for m, hf, convert in BLOCK
    ]


def name_table(cfg: ModelConfig) -> list[Row]:
    """Every row for a CLIP of ``cfg``'s depths: the image tower, the text tower, the logit scale."""
    return [
        *(Row(*row) for row in IMAGE[:5]),
        *_blocks(cfg.image_depth, "image.blocks", "vision_model.encoder.layers"),
        *(Row(*row) for row in IMAGE[5:] + TEXT[:2]),
        *_blocks(cfg.text_depth, "text.blocks", "text_model.encoder.layers"),
        *(Row(*row) for row in TEXT[2:] + HEAD),
    ]


# Each conversion run backwards: miniclip's array → the file's tensors, given their shapes.
_BACKWARDS: dict[Convert, Callable[[np.ndarray, list[tuple[int, ...]]], tuple[np.ndarray, ...]]] = {
    as_is: lambda a, shapes: (a,),
    transposed: lambda w, shapes: (w.T,),
    patches: lambda w, shapes: (w.T.reshape(shapes[0]),),
    fused_weights: lambda w, shapes: tuple(part.T for part in np.split(w, 3, axis=1)),
    fused_biases: lambda b, shapes: tuple(np.split(b, 3)),
}


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def hf_to_miniclip(
    tensors: Mapping[str, np.ndarray], cfg: ModelConfig, shapes: Mapping[str, tuple[int, ...]], where: str
) -> dict[str, np.ndarray]:
    """miniclip's state (name → array) from the file's ``tensors``, checked against the model's ``shapes``.

    ``ValueError`` naming every missing and every unknown tensor, or the first of the wrong shape.
    """
    table = name_table(cfg)
    wanted = [h for row in table for h in row.hf]
    missing = [h for h in wanted if h not in tensors]
    unknown = sorted(set(tensors) - set(wanted) - set(SET_ASIDE))
    if missing or unknown:
        parts = ([f"missing {len(missing)} tensors: {_names(missing)}"] if missing else []) + (
            [f"{len(unknown)} tensors this CLIP has no place for: {_names(unknown)}"] if unknown else []
        )
        raise ValueError(f"{where} does not hold the CLIP its config.json describes: " + "; ".join(parts))
    for name in SET_ASIDE:
        if name in tensors and not np.array_equal(np.ravel(tensors[name]), np.arange(np.size(tensors[name]))):
            raise ValueError(f"{where}: {name} should count 0, 1, 2, …, which it does not")
    state = {}
    for row in table:
        parts = [np.asarray(tensors[h]) for h in row.hf]
        value = row.convert(*parts)
        if value.shape != tuple(shapes[row.miniclip]):
            given = ", ".join(f"{h} {tuple(p.shape)}" for h, p in zip(row.hf, parts, strict=True))
            raise ValueError(
                f"{where}: {given} gives {row.miniclip} the shape {value.shape}, but the model's is "
                f"{tuple(shapes[row.miniclip])}"
            )
        state[row.miniclip] = np.array(value, order="C")  # (ascontiguousarray would make the 0-d scale 1-d)
    return state


def miniclip_to_hf(
    arrays: Mapping[str, np.ndarray], cfg: ModelConfig, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """The table backwards: miniclip's ``arrays`` (weights, or their gradients) under the file's names.

    ``shapes`` are the file's tensor shapes (the patch embedding needs its (D, C, p, p)).
    """
    out: dict[str, np.ndarray] = {}
    for row in name_table(cfg):
        parts = _BACKWARDS[row.convert](np.asarray(arrays[row.miniclip]), [tuple(shapes[h]) for h in row.hf])
        out.update({h: np.array(p, order="C") for h, p in zip(row.hf, parts, strict=True)})
    return out
