"""Figures for a trained CLIP: training curves, confusion matrix, image–caption similarities, search results.

Every figure is drawn on a bare :class:`matplotlib.figure.Figure` (no ``pyplot``), which renders
with the Agg canvas: nothing depends on a display, no window ever opens, and the global
matplotlib backend is left alone. Each function writes a PNG atomically (:mod:`miniclip.atomic`),
so a reader never sees half a file, and returns the path it wrote.

* :func:`plot_curves` — train loss and zero-shot accuracy against the epoch, side by side.
* :func:`plot_confusion` — ``confusion[true, predicted]`` with every count written in.
* :func:`plot_similarity` — the cosine ``t_i · v_j`` of every caption with every image, the
  images along the top, the captions down the side (Figure 1 of the CLIP paper, on your data).
* :func:`plot_image_grid` — images in a grid, each with a title (search results).

Lesson 08 first draws with it; lesson 10 draws the similarity heatmap.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from miniclip.atomic import write_atomically
from miniclip.backend import to_host


def new_figure(width: float, height: float) -> Figure:
    """A bare figure of ``width`` × ``height`` inches that renders off-screen (Agg)."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # render off-screen with Agg
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG, atomically (:func:`~miniclip.atomic.write_atomically`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda f: fig.savefig(f, format="png", bbox_inches="tight"))


def _picture(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """A (C, H, W) uint8 image as something ``imshow`` draws: (H, W, 3) colour or (H, W) grey."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"each image must be (C, H, W) with C = 1 or 3, got shape {image.shape}")
    if image.shape[0] == 1:
        return image[0], "gray"
    return image.transpose(1, 2, 0), None


def _accuracy(value: Any, key: str = "top1") -> float | None:
    """A template set's accuracy as logged: a number (its top-1), or a dict holding ``key``."""
    if isinstance(value, dict):
        value = value.get(key)
    elif key != "top1":
        return None
    return None if value is None else float(value)


def plot_curves(metrics: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Loss and zero-shot accuracy against the epoch, one dict per epoch::

        {"epoch": 3, "train_loss": 1.92, "test_loss": 2.01,               # test_loss optional
         "zero_shot": {"one template": 0.41, "CLIP ensemble (18)": 0.44}}  # optional at any epoch

    A ``zero_shot`` value may also be a row of :func:`miniclip.evaluation.zeroshot.accuracy_table`
    (``{"top1": ..., "heldout_top1": ...}``); held-out accuracy is then drawn dashed.
    """
    if not metrics:
        raise ValueError("metrics is empty: nothing to plot")
    for m in metrics:
        if "epoch" not in m or "train_loss" not in m:
            raise ValueError(f"each metrics entry needs 'epoch' and 'train_loss', got keys {sorted(m)}")
    fig = new_figure(11, 4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for key, label in (("train_loss", "train loss"), ("test_loss", "test loss")):
        points = [(m["epoch"], float(m[key])) for m in metrics if m.get(key) is not None]
        if points:
            loss_ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
    loss_ax.set(xlabel="epoch", ylabel="contrastive loss", title="loss")
    loss_ax.legend(loc="best", framealpha=0.8)
    names = list(dict.fromkeys(name for m in metrics for name in m.get("zero_shot", {})))
    for colour, name in enumerate(names):
        for key, style, suffix in (("top1", "-", ""), ("heldout_top1", "--", " (held-out classes)")):
            points = [
                (m["epoch"], 100 * a)
                for m in metrics
                if name in m.get("zero_shot", {}) and (a := _accuracy(m["zero_shot"][name], key)) is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                acc_ax.plot(xs, ys, style, color=f"C{colour}", marker="o", markersize=3, label=name + suffix)
    acc_ax.set(xlabel="epoch", ylabel="top-1 accuracy (%)", title="zero-shot accuracy on the test split")
    if names:  # beside the axes, not over them: with several accuracies the legend would hide a curve
        acc_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8)
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs: no 1.5, 2.5 on the axis
    return save_figure(fig, path)


def plot_heatmap(
    shade: Any,
    path: str | os.PathLike[str],
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    text: Any = None,
    fmt: str = "{:.2f}",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: str = "",
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    values_up_to: int = 24,
) -> Path:
    """A (R, C) matrix drawn as coloured cells, ``rows`` down the side and ``columns`` along the bottom.

    Each cell shows ``text[i, j]`` (default: ``shade`` itself) written with ``fmt``; cells whose
    text is ``""`` or whose shade is NaN stay blank, and with more than ``values_up_to`` rows or
    columns no value is written (it would not fit).
    """
    values = np.asarray(to_host(shade), dtype=np.float64)
    r, c = len(rows), len(columns)
    if values.shape != (r, c):
        raise ValueError(f"the matrix must be ({r}, {c}) for {r} row and {c} column names, got shape {values.shape}")
    labels = values if text is None else np.asarray(to_host(text))
    if labels.shape != values.shape:
        raise ValueError(f"text must have the matrix's shape {values.shape}, got {labels.shape}")
    fig = new_figure(2.5 + 0.55 * c, 2 + 0.55 * r)
    ax = fig.subplots()
    shown = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label=colorbar)
    if max(r, c) <= values_up_to:
        blank = labels == "" if labels.dtype.kind in "US" else np.zeros(values.shape, dtype=bool)  # (R, C)
        for i, j in zip(*np.nonzero(np.isfinite(values) & ~blank), strict=True):
            red, green, blue, _ = shown.cmap(shown.norm(values[i, j]))  # the cell's colour
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # its luminance: dark text on a light cell
            ax.text(
                j,
                i,
                fmt.format(labels[i, j]),
                ha="center",
                va="center",
                fontsize=8 if max(r, c) <= 12 else 5 if max(r, c) <= 24 else 3,
                color="black" if light else "white",
            )
    ax.set_xticks(range(c), labels=columns, rotation=45, ha="right", fontsize=8 if c <= 24 else 5)
    ax.set_yticks(range(r), labels=rows, fontsize=8 if r <= 24 else 5)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return save_figure(fig, path)


def plot_confusion(
    confusion: Any, class_names: Sequence[str], path: str | os.PathLike[str], title: str = "zero-shot confusion"
) -> Path:
    """The (K, K) matrix ``confusion[true, predicted]``, shaded by row share, each count written in."""
    counts = np.asarray(to_host(confusion))
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion must be ({k}, {k}) for {k} class names, got shape {counts.shape}")
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # (K, K) each row sums to 1
    written = np.where(counts > 0, counts.astype(str), "")  # (K, K) the counts, empty cells left blank
    return plot_heatmap(
        share,
        path,
        rows=class_names,
        columns=class_names,
        text=written,
        fmt="{}",
        cmap="Blues",
        vmin=0,
        vmax=1,
        values_up_to=len(class_names),  # every count, however small the print
        colorbar="share of the true class",
        xlabel="predicted class",
        ylabel="true class",
        title=title,
    )


def plot_similarity(
    image_embs: Any, text_embs: Any, images_uint8: np.ndarray, captions: Sequence[str], path: str | os.PathLike[str]
) -> Path:
    """Cosine similarity of every caption (rows) with every image (columns), values written in.

    ``image_embs`` (M, d) and ``text_embs`` (T, d) are unit-length embeddings (host or device) of
    ``images_uint8`` (M, C, H, W) and ``captions`` (T); the images are drawn above their columns.
    """
    images_h, texts_h = np.asarray(to_host(image_embs)), np.asarray(to_host(text_embs))
    m, t = images_h.shape[0], texts_h.shape[0]
    if len(images_uint8) != m or len(captions) != t or images_h.shape[1:] != texts_h.shape[1:]:
        raise ValueError(
            f"need one embedding per image and per caption: {len(images_uint8)} images, {len(captions)} captions, "
            f"image embeddings {images_h.shape}, text embeddings {texts_h.shape}"
        )
    cos = texts_h @ images_h.T  # (T, M)
    fig = new_figure(2.5 + 1.1 * m, 1.5 + 0.6 * t)
    ax = fig.subplots()
    ax.imshow(cos, cmap="viridis", extent=(-0.5, m - 0.5, t - 0.5, -0.5))
    for i in range(t):
        for j in range(m):
            colour = "black" if cos[i, j] > cos.min() + 0.6 * np.ptp(cos) else "white"
            ax.text(j, i, f"{cos[i, j]:.2f}", ha="center", va="center", color=colour, fontsize=9)
    for j in range(m):  # each image drawn in a cell above its column
        picture, cmap = _picture(images_uint8[j])
        ax.imshow(picture, cmap=cmap, extent=(j - 0.45, j + 0.45, -0.6, -1.5), interpolation="nearest")
    ax.set_xlim(-0.5, m - 0.5)
    ax.set_ylim(t - 0.5, -1.55)
    ax.set_xticks([])
    ax.set_yticks(range(t), labels=[textwrap.shorten(c, 40) for c in captions])
    ax.set_title("cosine similarity of captions and images")
    for spine in ax.spines.values():
        spine.set_visible(False)
    return save_figure(fig, path)


def plot_image_grid(
    images_uint8: np.ndarray, titles: Sequence[str], path: str | os.PathLike[str], ncols: int = 8
) -> Path:
    """Images (N, C, H, W) uint8 in a grid of ``ncols`` columns, each under its title."""
    n = len(images_uint8)
    if n == 0 or len(titles) != n:
        raise ValueError(f"need at least one image and one title per image, got {n} images and {len(titles)} titles")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)  # ceil
    fig = new_figure(1.6 * ncols, 1.9 * nrows)
    axes = np.asarray(fig.subplots(nrows, ncols, squeeze=False)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, image, title in zip(axes, images_uint8, titles, strict=False):
        picture, cmap = _picture(np.asarray(image))
        ax.imshow(picture, cmap=cmap, interpolation="nearest")
        ax.set_title(textwrap.fill(str(title), 18), fontsize=8)
    return save_figure(fig, path)
