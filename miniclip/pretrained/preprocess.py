"""CLIP's image preprocessing: any photo to the (3, 224, 224) floats the released models were trained on.

Four steps, the same as ``transformers.CLIPImageProcessor`` with its default settings::

    1. RGB        greyscale, palette, CMYK … converted; transparency laid on a white background
    2. resize     the shortest side to 224, bicubic; the long side to int(224 · long / short)
    3. crop       the central 224 × 224 square: top = (H − 224) // 2, left = (W − 224) // 2
    4. normalise  x = (pixels / 255 − mean[c]) / std[c], with CLIP's mean and std per channel

**Why the shortest side, then a crop.** The vision transformer needs a fixed grid of patches
(224 / 32 = 7 × 7 for ViT-B/32). Squeezing a wide photo into a square would stretch every
object in it; scaling the *shortest* side to 224 keeps the shapes, and the crop then drops
the two ends of the long side. (Since the long side is never shorter than 224 after that,
the crop always fits: the reference's zero padding, for images smaller than the crop, is
never needed.)

**Why bicubic.** CLIP was trained on images resized with bicubic interpolation, and a model
sees the world through the statistics of its training pixels: the same photo resized
bilinearly is slightly softer, and the embeddings move with it. Bicubic weighs a 4 × 4
neighbourhood with a cubic kernel; when shrinking, PIL widens the kernel by the scale factor
so that every source pixel counts (no aliasing).

**PIL does the resampling.** The maths of CLIP is the point of this package; resampling
filters are not, and PIL's is the one the reference calls (``image.resize((w, h), BICUBIC)``,
no ``reducing_gap``), so the pixels come out identical. Steps 1–3 run on the host and give
uint8 (:func:`prepare`, :func:`prepare_batch`); step 4 is array arithmetic, done by
:func:`normalize` with the array module of its input, so it runs on the GPU when the pixels
are there.

Like the reference, nothing here turns a photo by its EXIF orientation tag (call
``PIL.ImageOps.exif_transpose`` first for that). OpenAI's original code differs in two small
ways: it rounds the crop offset instead of flooring it (a one-pixel shift when the excess is
odd), and it drops transparency instead of laying it on white.

Lesson 16 prepares its photograph with it before OpenAI's model classifies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from miniclip.data import augment

CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # R, G, B of CLIP's training images, in [0, 1]
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` in mode RGB; a transparent one (an alpha band, or a palette's transparent colour) laid on white."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def resized_size(width: int, height: int, size: int = CLIP_SIZE) -> tuple[int, int]:
    """``(width, height)``: the shortest side ``size``, the other ``int(size · long / short)`` as the reference."""
    short, long = min(width, height), max(width, height)
    long = int(size * long / short)  # the reference's float expression, truncated
    return (size, long) if width <= height else (long, size)


def _check_size(size: int) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a whole number >= 1, got {size!r}")


def prepare(image: Image.Image, size: int = CLIP_SIZE) -> np.ndarray:
    """Steps 1–3 for one PIL image: uint8 (3, size, size) on the host, ready for :func:`normalize`."""
    if not isinstance(image, Image.Image):
        raise ValueError(f"prepare takes a PIL image, got {type(image).__name__}")
    _check_size(size)
    if min(image.size) < 1:
        raise ValueError(f"the image has no pixels: {image.size[0]}×{image.size[1]}")
    rgb = to_rgb(image)
    width, height = resized_size(*rgb.size, size)
    pixels = np.asarray(rgb.resize((width, height), Image.Resampling.BICUBIC))  # (height, width, 3)
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(pixels[top : top + size, left : left + size].transpose(2, 0, 1))  # (3, size, size)


def prepare_batch(images: np.ndarray, size: int = CLIP_SIZE) -> np.ndarray:
    """Steps 1–3 for uint8 images already in memory, (N, C, H, W) with C = 1, 3 or 4: uint8 (N, 3, size, size).

    Each image goes through PIL exactly as a photo would (one channel as greyscale, four as
    RGBA), e.g. CIFAR-10's 32 × 32 test images, upscaled to 224. The result holds
    ``N · 3 · size²`` bytes (150 kB an image at 224): pass large sets in chunks.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        kind = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"prepare_batch takes a host uint8 array (N, C, H, W), got {kind}")
    if images.shape[1] not in (1, 3, 4):
        raise ValueError(f"images need 1, 3 or 4 channels (grey, RGB, RGBA), got {images.shape[1]}")
    _check_size(size)
    out = np.empty((len(images), 3, size, size), dtype=np.uint8)
    for n, image in enumerate(images):
        pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)  # (H, W) or (H, W, C)
        out[n] = prepare(Image.fromarray(np.ascontiguousarray(pixels)), size)
    return out


def normalize(images: Any, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD) -> Any:
    """Step 4: uint8 (N, 3, H, W) on either device → float32 ``(pixels / 255 − mean[c]) / std[c]``, same device.

    This is :func:`miniclip.data.augment.normalize` with CLIP's numbers: the formula is the
    same, only the constants differ. It computes it as ``pixels · (1 / (255 · std)) − mean / std``
    in float32, within 5e-7 of the reference's order of operations for every pixel value.
    """
    return augment.normalize(images, mean, std)


def preprocess(images: Image.Image | Sequence[Image.Image], size: int = CLIP_SIZE) -> np.ndarray:
    """All four steps on the host: PIL image(s) → float32 (N, 3, size, size), like ``CLIPImageProcessor``."""
    images = [images] if isinstance(images, Image.Image) else list(images)
    if not images:
        raise ValueError("preprocess needs at least one image")
    return normalize(np.stack([prepare(image, size) for image in images]))
