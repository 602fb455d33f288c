"""Similarity: every text against every image with one matrix product.

    S = T @ Iᵀ          T (N, d) texts,  I (M, d) images  →  S (N, M),  S[i, j] = t_i · img_j

Backward, with ``dS = dL/dS``::

    dT = dS @ I          (N, M) @ (M, d)
    dI = dSᵀ @ T         (M, N) @ (N, d)

With raw features this is the walkthrough's dot product; once the features are
L2-normalised it is the cosine similarity that CLIP uses.

Lesson 01 uses it by hand; lesson 03 derives its backward.
"""

from __future__ import annotations

from typing import Any

from miniclip.module import Module


class Similarity(Module):
    """The (texts × images) matrix of dot products."""

    def __init__(self) -> None:
        self._t: Any = None
        self._i: Any = None

    def forward(self, t: Any, i: Any) -> Any:
        if t.ndim != 2 or i.ndim != 2 or t.shape[1] != i.shape[1]:
            raise ValueError(
                f"Similarity needs text (N, d) and image (M, d) embeddings of one width d, "
                f"got {tuple(t.shape)} and {tuple(i.shape)}"
            )
        self._t, self._i = t, i
        return t @ i.T  # (N, M)

    def backward(self, ds: Any) -> tuple[Any, Any]:
        self._require_forward(self._t)
        return ds @ self._i, ds.T @ self._t  # (N, d), (M, d)
