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

Large files are read without decoding every pixel where Pillow can: a JPEG is decoded at the
smallest of 1/1, 1/2, 1/4 or 1/8 scale that still covers ``image_size`` (Pillow's ``draft``).
An image that would still decode to more than :data:`MAX_PIXELS` (40 megapixels, about 160 MB
as RGBA) is refused with :class:`ImageTooLargeError`, naming the file and its size, before any
pixel is decoded: a 12 KB PNG can declare 10000×10000 pixels. In a folder such a file is
skipped like an unreadable one, its size given in the warning. Every file is opened so, by
:func:`open_image`, however it is read after.

A model on released CLIP weights (or fine-tuned from them) reads its files as CLIP's
preprocessing does instead (:func:`clip_image`, ``clip_preprocessing``): every pixel decoded,
the shortest side to ``image_size`` (bicubic), then the centre crop — the very pixels of
``transformers``' ``CLIPImageProcessor`` (:func:`miniclip.pretrained.preprocess.prepare`).

A folder needs at least two classes: zero-shot classification among one class is always
"right", and contrastive batches would all share one caption. Class names must also be
distinct words to the tokenizer (:func:`miniclip.model.tokenizer.indistinct`): folders ``Cat`` and
``cat``, or ``c++`` and ``c#``, would get identical captions, and a name without letters or
digits (``!!!``, an emoji) captions that say nothing, so such folders are refused, named,
before any image is read.

The split is made per class: a seeded shuffle of each class's images, the first
``round(test_fraction · n)`` of them for testing (always leaving at least one for training),
so both splits keep the class proportions.

Lesson 08 makes such a folder of shapes and loads it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from miniclip.backend import check_memory
from miniclip.data.captions import TRAIN_TEMPLATES
from miniclip.data.dataset import ImageTextDataset
from miniclip.model.tokenizer import indistinct, words
from miniclip.pretrained import preprocess  # a module, not its names: it imports miniclip.data in turn

MAX_PIXELS = 40_000_000  # the most pixels an image may decode to (after a JPEG's draft scaling)
# What Pillow raises for a file it cannot read as an image (a folder skips it; classify names it).
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class ImageTooLargeError(ValueError):
    """An image file whose pixels would take too much memory to decode; the message names it and its size."""

    def __init__(self, message: str, size: str) -> None:
        super().__init__(message)
        self.size = size  # e.g. "10000×10000 pixels", for a short mention in a list of skipped files


def open_image(path: str | os.PathLike[str], draft: int | None = None) -> Image.Image:
    """The image file at ``path`` opened: its header read, no pixel decoded; too large, :class:`ImageTooLargeError`.

    ``draft``: a JPEG is decoded at the smallest of 1/1, 1/2, 1/4 or 1/8 scale that still covers
    ``draft`` × ``draft`` (Pillow's ``draft``), and its size checked at that scale. Above
    :data:`MAX_PIXELS` the file is refused before anything is decoded. Use it in a ``with`` block.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the cap below is stricter
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as exc:  # beyond Pillow's own limit: it gives no file name
            raise ImageTooLargeError(
                f"{path} is too large to load ({exc}); miniclip decodes images of at most {MAX_PIXELS:,} pixels: "
                "shrink it first",
                "beyond Pillow's limit",
            ) from None
    if draft is not None:
        image.draft(None, (draft, draft))
    w, h = image.size
    if w * h > MAX_PIXELS:
        image.close()
        raise ImageTooLargeError(
            f"{path} is {w}×{h} pixels ({w * h / 1e6:.0f} megapixels), more than the {MAX_PIXELS / 1e6:g} "
            f"megapixels miniclip decodes (its pixels alone would take {w * h * 4 / 2**30:.1f} GB): "
            "shrink it first",
            f"{w}×{h} pixels",
        )
    return image


def load_image(path: str | os.PathLike[str], image_size: int) -> np.ndarray:
    """One image file as (3, S, S) uint8: RGB, central square, resized to ``image_size`` (:func:`open_image` first)."""
    with open_image(path, draft=image_size) as im:
        im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
        im = im.resize((image_size, image_size), Image.Resampling.BICUBIC)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()  # (H, W, 3) → (3, H, W)


def clip_image(path: str | os.PathLike[str], image_size: int) -> np.ndarray:
    """One image file as (3, S, S) uint8, exactly as CLIP's preprocessing reads it (every pixel decoded).

    :func:`~miniclip.pretrained.preprocess.prepare`: the shortest side to S, bicubic, then the
    centre crop; opened by :func:`open_image` (no draft: CLIP decodes the whole photo).
    """
    with open_image(path) as im:
        return preprocess.prepare(im, image_size)


def check_class_names(root: Path, folders: list[str], class_names: list[str]) -> None:
    """``ValueError`` naming the class folder with no words, or two whose names read as the same words."""
    wordless, same = indistinct(class_names)
    if wordless is not None:
        raise ValueError(
            f"class folder {folders[class_names.index(wordless)]!r} in {root} has no words (letters or digits): "
            "its captions would say nothing about the class; rename it"
        )
    if same is not None:
        first = class_names.index(same[0])
        second = class_names.index(same[1], first + 1)  # "a_b" and "a b" are both the class "a b"
        raise ValueError(
            f"class folders {folders[first]!r} and {folders[second]!r} in {root} read as the same words "
            f"({' '.join(words(same[0]))!r}) to the tokenizer, which lower-cases and drops punctuation, so their "
            "captions would be identical and zero-shot could never tell them apart: rename or merge one"
        )


def load_folder(
    path: str | os.PathLike[str],
    image_size: int = 32,
    test_fraction: float = 0.2,
    seed: int = 0,
    *,
    clip_preprocessing: bool = False,
) -> ImageTextDataset:
    """A dataset from ``path/<class>/<image files>``, split per class into train and test.

    Each file is read by :func:`load_image`, or with ``clip_preprocessing`` by :func:`clip_image`
    (CLIP's way, for a model on released weights). The memory of every file at ``image_size`` is
    checked before the first is read (150 kB an image at CLIP's 224 × 224).
    """
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
    if len(class_dirs) < 2:
        raise ValueError(
            f"{root} has only one class sub-folder, {class_dirs[0].name!r}: a dataset needs at least two classes "
            f"(choosing among one class is always right, and every caption in a batch would be the same); "
            f"add a sub-folder {root}/<other_class>/ with images of another class"
        )
    class_names = [d.name.replace("_", " ") for d in class_dirs]
    check_class_names(root, [d.name for d in class_dirs], class_names)

    files = [sorted(f for f in d.iterdir() if f.is_file() and not f.name.startswith(".")) for d in class_dirs]
    total = sum(map(len, files))
    check_memory(total * 3 * image_size * image_size, f"the {total:,} files of {root} at {image_size}×{image_size}")
    read = clip_image if clip_preprocessing else load_image
    rng = np.random.default_rng(seed)
    skipped: list[str] = []
    split: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, (class_dir, class_files) in enumerate(zip(class_dirs, files, strict=True)):
        images = []
        for file in class_files:
            try:
                images.append(read(file, image_size))
            except ImageTooLargeError as exc:
                skipped.append(f"{class_dir.name}/{file.name} ({exc.size}, too large)")
            except UNREADABLE:
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
        class_names=class_names,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        train_templates=TRAIN_TEMPLATES,
    )
