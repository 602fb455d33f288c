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
how many times more images the slower run needed for the same accuracy (*at least* that many
times, when the faster run was past that accuracy at its first evaluation). Usually the slower
run's level is its final accuracy, reached with its whole budget, and the faster run got
there part-way through its own. (With a warm-up + cosine schedule a point part-way through a
run is not what a shorter run would end at — the learning rate is still high there — so the
ratio is the one these two runs show, not a law.)

Before their last epoch, runs of the ``cpu`` configuration evaluate on the first 2,000 test
images only (``eval_images``), so the points of a curve carry about ±1 % of sampling noise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miniclip.data.captions import ensemble_name
from miniclip.plots import new_figure, save_figure
from miniclip.trained_run import load_run


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
    run's dataset, rebuilt as in training (never downloaded).
    """
    run = load_run(path)
    metrics = run.checkpoint.metrics
    if not metrics:
        raise ValueError(f"{run.checkpoint.path} holds no finished epoch: nothing to draw")
    name = templates or ensemble_name(run.config.data)
    logged = metrics[-1].get("zero_shot", {})
    if name not in logged:
        raise ValueError(f"{run.checkpoint.path} logged no zero-shot accuracy for {name!r}; it has {sorted(logged)}")
    epochs = [m for m in metrics if name in m.get("zero_shot", {})]
    top1 = [_top1(m["zero_shot"][name]) for m in epochs]
    if all("images_seen" in m for m in epochs):
        seen = [m["images_seen"] for m in epochs]
    else:  # logged before images_seen was
        per_epoch = (len(run.dataset().train_labels) // run.config.batch_size) * run.config.batch_size
        seen = [m["epoch"] * per_epoch for m in epochs]
    return Curve(
        label=label or Path(run.checkpoint.path).parent.name,
        objective=run.checkpoint.model_config.objective,
        batch_size=run.config.batch_size,
        images_seen=np.array(seen, dtype=np.float64),
        top1=np.array(top1, dtype=np.float64),
        templates=name,
        first_loss=metrics[0].get("first_loss"),
    )


def _top1(logged: float | dict) -> float:
    """A logged accuracy: a number (older runs) or a dict holding ``top1``."""
    return float(logged["top1"] if isinstance(logged, dict) else logged)


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

    faster: str
    slower: str
    accuracy: float  # the level compared: the lower final accuracy
    images_faster: float
    images_slower: float
    ratio: float
    at_least: bool  # the faster run was past the level at its first evaluation: it needed at most that many


def efficiency(a: Curve, b: Curve) -> Efficiency:
    """The efficiency ratio of runs ``a`` and ``b`` (module docstring)."""
    level = float(min(a.top1[-1], b.top1[-1]))
    na, nb = images_to_reach(a, level), images_to_reach(b, level)
    (fast, n_fast), (slow, n_slow) = ((a, na), (b, nb)) if na <= nb else ((b, nb), (a, na))
    early = bool(fast.top1[0] >= level)  # already there after one epoch: when exactly is not known
    return Efficiency(fast.label, slow.label, level, n_fast, n_slow, n_slow / n_fast, early)


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
    """A table of the runs' final accuracies, and the efficiency ratio of each run against the first."""
    head = (
        f"{'run':<24} {'objective':<12} {'batch':>6} {'images seen':>12} {'top-1':>7} {'loss, step 0':>13} {'ln N':>6}"
    )
    lines = [head]
    for c in curves:
        first = "—" if c.first_loss is None else f"{c.first_loss:.3f}"
        ln_n = f"{math.log(c.batch_size):.3f}" if c.objective == "contrastive" else "—"  # a contrastive loss's scale
        lines.append(
            f"{c.label:<24} {c.objective:<12} {c.batch_size:>6} {int(c.images_seen[-1]):>12,} {c.top1[-1]:7.1%} "
            f"{first:>13} {ln_n:>6}"
        )
    for other in curves[1:]:
        e = efficiency(curves[0], other)
        at_most, at_least = ("at most ", "at least ") if e.at_least else ("", "")
        lines.append(
            f"to reach {e.accuracy:.1%}: {e.faster} needed {at_most}{e.images_faster:,.0f} images, {e.slower} "
            f"{e.images_slower:,.0f}, {at_least}{e.ratio:.1f}× as many"
        )
    return "\n".join(lines)
