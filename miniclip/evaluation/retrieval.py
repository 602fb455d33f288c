"""Retrieval: find an image from its caption (text→image) and a caption from its image (image→text).

N (image, caption) pairs, embedded as unit vectors: row n of ``image_embs`` and row n of
``text_embs`` belong together. A query ranks every item of the other kind by cosine; each
direction is named query→what it ranks, as in :mod:`miniclip.layers.contrastive_loss`, so
``text_to_image`` ranks the images for each caption (a row of T·Iᵀ) and ``image_to_text``
the captions for each image (a column)::

    S = Q · Xᵀ                                    queries (n, d), items (N, d) → (n, N)
    rank_q = #{ items ranked ahead of the query's own pair }
    Recall@k = mean over queries of [rank_q < k]

Items are ordered by falling score, equal scores by index (a stable sort), so a query whose
item ties with others is not given the benefit of the doubt.

**Class-aware recall.** When many captions describe the same class (CIFAR-10's captions are
templates filled with one of ten names: a thousand test images share "a photo of a cat."),
the exact pair is often indistinguishable from others of its class, and plain recall
measures luck. With ``labels`` given, a query also scores a hit when ANY item of its own
class is in the top k::

    rank_q^class = #{ items of another class ranked ahead of the best item of the query's class }

It is never below plain recall (the own pair is of the query's class). Both are reported;
plain recall is the standard measure (Flickr30k, MS-COCO) and the one to quote beside
published numbers, class-aware recall the meaningful one for template captions.

The scores are computed ``chunk`` queries at a time: at most ``chunk × N`` of them exist at
once (10,000 × 10,000 float32 would be 400 MB).

Lesson 10 introduces both recalls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from miniclip.backend import get_array_module, to_host


def ranks(queries: Any, items: Any, labels: Any = None, chunk: int = 1024) -> Any:
    """For query n (paired with item n): how many items rank ahead of its pair, (N,) int64 on the device.

    With ``labels`` (N,) (device array, shared by queries and items) the class-aware rank:
    how many items of other classes rank ahead of the best item of the query's class.
    """
    xp = get_array_module(queries)
    n = queries.shape[0]
    index = xp.arange(n)  # (N,)
    out = []
    for start in range(0, n, chunk):
        rows = index[start : start + chunk]  # (c,) the queries of this chunk
        s = queries[start : start + chunk] @ items.T  # (c, N)
        if labels is None:
            target = rows  # the own pair
            other = None
        else:
            same = labels[rows][:, None] == labels[None, :]  # (c, N)
            target = xp.argmax(xp.where(same, s, -xp.inf), axis=1)  # (c,) best item of the query's class
            other = ~same
        best = s[xp.arange(rows.shape[0]), target][:, None]  # (c, 1)
        ahead = (s > best) | ((s == best) & (index[None, :] < target[:, None]))  # (c, N) stable order
        if other is not None:
            ahead &= other
        out.append(ahead.sum(axis=1).astype(xp.int64))  # (c,)
    return xp.concatenate(out)  # (N,)


def recall_at_k(
    image_embs: Any, text_embs: Any, ks: Sequence[int] = (1, 5, 10), labels: Any = None, chunk: int = 1024
) -> dict[str, dict[str, float]]:
    """Recall@k both ways for N paired embeddings (N, d) each; with ``labels`` (N,) also class-aware.

    Returns ``{"text_to_image": {"R@1": ..., "R@5": ..., ...}, "image_to_text": {...}}`` (text_to_image:
    each caption is a query that ranks the N images) and, with ``labels``, ``"text_to_image_class"``
    and ``"image_to_text_class"`` too. One device → host copy.
    """
    if image_embs.ndim != 2 or image_embs.shape != text_embs.shape or image_embs.shape[0] == 0:
        raise ValueError(
            f"need paired embeddings of one shape (N, d), N >= 1; got images {tuple(image_embs.shape)} "
            f"and texts {tuple(text_embs.shape)}"
        )
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of positive integers, got {ks!r}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    xp = get_array_module(image_embs)
    n = image_embs.shape[0]
    directions = {  # name: (queries, the items they rank)
        "text_to_image": (text_embs, image_embs),
        "image_to_text": (image_embs, text_embs),
    }
    found = [ranks(q, x, chunk=chunk) for q, x in directions.values()]
    names = list(directions)
    if labels is not None:
        host = np.asarray(to_host(labels))
        if host.shape != (n,) or host.dtype.kind not in "iu":
            raise ValueError(f"labels must be {n} integers (one per pair), got dtype {host.dtype} shape {host.shape}")
        y = xp.asarray(host)  # (N,)
        found += [ranks(q, x, y, chunk) for q, x in directions.values()]
        names += [f"{name}_class" for name in directions]
    all_ranks = to_host(xp.stack(found))  # (directions, N): the one copy
    return {
        name: {f"R@{int(k)}": float((r < int(k)).mean()) for k in ks} for name, r in zip(names, all_ranks, strict=True)
    }
