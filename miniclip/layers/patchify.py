"""Patchify: cut each image into square patches and flatten each patch into one vector.

    images (N, C, H, W)  →  patches (N, P, C·p·p)   with P = (H/p)·(W/p)

Patches are numbered row by row (left to right, then top to bottom); inside a patch the
values are ordered channel, then row, then column. The backward is the exact inverse
rearrangement: no arithmetic happens, so every gradient value goes back to the pixel it
came from.

Lesson 01 uses it by hand; lesson 03 derives its backward.
"""

from __future__ import annotations

from typing import Any

from miniclip.module import Module


class Patchify(Module):
    """Split ``(N, C, H, W)`` images into ``(N, P, C·p·p)`` flattened patches of side ``p``."""

    def __init__(self, patch_size: int) -> None:
        if patch_size < 1:
            raise ValueError(f"patch_size must be a positive integer, got {patch_size}")
        self.patch_size = patch_size
        self._shape: tuple[int, ...] | None = None

    def forward(self, images: Any) -> Any:
        if images.ndim != 4:
            raise ValueError(f"Patchify expects images of shape (N, C, H, W), got shape {tuple(images.shape)}")
        n, c, h, w = images.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"patch size {p} does not divide the image size {h}x{w} (images {tuple(images.shape)})")
        self._shape = images.shape
        x = images.reshape(n, c, h // p, p, w // p, p)  # (N, C, rows, p, cols, p)
        x = x.transpose(0, 2, 4, 1, 3, 5)  # (N, rows, cols, C, p, p)
        return x.reshape(n, (h // p) * (w // p), c * p * p)  # (N, P, C·p·p)

    def backward(self, dpatches: Any) -> Any:
        self._require_forward(self._shape)
        n, c, h, w = self._shape
        p = self.patch_size
        x = dpatches.reshape(n, h // p, w // p, c, p, p)  # undo the last reshape
        x = x.transpose(0, 3, 1, 4, 2, 5)  # (N, C, rows, p, cols, p): undo the transpose
        return x.reshape(n, c, h, w)
