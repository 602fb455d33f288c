"""Datasets of labelled images that become (image, caption) pairs, and their augmentation.

    load_dataset("cifar10")          CIFAR-10 from the official binary files (downloaded if missing)
    load_dataset("shapes")           coloured shapes drawn in NumPy, some colour–shape pairs held out
    load_dataset("path/to/photos")   your own images, one sub-folder per class

Every loader returns an :class:`ImageTextDataset`: uint8 images (N, C, H, W), int64 labels,
class names and caption templates. Captions are made per example from a template and the
class name (:mod:`miniclip.data.captions`); :mod:`miniclip.data.augment` crops, flips,
normalises and batches on NumPy or CuPy.

Lesson 08 works through all of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from miniclip.backend import check_memory
from miniclip.data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    batches,
    channel_stats,
    horizontal_flip,
    normalize,
    random_crop,
)
from miniclip.data.captions import (
    CLIP_CIFAR10_TEMPLATES,
    SHAPES_TEMPLATES,
    TRAIN_TEMPLATES,
    UNSEEN_TEMPLATES,
    make_captions,
    prompts,
)
from miniclip.data.cifar10 import DownloadError, data_root, load_cifar10
from miniclip.data.dataset import ImageTextDataset
from miniclip.data.folder import MAX_PIXELS, ImageTooLargeError, load_folder
from miniclip.data.shapes import load_shapes


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    image_size: int | None = None,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
    test_fraction: float = 0.2,
) -> ImageTextDataset:
    """Load ``"cifar10"``, ``"shapes"`` or a folder of images (one sub-folder per class) by name.

    ``data_dir`` and ``download`` are for CIFAR-10 (see :func:`~miniclip.data.cifar10.data_root`);
    ``test_fraction`` is the share of each class a folder holds out for testing. ``n_train`` and
    ``n_test``: for shapes, how many images to draw (default 4000 and 1000); for CIFAR-10 and a
    folder, a seeded subset of that many images of each split (default: all of it,
    :meth:`ImageTextDataset.subset`). ``seed`` draws the shapes, the folder split and the
    subsets. ``image_size`` defaults to 32 (CIFAR-10 is always 32).
    """
    if name == "cifar10":
        if image_size not in (None, 32):
            raise ValueError(f"CIFAR-10 images are 32x32; image_size={image_size} is not available")
        return load_cifar10(data_dir, download=download).subset(n_train, n_test, seed)
    if name == "shapes":
        sizes = {"n_train": 4000 if n_train is None else n_train, "n_test": 1000 if n_test is None else n_test}
        side = image_size or 32
        drawn = f"--n-train {sizes['n_train']:,} and --n-test {sizes['n_test']:,} (shapes of 3×{side}×{side} bytes)"
        check_memory(sum(sizes.values()) * 3 * side * side, drawn)
        return load_shapes(**sizes, image_size=side, seed=seed)
    if Path(name).is_dir():
        folder = load_folder(name, image_size=image_size or 32, test_fraction=test_fraction, seed=seed)
        return folder.subset(n_train, n_test, seed)
    raise ValueError(
        f"unknown dataset {name!r}: choose 'cifar10', 'shapes' or the path of a folder of images "
        f"with one sub-folder per class (no folder {str(Path(name).resolve())!r} exists)"
    )


__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CLIP_CIFAR10_TEMPLATES",
    "MAX_PIXELS",
    "SHAPES_TEMPLATES",
    "TRAIN_TEMPLATES",
    "UNSEEN_TEMPLATES",
    "DownloadError",
    "ImageTextDataset",
    "ImageTooLargeError",
    "batches",
    "channel_stats",
    "data_root",
    "horizontal_flip",
    "load_cifar10",
    "load_dataset",
    "load_folder",
    "load_shapes",
    "make_captions",
    "normalize",
    "prompts",
    "random_crop",
]
