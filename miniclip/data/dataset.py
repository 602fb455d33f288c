"""The dataset every loader returns: labelled images, class names, and caption templates.

CLIP learns from (image, caption) pairs. miniclip's datasets are labelled images, and a
caption is made per example from a template and the class name (see
:mod:`miniclip.data.captions`)::

    train_images[i]  (C, H, W) uint8      train_labels[i] = 3      class_names[3] = "cat"
    caption = one of train_templates, filled in: "a blurry photo of a cat."

The images stay uint8 on the host until a batch is taken (a quarter of the memory of
float32); :func:`miniclip.data.augment.normalize` turns a batch into floats.

``heldout_classes`` lists classes that never occur in the training split but do occur in the
test split (the shapes dataset holds some colour–shape combinations out), so zero-shot
accuracy can be measured separately on classes the model has never been trained on.

Lesson 08 looks at what it holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from miniclip.data.captions import check_templates, make_captions, prompts


@dataclass
class ImageTextDataset:
    """Labelled images split into train and test, with the templates that turn labels into captions."""

    name: str
    class_names: list[str]
    train_images: np.ndarray  # (N, C, H, W) uint8
    train_labels: np.ndarray  # (N,) int64, each in [0, num_classes)
    test_images: np.ndarray  # (M, C, H, W) uint8
    test_labels: np.ndarray  # (M,) int64
    train_templates: list[str]  # caption templates with one "{}" for the class name
    heldout_classes: list[int] = field(default_factory=list)  # classes absent from train, present in test

    def __post_init__(self) -> None:
        names = self.class_names
        if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ValueError(f"{self.name}: class_names must be distinct non-empty strings, got {names!r}")
        self.class_names = list(names)
        self.train_templates = check_templates(self.train_templates)
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
                raise ValueError(
                    f"{self.name}: {split}_images must be a NumPy uint8 array (N, C, H, W), "
                    f"got {type(images).__name__} {getattr(images, 'dtype', '')} shape {getattr(images, 'shape', '')}"
                )
            if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.shape != images.shape[:1]:
                raise ValueError(
                    f"{self.name}: {split}_labels must be a NumPy int64 array of shape {images.shape[:1]} "
                    f"(one per image), got {getattr(labels, 'dtype', type(labels).__name__)} "
                    f"shape {getattr(labels, 'shape', '')}"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
                raise ValueError(
                    f"{self.name}: {split}_labels must lie in [0, {len(names)}), "
                    f"got range [{labels.min()}, {labels.max()}]"
                )
        if len(self.train_labels) == 0:
            raise ValueError(f"{self.name}: the training split is empty")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise ValueError(
                f"{self.name}: train and test images differ in shape: (C, H, W) = "
                f"{self.train_images.shape[1:]} vs {self.test_images.shape[1:]}"
            )
        self.heldout_classes = sorted(int(c) for c in self.heldout_classes)
        bad = [c for c in self.heldout_classes if not 0 <= c < len(names)]
        leaked = sorted(set(self.heldout_classes) & set(np.unique(self.train_labels).tolist()))
        if bad or leaked:
            raise ValueError(
                f"{self.name}: heldout_classes must be class ids in [0, {len(names)}) absent from the "
                f"training labels; out of range {bad}, present in training {leaked}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)

    def captions(self, labels: Any, rng: np.random.Generator, templates: Sequence[str] | None = None) -> list[str]:
        """One caption per label, each from a template drawn by ``rng`` (default: ``train_templates``)."""
        return make_captions(labels, self.class_names, templates or self.train_templates, rng)

    def prompts(self, templates: Sequence[str] | None = None) -> list[list[str]]:
        """``[c][t]``: class ``c`` written with template ``t`` (default: ``train_templates``), for zero-shot."""
        return prompts(self.class_names, templates or self.train_templates)

    def heldout_mask(self, labels: Any) -> np.ndarray:
        """(N,) bool: which of ``labels`` (host array) belong to a held-out class."""
        return np.isin(np.asarray(labels), np.asarray(self.heldout_classes, dtype=np.int64))

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        held = f", {len(self.heldout_classes)} held out" if self.heldout_classes else ""
        return (
            f"ImageTextDataset({self.name!r}: {self.num_classes} classes{held}, {len(self.train_labels)} train + "
            f"{len(self.test_labels)} test images of {c}x{h}x{w}, {len(self.train_templates)} templates)"
        )

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> ImageTextDataset:
        """The same dataset with at most ``n_train`` training and ``n_test`` test images (None: all of a split).

        Each split keeps a seeded random choice of its images, in their original order, drawn
        from a generator of its own: the test subset depends on ``seed`` and ``n_test`` only, so
        runs that differ in ``n_train`` are tested on the same images. (The choice is not
        stratified: a small subset may miss a class.) A split that holds fewer images than asked
        for is kept whole, with a warning that says so (a named configuration's sizes, made for
        the shapes, may meet a smaller folder).
        """
        if n_train is None and n_test is None:
            return self  # nothing to choose: no copy of the arrays
        chosen = {}
        for stream, (split, n) in enumerate((("train", n_train), ("test", n_test))):
            rng = np.random.default_rng([seed, 3, stream])
            count = len(getattr(self, f"{split}_labels"))
            if n is not None and n < 1:
                raise ValueError(f"n_{split} must be at least 1 (or None: the whole split), got {n}")
            if n is not None and n > count:
                warnings.warn(
                    f"{self.name}'s {split} split holds {count} images, fewer than the {n} asked for: "
                    f"using all {count}",
                    stacklevel=3,  # the caller of load_dataset
                )
            if n is None or n >= count:
                chosen[split] = np.arange(count)
            else:
                chosen[split] = np.sort(rng.choice(count, size=n, replace=False))
        train, test = chosen["train"], chosen["test"]
        present = set(np.unique(self.train_labels[train]).tolist())
        return ImageTextDataset(
            name=self.name,
            class_names=self.class_names,
            train_images=self.train_images[train],
            train_labels=self.train_labels[train],
            test_images=self.test_images[test],
            test_labels=self.test_labels[test],
            train_templates=self.train_templates,
            heldout_classes=[c for c in self.heldout_classes if c not in present],
        )
