"""``miniclip compare``: learning curves of several runs — zero-shot accuracy against images seen.

The CLIP paper's Figure 2 compares objectives by how many training images each needs to
reach a zero-shot accuracy. Every run here logs its zero-shot accuracy once per epoch
(``metrics.jsonl``, also kept in the checkpoint), so the curve of a run is

    images seen after epoch e  =  e × (steps per epoch) × (batch size)
    accuracy after epoch e     =  its prompt ensemble's zero-shot top-1 then

(steps per epoch = ⌊training images / batch size⌋: the trainer drops the last partial batch).

**The efficiency ratio** of two runs A and B: take the accuracy both reach, the lower of
their final accuracies; find where each curve first reaches it (linear interpolation between
epochs, in images seen); the ratio is the larger of the two image counts over the smaller —
how many times more images the slower run needed for the same accuracy. It is given only when
both crossings lie between two evaluations: a run that had reached that accuracy by its first
evaluation got there somewhere before it, and when is not known (a one-epoch run is evaluated
once), so then there is no ratio, and the comparison says which run lacks the resolution.
Usually the slower run's level is its final accuracy, reached with its whole budget, and the
faster run got there part-way through its own. (With a warm-up + cosine schedule a point
part-way through a run is not what a shorter run would end at — the learning rate is still
high there — so the ratio is the one these two runs show, not a law.)

Lesson 13 compares the contrastive and the predictive objective with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from miniclip.data.captions import ensemble_name
from miniclip.evaluation.trained_run import TrainedRun, load_run, repeated_run
from miniclip.plots import new_figure, save_figure
from miniclip.training.checkpoint import checkpoint_file
from miniclip.training.configs import NAMED_DATASETS


@dataclass
class Curve:
    """One run's zero-shot top-1 after each epoch, against the training images seen by then."""

    label: str
    objective: str
    batch_size: int
    images_seen: np.ndarray  # (E,) after epoch 1 … E
    top1: np.ndarray  # (E,) fraction
    templates: str  # the template set the accuracy is measured with
    first_loss: float | None  # the loss of the very first step, before any update (None if not logged)


def learning_curve(path: str | os.PathLike[str], label: str | None = None, templates: str | None = None) -> Curve:
    """The curve of the run at ``path`` (its checkpoint's metrics), measured with ``templates``.

    ``templates`` names one of the logged template sets; by default the dataset's prompt
    ensemble (:func:`miniclip.data.captions.ensemble_name`). Images seen are logged with each
    epoch; for a run trained before they were, the number of training images comes from the
    run's dataset, rebuilt as in training (never downloaded). ``label`` defaults to the run
    folder's name.
    """
    run = load_run(path)
    return _curve(run, label or Path(run.checkpoint.path).parent.name, templates)


def load_curves(
    paths: Sequence[str | os.PathLike[str]], labels: Sequence[str] | None = None, templates: str | None = None
) -> list[Curve]:
    """The curves of the runs at ``paths``, checked to compare; ``ValueError`` naming the runs if they do not.

    Each run is given once; the labels (``labels``, one per run, or by default
    :func:`default_labels`) are all different; and every two runs were evaluated on the same
    test images, with the same classes (:func:`evaluation_differences`). All of it is decided
    from the checkpoints, without loading any image, before anything is drawn.
    """
    files = [Path(os.path.abspath(checkpoint_file(path))) for path in paths]  # as given: a link keeps its name
    if pair := repeated_run(paths):
        i, j = pair
        raise ValueError(f"the run {files[i]} is given twice ({paths[i]} and {paths[j]}): give each run once")
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"{len(labels)} --label value(s) for {len(paths)} runs: give one per run, or none")
    labels = list(labels) if labels is not None else default_labels(files)
    for i, j in combinations(range(len(paths)), 2):
        if labels[i] == labels[j]:
            raise ValueError(
                f"{paths[i]} and {paths[j]} are both labelled {labels[i]!r}: give each run its own --label"
            )
    runs = [load_run(path) for path in paths]
    for i, j in combinations(range(len(paths)), 2):
        if differences := evaluation_differences(runs[i], runs[j]):
            raise ValueError(
                f"{paths[i]} and {paths[j]} were not evaluated on the same test images ({'; '.join(differences)}), "
                "so their curves do not compare: compare runs of one dataset, class set and test split"
            )
    return [_curve(run, label, templates) for run, label in zip(runs, labels, strict=True)]


def default_labels(files: Sequence[Path]) -> list[str]:
    """Each run's label: the shortest end of its folder's path that no other run's folder ends in.

    ``runs/x`` and ``runs/y`` are ``x`` and ``y``; ``a/run`` and ``b/run`` are ``a/run`` and
    ``b/run``. Two checkpoints (``.npz`` files) of one folder add their file names.
    """
    folders = [Path(file).parent for file in files]
    labels = []
    for file, folder in zip(files, folders, strict=True):
        others = [other for other in folders if other != folder]
        depth = next(k for k in range(1, len(folder.parts) + 1) if all(_end(folder, k) != _end(o, k) for o in others))
        shared = folders.count(folder) > 1
        labels.append(f"{_end(folder, depth)}/{Path(file).name}" if shared else _end(folder, depth))
    return labels


def _end(path: Path, k: int) -> str:
    """The last ``k`` parts of ``path`` (all of it, root included, when it has no more)."""
    return Path(*path.parts[-k:]).as_posix()


def evaluation_differences(a: TrainedRun, b: TrainedRun) -> list[str]:
    """What differs in how runs ``a`` and ``b`` were evaluated, from their saved configurations; empty if nothing.

    A curve is the zero-shot accuracy on a run's test images, so two curves compare only when
    they were measured on the same images, choosing among the same classes. What decides that:

    - ``data``, the dataset: cifar10 or shapes by name, a folder by its resolved path.
    - The class names, where both runs stored them: a folder's classes are its sub-folders,
      which can change between two runs; choosing among other classes is another task.
    - ``n_test``: shapes draws that many test images (None: 1000); CIFAR-10 and a folder keep
      a seeded subset of that many (None: the whole test split).
    - ``seed``: it draws the shapes' test images, so it matters for shapes always; it picks
      the subset of CIFAR-10's or a folder's test split, so there when ``n_test`` is set; and
      it splits each of a folder's classes into train and test, so for a folder always.
    - ``test_fraction``: the share of each of a folder's classes held out for testing.
    ``eval_images`` is not among them: the evaluations before a run's last epoch may use only
    the first ``eval_images`` images of the same split (the ``cpu`` configuration's 2,000),
    a sample of the same test, with about ±1 % of noise on those points.

    How the runs trained (``n_train``, batch size, objective, epochs) is not here: those are
    what a comparison is for. Nothing is loaded: the configurations alone decide.
    """
    ca, cb = a.config, b.config
    data_a, data_b = (c.data if c.data in NAMED_DATASETS else str(Path(c.data).resolve()) for c in (ca, cb))
    if data_a != data_b:
        return [f"dataset {data_a!r} against {data_b!r}"]  # nothing else compares across datasets
    differences = []
    names_a, names_b = (run.checkpoint.train_config.get("state", {}).get("class_names") for run in (a, b))
    if names_a is not None and names_b is not None and list(names_a) != list(names_b):
        if len(names_a) != len(names_b):
            differences.append(f"{len(names_a)} classes against {len(names_b)}")
        else:
            first = next(k for k, (x, y) in enumerate(zip(names_a, names_b, strict=True)) if x != y)
            differences.append(f"class {first} is {names_a[first]!r} against {names_b[first]!r}")
    folder = ca.data not in NAMED_DATASETS
    n_test_a, n_test_b = (1000 if c.data == "shapes" and c.n_test is None else c.n_test for c in (ca, cb))
    fields = [  # (name, a's, b's, whether it matters for this dataset)
        ("n_test", n_test_a, n_test_b, True),
        ("seed", ca.seed, cb.seed, ca.data == "shapes" or folder or ca.n_test is not None or cb.n_test is not None),
        ("test_fraction", ca.test_fraction, cb.test_fraction, folder),
    ]
    return differences + [f"{name} {va} against {vb}" for name, va, vb, matters in fields if matters and va != vb]


def _curve(run: TrainedRun, label: str, templates: str | None) -> Curve:
    """The curve of ``run`` under ``label`` (:func:`learning_curve`)."""
    metrics = run.checkpoint.metrics
    if not metrics:
        raise ValueError(f"{run.checkpoint.path} holds no finished epoch: nothing to draw")
    name = templates or ensemble_name(run.config.data)
    logged = metrics[-1].get("zero_shot", {})
    if name not in logged:
        raise ValueError(f"{run.checkpoint.path} logged no zero-shot accuracy for {name!r}; it has {sorted(logged)}")
    epochs = [m for m in metrics if name in m.get("zero_shot", {})]
    top1 = [m["zero_shot"][name] for m in epochs]  # each a number (older runs) or a dict holding top1
    top1 = [float(v["top1"] if isinstance(v, dict) else v) for v in top1]
    if all("images_seen" in m for m in epochs):
        seen = [m["images_seen"] for m in epochs]
    else:  # logged before images_seen was
        per_epoch = (len(run.dataset().train_labels) // run.config.batch_size) * run.config.batch_size
        seen = [m["epoch"] * per_epoch for m in epochs]
    return Curve(
        label=label,
        objective=run.checkpoint.model_config.objective,
        batch_size=run.config.batch_size,
        images_seen=np.array(seen, dtype=np.float64),
        top1=np.array(top1, dtype=np.float64),
        templates=name,
        first_loss=metrics[0].get("first_loss"),
    )


def images_to_reach(curve: Curve, accuracy: float) -> float:
    """Training images after which ``curve`` first reaches ``accuracy`` (interpolated between epochs); inf if never.

    Before the first epoch the curve is taken to start from its first point: a run that is
    already above ``accuracy`` after one epoch needed at most one epoch's images.
    """
    above = np.flatnonzero(curve.top1 >= accuracy)
    if above.size == 0:
        return math.inf
    i = int(above[0])
    if i == 0:
        return float(curve.images_seen[0])
    x0, x1 = curve.images_seen[i - 1], curve.images_seen[i]
    y0, y1 = curve.top1[i - 1], curve.top1[i]
    return float(x0 + (accuracy - y0) / (y1 - y0) * (x1 - x0))


@dataclass
class Efficiency:
    """How many times more images the slower of two runs needed to reach the accuracy both reach."""

    faster: str  # the run that got there with fewer images (as far as its evaluations tell)
    slower: str
    accuracy: float  # the level compared: the lower final accuracy
    images_faster: float  # where its curve first reaches the level (its first point's, if already past it there)
    images_slower: float
    ratio: float | None  # images_slower / images_faster; None when a crossing is not between two evaluations
    unresolved: list[str]  # the runs at or past the level at their first evaluation: when they got there is unknown


def efficiency(a: Curve, b: Curve) -> Efficiency:
    """The efficiency ratio of runs ``a`` and ``b`` (module docstring): none unless both crossings are bracketed."""
    level = float(min(a.top1[-1], b.top1[-1]))
    na, nb = images_to_reach(a, level), images_to_reach(b, level)
    (fast, n_fast), (slow, n_slow) = ((a, na), (b, nb)) if na <= nb else ((b, nb), (a, na))
    unresolved = [c.label for c in (a, b) if c.top1[0] >= level]  # no evaluation below the level to interpolate from
    ratio = None if unresolved else n_slow / n_fast
    return Efficiency(fast.label, slow.label, level, n_fast, n_slow, ratio, unresolved)


def _no_ratio(e: Efficiency, curves: Sequence[Curve]) -> str:
    """Why there is no ratio for ``e``: which run(s) had reached the level by their first evaluation, in words."""
    first = {c.label: int(c.images_seen[0]) for c in curves}
    if len(e.unresolved) == 1:
        (run,) = e.unresolved
        past = f"{run} had already reached {e.accuracy:.1%} at its first evaluation ({first[run]:,} images)"
        who = ("it", "it")
    else:
        a, b = (first[run] for run in e.unresolved)
        seen = f"{a:,} images each" if a == b else f"{a:,} and {b:,} images"
        past = f"{' and '.join(e.unresolved)} had already reached {e.accuracy:.1%} at their first evaluations ({seen})"
        who = ("they", "them")
    return (
        f"{past}, so when {who[0]} got there is not known: no ratio; a run is evaluated once per epoch, "
        f"so train {who[1]} with more epochs, of fewer images each, to see it"
    )


def plot_learning_curves(curves: Sequence[Curve], path: str | os.PathLike[str], title: str = "") -> Path:
    """Zero-shot top-1 against images seen (log scale), one line per run.

    When the runs differ in batch size (a sweep), two more panels: the final accuracy against
    the batch size, and the contrastive runs' loss of the first step against it beside ln N,
    the loss of N pairs whose logits are all equal.
    """
    if not curves:
        raise ValueError("no runs to draw")
    sweep = len({c.batch_size for c in curves}) > 1
    fig = new_figure(16 if sweep else 7, 4.5)
    axes = fig.subplots(1, 3 if sweep else 1, squeeze=False)[0]
    ax = axes[0]
    for c, curve in enumerate(curves):
        ax.plot(curve.images_seen, 100 * curve.top1, marker="o", markersize=3, color=f"C{c}", label=curve.label)
    ax.set_xscale("log")
    ax.set(xlabel="training images seen", ylabel=f"zero-shot top-1 (%), {curves[0].templates}", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if sweep:
        ordered = sorted(curves, key=lambda c: c.batch_size)
        sizes = [c.batch_size for c in ordered]
        axes[1].plot(sizes, [100 * c.top1[-1] for c in ordered], marker="o")
        axes[1].set(xlabel="batch size N (in-batch negatives: N − 1)", ylabel="final zero-shot top-1 (%)")
        axes[1].set_title("final accuracy (each epoch drops its last partial batch)", fontsize=10)
        logged = [
            (c.batch_size, c.first_loss) for c in ordered if c.first_loss is not None and c.objective == "contrastive"
        ]
        if logged:
            axes[2].plot(*zip(*logged, strict=True), marker="o", label="loss of the first step")
        axes[2].plot(sizes, np.log(sizes), "--", color="black", label="ln N")
        axes[2].set(xlabel="batch size N", ylabel="loss")
        axes[2].set_title("the loss at initialisation", fontsize=10)
        axes[2].legend(fontsize=8)
        for a in axes[1:]:
            a.set_xscale("log", base=2)
            a.grid(alpha=0.3)
    return save_figure(fig, path)


def format_comparison(curves: Sequence[Curve]) -> str:
    """A table of the runs' final accuracies, and the efficiency ratio of each run against the first (or why none)."""
    lines = [
        f"{'run':<24} {'objective':<12} {'batch':>6} {'images seen':>12} {'top-1':>7} {'loss, step 0':>13} {'ln N':>6}"
    ]
    for c in curves:
        first = "—" if c.first_loss is None else f"{c.first_loss:.3f}"
        ln_n = f"{math.log(c.batch_size):.3f}" if c.objective == "contrastive" else "—"  # a contrastive loss's scale
        lines.append(
            f"{c.label:<24} {c.objective:<12} {c.batch_size:>6} {int(c.images_seen[-1]):>12,} {c.top1[-1]:7.1%} "
            f"{first:>13} {ln_n:>6}"
        )
    for other in curves[1:]:
        e = efficiency(curves[0], other)
        if e.ratio is None:
            lines.append(_no_ratio(e, (curves[0], other)))
            continue
        lines.append(
            f"to reach {e.accuracy:.1%}: {e.faster} needed {e.images_faster:,.0f} images, {e.slower} "
            f"{e.images_slower:,.0f}, {e.ratio:.1f}× as many"
        )
    return "\n".join(lines)
