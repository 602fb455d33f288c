"""Captions from class names: the prompt templates CLIP uses, and the ones we train with.

A dataset of labelled images becomes a dataset of (image, caption) pairs by filling a
*template* with the class name of each image::

    "a blurry photo of a {}."  +  "cat"   →   "a blurry photo of a cat."

During training each image gets one template drawn at random (:func:`make_captions`, or, in
the trainer, the same draws as rows of a tokenised :func:`caption_table`), so the text encoder
sees many phrasings of the same class. For zero-shot classification every class
is written with every template (:func:`prompts`); the CLIP paper averages the text embeddings
of one class's prompts into a single class embedding ("prompt ensembling", section 3.1.4).

Three lists of templates:

* :data:`CLIP_CIFAR10_TEMPLATES` — the 18 templates the CLIP paper used for zero-shot
  CIFAR-10 (from the public openai/CLIP repository, ``data/prompts.md``);
* :data:`TRAIN_TEMPLATES` — what miniclip trains with; several of them are CLIP's;
* :data:`UNSEEN_TEMPLATES` — never used in training (disjoint from :data:`TRAIN_TEMPLATES`),
  to measure how zero-shot accuracy holds up under phrasings the model has never read.

:data:`SHAPES_TEMPLATES` are the shorter captions of the synthetic shapes dataset.

:func:`eval_templates` names the sets the trainer scores after each epoch; :func:`report_templates`
the four ``miniclip eval`` sets side by side, the bare label ``"{}"`` first (a template of its own:
:func:`check_templates` accepts it, since it holds exactly one ``{}``).

Lesson 08 introduces the templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from miniclip.backend import to_host

if TYPE_CHECKING:  # only for the annotations: miniclip.data.dataset imports this module
    from miniclip.data.dataset import ImageTextDataset

CLIP_CIFAR10_TEMPLATES: list[str] = [
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a high contrast photo of a {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {}.",
    "a blurry photo of the {}.",
    "a black and white photo of the {}.",
    "a low contrast photo of the {}.",
    "a high contrast photo of the {}.",
    "a bad photo of the {}.",
    "a good photo of the {}.",
    "a photo of the small {}.",
    "a photo of the big {}.",
]

TRAIN_TEMPLATES: list[str] = [
    "a photo of a {}.",  # the first seven are also CLIP's
    "a blurry photo of a {}.",
    "a good photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {}.",
    "a photo of the small {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a close-up photo of a {}.",
    "a cropped photo of the {}.",
    "a bright photo of a {}.",
    "a dark photo of the {}.",
    "a low resolution photo of a {}.",
    "a photo of one {}.",
    "a snapshot of the {}.",
]

UNSEEN_TEMPLATES: list[str] = [
    "art of the {}.",
    "a drawing of a {}.",
    "itap of a {}.",
    "a sketch of the {}.",
    "a painting of a {}.",
    "a cartoon {}.",
    "a toy {}.",
    "a rendering of the {}.",
]

SHAPES_TEMPLATES: list[str] = [
    "a {}.",
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "there is a {}.",
]


def check_templates(templates: Sequence[str]) -> list[str]:
    """Return ``templates`` as a list after checking each is a str holding exactly one ``{}``."""
    if isinstance(templates, str) or len(templates) == 0:
        raise ValueError(f"templates must be a non-empty list of strings, got {templates!r}")
    for t in templates:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise ValueError(f"each template must be a str with exactly one '{{}}' for the class name, got {t!r}")
    return list(templates)


def fill(template: str, class_name: str) -> str:
    """Put the class name into the template's ``{}`` (plain replacement: names may hold any text)."""
    return template.replace("{}", class_name)


def caption_table(class_names: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Every caption that can occur, class-major: row ``label · T + template`` (T templates), K·T rows in all."""
    return [caption for row in prompts(class_names, templates) for caption in row]


def draw_templates(rng: np.random.Generator, n: int, num_templates: int) -> np.ndarray:
    """Host draws: the template of each of ``n`` captions, (n,) int64, uniform in [0, num_templates)."""
    return rng.integers(0, num_templates, size=n)


def caption_rows(labels: Any, template: Any, num_templates: int) -> Any:
    """Rows of :func:`caption_table` for labels (N,) written with ``template`` (N,): ``label · T + template``.

    Plain array arithmetic, so the trainer computes it on the device from labels already there.
    """
    return labels * num_templates + template  # (N,)


def make_captions(
    labels: Any, class_names: Sequence[str], templates: Sequence[str], rng: np.random.Generator
) -> list[str]:
    """One caption per label: a template drawn uniformly at random (from ``rng``), filled with the class name.

    ``labels`` is an (N,) integer array (NumPy or CuPy) or a list; the same ``rng`` state gives the
    same captions. The trainer draws its captions with the same three steps, as token rows of the
    tokenised :func:`caption_table`: :func:`draw_templates`, then :func:`caption_rows`.
    """
    templates = check_templates(templates)
    labels = np.asarray(to_host(labels)).reshape(-1)  # (N,)
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(
            f"labels must be integers in [0, {len(class_names)}) for {len(class_names)} class names, "
            f"got dtype {labels.dtype} with range [{labels.min()}, {labels.max()}]"
        )
    table = caption_table(class_names, templates)  # (K·T,)
    rows = caption_rows(labels, draw_templates(rng, labels.size, len(templates)), len(templates))  # (N,)
    return [table[r] for r in rows.tolist()]


def prompts(class_names: Sequence[str], templates: Sequence[str]) -> list[list[str]]:
    """Every class with every template: ``prompts(...)[c][t]`` is class ``c`` written with template ``t``."""
    templates = check_templates(templates)
    return [[fill(t, name) for t in templates] for name in class_names]


BARE_LABEL = "{}"  # the class name alone, no sentence around it: what a caption-free classifier would read
PHOTO_TEMPLATE = "a photo of a {}."  # CLIP's first template, the one-sentence baseline of its paper


def ensemble_name(dataset: ImageTextDataset | str) -> str:
    """The name, in :func:`eval_templates` and :func:`report_templates`, of ``dataset``'s prompt ensemble.

    It is the set per-class results, the confusion matrix and model ensembles use. ``dataset``
    may also be a dataset's name (``"cifar10"``, ``"shapes"``, a folder).
    """
    name = dataset if isinstance(dataset, str) else dataset.name
    return "CLIP 18 templates" if name == "cifar10" else "train templates"


def ensemble_templates(dataset: ImageTextDataset) -> list[str]:
    """``dataset``'s prompt ensemble: CLIP's 18 templates for CIFAR-10, the training templates otherwise."""
    return CLIP_CIFAR10_TEMPLATES if dataset.name == "cifar10" else dataset.train_templates


def eval_templates(dataset: ImageTextDataset) -> dict[str, list[str]]:
    """The template sets the trainer reports zero-shot accuracy with after each epoch (``metrics.jsonl``).

    One template (the ensemble's first); the prompt ensemble, named by :func:`ensemble_name`;
    and :data:`UNSEEN_TEMPLATES`, never trained on. ``miniclip eval`` reports more rows
    (:func:`report_templates`); these names stay what every run's metrics have always held.
    """
    ensemble = ensemble_templates(dataset)
    return {"one template": ensemble[:1], ensemble_name(dataset): ensemble, "unseen templates": UNSEEN_TEMPLATES}


def report_templates(dataset: ImageTextDataset) -> dict[str, list[str]]:
    """The four template sets ``miniclip eval`` puts side by side, from the least sentence to the most.

    The class name alone (:data:`BARE_LABEL`, ``"{}"``: how much the model needs the words
    around it); CLIP's one sentence (:data:`PHOTO_TEMPLATE`); the prompt ensemble
    (:func:`ensemble_templates`, named by :func:`ensemble_name`); and :data:`UNSEEN_TEMPLATES`.
    """
    return {
        f'bare label "{BARE_LABEL}"': [BARE_LABEL],
        f'"{PHOTO_TEMPLATE}"': [PHOTO_TEMPLATE],
        ensemble_name(dataset): ensemble_templates(dataset),
        "unseen templates": UNSEEN_TEMPLATES,
    }
