"""``miniclip eval``: everything worth knowing about a trained checkpoint, in numbers and pictures.

Lesson 10 derives zero-shot classification, prompt ensembles, recall@k and the heatmap by hand;
lesson 14 the prompt sets side by side and model ensembles. On the test split of the dataset the run was trained on:

* zero-shot top-1 and top-5 with four prompt sets side by side
  (:func:`~miniclip.data.captions.report_templates`): the bare class name ``"{}"``, CLIP's one
  sentence ``"a photo of a {}."``, the prompt ensemble and templates never used in training, so both
  what the words around a class name buy and the gap between seen and unseen phrasing are visible;
* per-class accuracy and a confusion-matrix plot (``confusion.png``), with the prompt ensemble;
* an N×N image–caption cosine-similarity heatmap (``similarity.png``) for the first images of
  different classes;
* text→image and image→text recall@1/5/10, each test image paired with its class's caption:
  **class-aware** (:mod:`miniclip.evaluation.retrieval`), since every image of a class has the same
  caption and plain recall would measure luck (R@1 ≈ 0.1 % on CIFAR-10); plain only where every
  caption belongs to one image (where the two are the same number).

A predictive run (``--objective predictive``, :class:`~miniclip.model.predictive.PredictiveModel`)
has no text encoder: its zero-shot scores words (:func:`miniclip.evaluation.zeroshot.class_vectors`), and
the heatmap and retrieval, which need caption embeddings, are skipped with a line saying so.

``--linear-probe`` (:func:`measure_linear_probe`) fits softmax regression on the image encoder's
frozen output, CLIP's yardstick for zero-shot, with all the training images and with 1, 4 and
16 per class. Several runs are a *model ensemble* (:mod:`miniclip.evaluation.ensemble`): the members'
class probabilities averaged on their shared test split.

Every test image is encoded once — averaged with its mirror image when the run was evaluated
that way while it trained (``flip_average``) — and that one embedding serves the zero-shot
table, the heatmap and retrieval (the linear probe encodes once more, for the layer below the
embedding). The model, the normalisation and the test split come from the checkpoint
(:func:`miniclip.evaluation.trained_run.load_run`). Released CLIP weights are evaluated the same
way (:func:`evaluate_pretrained`, ``miniclip eval --pretrained``), on the dataset named, their
images brought to the model's input size by CLIP's preprocessing; their report is written only
where ``--out`` says, never into the model folder.

One shape serves this report, the ensemble's and ``miniclip probe``'s: measure → a plain dict →
report. Each part is measured into a plain dict of host numbers (``measure_…``); each entry of
:data:`REPORT` turns the measured dict into lines, :func:`summary` picks what ``eval.json`` keeps,
and :func:`write_files` writes the JSON and the figures by name (file name → draw), all together,
once everything is measured: a refused evaluation writes nothing. A new evaluation is one
measuring function and one entry in :data:`REPORT`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from miniclip.atomic import check_output_folder, json_text, staged_folder, write_text
from miniclip.backend import get_array_module, to_device, to_host
from miniclip.data import ImageTextDataset
from miniclip.data.captions import ensemble_name, fill, report_templates
from miniclip.evaluation.linear_probe import L2_GRID, choose_l2, few_shot_indices, fit_linear_probe
from miniclip.evaluation.retrieval import recall_at_k
from miniclip.evaluation.trained_run import TrainedRun, load_run, outside_model_folder, pretrained_run
from miniclip.evaluation.zeroshot import encode_texts, evaluate_zero_shot
from miniclip.model.predictive import NO_TEXT_ENCODER
from miniclip.plots import plot_confusion, plot_similarity
from miniclip.pretrained.load import pretrained_folder
from miniclip.training.checkpoint import checkpoint_file

PROBE_SHOTS = (1, 4, 16)  # labelled training images per class of the few-shot probes (the CLIP paper's Fig. 6)
PROBE_HOLDOUT = 0.2  # share of each class's training images λ is chosen on
PROBE_STEPS = 500  # gradient steps per probe fit at most: 8 fits of 50,000 CIFAR-10 features in about a minute

Progress = Callable[[str], None]
Draw = Callable[[Path], Any]  # draws one figure into the file it is given


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


def write_files(out: Path, texts: dict[str, str], draw: Callable[[Path], Any]) -> None:
    """Into ``out``, all appearing together: the figures ``draw(folder)`` draws there, and each text file by name.

    The files are staged inside ``out`` (:func:`~miniclip.atomic.staged_folder`) and moved in
    together: an interrupted report leaves ``out`` as it was, never a new figure beside an old summary.
    """
    with staged_folder(out) as staging:
        draw(staging)
        for name, text in texts.items():
            write_text(staging / name, text)


def write_report(out: Path, summary: dict[str, Any], plots: dict[str, Draw]) -> list[Path]:
    """Draw each plot (``draw(path)``) and write ``eval.json`` into ``out``, all appearing together; their paths.

    The JSON is strict (:func:`~miniclip.atomic.json_text`): an accuracy that could not be measured is ``null``.
    """

    def draw(folder: Path) -> None:
        for name, plot in plots.items():
            plot(folder / name)

    write_files(out, {"eval.json": json_text(summary, indent=2) + "\n"}, draw)
    return [out / name for name in plots]


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

    ``data`` and ``data_dir`` replace the run's dataset and CIFAR-10 folder (:meth:`TrainedRun.dataset`).
    ``pairs`` images are in the heatmap; ``linear_probe`` adds :func:`measure_linear_probe`, and
    ``progress`` gets a line before each of its slow steps.
    """
    out = check_output_folder(out_dir or run_folder(path))  # before anything is loaded (the run's existence first)
    run = load_run(path)
    return evaluate(run, run.dataset(data, data_dir), out, pairs=pairs, linear_probe=linear_probe, progress=progress)


def evaluate_pretrained(
    source: str | os.PathLike[str],
    *,
    out_dir: str | None = None,
    data: str = "cifar10",
    data_dir: str | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    pairs: int = 5,
    linear_probe: bool = False,
    progress: Progress | None = None,
) -> str:
    """Evaluate released CLIP weights (:func:`~miniclip.evaluation.trained_run.pretrained_run`) as a run is.

    On ``data``'s test split (``n_test`` of its images; the probe fits on ``n_train`` training
    images; None: all). The report is returned; ``eval.json`` and the plots are written only into
    ``out_dir``, never into the model folder, which is a download cache.
    """
    folder = pretrained_folder(source)  # a missing model first, then the output place, before anything is read
    out = None if out_dir is None else check_output_folder(outside_model_folder(out_dir, folder))
    run = pretrained_run(folder, data=data, data_dir=data_dir, n_train=n_train, n_test=n_test)
    return evaluate(run, run.dataset(), out, pairs=pairs, linear_probe=linear_probe, progress=progress)


def evaluate(
    run: TrainedRun,
    dataset: ImageTextDataset,
    out: Path | None,
    *,
    pairs: int = 5,
    linear_probe: bool = False,
    progress: Progress | None = None,
) -> str:
    """Measure ``run`` on ``dataset``'s test split; write the plots and ``eval.json`` into ``out`` (None: none)."""
    model = run.checkpoint.model
    images = run.embed_images(dataset.test_images)  # (N, d)
    measured = {
        "checkpoint": str(run.checkpoint.path),
        "dataset": dataset_facts(dataset),
        "zero_shot": measure_zero_shot(run, dataset, images),
    }
    plots = {"confusion.png": partial(draw_confusion, measured)}
    if model.objective == "contrastive":  # retrieval and the heatmap need caption embeddings
        measured["recall"] = measure_retrieval(run, dataset, images)
        plots["similarity.png"] = similarity_plot(run, dataset, images, pairs)
    if linear_probe:
        measured["linear_probe"] = measure_linear_probe(run, dataset, progress)
    if out is None:
        written = f"not written (give --out DIR for {', '.join(plots)} and eval.json)"
    else:
        written = ", ".join(map(str, write_report(out, summary(measured), plots)))  # all measured: now write
    blocks = [lines(measured) for lines in REPORT] + [[f"plots: {written}"]]
    return "\n\n".join("\n".join(block) for block in blocks if block)


def dataset_facts(dataset: ImageTextDataset) -> dict[str, Any]:
    """What a report says of the test split: its dataset, size, classes (and how many have images in each split)."""
    return {
        "name": dataset.name,
        "test_images": len(dataset.test_labels),
        "classes": list(dataset.class_names),
        "prompts": ensemble_name(dataset),
        "test_classes": len(np.unique(dataset.test_labels)),
        "train_classes": len(np.unique(dataset.train_labels)),
    }


def summary(measured: dict[str, Any]) -> dict[str, Any]:
    """``eval.json``: the checkpoint, each prompt set's top-1, top-5 and per-class top-1, recall and the probe."""
    zero_shot = {name: {k: r[k] for k in ("top1", "top5", "per_class")} for name, r in measured["zero_shot"].items()}
    parts = {key: measured[key] for key in ("recall", "linear_probe") if key in measured}
    return {"checkpoint": measured["checkpoint"], "zero_shot": zero_shot, **parts}


def measure_zero_shot(run: TrainedRun, dataset: ImageTextDataset, images: Any) -> dict[str, dict[str, Any]]:
    """Zero-shot with each of :func:`~miniclip.data.captions.report_templates`' sets, from the test embeddings (N, d).

    Per set: ``top1``, ``top5``, ``per_class`` (K,), ``confusion`` (K, K) and, where the dataset
    holds classes out of training, ``heldout`` and ``seen`` (``{"top1", "top5", "n"}``).
    """
    ckpt, length = run.checkpoint, run.checkpoint.model_config.context_length
    results = evaluate_zero_shot(
        ckpt.model,
        ckpt.tokenizer,
        dataset,
        run.normalize,
        length,
        report_templates(dataset),
        image_embeddings=images,
        text_batch=run.text_batch,
    )
    kept = ("top1", "top5", "per_class", "heldout", "seen")
    return {
        name: {key: r[key] for key in kept if key in r} | {"confusion": r["confusion"].tolist()}
        for name, r in results.items()
    }


def _heldout_extra(result: dict[str, Any]) -> str:
    """A zero-shot row's top-1 on the held-out combinations and on the seen ones ("" without held-out classes)."""
    if "heldout" not in result:
        return ""
    return f"   held-out combinations {percent(result['heldout']['top1'])}, seen {percent(result['seen']['top1'])}"


def zero_shot_lines(measured: dict[str, Any]) -> list[str]:
    """The run, each prompt set's top-1 and top-5 side by side, then each class's top-1 with the prompt ensemble."""
    results, facts = measured["zero_shot"], measured["dataset"]
    n, k = facts["test_images"], len(facts["classes"])
    lines = [
        f"{measured['checkpoint']}: {n} test images of {facts['name']}, {k} classes",
        "",
        f"{'zero-shot':<22} {'top-1':>7} {'top-5':>7}",
    ]
    lines += [f"{name:<22} {r['top1']:7.1%} {r['top5']:7.1%}{_heldout_extra(r)}" for name, r in results.items()]
    per_class = results[facts["prompts"]]["per_class"]
    lines += ["", f"per-class top-1 ({facts['prompts']}):"]
    return lines + [f"  {c:<24} {percent(a, 6)}" for c, a in zip(facts["classes"], per_class, strict=True)]


def draw_confusion(measured: dict[str, Any], path: Path) -> Path:
    """``confusion.png``: the prompt ensemble's zero-shot confusion matrix."""
    facts = measured["dataset"]
    confusion = measured["zero_shot"][facts["prompts"]]["confusion"]
    return plot_confusion(confusion, facts["classes"], path, title=f"zero-shot confusion ({facts['prompts']})")


# -- Retrieval, and the similarity heatmap ----------------------------------------------------


def measure_retrieval(run: TrainedRun, dataset: ImageTextDataset, images: Any) -> dict[str, Any]:
    """Recall@1/5/10 both ways, each test image (N, d embedded) paired with its class's caption.

    Class-aware recall when captions are shared (any class with two test images or more);
    plain recall, the same number then, when every caption belongs to one image.
    """
    ckpt = run.checkpoint
    template = dataset.train_templates[0]
    captions, length = [fill(template, c) for c in dataset.class_names], ckpt.model_config.context_length
    class_texts = encode_texts(ckpt.model, ckpt.tokenizer, captions, length, run.text_batch)  # (K, d)
    labels = np.asarray(dataset.test_labels)
    texts = class_texts[to_device(labels)]  # (N, d): row i is the caption of image i
    if int(np.bincount(labels).max()) == 1:
        return {"measure": "instance", "caption_template": template, **recall_at_k(images, texts)}
    recall = recall_at_k(images, texts, labels=labels)
    # Image→text ranks the N captions, copies included: past R@1 it would count one caption's copies as
    # different captions (R@5 = R@1 while a class has five images), so only R@1 is reported.
    return {
        "measure": "class-aware",
        "caption_template": template,
        "text_to_image": recall["text_to_image_class"],
        "image_to_text": {"R@1": recall["image_to_text_class"]["R@1"]},
    }


def retrieval_lines(measured: dict[str, Any]) -> list[str]:
    """Recall@k both ways and what a hit means; or why there is none (no caption embeddings)."""
    if "recall" not in measured:
        return [f"similarity heatmap and retrieval: skipped, they need caption embeddings and {NO_TEXT_ENCODER}"]
    recall = measured["recall"]
    lines = [f'retrieval, each test image with the caption of its class ("{recall["caption_template"]}"):']
    notes = {}
    if recall["measure"] == "class-aware":
        facts = measured["dataset"]
        lines.append(
            f"  class-aware recall: a hit when an item of the query's class ranks in the top k (the "
            f"{facts['test_images']} images share {facts['test_classes']} captions, so an exact pair cannot be told "
            "from the rest of its class)"
        )
        notes = {"image_to_text": "   (zero-shot top-1 with this one caption; R@5, R@10 would count its copies)"}
    else:
        lines.append("  recall: a hit when the query's own pair ranks in the top k (each caption belongs to one image)")
    for direction in ("text_to_image", "image_to_text"):
        recalls = "  ".join(f"{k} {v:.1%}" for k, v in recall[direction].items())
        lines.append(f"  {direction:<22} {recalls}{notes.get(direction, '')}")
    return lines


def similarity_plot(run: TrainedRun, dataset: ImageTextDataset, images: Any, pairs: int) -> Draw:
    """``similarity.png``'s drawing: the first test image of each of the first ``pairs`` classes against its caption."""
    ckpt = run.checkpoint
    _, first = np.unique(dataset.test_labels, return_index=True)
    chosen = np.sort(first)[:pairs]  # (pairs,) test-image indices
    captions = [fill(dataset.train_templates[0], dataset.class_names[dataset.test_labels[i]]) for i in chosen]
    length = ckpt.model_config.context_length
    caption_embs = encode_texts(ckpt.model, ckpt.tokenizer, captions, length, run.text_batch)  # (pairs, d)
    return lambda path: plot_similarity(images[chosen], caption_embs, dataset.test_images[chosen], captions, path)


# -- The linear probe -------------------------------------------------------------------------


def measure_linear_probe(
    run: TrainedRun, dataset: ImageTextDataset, progress: Progress | None = None
) -> dict[str, Any]:
    """The linear probe on the image encoder's output: test top-1 with all training images and few-shot.

    Features: :func:`~miniclip.evaluation.zeroshot.image_features`, ``model.image(x)``, the layer under
    either objective's head (CLIP's L2 normalisation, the predictive model's word predictor),
    so probes of both kinds of run compare the same thing. The training images are encoded as
    they are, the test images with the run's flip averaging, as zero-shot sees them. λ is chosen
    by :func:`~miniclip.evaluation.linear_probe.choose_l2` on a held-out :data:`PROBE_HOLDOUT` of each class
    and the probe refitted on all; the few-shot probes (:data:`PROBE_SHOTS` images per class,
    :func:`~miniclip.evaluation.linear_probe.few_shot_indices` seeded with the run's seed) keep that λ,
    since one image per class leaves nothing to hold out. Classes with no training images
    (the shapes' held-out combinations) cannot be learned by a probe; the few-shot subsets are
    drawn from the others. A shot count larger than a class's training images is ``top1: None``
    with a ``note`` saying why. Every fit takes at most :data:`PROBE_STEPS` steps.
    """
    say = progress or (lambda message: None)
    seed, k = run.config.seed, dataset.num_classes
    train_y, test_y = np.asarray(dataset.train_labels), np.asarray(dataset.test_labels)
    heldout = dataset.heldout_mask(test_y) if dataset.heldout_classes else None  # (N_test,) bool
    started = time.perf_counter()
    say(f"linear probe: encoding {len(train_y)} training and {len(test_y)} test images (image-encoder features)")
    train_x = run.embed_images(dataset.train_images, features=True, flip_average=False)  # (N_train, D)
    test_x = run.embed_images(dataset.test_images, features=True)  # (N_test, D)
    xp = get_array_module(train_x)

    def tested(fitted: Any, n_train: int) -> dict[str, Any]:  # test top-1 (also held-out and seen), how it was fitted
        right = to_host(fitted.predict(test_x)) == test_y  # (N_test,)
        score = {"top1": float(right.mean())}
        if heldout is not None:
            for part, keep in (("heldout", heldout), ("seen", ~heldout)):
                score[f"{part}_top1"] = float(right[keep].mean()) if keep.any() else None  # none of that part
        return score | {"n_train": n_train, "steps": fitted.steps, "converged": fitted.converged}

    say(
        f"linear probe: choosing λ among {len(L2_GRID)} values on a held-out {PROBE_HOLDOUT:.0%} of the training "
        f"images, then refitting on all ({time.perf_counter() - started:.0f} s so far)"
    )
    probe, scores = choose_l2(train_x, train_y, k, holdout=PROBE_HOLDOUT, seed=seed, steps=PROBE_STEPS)
    full = tested(probe, len(train_y))
    say(f"linear probe: {', '.join(map(str, PROBE_SHOTS))} per class ({time.perf_counter() - started:.0f} s so far)")
    present = np.flatnonzero(np.bincount(train_y, minlength=k))  # (K',) classes with training images
    counts = np.bincount(train_y, minlength=k)[present]  # (K',)
    dense = np.searchsorted(present, train_y)  # (N_train,) labels renumbered 0 … K'−1 for few_shot_indices
    few_shot: dict[str, dict[str, Any]] = {}
    for shots in PROBE_SHOTS:
        if counts.min() < shots:
            poorest = dataset.class_names[present[int(np.argmin(counts))]]
            few_shot[str(shots)] = {"top1": None, "note": f"{poorest!r} has only {counts.min()} training images"}
            continue
        chosen = few_shot_indices(dense, shots, seed, num_classes=len(present))  # (K'·shots,) host
        fitted = fit_linear_probe(train_x[xp.asarray(chosen)], train_y[chosen], k, l2=probe.l2, steps=PROBE_STEPS)
        few_shot[str(shots)] = tested(fitted, len(chosen))
    say(f"linear probe: done in {time.perf_counter() - started:.0f} s")
    return {
        "features": "image encoder output, before the head",
        "test_flip_average": run.config.flip_average,
        "l2": probe.l2,
        "l2_heldout_accuracy": {f"{lam:g}": acc for lam, acc in scores.items()},
        "all": full,
        "few_shot": few_shot,
    }


def linear_probe_lines(measured: dict[str, Any]) -> list[str]:
    """The probes' test top-1 beside zero-shot's, how λ was chosen and what no probe can learn (none if not run)."""
    if "linear_probe" not in measured:
        return []
    probe, facts = measured["linear_probe"], measured["dataset"]
    zero_shot = measured["zero_shot"][facts["prompts"]]
    extra = _heldout_extra(zero_shot).replace("   ", "  ", 1)
    lines = [
        "linear probe (softmax regression on the image encoder's output, before the head), test top-1:",
        f"  {'zero-shot (' + facts['prompts'] + ')':<30} {zero_shot['top1']:6.1%}{extra}",
    ]
    rows = {f"all {probe['all']['n_train']} training images": probe["all"]}
    rows |= {f"{shots} per class": row for shots, row in probe["few_shot"].items()}
    for name, row in rows.items():
        if "note" in row:
            lines.append(f"  {name:<30} {'n/a':>6}  {row['note']}")
            continue
        extra = ""
        if "heldout_top1" in row:
            extra = f"  held-out combinations {percent(row['heldout_top1'])}, seen {percent(row['seen_top1'])}"
        if not row["converged"]:
            extra += f"  (stopped after {PROBE_STEPS} steps, not converged)"
        lines.append(f"  {name:<30} {row['top1']:6.1%}{extra}")
    l2 = probe["l2"]
    lines += [
        f"  λ = {l2:g}, chosen on a held-out {PROBE_HOLDOUT:.0%} of the training images (accuracy there "
        f"{probe['l2_heldout_accuracy'][f'{l2:g}']:.1%}) and refitted on all;",
        "  the few-shot probes keep that λ: one image per class leaves none to hold out",
    ]
    k, untrained = len(facts["classes"]), len(facts["classes"]) - facts["train_classes"]
    if untrained:
        lines.append(f"  {untrained} of the {k} classes have no training images: no probe can predict them")
    return lines


REPORT = (zero_shot_lines, retrieval_lines, linear_probe_lines)  # the printed report, a blank line between parts
