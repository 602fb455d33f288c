"""Zero-shot classification: name the classes in words, pick the caption closest to the image.

CLIP never sees a class label. To classify, each class name is written into caption templates
("a photo of a {}."), the captions are encoded, and every image goes to the class whose
caption embedding is nearest (largest cosine)::

    t_{c,j}  = encode_text(template_j filled with class c)        unit length, (K, T, d)
    w_c      = mean_j t_{c,j} / ‖mean_j t_{c,j}‖                   the prompt ensemble, (K, d)
    s_{n,c}  = i_n · w_c                                          cosine of image n with class c, (N, K)
    ŷ_n      = argmax_c s_{n,c}

Averaging over templates (CLIP's "prompt ensembling", Radford et al. 2021, §3.1.4) smooths
out the quirks of any one wording; with a single template ``w_c`` is that template's embedding.

Top-k accuracy counts an image as right when its true class is among the k highest scores.
Ties are broken as ``argmax`` breaks them (the lower class index first), so top-1 agrees with
the predictions exactly. The confusion matrix counts ``confusion[true, predicted]``.

Embeddings stay on the device (NumPy or CuPy); :func:`zero_shot` makes one device → host copy.
:func:`classify_scores` scores any (N, K) scores the same way (a model ensemble's averaged
probabilities, in ``miniclip eval``); :func:`image_features` gives the layer under the
embedding, the image encoder's own output, which the linear probe is fitted on.

Lesson 10 does it by hand first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from miniclip.backend import get_array_module, to_device, to_host
from miniclip.data.captions import check_templates, prompts
from miniclip.evaluation.inputs import check_labels
from miniclip.layers.embedding import check_token_ids
from miniclip.model.predictive import word_count_targets
from miniclip.model.tokenizer import Tokenizer
from miniclip.module import Module

if TYPE_CHECKING:
    from miniclip.model.bpe import BPETokenizer

Prepare = Callable[[np.ndarray], np.ndarray]  # a host step on each uint8 batch (B, C, H, W) before it is moved
BATCH_PIXELS = 500 * 32 * 32  # pixels of one encode batch: 500 CIFAR-10 images
BATCH_TOKENS = 500 * 16 * 128  # token × width values of one text batch: 500 captions of the small models


def encode_batch_size(image_size: int) -> int:
    """Images per encode batch for a model whose inputs are ``image_size`` × ``image_size``: 500 up to 32 × 32.

    A batch's activations grow with its pixels, and a 224 × 224 image has 49 times a 32 × 32 one's:
    so larger inputs get proportionally fewer images per batch (10 at 224), about the same memory.
    """
    return max(1, min(500, BATCH_PIXELS // (image_size * image_size)))


def text_batch_size(context_length: int, width: int) -> int:
    """Captions per encode batch for a text encoder of ``context_length`` tokens × ``width``: 500 up to 16 × 128.

    The layers keep their activations even in evaluation mode, and a caption's grow with its tokens
    times the width, as an image's with its pixels: so 500 of the small models' 16 × 128 captions
    cost about what 25 of CLIP's 77 × 512 do (33 MB each in ViT-B/32's text tower, 0.8 GB a batch).
    """
    return max(1, min(500, BATCH_TOKENS // (context_length * width)))


@contextlib.contextmanager
def evaluating(model: Module) -> Iterator[Module]:
    """Evaluation mode (dropout off, batch-norm running statistics) inside the block; the old mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def encode_images(
    model: Any,
    images_uint8: np.ndarray,
    normalize_fn: Callable[[Any], Any],
    batch_size: int = 500,
    *,
    flip_average: bool = False,
    prepare: Prepare | None = None,
) -> Any:
    """Unit-length image embeddings (N, d), ON THE DEVICE, in evaluation mode.

    Each batch of uint8 images (host) is moved with ``to_device`` and then turned into floats
    by ``normalize_fn`` (e.g. :func:`miniclip.data.augment.normalize`), so it normalises on the
    device: four times less to copy than floats. ``prepare``, when given, first turns each host
    batch into the model's input (e.g. CIFAR-10's 32 × 32 images brought to 224 × 224 by CLIP's
    preprocessing, :meth:`~miniclip.evaluation.trained_run.TrainedRun.prepare_for`).

    ``flip_average``: test-time augmentation. Each image is also encoded mirrored left–right,
    and its embedding is the mean of the two unit vectors, renormalised — the image-side twin
    of a prompt ensemble. Training flipped half the images, so both views are ones the model
    knows; averaging them cancels some of the noise of either. Costs a second forward pass.
    """
    embeddings = encode_batches(
        model, model.encode_image, images_uint8, normalize_fn, batch_size, flip_average, prepare=prepare
    )
    if flip_average:  # the sum of two unit vectors (N, d), renormalised
        embeddings /= get_array_module(embeddings).linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings  # (N, d)


def image_features(
    model: Any,
    images_uint8: np.ndarray,
    normalize_fn: Callable[[Any], Any],
    batch_size: int = 500,
    *,
    flip_average: bool = False,
    prepare: Prepare | None = None,
) -> Any:
    """The image encoder's output ``model.image(x)`` (N, D), before any head, ON THE DEVICE, in evaluation mode.

    What a linear probe is fitted on (:mod:`miniclip.evaluation.linear_probe`), for either objective: the
    contrastive model L2-normalises this output into its embedding, the predictive one puts its
    word predictor on it, so it is the one layer both have and the probe compares the encoders.
    ``flip_average``: the mean of the image's and its mirror image's features (not renormalised:
    they are not unit vectors, and the probe standardises them anyway). ``prepare``: as in :func:`encode_images`.
    """
    features = encode_batches(model, model.image, images_uint8, normalize_fn, batch_size, flip_average, prepare=prepare)
    return features / 2 if flip_average else features  # (N, D)


def encode_batches(
    model: Module,
    encode: Callable[[Any], Any],
    images_uint8: np.ndarray,
    normalize_fn: Callable[[Any], Any],
    batch_size: int,
    flip_average: bool,
    *,
    prepare: Prepare | None = None,
) -> Any:
    """``encode`` of every image (N, ·) in evaluation mode; with ``flip_average``, plus that of its mirror image.

    Each batch of host uint8 images (B, C, H, W) goes through ``prepare`` (if any) on the host, then
    is moved to the device and normalised there.
    """
    if images_uint8.ndim != 4 or images_uint8.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) array, got shape {tuple(images_uint8.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts = []
    with evaluating(model):
        for start in range(0, images_uint8.shape[0], batch_size):
            batch = images_uint8[start : start + batch_size]  # (B, C, H, W) uint8, host
            if prepare is not None:
                batch = prepare(batch)  # (B, C', S, S) uint8, host: the model's input size
            x = normalize_fn(to_device(batch))  # (B, C, H, W) floats
            out = encode(x)  # (B, ·)
            if flip_average:
                out = out + encode(get_array_module(x).ascontiguousarray(x[..., ::-1]))  # and the left–right mirror
            parts.append(out)
    return get_array_module(parts[0]).concatenate(parts, axis=0)  # (N, ·)


def encode_texts(
    model: Any, tokenizer: Tokenizer | BPETokenizer, captions: Sequence[str], context_length: int, batch_size: int = 500
) -> Any:
    """Unit-length caption embeddings (N, d), on the device, in evaluation mode, ``batch_size`` captions at a time.

    ``batch_size``: :func:`text_batch_size` of the model's text encoder (500 suits only small ones).
    The ids are checked against ``model.vocab_size`` on the host, before they are moved (a
    tokenizer larger than the model's token table would otherwise index past it unnoticed on the GPU).
    """
    if isinstance(captions, str) or len(captions) == 0:
        raise ValueError(f"captions must be a non-empty list of strings, got {captions!r}")
    parts = []
    with evaluating(model):
        for start in range(0, len(captions), batch_size):
            ids, mask = tokenizer.encode_batch(captions[start : start + batch_size], context_length)  # (B, L) each
            check_token_ids(ids, model.vocab_size)  # on the host: on the GPU a bad id would wrap silently
            parts.append(model.encode_text(to_device(ids), to_device(mask)))  # (B, d)
    return get_array_module(parts[0]).concatenate(parts, axis=0)  # (N, d)


def caption_grid(class_names: Sequence[str], templates: Sequence[str]) -> tuple[list[str], int, int]:
    """Every class written with every template, class-major (K·T captions), with K and T; both lists checked."""
    templates = check_templates(templates)
    if isinstance(class_names, str) or len(class_names) == 0:
        raise ValueError(f"class_names must be a non-empty list of strings, got {class_names!r}")
    captions = [caption for row in prompts(class_names, templates) for caption in row]  # K·T, class-major
    return captions, len(class_names), len(templates)


def caption_embeddings(
    model: Any,
    tokenizer: Tokenizer | BPETokenizer,
    class_names: Sequence[str],
    templates: Sequence[str],
    context_length: int,
    *,
    text_batch: int = 500,
) -> Any:
    """Every class written with every template, embedded: (K, T, d) on the device, each row unit length.

    ``text_batch`` captions at a time (:func:`text_batch_size`).
    """
    captions, k, t = caption_grid(class_names, templates)
    return encode_texts(model, tokenizer, captions, context_length, text_batch).reshape(k, t, -1)  # (K, T, d)


def prompt_ensemble(captions: Any) -> Any:
    """Per class, the renormalised mean over its templates: (K, T, d) caption embeddings → (K, d) unit rows."""
    xp = get_array_module(captions)
    w = captions.mean(axis=1)  # (K, d)
    return w / xp.sqrt((w * w).sum(axis=1, keepdims=True))  # (K, d) unit length again


def class_embeddings(
    model: Any,
    tokenizer: Tokenizer | BPETokenizer,
    class_names: Sequence[str],
    templates: Sequence[str],
    context_length: int,
    *,
    text_batch: int = 500,
) -> Any:
    """The prompt ensemble (K, d) on the device: per class, the renormalised mean of its templates' embeddings."""
    captions = caption_embeddings(model, tokenizer, class_names, templates, context_length, text_batch=text_batch)
    return prompt_ensemble(captions)  # (K, d)


def zero_shot(image_embeddings: Any, labels: Any, class_embs: Any, k: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """Classify N image embeddings (N, d) among K class embeddings (K, d); score against ``labels`` (N,).

    Returns (all on the host)::

        "top1", "top5", ...  accuracy (fraction) for each k in ``k``
        "per_class"          list of K accuracies, nan for a class with no images
        "confusion"          (K, K) int64, confusion[true, predicted]
        "predictions"        (N,) int64, argmax_c of the cosines
        "ranks"              (N,) int64, how many classes score ahead of the true one (0 = correct)
        "n"                  N
    """
    n, d = image_embeddings.shape
    if class_embs.ndim != 2 or class_embs.shape[1] != d or n == 0:
        raise ValueError(
            f"need image embeddings (N, d) with N >= 1 and class embeddings (K, d) of the same d, "
            f"got {tuple(image_embeddings.shape)} and {tuple(class_embs.shape)}"
        )
    return classify_scores(image_embeddings @ class_embs.T, labels, k)  # (N, K) cosines


def classify_scores(scores: Any, labels: Any, k: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """:func:`zero_shot`'s dict for any scores (N, K), higher = more likely: cosines, logits or probabilities.

    Each image goes to its highest-scoring class (ties: the lower index, as ``argmax``), so
    ``miniclip eval`` scores a model ensemble's averaged probabilities exactly as one model's cosines.
    """
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"need scores (N, K) with N >= 1 and K >= 1, got shape {tuple(scores.shape)}")
    if not k or any(int(j) < 1 for j in k):
        raise ValueError(f"k must be a non-empty list of positive integers, got {k!r}")
    n, num_classes = scores.shape
    xp = get_array_module(scores)
    y = xp.asarray(check_labels(labels, n, num_classes))  # (N,)
    s = scores  # (N, K)
    predictions = xp.argmax(s, axis=1)  # (N,)
    true = s[xp.arange(n), y][:, None]  # (N, 1) score of the true class
    classes = xp.arange(num_classes)[None, :]  # (1, K)
    ahead = (s > true) | ((s == true) & (classes < y[:, None]))  # (N, K): ranked before the true class
    ranks = ahead.sum(axis=1).astype(xp.int64)  # (N,)
    confusion = xp.bincount(y * num_classes + predictions, minlength=num_classes * num_classes)  # (K·K,)
    packed = to_host(xp.concatenate([confusion.astype(xp.int64), predictions.astype(xp.int64), ranks]))  # one copy
    confusion_h = packed[: num_classes * num_classes].reshape(num_classes, num_classes)  # (K, K)
    predictions_h, ranks_h = packed[num_classes * num_classes :].reshape(2, n)  # (N,), (N,)
    per_image = confusion_h.sum(axis=1)  # (K,) images of each true class
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion_h) / per_image  # (K,) nan where a class has no images
    out: dict[str, Any] = {f"top{int(j)}": float((ranks_h < int(j)).mean()) for j in k}
    out |= {
        "per_class": per_class.tolist(),
        "confusion": confusion_h,
        "predictions": predictions_h,
        "ranks": ranks_h,
        "n": n,
    }
    return out


def class_word_targets(
    tokenizer: Tokenizer | BPETokenizer,
    class_names: Sequence[str],
    templates: Sequence[str],
    context_length: int,
    vocab_size: int,
    *,
    dtype: Any = np.float32,
) -> Any:
    """Each class's bag of words (K, V) on the device: the mean, over the templates, of its captions' targets.

    Every class name is written into every template (:func:`miniclip.data.captions.prompts`),
    tokenised as in training (truncated to ``context_length``), and turned into targets by
    :func:`word_count_targets`; class ``c``'s row is the mean of its T rows, so it still sums to 1.
    """
    captions, k, t = caption_grid(class_names, templates)
    ids, mask = tokenizer.encode_batch(captions, context_length)  # (K·T, L) each, on the host
    check_token_ids(ids, vocab_size)  # on the host, before the move: a tokenizer larger than the predictor
    q = word_count_targets(to_device(ids), to_device(mask), vocab_size, dtype=dtype)  # (K·T, V)
    return q.reshape(k, t, vocab_size).mean(axis=1)  # (K, V), each row sums to 1


def class_vectors(
    model: Any,
    tokenizer: Tokenizer | BPETokenizer,
    class_names: Sequence[str],
    templates: Sequence[str],
    context_length: int,
    *,
    text_batch: int = 500,
) -> Any:
    """What :func:`zero_shot` scores images against, for either objective (K, ·) on the device.

    A contrastive model (:class:`~miniclip.model.clip.CLIP`): the prompt ensemble, :func:`class_embeddings`.
    A predictive one (:class:`~miniclip.model.predictive.PredictiveModel`), whose ``encode_image`` gives
    log-probabilities over the words: each class's template-averaged bag of words,
    :func:`class_word_targets`. Either way the score is one dot product per image and class.
    ``text_batch``: captions encoded at a time (:func:`text_batch_size`; the predictive model encodes none).
    """
    if model.objective == "predictive":
        return class_word_targets(tokenizer, class_names, templates, context_length, model.vocab_size)
    return class_embeddings(model, tokenizer, class_names, templates, context_length, text_batch=text_batch)


def _subset_accuracy(ranks: np.ndarray, keep: np.ndarray, k: Sequence[int]) -> dict[str, Any]:
    """Top-k accuracies over the images where ``keep`` is true (nan when there are none)."""
    chosen = ranks[keep]
    return {f"top{int(j)}": float((chosen < int(j)).mean()) if chosen.size else float("nan") for j in k} | {
        "n": int(chosen.size)
    }


def evaluate_zero_shot(
    model: Any,
    tokenizer: Tokenizer | BPETokenizer,
    dataset: Any,
    normalize_fn: Callable[[Any], Any],
    context_length: int,
    templates_by_name: dict[str, Sequence[str]],
    k: Sequence[int] = (1, 5),
    batch_size: int = 500,
    *,
    flip_average: bool = False,
    image_embeddings: Any = None,
    text_batch: int = 500,
) -> dict[str, dict[str, Any]]:
    """Zero-shot accuracy on ``dataset``'s test split for each named template set, e.g.::

        {"one template": ["a photo of a {}."], "CLIP ensemble (18)": CLIP_CIFAR10_TEMPLATES}

    The test images are encoded once (with ``flip_average``, averaged with their mirror images:
    see :func:`encode_images`), or not at all when their ``image_embeddings`` (N, d) are given
    (``normalize_fn``, ``batch_size`` and ``flip_average`` then go unused), so a caller that
    needs them for more than zero-shot encodes them once. Each set's result is
    :func:`zero_shot`'s dict; when the dataset holds classes out of training it also has
    ``"heldout"`` (test images of held-out classes) and ``"seen"`` (the rest), each
    ``{"top1": ..., "top5": ..., "n": ...}``, predicted among ALL classes. ``batch_size`` images and
    ``text_batch`` captions are encoded at a time: :func:`encode_batch_size` and :func:`text_batch_size`
    of the model (500 each suits only small models).
    """
    if not templates_by_name:
        raise ValueError("templates_by_name must name at least one template set")
    if image_embeddings is None:
        images = encode_images(model, dataset.test_images, normalize_fn, batch_size, flip_average=flip_average)
    elif tuple(image_embeddings.shape[:1]) != (len(dataset.test_labels),):
        raise ValueError(
            f"image_embeddings has {image_embeddings.shape[0]} rows for {len(dataset.test_labels)} test images: "
            "they must match"
        )
    else:
        images = image_embeddings  # (N, d)
    heldout = dataset.heldout_mask(dataset.test_labels) if dataset.heldout_classes else None  # (N,) bool
    results = {}
    for name, templates in templates_by_name.items():
        classes = class_vectors(model, tokenizer, dataset.class_names, templates, context_length, text_batch=text_batch)
        result = zero_shot(images, dataset.test_labels, classes, k)
        if heldout is not None:
            result["heldout"] = _subset_accuracy(result["ranks"], heldout, k)
            result["seen"] = _subset_accuracy(result["ranks"], ~heldout, k)
        results[name] = result
    return results


def accuracy_table(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The plain numbers of :func:`evaluate_zero_shot` (JSON-ready, for logs and :func:`~miniclip.plots.plot_curves`).

    ``{"one template": {"top1": 0.41, "top5": 0.88, "heldout_top1": ..., "seen_top1": ...}, ...}``
    """
    table = {}
    for name, result in results.items():
        row = {key: value for key, value in result.items() if key.startswith("top")}
        for part in ("heldout", "seen"):
            if part in result:
                row |= {f"{part}_{key}": v for key, v in result[part].items() if key.startswith("top")}
        table[name] = row
    return table
