"""Your own images: a folder with one sub-folder per class.

    my_photos/
        golden_retriever/   a.jpg  b.png  ...      class "golden retriever"
        tabby_cat/          c.jpg  ...             class "tabby cat"

The class name is the sub-folder's name with ``_`` read as a space; classes are sorted by
folder name, so the same folder always gives the same labels. Every file Pillow can open is
an image (hidden files are ignored); files it cannot read are skipped and counted in one
warning. Each image is converted to RGB, cut to its central square (the longer side is
trimmed equally at both ends) and resized to ``image_size`` × ``image_size`` (bicubic,
which also smooths as it shrinks), giving (3, S, S) uint8.

The split is made per class: a seeded shuffle of each class's images, the first
``round(test_fraction · n)`` of them for testing (always leaving at least one for training),
so both splits keep the class proportions.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from miniclip.data.captions import TRAIN_TEMPLATES
from miniclip.data.dataset import ImageTextDataset


def load_image(path: str | os.PathLike[str], image_size: int) -> np.ndarray:
    """One image file as (3, S, S) uint8: RGB, central square, resized to ``image_size``."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
        im = im.resize((image_size, image_size), Image.Resampling.BICUBIC)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()  # (H, W, 3) → (3, H, W)


def load_folder(
    path: str | os.PathLike[str],
    image_size: int = 32,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ImageTextDataset:
    """A dataset from ``path/<class>/<image files>``, split per class into train and test."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(
            f"{root} is a file, not an image folder (expected a folder with one sub-folder per class)"
        )
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist (expected one sub-folder per class)")
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"{root} has no class sub-folders: put each class's images in {root}/<class_name>/")

    rng = np.random.default_rng(seed)
    skipped: list[str] = []
    split: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, class_dir in enumerate(class_dirs):
        images = []
        for file in sorted(f for f in class_dir.iterdir() if f.is_file() and not f.name.startswith(".")):
            try:
                images.append(load_image(file, image_size))
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
                skipped.append(f"{class_dir.name}/{file.name}")
        if not images:
            unread = sum(name.startswith(f"{class_dir.name}/") for name in skipped)
            raise ValueError(f"class folder {class_dir} has no readable images ({unread} file(s) Pillow cannot read)")
        order = rng.permutation(len(images))
        n_test = min(round(test_fraction * len(images)), len(images) - 1)
        for rank, i in enumerate(order):
            part = "test" if rank < n_test else "train"
            split[part][0].append(images[i])
            split[part][1].append(label)
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} unreadable file(s) in {root}: {shown}", stacklevel=2)

    def stack(part: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = split[part]
        if not images:
            return np.zeros((0, 3, image_size, image_size), dtype=np.uint8), np.zeros(0, dtype=np.int64)
        return np.stack(images), np.asarray(labels, dtype=np.int64)  # (N, 3, S, S), (N,)

    train_images, train_labels = stack("train")
    test_images, test_labels = stack("test")
    return ImageTextDataset(
        name=root.resolve().name,
        class_names=[d.name.replace("_", " ") for d in class_dirs],
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        train_templates=TRAIN_TEMPLATES,
    )
