"""The embeddings of a trained run: what every probe looks at.

For a run's test split (CIFAR-10, ``shapes`` or a folder of images), :func:`embed_run` encodes

* every test image — unit vectors (N, d), as the run was evaluated while it trained (with
  ``flip_average`` when the run used it), with their labels (N,);
* every class written with every template of the prompt ensemble — (K, T, d) — and the
  ensemble itself, one unit vector per class (K, d), as zero-shot classification uses it.

:func:`embed_blurred` encodes the same test images blurred with σ: each batch is moved to the
device as uint8, blurred there (:func:`~miniclip.probe.robustness.gaussian_blur`) and only then
normalised, so the blur costs no extra host↔device copy. A blur and a left–right mirror
commute (the kernel and the reflect padding are both symmetric), so flip averaging sees the
same blurred image either way round. When the run's model takes larger images than the
dataset's (released CLIP weights on CIFAR-10: 224 against 32), each batch is brought to its input
size on the host (:meth:`~miniclip.evaluation.trained_run.TrainedRun.prepare_for`), and a blur is
applied before that, there: σ is always in the dataset's pixels, whatever size the model sees.

Lesson 11 first uses it; lesson 12 blurs with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from miniclip.data.captions import ensemble_templates
from miniclip.evaluation.trained_run import TrainedRun
from miniclip.evaluation.zeroshot import caption_embeddings, encode_images, prompt_ensemble
from miniclip.probe.robustness import check_sigma, gaussian_blur


@dataclass
class RunEmbeddings:
    """A run's test images and class captions, embedded."""

    class_names: list[str]  # (K,)
    labels: np.ndarray  # (N,) int64 on the host, the class of each test image
    images: Any  # (N, d) unit rows, on the device
    templates: list[str]  # (T,) the prompt ensemble's templates
    captions: Any  # (K, T, d) class k written with template t, unit rows
    ensemble: Any  # (K, d) the prompt ensemble: per class, the renormalised mean over templates

    @property
    def counts(self) -> np.ndarray:
        """Test images per class (K,)."""
        return np.bincount(self.labels, minlength=len(self.class_names))


def embed_run(run: TrainedRun, dataset: Any, templates: list[str] | None = None) -> RunEmbeddings:
    """Encode ``dataset``'s test images and its classes' captions with ``run``'s model.

    ``templates`` default to the dataset's prompt ensemble as ``miniclip eval`` reports it
    (CLIP's 18 for CIFAR-10, the training templates otherwise).
    """
    ckpt = run.checkpoint
    templates = ensemble_templates(dataset) if templates is None else templates
    images = run.embed_images(dataset.test_images)  # (N, d)
    captions = caption_embeddings(
        ckpt.model,
        ckpt.tokenizer,
        dataset.class_names,
        templates,
        ckpt.model_config.context_length,
        text_batch=run.text_batch,
    )  # (K, T, d)
    return RunEmbeddings(
        class_names=list(dataset.class_names),
        labels=np.asarray(dataset.test_labels, dtype=np.int64),
        images=images,
        templates=list(templates),
        captions=captions,
        ensemble=prompt_ensemble(captions),
    )


def embed_blurred(run: TrainedRun, images_uint8: np.ndarray, sigma: float) -> Any:
    """Unit embeddings (N, d) of ``images_uint8`` (N, C, H, W) blurred with σ, encoded as :func:`embed_run` does."""
    sigma = check_sigma(sigma)
    model, flip, per_batch = run.checkpoint.model, run.config.flip_average, run.encode_batch
    prepare = run.prepare_for(images_uint8)
    if prepare is None:  # blurred on the device, in the batch already moved there
        blur_then_normalize = lambda batch: run.normalize(gaussian_blur(batch, sigma))  # noqa: E731  (uint8, device)
        return encode_images(model, images_uint8, blur_then_normalize, per_batch, flip_average=flip)
    blur_then_prepare = lambda batch: prepare(gaussian_blur(batch, sigma))  # noqa: E731  (uint8, host: σ in its pixels)
    return encode_images(model, images_uint8, run.normalize, per_batch, flip_average=flip, prepare=blur_then_prepare)
