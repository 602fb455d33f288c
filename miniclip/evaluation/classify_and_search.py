"""Using a trained CLIP: classify your own images by name, search images with a sentence.

**Classify** (zero-shot, any labels you like): encode the image files and the prompt ensemble
of every label (:func:`miniclip.evaluation.zeroshot.class_embeddings`), then turn cosines into
probabilities with the model's own learned temperature, as in training::

    p(label c | image n) = softmax_c( e^s · i_n · w_c )

**Search**: encode the query once and rank images by cosine with it::

    score_n = i_n · t_query           best images = the largest scores

A word the run's tokenizer never saw becomes ``<unk>``, one vector for every such word, so it
says nothing about the image. Both name such words (``on_warning``; the CLI prints them on
stderr). A label made only of unknown words would score exactly like any other such label: it
is dropped, saying so, and if no label is left, or a query is nothing but unknown words, it is
a ``ValueError``. Released CLIP weights come with a byte-pair tokenizer
(:class:`~miniclip.model.bpe.BPETokenizer`), in whose vocabulary every word is spelled: with it
nothing is unknown, so nothing is warned about or dropped. Either tokenizer judges what it is
given by its own encoding (:func:`text_key`): a label or query it encodes to nothing is refused
(the word tokenizer drops everything but letters and digits, so ``"🐱"`` is empty to it, while
byte pairs spell it), and so are two labels it encodes alike (``"C++"`` and ``"C#"`` are the
same words, but different byte pairs).

Both take already-built objects (model, tokenizer, images), so the CLI can load a checkpoint
and tests can use a tiny untrained model. Image files are read at the model's input size, each
the central square of the photo (:func:`~miniclip.data.folder.load_image`); for released
weights and runs fine-tuned from them, exactly as CLIP's preprocessing reads them
(:func:`~miniclip.data.folder.clip_image`).

Lesson 10 classifies image files with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from miniclip.backend import get_array_module, to_host
from miniclip.data.folder import UNREADABLE, ImageTooLargeError, clip_image, load_image
from miniclip.evaluation.zeroshot import Prepare, class_embeddings, encode_images, encode_texts
from miniclip.layers.softmax import softmax
from miniclip.model.tokenizer import Tokenizer, indistinct, words

if TYPE_CHECKING:
    from miniclip.model.bpe import BPETokenizer


def load_images(
    image_paths: Sequence[str | os.PathLike[str]], image_size: int, *, clip_preprocessing: bool = False
) -> np.ndarray:
    """Image files as (N, 3, S, S) uint8; a missing file or one Pillow cannot read is an error naming it.

    ``clip_preprocessing``: each file read by :func:`~miniclip.data.folder.clip_image`, CLIP's way,
    rather than by :func:`~miniclip.data.folder.load_image`.
    """
    read = clip_image if clip_preprocessing else load_image
    if isinstance(image_paths, str | os.PathLike) or len(image_paths) == 0:
        raise ValueError(f"image_paths must be a non-empty list of file paths, got {image_paths!r}")
    images = []
    for path in map(Path, image_paths):
        if not path.exists():
            raise FileNotFoundError(f"image file {path} does not exist")
        if not path.is_file():
            raise ValueError(f"{path} is not a file (give image files, not folders)")
        try:
            images.append(read(path, image_size))  # (3, S, S)
        except ImageTooLargeError:
            raise  # its message names the file and its size already
        except UNREADABLE as exc:
            raise ValueError(f"cannot read {path} as an image: {exc}") from None
    return np.stack(images)  # (N, 3, S, S)


def classify_images(
    model: Any,
    tokenizer: Tokenizer | BPETokenizer,
    image_paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[str],
    templates: Sequence[str],
    image_size: int,
    normalize_fn: Callable[[Any], Any],
    context_length: int,
    on_warning: Callable[[str], None] | None = None,
    *,
    clip_preprocessing: bool = False,
    batch_size: int = 500,
    text_batch: int = 500,
) -> list[list[tuple[str, float]]]:
    """For each image file, every label that can be scored with its probability, most probable first.

    A label of unknown words only is dropped, saying so to ``on_warning`` (module docstring).
    ``clip_preprocessing``: the files are read as CLIP reads them (:func:`load_images`).
    ``batch_size`` images and ``text_batch`` captions are encoded at a time
    (:func:`~miniclip.evaluation.zeroshot.encode_batch_size`, :func:`~miniclip.evaluation.zeroshot.text_batch_size`).
    """
    labels = scorable_labels(tokenizer, labels, on_warning)
    images = load_images(image_paths, image_size, clip_preprocessing=clip_preprocessing)  # (N, 3, S, S)
    classes = class_embeddings(model, tokenizer, labels, templates, context_length, text_batch=text_batch)  # (K, d)
    embeddings = encode_images(model, images, normalize_fn, batch_size)  # (N, d)
    probs = to_host(softmax(model.logit_scale.scale * (embeddings @ classes.T), axis=1))  # (N, K) over the labels
    order = np.argsort(-probs, axis=1, kind="stable")  # (N, K) most probable first
    return [[(labels[c], float(row[c])) for c in ranking] for row, ranking in zip(probs, order, strict=True)]


def search_images(
    model: Any,
    tokenizer: Tokenizer | BPETokenizer,
    query: str,
    images_uint8: np.ndarray,
    normalize_fn: Callable[[Any], Any],
    context_length: int,
    top: int = 16,
    *,
    image_embeddings: Any = None,
    on_warning: Callable[[str], None] | None = None,
    prepare: Prepare | None = None,
    batch_size: int = 500,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` images (N, C, H, W) closest to ``query``: host indices (top,) and cosines, best first.

    Pass ``image_embeddings`` (from :func:`miniclip.evaluation.zeroshot.encode_images`) to search the same
    images with several queries without encoding them again. Unknown words: see the module docstring.
    ``prepare`` and ``batch_size`` are :func:`~miniclip.evaluation.zeroshot.encode_images`' own.
    """
    if not isinstance(query, str) or not text_key(tokenizer)(query):
        raise ValueError(f"query must be a sentence with at least one word, got {shorten(query)!r}")
    unknown = unknown_words(tokenizer, query)
    if all_unknown(tokenizer, query):
        raise ValueError(
            f"the query {shorten(query)!r} cannot be scored: none of its words is in the run's vocabulary "
            f"({known_words_hint(tokenizer)})"
        )
    if unknown and on_warning is not None:
        on_warning(f"{_named(unknown)} in the query {'is' if len(unknown) == 1 else 'are'} {NOT_KNOWN}")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    if image_embeddings is None:
        image_embeddings = encode_images(model, images_uint8, normalize_fn, batch_size, prepare=prepare)  # (N, d)
    elif image_embeddings.shape[0] != len(images_uint8):
        raise ValueError(
            f"image_embeddings has {image_embeddings.shape[0]} rows for {len(images_uint8)} images: they must match"
        )
    text = encode_texts(model, tokenizer, [query], context_length)[0]  # (d,)
    scores = image_embeddings @ text  # (N,)
    best = get_array_module(scores).argsort(-scores)[: min(top, scores.shape[0])]  # (top,)
    return to_host(best).astype(np.int64), to_host(scores[best])


NOT_KNOWN = "not in the run's vocabulary and read as <unk>"
# A label encoded to nothing, and two encoded alike, in words: by the word tokenizer, by byte pairs.
NOTHING = ("has no words (letters or digits)", "is blank (byte pairs encode nothing of it)")
SAME = ("are the same words to the tokenizer (it lower-cases and drops punctuation)",
        "are the same byte pairs to the tokenizer (it lower-cases and drops spaces)")  # fmt: skip


def text_key(tokenizer: Tokenizer | BPETokenizer) -> Callable[[str], Sequence[Any]]:
    """What ``tokenizer`` makes of a text, the one thing labels and queries are judged by.

    The word tokenizer's words (:func:`~miniclip.model.tokenizer.words`: its ids follow from them,
    and unknown ones are kept apart so they can be named); a byte-pair tokenizer's ids. Empty: the
    text says nothing to the model; equal for two labels: they would score alike
    (:func:`~miniclip.model.tokenizer.indistinct`).
    """
    return words if isinstance(tokenizer, Tokenizer) else tokenizer.encode


def all_unknown(tokenizer: Tokenizer | BPETokenizer, text: str) -> bool:
    """Whether ``text`` has words and ``tokenizer`` knows none of them (all are ``<unk>``); never with byte pairs."""
    unknown = unknown_words(tokenizer, text)
    return bool(unknown) and len(unknown) == len(set(words(text)))


def unknown_words(tokenizer: Tokenizer | BPETokenizer, text: str) -> list[str]:
    """The distinct words of ``text`` the tokenizer does not know (they all become ``<unk>``), in order.

    None for a byte-pair tokenizer: it spells every word in its vocabulary, so no word is unknown.
    """
    if not isinstance(tokenizer, Tokenizer):
        return []
    return list(dict.fromkeys(w for w in words(text) if w not in tokenizer.ids))


def shorten(text: str, width: int = 80) -> str:
    """``text`` itself, or its first characters and "…" when it is longer than ``width``: for echoing input."""
    return text if len(text) <= width else f"{text[: width - 1]}… ({len(text)} characters)"


def known_words_hint(tokenizer: Tokenizer | BPETokenizer, n: int = 12) -> str:
    """A few words the tokenizer does know, for a message saying what it does not."""
    if not isinstance(tokenizer, Tokenizer):
        return "its byte-pair vocabulary spells every word"
    known = [t for t in tokenizer.tokens if not (t.startswith("<") and t.endswith(">"))]
    more = f", … ({len(known)} words in all)" if len(known) > n else ""
    return f"it knows {', '.join(known[:n])}{more}" if known else "it knows no words"


def _named(unknown: Sequence[str]) -> str:
    return ", ".join(repr(w) for w in unknown)


def scorable_labels(
    tokenizer: Tokenizer | BPETokenizer, labels: Sequence[str], on_warning: Callable[[str], None] | None = None
) -> list[str]:
    """The labels that can be scored, in order; the others are named to ``on_warning`` (module docstring)."""
    if isinstance(labels, str) or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty list of strings, got {labels!r}")
    not_text = [label for label in labels if not isinstance(label, str)]
    if not_text:
        raise ValueError(f"labels must be strings, got {not_text[0]!r}")
    kind = 0 if isinstance(tokenizer, Tokenizer) else 1  # which NOTHING and SAME say it
    wordless, same = indistinct(labels, text_key(tokenizer))  # the tokenizer's own test of distinctness
    if wordless is not None:
        raise ValueError(f"label {wordless!r} {NOTHING[kind]}: every label must name something")
    if same is not None:
        raise ValueError(
            f"labels must be distinct: {same[0]!r} and {same[1]!r} {SAME[kind]}, so they would get the same score"
        )
    kept, dropped = [], []
    for label in labels:
        if all_unknown(tokenizer, label):
            dropped.append(label)
        else:
            kept.append(label)
            unknown = unknown_words(tokenizer, label)
            if unknown and on_warning is not None:
                on_warning(f"{_named(unknown)} in label {label!r} {'is' if len(unknown) == 1 else 'are'} {NOT_KNOWN}")
    if not kept:
        raise ValueError(
            f"no label can be scored: none of the words of {_named(dropped)} is in the run's vocabulary "
            f"({known_words_hint(tokenizer)})"
        )
    if dropped and on_warning is not None:
        on_warning(
            f"dropped {'label' if len(dropped) == 1 else 'labels'} {_named(dropped)}: cannot be scored, "
            f"none of the words is in the run's vocabulary ({known_words_hint(tokenizer)})"
        )
    return kept
