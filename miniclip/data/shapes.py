"""Shapes: a synthetic dataset of coloured shapes, drawn in NumPy in a second, with nothing to download.

Every image shows one shape of one colour and one size on a grey, lightly noisy background::

    class "small red triangle"   =   size × colour × shape   =   2 × 6 × 4 = 48 classes

    label = (size · 6 + colour) · 4 + shape                   (class_names[label] is the name)

Each shape is a mask over the pixel grid, in coordinates centred on the shape and measured
in units of its radius ``r`` (``u = (x − cx) / r``, ``v = (y − cy) / r``, y pointing down)::

    circle    u² + v² ≤ 1
    square    |u| ≤ 0.85 and |v| ≤ 0.85
    triangle  −1 ≤ v ≤ 0.9 and |u| ≤ 1.1 · (v + 1) / 1.9      (apex up)
    cross     (|u| ≤ 0.3 and |v| ≤ 1) or (|v| ≤ 0.3 and |u| ≤ 1)

The radius is drawn per image from its size's range (a fraction of the image side), the
centre anywhere the whole shape fits, the colour jittered a little, the background a random
grey, and Gaussian noise (σ = 5) is added to every pixel.

Compositional zero-shot: the colour–shape pairs in :data:`HELDOUT` (each shape with one colour,
in both sizes) never appear in the training split, yet every colour and every shape does,
in other pairings. The test split draws all 48 classes equally often and the dataset's
``heldout_classes`` say which 8 were never seen, so one can ask whether the model composes
"yellow" and "circle" into "yellow circle" having trained on neither together.

Train and test come from separate seeded streams, so the test set does not depend on ``n_train``.

Lesson 08 introduces it; the later lessons train on it.
"""

from __future__ import annotations

import numpy as np

from miniclip.data.captions import SHAPES_TEMPLATES
from miniclip.data.dataset import ImageTextDataset

SIZES = {"small": (0.14, 0.19), "large": (0.28, 0.38)}  # radius as a fraction of the image side
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 190),
    "white": (240, 240, 240),
}
SHAPES = ("circle", "square", "triangle", "cross")
HELDOUT = [("yellow", "circle"), ("red", "square"), ("white", "triangle"), ("green", "cross")]  # never trained on
BACKGROUND = (40, 110)  # grey level range of the background
NOISE = 5.0  # standard deviation of the pixel noise
COLOUR_JITTER = 20  # each channel of the shape's colour moves by up to this much


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u**2 + v**2 <= 1


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (v <= 0.9) & (np.abs(u) <= 1.1 * (v + 1) / 1.9)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 1)) | ((av <= 0.3) & (au <= 1))


MASKS = {"circle": _circle, "square": _square, "triangle": _triangle, "cross": _cross}


def class_names() -> list[str]:
    """All 48 names, "small red circle" first, in label order (size, then colour, then shape)."""
    return [f"{size} {colour} {shape}" for size in SIZES for colour in COLOURS for shape in SHAPES]


def heldout_classes() -> list[int]:
    """Labels of the held-out colour–shape pairs, in both sizes."""
    names = class_names()
    return sorted(names.index(f"{size} {colour} {shape}") for size in SIZES for colour, shape in HELDOUT)


def draw(labels: np.ndarray, image_size: int, rng: np.random.Generator) -> np.ndarray:
    """Images (N, 3, S, S) uint8 of the classes in ``labels`` (N,), every random choice drawn from ``rng``."""
    n, s = len(labels), image_size
    size, colour, shape = np.unravel_index(labels, (len(SIZES), len(COLOURS), len(SHAPES)))  # 3 × (N,)
    lo, hi = np.array(list(SIZES.values()), dtype=np.float32).T * s  # (2,) each: radius range in pixels
    r = rng.uniform(lo[size], hi[size]).astype(np.float32)  # (N,)
    cy = rng.uniform(r, s - r).astype(np.float32)  # (N,): the whole shape fits
    cx = rng.uniform(r, s - r).astype(np.float32)  # (N,)
    grid = np.arange(s, dtype=np.float32) + 0.5  # pixel centres
    v = (grid[None, :, None] - cy[:, None, None]) / r[:, None, None]  # (N, S, 1): rows
    u = (grid[None, None, :] - cx[:, None, None]) / r[:, None, None]  # (N, 1, S): columns
    mask = np.zeros((n, s, s), dtype=bool)  # (N, S, S): True on the shape
    for k, name in enumerate(SHAPES):
        chosen = shape == k
        mask[chosen] = MASKS[name](u[chosen], v[chosen])
    palette = np.array(list(COLOURS.values()), dtype=np.float32)  # (6, 3)
    paint = palette[colour] + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, (n, 3)).astype(np.float32)  # (N, 3)
    grey = rng.uniform(*BACKGROUND, n).astype(np.float32)  # (N,)
    images = np.where(mask[:, None], paint[:, :, None, None], grey[:, None, None, None])  # (N, 3, S, S)
    images += NOISE * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def load_shapes(n_train: int = 4000, n_test: int = 1000, image_size: int = 32, seed: int = 0) -> ImageTextDataset:
    """The shapes dataset: ``n_train`` images of the 40 seen classes, ``n_test`` of all 48, each class equally often."""
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got n_train={n_train}, n_test={n_test}")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8 (shapes need a few pixels), got {image_size!r}")
    names, held = class_names(), heldout_classes()
    seen = np.array([c for c in range(len(names)) if c not in held], dtype=np.int64)  # (40,)
    train_rng, test_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    train_labels = seen[train_rng.permutation(np.arange(n_train) % len(seen))]  # (n_train,) balanced
    test_labels = test_rng.permutation(np.arange(n_test) % len(names)).astype(np.int64)  # (n_test,) balanced
    return ImageTextDataset(
        name="shapes",
        class_names=names,
        train_images=draw(train_labels, image_size, train_rng),
        train_labels=train_labels,
        test_images=draw(test_labels, image_size, test_rng),
        test_labels=test_labels,
        train_templates=SHAPES_TEMPLATES,
        heldout_classes=held,
    )
