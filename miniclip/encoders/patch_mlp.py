"""Patch MLP image encoder: the walkthrough's image side, patch vectors averaged.

    images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear+ReLU→ (N, P, W) ─mean pool→ (N, W)
    ─project→ (N, d)

Each p×p patch is flattened and passed through the same linear+ReLU on its own; the mean
over the patches forgets where each patch was. The backward runs the chain in reverse::

    dpooled = dI · W_projᵀ          dhidden[n, j] = dpooled[n] / P
    dpatches = (dhidden ⊙ relu') · W_encᵀ         dimages = the patches put back where they came from

:mod:`.vit` keeps the patches and the linear layer, adds a position to each patch, and lets
attention mix them before the pooling; :mod:`.cnn` replaces them with convolutions. Lessons 01
and 03 derive it by hand (the walkthrough); lesson 07 sets the CNN and the ViT beside it.

Registered as ``"patch_mlp"`` (:mod:`miniclip.encoders.registry`), with its cost rows and its
PyTorch twin below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from miniclip.encoders.counting import LayerCost, free_row, linear_row
from miniclip.encoders.registry import EncoderSpec, register
from miniclip.layers import Linear, MeanPool, Patchify, ReLU, projection
from miniclip.module import Module

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig


def check_patch_size(image_size: int, patch_size: int) -> None:
    """Raise ``ValueError`` unless square patches of side ``patch_size`` tile the image exactly (the ViT's rule too)."""
    if patch_size < 1 or image_size % patch_size:
        raise ValueError(f"patch size {patch_size} does not divide the image size {image_size}")


class PatchMLP(Module):
    """patchify → linear + ReLU → mean pool (over patches) → project."""

    def __init__(
        self,
        *,
        channels: int,
        patch_size: int,
        width: int,
        embed_dim: int,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        self.patchify = Patchify(patch_size)
        self.encode = Linear(channels * patch_size**2, width, rng=rng, dtype=dtype)
        self.relu = ReLU()
        self.pool = MeanPool()
        self.project = projection(width, embed_dim, rng=rng, dtype=dtype)

    def forward(self, images: Any) -> Any:
        patches = self.patchify(images)  # (N, P, C·p·p)
        hidden = self.relu(self.encode(patches))  # (N, P, W)
        pooled = self.pool(hidden)  # (N, W)
        return self.project(pooled)  # (N, d)

    def backward(self, di: Any, input_grad: bool = True) -> Any:
        dpooled = self.project.backward(di)  # (N, W)
        dhidden = self.pool.backward(dpooled)  # (N, P, W)
        dpatches = self.encode.backward(self.relu.backward(dhidden))  # (N, P, C·p·p)
        return self.patchify.backward(dpatches) if input_grad else None  # (N, C, H, W)


# -- its place in the registry: built, checked and costed from a ModelConfig ---------------------


def _build(cfg: ModelConfig, *, rng: np.random.Generator, dtype: Any) -> PatchMLP:
    return PatchMLP(
        channels=cfg.channels,
        patch_size=cfg.patch_size,
        width=cfg.image_width,
        embed_dim=cfg.embed_dim,
        rng=rng,
        dtype=dtype,
    )


def _validate(cfg: ModelConfig) -> None:
    check_patch_size(cfg.image_size, cfg.patch_size)


def patch_mlp_cost(cfg: ModelConfig, prefix: str = "image.") -> list[LayerCost]:
    """patchify → linear + ReLU (on every patch) → mean pool → projection, per image."""
    patches = (cfg.image_size // cfg.patch_size) ** 2
    patch_values, width = cfg.channels * cfg.patch_size**2, cfg.image_width
    return [
        free_row(prefix + "patchify", (patches, patch_values)),
        linear_row(prefix + "encode", patches, patch_values, width, shape=(patches,)),
        free_row(prefix + "relu", (patches, width)),
        free_row(prefix + "pool", (width,)),
        linear_row(prefix + "project", 1, width, cfg.embed_dim, bias=False),
    ]


def torch_patch_mlp(cfg: ModelConfig) -> Any:
    """This encoder in PyTorch, parameters named as here (``miniclip bench``'s twin)."""
    import torch

    from miniclip.encoders.torch_parts import patchify

    nn, F = torch.nn, torch.nn.functional

    class TorchPatchMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encode = nn.Linear(cfg.channels * cfg.patch_size**2, cfg.image_width)
            self.project = nn.Linear(cfg.image_width, cfg.embed_dim, bias=False)

        def forward(self, images: Any) -> Any:
            return self.project(F.relu(self.encode(patchify(images, cfg.patch_size))).mean(dim=1))

    return TorchPatchMLP()


register(
    EncoderSpec(
        name="patch_mlp",
        side="image",
        cls=PatchMLP,
        build=_build,
        cost=patch_mlp_cost,
        reads=("image_size", "channels", "patch_size", "image_width", "embed_dim"),
        validate=_validate,
        torch_twin=torch_patch_mlp,
    )
)
