"""``miniclip eval``: everything worth knowing about a trained checkpoint, in numbers and pictures.

On the test split of the dataset the run was trained on:

* zero-shot top-1 and top-5 with four prompt sets side by side
  (:func:`~miniclip.data.captions.report_templates`): the bare class name ``"{}"``, CLIP's one
  sentence ``"a photo of a {}."``, the prompt ensemble (each template's text embedding
  normalised, averaged over templates, renormalised: CLIP's 18 templates on CIFAR-10, the
  training templates elsewhere), and templates never used in training, so both what the words
  around a class name buy and the gap between seen and unseen phrasing are visible;
* per-class accuracy and a confusion-matrix plot (``confusion.png``), with the prompt ensemble;
* an N×N image–caption cosine-similarity heatmap (``similarity.png``) for the first images of
  different classes;
* text→image and image→text recall@1/5/10, each test image paired with its class's caption.
  Captions here are templates filled with a class name, so every image of a class has the same
  caption (a thousand per caption on CIFAR-10) and which of them a caption "belongs to" cannot
  be told: plain recall would measure luck (R@1 ≈ 0.1 %). So the recall reported is
  **class-aware** — a hit when an item of the query's class ranks in the top k
  (:mod:`miniclip.evaluation.retrieval`) — and the plain one only where every caption belongs to one
  image (where the two are the same number).

A predictive run (``--objective predictive``, :class:`~miniclip.model.predictive.PredictiveModel`)
has no text encoder: its zero-shot scores words (:func:`miniclip.evaluation.zeroshot.class_vectors`), and
the heatmap and retrieval, which need caption embeddings, are skipped with a line saying so.

``--linear-probe`` (:func:`linear_probe_report`) fits softmax regression on the image encoder's
frozen output, CLIP's yardstick for zero-shot, with all the training images and with 1, 4 and
16 per class. Several runs are a *model ensemble* (:mod:`miniclip.evaluation.ensemble`): the members'
class probabilities averaged on their shared test split.

Every test image is encoded once — averaged with its mirror image when the run was evaluated
that way while it trained (``flip_average``) — and that one embedding serves the zero-shot
table, the heatmap and retrieval (the linear probe encodes once more, for the layer below the
embedding). The model, the normalisation and the test split come from the checkpoint
(:func:`miniclip.evaluation.trained_run.load_run`). The numbers also go to ``eval.json`` beside the plots;
everything is computed before anything is written, so a refused evaluation writes nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from miniclip.atomic import check_output_folder, json_text, staged_folder, write_text
from miniclip.backend import get_array_module, to_device, to_host
from miniclip.data import ImageTextDataset
from miniclip.data.captions import ensemble_name, fill, report_templates
from miniclip.evaluation.linear_probe import L2_GRID, choose_l2, few_shot_indices, fit_linear_probe
from miniclip.evaluation.retrieval import recall_at_k
from miniclip.evaluation.trained_run import TrainedRun, load_run
from miniclip.evaluation.zeroshot import (
    encode_images,
    encode_texts,
    evaluate_zero_shot,
    image_features,
)
from miniclip.model.predictive import NO_TEXT_ENCODER, PredictiveModel
from miniclip.plots import plot_confusion, plot_similarity
from miniclip.training.checkpoint import checkpoint_file

PROBE_SHOTS = (1, 4, 16)  # labelled training images per class of the few-shot probes (the CLIP paper's Fig. 6)
PROBE_HOLDOUT = 0.2  # share of each class's training images λ is chosen on
PROBE_STEPS = 500  # gradient steps per probe fit at most: 8 fits of 50,000 CIFAR-10 features in about a minute

Progress = Callable[[str], None]


def _first_of_each_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first test image of each of the first ``n`` classes that occur."""
    _, first = np.unique(labels, return_index=True)
    return np.sort(first)[:n]


def run_folder(path: str | os.PathLike[str]) -> Path:
    """The folder of the run at ``path`` (a run folder or its ``.npz``), before anything is loaded.

    A ``FileNotFoundError`` if it holds no checkpoint: a missing run is named before the output place is checked.
    """
    file = checkpoint_file(path)
    if not file.is_file():
        raise FileNotFoundError(f"no checkpoint at {file}")
    return file.parent


def percent(value: float | None, width: int = 0) -> str:
    """An accuracy as ``81.2%`` (right-aligned in ``width``), or ``no test images`` where none was measured."""
    return "no test images" if value is None or value != value else f"{value:{width}.1%}"  # NaN alone is ≠ itself


def write_report(out: Path, summary: dict[str, Any], plots: dict[str, Callable[[Path], Any]]) -> list[Path]:
    """Draw each plot (``draw(path)``) and write ``eval.json`` into ``out``, all appearing together; their paths.

    The files are staged beside ``out`` (:func:`~miniclip.atomic.staged_folder`): an interrupted
    evaluation leaves ``out`` as it was, never a new figure beside an old ``eval.json``. The JSON
    is strict: an accuracy that could not be measured is ``null``.
    """
    with staged_folder(out) as staging:
        for name, draw in plots.items():
            draw(staging / name)
        write_text(staging / "eval.json", json_text(summary, indent=2) + "\n")
    return [out / name for name in plots]


def _heldout_extra(result: dict[str, Any]) -> str:
    if "heldout" not in result:
        return ""
    return f"   held-out combinations {percent(result['heldout']['top1'])}, seen {percent(result['seen']['top1'])}"


def evaluate_run(
    path: str,
    *,
    out_dir: str | None = None,
    data: str | None = None,
    data_dir: str | None = None,
    pairs: int = 5,
    linear_probe: bool = False,
    progress: Progress | None = None,
) -> str:
    """Evaluate the checkpoint at ``path``; write plots and ``eval.json``; return a readable report.

    ``data`` and ``data_dir`` replace the dataset and CIFAR-10 folder the run was trained with
    (a folder dataset that has moved, or was given as a relative path from another directory).
    ``linear_probe`` adds :func:`linear_probe_report`; ``progress`` gets a line before each of
    its slow steps.
    """
    out = check_output_folder(out_dir or run_folder(path))  # before anything is loaded (the run's existence first)
    run = load_run(path)
    ckpt, normalize_fn = run.checkpoint, run.normalize
    dataset = run.dataset(data, data_dir)
    model, tokenizer, length = ckpt.model, ckpt.tokenizer, ckpt.model_config.context_length

    # Every test image is encoded once, as the run was evaluated while it trained (flip_average),
    # and that one embedding serves the zero-shot table, the heatmap and retrieval.
    image_embs = encode_images(model, dataset.test_images, normalize_fn, flip_average=run.config.flip_average)  # (N, d)
    results = evaluate_zero_shot_report(run, dataset, image_embs)
    lines = [
        f"{ckpt.path}: {len(dataset.test_labels)} test images of {dataset.name}, {dataset.num_classes} classes",
        "",
        f"{'zero-shot':<22} {'top-1':>7} {'top-5':>7}",
    ]
    lines += [f"{name:<22} {r['top1']:7.1%} {r['top5']:7.1%}{_heldout_extra(r)}" for name, r in results.items()]
    ensemble = ensemble_name(dataset)
    best = results[ensemble]
    lines += ["", f"per-class top-1 ({ensemble}):"]
    lines += [f"  {c:<24} {percent(a, 6)}" for c, a in zip(dataset.class_names, best["per_class"], strict=True)]
    summary: dict[str, Any] = {
        "checkpoint": str(ckpt.path),
        "zero_shot": {
            name: {k: r[k] for k in ("top1", "top5")} | {"per_class": r["per_class"]} for name, r in results.items()
        },
    }
    plots: dict[str, Callable[[Path], Any]] = {
        "confusion.png": lambda file: plot_confusion(
            best["confusion"], dataset.class_names, file, title=f"zero-shot confusion ({ensemble})"
        )
    }

    if isinstance(model, PredictiveModel):
        lines += ["", f"similarity heatmap and retrieval: skipped, they need caption embeddings and {NO_TEXT_ENCODER}"]
    else:
        # The similarity heatmap: one image of each of the first `pairs` classes against its caption.
        chosen = _first_of_each_class(dataset.test_labels, pairs)
        captions = [fill(dataset.train_templates[0], dataset.class_names[dataset.test_labels[i]]) for i in chosen]
        caption_embs = encode_texts(model, tokenizer, captions, length)  # (pairs, d)
        plots["similarity.png"] = lambda file: plot_similarity(
            image_embs[chosen], caption_embs, dataset.test_images[chosen], captions, file
        )
        block, summary["recall"] = retrieval_report(run, dataset, image_embs)
        lines += ["", *block]

    if linear_probe:
        block, summary["linear_probe"] = linear_probe_report(run, dataset, best, ensemble, progress)
        lines += ["", *block]

    written = write_report(out, summary, plots)  # everything is computed: now write
    lines += ["", "plots: " + ", ".join(map(str, written))]
    return "\n".join(lines)


def evaluate_zero_shot_report(run: TrainedRun, dataset: ImageTextDataset, image_embs: Any) -> dict[str, dict]:
    """Zero-shot results for each of :func:`~miniclip.data.captions.report_templates`' four sets."""
    ckpt = run.checkpoint
    return evaluate_zero_shot(
        ckpt.model,
        ckpt.tokenizer,
        dataset,
        run.normalize,
        ckpt.model_config.context_length,
        report_templates(dataset),
        image_embeddings=image_embs,
    )


# ---------------------------------------------------------------------------------------------
# Retrieval
# ---------------------------------------------------------------------------------------------


def retrieval_report(run: TrainedRun, dataset: ImageTextDataset, image_embs: Any) -> tuple[list[str], dict]:
    """Recall@1/5/10 both ways, each test image paired with its class's caption: report lines and numbers.

    Class-aware recall when captions are shared (any class with two test images or more);
    plain recall, the same number then, when every caption belongs to one image.
    """
    ckpt = run.checkpoint
    template = dataset.train_templates[0]
    class_texts = encode_texts(
        ckpt.model, ckpt.tokenizer, [fill(template, c) for c in dataset.class_names], ckpt.model_config.context_length
    )  # (K, d)
    labels = np.asarray(dataset.test_labels)
    text_embs = class_texts[to_device(labels)]  # (N, d): row i is the caption of image i
    n, shared = len(labels), int(np.bincount(labels).max()) > 1
    lines = [f'retrieval, each test image with the caption of its class ("{template}"):']
    if shared:
        recall = recall_at_k(image_embs, text_embs, labels=labels)
        # Image→text ranks the N captions, copies included: past R@1 it would count one caption's copies as
        # different captions (R@5 = R@1 while a class has five images), so only R@1 is reported.
        found = {
            "text_to_image": recall["text_to_image_class"],
            "image_to_text": {"R@1": recall["image_to_text_class"]["R@1"]},
        }
        captions = len(np.unique(labels))
        lines.append(
            f"  class-aware recall: a hit when an item of the query's class ranks in the top k (the {n} images "
            f"share {captions} captions, so an exact pair cannot be told from the rest of its class)"
        )
        notes = {"image_to_text": "   (zero-shot top-1 with this one caption; R@5, R@10 would count its copies)"}
    else:
        found = recall_at_k(image_embs, text_embs)
        lines.append("  recall: a hit when the query's own pair ranks in the top k (each caption belongs to one image)")
        notes = {}
    for direction, values in found.items():
        recalls = "  ".join(f"{k} {v:.1%}" for k, v in values.items())
        lines.append(f"  {direction:<22} {recalls}{notes.get(direction, '')}")
    return lines, {"measure": "class-aware" if shared else "instance", "caption_template": template, **found}


# ---------------------------------------------------------------------------------------------
# The linear probe
# ---------------------------------------------------------------------------------------------


def _top1(predictions: np.ndarray, labels: np.ndarray, heldout: np.ndarray | None) -> dict[str, float]:
    """Top-1 of host predictions (N,); with a held-out mask (N,), also over the held-out and the seen images."""
    right = predictions == labels  # (N,)
    out = {"top1": float(right.mean())}
    if heldout is not None:
        for part, keep in (("heldout", heldout), ("seen", ~heldout)):
            out[f"{part}_top1"] = float(right[keep].mean()) if keep.any() else None  # none of that part
    return out


def linear_probe_report(
    run: TrainedRun,
    dataset: ImageTextDataset,
    zero_shot_result: dict[str, Any],
    zero_shot_name: str,
    progress: Progress | None = None,
) -> tuple[list[str], dict]:
    """The linear probe on the image encoder's output, beside zero-shot: report lines and numbers.

    Features: :func:`~miniclip.evaluation.zeroshot.image_features`, ``model.image(x)``, the layer under
    either objective's head (CLIP's L2 normalisation, the predictive model's word predictor),
    so probes of both kinds of run compare the same thing. The training images are encoded as
    they are, the test images with the run's flip averaging, as zero-shot sees them. λ is chosen
    by :func:`~miniclip.evaluation.linear_probe.choose_l2` on a held-out :data:`PROBE_HOLDOUT` of each class
    and the probe refitted on all; the few-shot probes (:data:`PROBE_SHOTS` images per class,
    :func:`~miniclip.evaluation.linear_probe.few_shot_indices` seeded with the run's seed) keep that λ,
    since one image per class leaves nothing to hold out. Classes with no training images
    (the shapes' held-out combinations) cannot be learned by a probe; the few-shot subsets are
    drawn from the others. A shot count larger than a class's training images is reported as
    n/a with the reason. Every fit takes at most :data:`PROBE_STEPS` steps.
    """
    say = progress or (lambda message: None)
    model, seed, k = run.checkpoint.model, run.config.seed, dataset.num_classes
    train_y, test_y = np.asarray(dataset.train_labels), np.asarray(dataset.test_labels)
    heldout = dataset.heldout_mask(test_y) if dataset.heldout_classes else None  # (N_test,) bool
    started = time.perf_counter()
    say(f"linear probe: encoding {len(train_y)} training and {len(test_y)} test images (image-encoder features)")
    train_x = image_features(model, dataset.train_images, run.normalize)  # (N_train, D)
    test_x = image_features(model, dataset.test_images, run.normalize, flip_average=run.config.flip_average)
    xp = get_array_module(train_x)
    say(
        f"linear probe: choosing λ among {len(L2_GRID)} values on a held-out {PROBE_HOLDOUT:.0%} of the training "
        f"images, then refitting on all ({time.perf_counter() - started:.0f} s so far)"
    )
    probe, scores = choose_l2(train_x, train_y, k, holdout=PROBE_HOLDOUT, seed=seed, steps=PROBE_STEPS)
    full = _top1(to_host(probe.predict(test_x)), test_y, heldout) | {
        "n_train": len(train_y),
        "steps": probe.steps,
        "converged": probe.converged,
    }
    rows: list[tuple[str, dict[str, Any]]] = [(f"all {len(train_y)} training images", full)]

    say(f"linear probe: {', '.join(map(str, PROBE_SHOTS))} per class ({time.perf_counter() - started:.0f} s so far)")
    present = np.flatnonzero(np.bincount(train_y, minlength=k))  # (K',) classes with training images
    counts = np.bincount(train_y, minlength=k)[present]  # (K',)
    dense = np.searchsorted(present, train_y)  # (N_train,) labels renumbered 0 … K'−1 for few_shot_indices
    few_shot: dict[str, dict[str, Any]] = {}
    for shots in PROBE_SHOTS:
        if counts.min() < shots:
            poorest = present[int(np.argmin(counts))]
            note = f"{dataset.class_names[poorest]!r} has only {counts.min()} training images"
            few_shot[str(shots)] = {"top1": None, "note": note}
            rows.append((f"{shots} per class", {"note": note}))
            continue
        chosen = few_shot_indices(dense, shots, seed, num_classes=len(present))  # (K'·shots,) host
        fitted = fit_linear_probe(train_x[xp.asarray(chosen)], train_y[chosen], k, l2=probe.l2, steps=PROBE_STEPS)
        few_shot[str(shots)] = _top1(to_host(fitted.predict(test_x)), test_y, heldout) | {
            "n_train": len(chosen),
            "steps": fitted.steps,
            "converged": fitted.converged,
        }
        rows.append((f"{shots} per class", few_shot[str(shots)]))

    say(f"linear probe: done in {time.perf_counter() - started:.0f} s")
    lines = ["linear probe (softmax regression on the image encoder's output, before the head), test top-1:"]
    extra = _heldout_extra(zero_shot_result).replace("   ", "  ", 1)
    lines.append(f"  {'zero-shot (' + zero_shot_name + ')':<30} {zero_shot_result['top1']:6.1%}{extra}")
    for name, row in rows:
        if "note" in row:
            lines.append(f"  {name:<30} {'n/a':>6}  {row['note']}")
            continue
        extra = ""
        if heldout is not None:
            extra = f"  held-out combinations {percent(row['heldout_top1'])}, seen {percent(row['seen_top1'])}"
        if row.get("converged") is False:
            extra += f"  (stopped after {PROBE_STEPS} steps, not converged)"
        lines.append(f"  {name:<30} {row['top1']:6.1%}{extra}")
    lines.append(
        f"  λ = {probe.l2:g}, chosen on a held-out {PROBE_HOLDOUT:.0%} of the training images (accuracy there "
        f"{scores[probe.l2]:.1%}) and refitted on all;"
    )
    lines.append("  the few-shot probes keep that λ: one image per class leaves none to hold out")
    if len(present) < k:
        lines.append(f"  {k - len(present)} of the {k} classes have no training images: no probe can predict them")
    summary = {
        "features": "image encoder output, before the head",
        "test_flip_average": run.config.flip_average,
        "l2": probe.l2,
        "l2_heldout_accuracy": {f"{lam:g}": acc for lam, acc in scores.items()},
        "all": full,
        "few_shot": few_shot,
    }
    return lines, summary
