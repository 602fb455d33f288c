"""``miniclip eval RUN_A RUN_B …``: a model ensemble, the members' class probabilities averaged (lesson 14).

Each member is a trained run with its own tokenizer, normalisation, temperature, flip
averaging and prompt ensemble, and its own embedding space: two runs' embeddings cannot be
compared (rotate one run's whole space and it classifies exactly as before), but their class
probabilities can, so those are averaged::

    p_n = (1/M) Σ_m softmax_c(scores of member m for image n)          (N, K)

The members must have been trained on one dataset with the same classes and the same test
split; anything else is refused before any image is encoded, naming both runs. The report has
the shape of :mod:`miniclip.evaluation.report`'s: :func:`measure_ensemble` returns a plain dict,
:func:`ensemble_lines` turns it into text, and ``eval.json`` and ``confusion.png`` are written together.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from miniclip.atomic import check_output_folder
from miniclip.data import ImageTextDataset
from miniclip.data.captions import ensemble_templates
from miniclip.evaluation.report import dataset_facts, run_folder, write_report
from miniclip.evaluation.trained_run import TrainedRun, load_run, repeated_run
from miniclip.evaluation.zeroshot import class_vectors, classify_scores, encode_batches, encode_images
from miniclip.layers.softmax import softmax
from miniclip.plots import plot_confusion


def evaluate_ensemble(
    paths: Sequence[str], *, out_dir: str, data: str | None = None, data_dir: str | None = None
) -> str:
    """Average the class probabilities of several runs (module docstring); write plots and eval.json.

    Returns a report of each member's and the ensemble's top-1 and top-5; the ensemble's
    confusion matrix is ``confusion.png`` in ``out_dir``.
    """
    if len(paths) < 2:
        raise ValueError(f"an ensemble needs at least two runs, got {len(paths)}")
    out = check_ensemble_folder(out_dir, paths)
    if pair := repeated_run(paths):  # before anything is loaded
        raise ValueError(f"{paths[pair[0]]} and {paths[pair[1]]} are the same run: give each member once")
    runs = [load_run(p) for p in paths]
    dataset = runs[0].dataset(data, data_dir)
    for run in runs[1:]:
        if difference := split_difference(dataset, run.dataset(data, data_dir)):
            raise ValueError(f"cannot ensemble {runs[0].checkpoint.path} and {run.checkpoint.path}: {difference}")
    measured = measure_ensemble(runs, dataset)
    title = f"ensemble of {len(runs)} runs"
    plots = {"confusion.png": partial(plot_confusion, measured["confusion"], dataset.class_names, title=title)}
    written = write_report(out, {key: measured[key] for key in ("members", "ensemble", "prompts")}, plots)
    return "\n".join([*ensemble_lines(measured), "", "plots: " + ", ".join(map(str, written))])


def split_difference(a: ImageTextDataset, b: ImageTextDataset) -> str | None:
    """How two runs' datasets differ where an ensemble needs them alike (name, classes, test split); None if not."""
    if a.name != b.name:
        return f"they were trained on different datasets ({a.name} and {b.name})"
    if list(a.class_names) != list(b.class_names):
        if len(a.class_names) != len(b.class_names):
            return f"their classes differ ({len(a.class_names)} and {len(b.class_names)} classes)"
        i = next(i for i, (x, y) in enumerate(zip(a.class_names, b.class_names, strict=True)) if x != y)
        return f"their classes differ (class {i} is {a.class_names[i]!r} in one, {b.class_names[i]!r} in the other)"
    hint = "; a run's seed and n_test (and a folder's test_fraction) choose its test split"
    if a.test_images.shape != b.test_images.shape:
        return f"their test splits differ ({len(a.test_labels)} and {len(b.test_labels)} test images{hint})"
    if not (np.array_equal(a.test_labels, b.test_labels) and np.array_equal(a.test_images, b.test_images)):
        return f"their test splits differ (as many images, {len(a.test_labels)}, but not the same ones{hint})"
    return None


def member_probabilities(run: TrainedRun, dataset: ImageTextDataset) -> Any:
    """One run's class probabilities (N, K) on ``dataset``'s test split, on the device.

    A contrastive run: softmax over the classes of its logit-scaled cosines with its prompt
    ensemble, ``softmax_c(e^s · i_n · w_c)``, as ``miniclip classify`` gives them. A predictive
    run: softmax over the classes of its class scores ``log p_n · q_c``; with flip averaging its
    two views' log-probabilities are averaged unnormalised (:func:`encode_images` would rescale
    the row to unit length, which keeps the ranking but flattens the softmax).
    """
    ckpt = run.checkpoint
    model, flip = ckpt.model, run.config.flip_average
    classes = class_vectors(
        model,
        ckpt.tokenizer,
        dataset.class_names,
        ensemble_templates(dataset),
        ckpt.model_config.context_length,
        text_batch=run.text_batch,
    )  # (K, d), or (K, V) word distributions
    images = dataset.test_images  # (N, C, H, W) uint8, host
    prepare, batch = run.prepare_for(images), run.encode_batch  # the model's input size, as in miniclip eval
    if model.objective == "predictive":
        log_p = encode_batches(model, model.encode_image, images, run.normalize, batch, flip, prepare=prepare)  # (N, V)
        scores = (log_p / 2 if flip else log_p) @ classes.T  # (N, K): the two views' mean log-probabilities
    else:
        embeddings = encode_images(model, images, run.normalize, batch, flip_average=flip, prepare=prepare)  # (N, d)
        scores = model.logit_scale.scale * (embeddings @ classes.T)  # (N, K) logits
    return softmax(scores, axis=1)  # (N, K), each row sums to 1


def measure_ensemble(runs: Sequence[TrainedRun], dataset: ImageTextDataset) -> dict[str, Any]:
    """Each member's top-1 and top-5, and the averaged probabilities' (with per-class top-1 and confusion (K, K))."""
    labels = dataset.test_labels
    total, members = 0, []
    for run in runs:
        probabilities = member_probabilities(run, dataset)  # (N, K)
        total = total + probabilities
        scored = classify_scores(probabilities, labels)
        members.append({"checkpoint": str(run.checkpoint.path), "top1": scored["top1"], "top5": scored["top5"]})
    combined = classify_scores(total / len(runs), labels)  # the mean of the members' probabilities
    facts = dataset_facts(dataset)
    return {
        "dataset": facts,
        "members": members,
        "ensemble": {"top1": combined["top1"], "top5": combined["top5"], "per_class": combined["per_class"]},
        "prompts": facts["prompts"],
        "confusion": combined["confusion"].tolist(),
    }


def ensemble_lines(measured: dict[str, Any]) -> list[str]:
    """The members' and the ensemble's top-1 and top-5, a row each."""
    facts, members = measured["dataset"], measured["members"]
    rows = [(m["checkpoint"], m) for m in members] + [("ensemble", measured["ensemble"])]
    width = max(len(name) for name, _ in rows)
    return [
        f"ensemble of {len(members)} runs: {facts['test_images']} test images of {facts['name']}, "
        f"{len(facts['classes'])} classes",
        f"each member's class probabilities (its own prompt ensemble, {measured['prompts']}, temperature and flip "
        "averaging), averaged",
        "",
        f"{'zero-shot':<{width}} {'top-1':>7} {'top-5':>7}",
        *(f"{name:<{width}} {r['top1']:7.1%} {r['top5']:7.1%}" for name, r in rows),
    ]


def check_ensemble_folder(out_dir: str | os.PathLike[str], paths: Sequence[str]) -> Path:
    """The ensemble's output folder, refused (before anything is loaded) when it is, or lies in, a member's run folder.

    A member's folder holds that run's own ``eval.json`` and plots; an ensemble written there
    would replace some of them and leave others, a folder mixing two evaluations.
    """
    out = Path(out_dir).resolve()
    for path in paths:
        member = run_folder(path).resolve()
        if out == member or member in out.parents:
            where = "is" if out == member else "lies inside"
            raise ValueError(
                f"--out {out_dir} {where} the run folder of the member {path}, whose own eval.json and plots it would "
                "overwrite: give the ensemble a folder of its own (e.g. runs/ensemble)"
            )
    return check_output_folder(out_dir)
