"""Using a trained CLIP: classify your own images by name, search images with a sentence.

**Classify** (zero-shot, any labels you like): encode the image files and the prompt ensemble
of every label (:func:`miniclip.zeroshot.class_embeddings`), then turn cosines into
probabilities with the model's own learned temperature, as in training::

    p(label c | image n) = softmax_c( e^s · i_n · w_c )

**Search**: encode the query once and rank images by cosine with it::

    score_n = i_n · t_query           best images = the largest scores

Both take already-built objects (model, tokenizer, images), so the CLI can load a checkpoint
and tests can use a tiny untrained model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from miniclip.backend import get_array_module, to_host
from miniclip.data.folder import load_image
from miniclip.layers.softmax import softmax
from miniclip.tokenizer import Tokenizer, words
from miniclip.zeroshot import class_embeddings, encode_images, encode_texts

UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def load_images(image_paths: Sequence[str | os.PathLike[str]], image_size: int) -> np.ndarray:
    """Image files as (N, 3, S, S) uint8; a missing file or one Pillow cannot read is an error naming it."""
    if isinstance(image_paths, str | os.PathLike) or len(image_paths) == 0:
        raise ValueError(f"image_paths must be a non-empty list of file paths, got {image_paths!r}")
    images = []
    for path in map(Path, image_paths):
        if not path.exists():
            raise FileNotFoundError(f"image file {path} does not exist")
        if not path.is_file():
            raise ValueError(f"{path} is not a file (give image files, not folders)")
        try:
            images.append(load_image(path, image_size))  # (3, S, S)
        except UNREADABLE as exc:
            raise ValueError(f"cannot read {path} as an image: {exc}") from None
    return np.stack(images)  # (N, 3, S, S)


def classify_images(
    model: Any,
    tokenizer: Tokenizer,
    image_paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[str],
    templates: Sequence[str],
    image_size: int,
    normalize_fn: Callable[[Any], Any],
    context_length: int,
) -> list[list[tuple[str, float]]]:
    """For each image file, every label with its probability, most probable first."""
    if isinstance(labels, str) or len(labels) == 0 or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be a non-empty list of distinct strings, got {labels!r}")
    images = load_images(image_paths, image_size)  # (N, 3, S, S)
    classes = class_embeddings(model, tokenizer, labels, templates, context_length)  # (K, d)
    embeddings = encode_images(model, images, normalize_fn)  # (N, d)
    probs = to_host(softmax(model.logit_scale.scale * (embeddings @ classes.T), axis=1))  # (N, K) over the labels
    order = np.argsort(-probs, axis=1, kind="stable")  # (N, K) most probable first
    return [[(labels[c], float(row[c])) for c in ranking] for row, ranking in zip(probs, order, strict=True)]


def search_images(
    model: Any,
    tokenizer: Tokenizer,
    query: str,
    images_uint8: np.ndarray,
    normalize_fn: Callable[[Any], Any],
    context_length: int,
    top: int = 16,
    *,
    image_embeddings: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` images (N, C, H, W) closest to ``query``: host indices (top,) and cosines, best first.

    Pass ``image_embeddings`` (from :func:`miniclip.zeroshot.encode_images`) to search the same
    images with several queries without encoding them again.
    """
    if not isinstance(query, str) or not words(query):
        raise ValueError(f"query must be a sentence with at least one word, got {query!r}")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    if image_embeddings is None:
        image_embeddings = encode_images(model, images_uint8, normalize_fn)  # (N, d)
    elif image_embeddings.shape[0] != len(images_uint8):
        raise ValueError(
            f"image_embeddings has {image_embeddings.shape[0]} rows for {len(images_uint8)} images: they must match"
        )
    text = encode_texts(model, tokenizer, [query], context_length)[0]  # (d,)
    xp = get_array_module(image_embeddings)
    scores = image_embeddings @ text  # (N,)
    best = xp.argsort(-scores)[: min(top, scores.shape[0])]  # (top,)
    return to_host(best).astype(np.int64), to_host(scores[best])


def unknown_words(tokenizer: Tokenizer, text: str) -> list[str]:
    """The words of ``text`` the tokenizer does not know (they all become ``<unk>``): worth a warning."""
    return [w for w in words(text) if w not in tokenizer.ids]
