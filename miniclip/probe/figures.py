"""The probe's figures: maps coloured by class, curves against σ, persistence diagrams (lessons 11 and 12).

:data:`FIGURES` names each figure ``miniclip probe`` writes by its file name, with the function
that draws it from what :func:`miniclip.probe.report.measure` measured: ``draw(measured, path)``.

Drawn like :mod:`miniclip.plots` (a bare Agg figure, written atomically); heatmaps and image
grids are :func:`miniclip.plots.plot_heatmap` and :func:`~miniclip.plots.plot_image_grid`.

With many classes (``shapes`` has 48) a legend would hide the picture: classes keep their
colours (matplotlib's 20-colour cycle, repeating, or colours the caller gives) and the legend
names them only up to :data:`LEGEND_LIMIT` classes (past that it keeps the key to the markers:
dots for images, stars for captions); the curves against σ then show only the classes named in
``highlight`` (the most and least fragile) beside the mean over all classes.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps

from miniclip.backend import to_host
from miniclip.plots import new_figure, plot_heatmap, plot_image_grid, save_figure

LEGEND_LIMIT = 12  # classes up to which a legend is drawn


def class_colour(c: int, count: int) -> Any:
    """The colour of class ``c`` of ``count``: tab10's ten for up to ten classes, else tab20's twenty, cycling.

    (tab20 holds tab10's colours at its even places, so mixing the two would give two classes one colour.)
    """
    return colormaps["tab10"](c) if count <= 10 else colormaps["tab20"](c % 20)


def plot_map(
    points: Any,
    labels: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str,
    captions: Any = None,
    caption_labels: np.ndarray | None = None,
    caption_note: str = "class captions",
    axes: tuple[str, str] | None = None,
    colours: Sequence[Any] | None = None,
) -> Path:
    """A 2-D map (N, 2) of images, one colour per class; optional caption points (M, 2) drawn as black-edged stars.

    ``caption_labels`` (M,) give each caption point its class colour. ``axes`` names the two
    coordinates when they mean something (a t-SNE map's do not, and have no ticks). ``colours``
    (one Matplotlib colour per class) replaces the colour cycle, e.g. where a class is named after
    a colour; the dots then get a thin grey edge, so that a white class shows on the white page.
    The legend names every class up to :data:`LEGEND_LIMIT` classes; past that it keeps only the
    key to the markers (dots: images, stars: captions).
    """
    xy = np.asarray(to_host(points), dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != len(labels):
        raise ValueError(f"need one 2-D point per label: points {xy.shape}, {len(labels)} labels")
    if colours is not None and len(colours) != len(class_names):
        raise ValueError(f"need one colour per class: {len(colours)} colours, {len(class_names)} classes")
    colour_of = (lambda c: colours[c]) if colours is not None else (lambda c: class_colour(c, len(class_names)))
    edge = {"edgecolors": "0.45", "linewidths": 0.4} if colours is not None else {"linewidths": 0}
    named = len(class_names) <= LEGEND_LIMIT
    fig = new_figure(7.5, 6)
    ax = fig.subplots()
    for c, name in enumerate(class_names):
        mine = labels == c
        if mine.any():
            ax.scatter(*xy[mine].T, s=9, alpha=0.7, color=colour_of(c), label=name if named else None, **edge)
    if not named:  # too many classes to name: a key to the markers only
        ax.scatter([], [], s=9, color="0.5", label=f"images (a colour per class, {len(class_names)} classes)")
    if captions is not None:
        cxy = np.asarray(to_host(captions), dtype=np.float64)
        if caption_labels is None or cxy.shape != (len(caption_labels), 2):
            raise ValueError(f"need one 2-D point per caption label: {cxy.shape}, {caption_labels}")
        star_colours = [colour_of(int(c)) for c in caption_labels]
        ax.scatter(cxy[:, 0], cxy[:, 1], s=70, marker="*", c=star_colours, edgecolors="black", linewidths=0.6)
        ax.scatter([], [], s=70, marker="*", c="white", edgecolors="black", label=caption_note)  # legend entry
    if named or captions is not None:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, markerscale=2, frameon=False)
    if axes is None:
        ax.set(xticks=[], yticks=[])
    else:
        ax.set(xlabel=axes[0], ylabel=axes[1])
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def plot_against_sigma(
    sigmas: Sequence[float],
    panels: Sequence[tuple[Any, str, str]],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    highlight: Sequence[int] | None = None,
) -> Path:
    """One line per class against σ, in one panel per ``(values (K, S), ylabel, title)``; the class mean dashed.

    ``sigmas`` (S,) are the x positions (0 for the clean images where a panel includes them).
    With more than :data:`LEGEND_LIMIT` classes only those in ``highlight`` are drawn.
    """
    xs = np.asarray(sigmas, dtype=np.float64)
    every = len(class_names) <= LEGEND_LIMIT or not highlight
    shown = list(range(len(class_names))) if every else list(dict.fromkeys(int(c) for c in highlight))
    fig = new_figure(4.6 * len(panels) + 1.6, 4)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (values, ylabel, title) in zip(axes, panels, strict=True):
        v = np.asarray(to_host(values), dtype=np.float64)
        if v.shape != (len(class_names), len(xs)):
            raise ValueError(f"{title}: values must be ({len(class_names)}, {len(xs)}), got {v.shape}")
        for position, c in enumerate(shown):  # with only some classes shown, colours by position: none repeats
            colour = class_colour(c if len(shown) == len(class_names) else position, len(shown))
            ax.plot(xs, v[c], marker="o", markersize=3, color=colour, label=class_names[c])
        ax.plot(xs, np.nanmean(v, axis=0), "--", color="black", linewidth=2, label="mean of all classes")
        ax.set(xlabel="blur σ (pixels)", ylabel=ylabel, title=title, xticks=xs)
        ax.grid(alpha=0.3)
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return save_figure(fig, path)


def plot_diagrams(
    panels: Sequence[tuple[str, Sequence[Any]]], path: str | os.PathLike[str], *, distance: str = "cosine distance"
) -> Path:
    """Persistence diagrams side by side: each panel ``(title, [H0, H1])`` with bars (birth, death) in ``distance``.

    H0 bars are dots on the line birth = 0, H1 bars triangles. A bar that never dies (H0 has one)
    is drawn on a dashed line at the top, marked ∞ on the death axis. The diagonal (death = birth)
    is where bars of no persistence would sit. Up to three panels sit in one row, more in rows of two.
    """
    if not panels:
        raise ValueError("no diagrams to draw")
    finite = [d[np.isfinite(d[:, 1])] for _, dgms in panels for d in dgms if len(d)]
    top = max((float(d[:, 1].max()) for d in finite if len(d)), default=1.0) * 1.08 or 1.0
    infinite_at = top * 1.06  # the line the bars that never die are drawn on, above every finite death
    cols = len(panels) if len(panels) <= 3 else 2
    rows = -(-len(panels) // cols)
    fig = new_figure(3.6 * cols, 3.6 * rows)
    fig.set_layout_engine("constrained")  # titles and axis labels of neighbouring panels kept apart
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    for ax in axes[len(panels) :]:
        ax.axis("off")
    for ax, (title, dgms) in zip(axes, panels, strict=False):
        ax.plot([0, top], [0, top], color="grey", linewidth=0.8)
        ax.axhline(infinite_at, color="grey", linestyle="--", linewidth=0.8)
        for dim, (marker, colour) in enumerate((("o", "C0"), ("^", "C3"))):
            if dim >= len(dgms) or not len(dgms[dim]):
                continue
            bars = np.asarray(dgms[dim], dtype=np.float64)
            death = np.where(np.isfinite(bars[:, 1]), bars[:, 1], infinite_at)  # the infinite bar on the ∞ line
            ax.scatter(bars[:, 0], death, s=12, marker=marker, color=colour, alpha=0.7, label=f"H{dim}")
        ax.set(xlim=(-0.02 * top, top), ylim=(-0.02 * top, infinite_at + 0.04 * top))
        ticks = [t for t in ax.get_yticks() if -0.02 * top <= t <= top]  # the finite ticks, then ∞ on the line
        ax.set_yticks([*ticks, infinite_at], labels=[f"{t:g}" for t in ticks] + ["∞"])
        ax.set_title(textwrap.fill(title, 40), fontsize=10)
        ax.set_xlabel(f"birth ({distance})", fontsize=8)
        ax.set_ylabel(f"death ({distance})", fontsize=8)
        ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


# -- The report's figures, by file name: each drawn from what miniclip.probe.report.measure returns ---


def _fragile(m: dict[str, Any]) -> list[int]:
    """The most and least fragile classes (indices): the curves drawn when not every class is."""
    return [m["class_names"].index(name) for group in m["fragile"].values() for name, _ in group]


def _map_with_captions(m: dict[str, Any], path: Path, key: str, **options: Any) -> Path:
    """The map ``key`` of the chosen images (first) and the class captions (after them, class-major) as stars."""
    n, xy = len(m["chosen"]), m["maps"][key]
    caption_labels = np.repeat(np.arange(len(m["class_names"])), len(m["templates"]))  # (K·T,)
    labels = m["labels"][m["chosen"]]  # (K·p,)
    return plot_map(xy[:n], labels, m["class_names"], path, captions=xy[n:], caption_labels=caption_labels, **options)


def map_tsne_images(m: dict[str, Any], path: Path) -> Path:
    """t-SNE of the chosen images, a colour per class."""
    title = f"t-SNE of {m['points']} test images per class"
    return plot_map(m["maps"]["tsne images"], m["labels"][m["chosen"]], m["class_names"], path, title=title)


def map_tsne_images_captions(m: dict[str, Any], path: Path) -> Path:
    """t-SNE of the chosen images and the class captions in one map."""
    title = "t-SNE of the images and the class captions (★)"
    return _map_with_captions(m, path, "tsne images and captions", title=title)


def map_gap_images_captions(m: dict[str, Any], path: Path) -> Path:
    """The chosen images and the class captions along the gap between their clouds (x) and across it (y)."""
    title = f"images and class captions (★) along the gap (x), {m['gap']['angle_degrees']:.1f}° between the centroids"
    axes = ("from the image centroid towards the caption centroid", "widest direction across it (PCA)")
    return _map_with_captions(m, path, "gap map", title=title, axes=axes)


def similarity(m: dict[str, Any], path: Path, *, key: str, title: str) -> Path:
    """The class-by-class cosine matrix ``key`` of ``m["similarity"]``."""
    names = m["class_names"]
    return plot_heatmap(m["similarity"][key], path, rows=names, columns=names, colorbar="cosine", title=title)


def blur_examples(m: dict[str, Any], path: Path) -> Path:
    """A test image of each of the first classes, clean and at every σ."""
    return plot_image_grid(m["examples"], m["example_titles"], path, ncols=1 + len(m["sigmas"]))


def blur_accuracy(m: dict[str, Any], path: Path) -> Path:
    """Each class's zero-shot top-1, and its mean cosine clean · blurred, against σ."""
    clean = np.ones((len(m["class_names"]), 1))  # the clean images' cosine with themselves
    panels = [
        (100 * m["accuracy"], "zero-shot top-1 (%)", "accuracy against blur"),
        (np.hstack([clean, m["cosine"]]), "mean cosine", "clean · blurred embedding"),
    ]
    return plot_against_sigma([0.0, *m["sigmas"]], panels, m["class_names"], path, highlight=_fragile(m))


def subspace_angles(m: dict[str, Any], path: Path) -> Path:
    """The mean principal angle between every two classes' subspaces."""
    names, title = m["class_names"], f"mean principal angle between class subspaces (rank {m['rank']})"
    options = {"fmt": "{:.0f}", "cmap": "magma", "colorbar": "degrees", "title": title}
    return plot_heatmap(m["angles_mean"], path, rows=names, columns=names, **options)


def persistence(m: dict[str, Any], path: Path) -> Path:
    """The diagrams of the most and the least fragile class, clean and at the largest σ."""
    names, largest = m["class_names"], m["sigmas"][-1]
    most, least = (m["fragile"][end][0][0] for end in ("most", "least"))  # the first class named at each end
    panels = [
        (f"{name} ({which}), {label}", m["diagrams"][sigma][names.index(name)])
        for name, which in ((most, "most fragile"), (least, "least fragile"))
        for sigma, label in ((0.0, "clean"), (largest, f"σ = {largest:g}"))
    ]
    return plot_diagrams(panels, path)


def persistence_distance(m: dict[str, Any], path: Path) -> Path:
    """How far each class's H0 and H1 diagrams and its subspace move from the clean ones, against σ."""
    clean = np.zeros((len(m["class_names"]), 1))  # the clean images are no distance from themselves
    panels = [
        (np.hstack([clean, m["wasserstein"][:, :, 0]]), "W1 distance", "H0: clean ↔ blurred"),
        (np.hstack([clean, m["wasserstein"][:, :, 1]]), "W1 distance", "H1: clean ↔ blurred"),
        (np.hstack([clean, m["angles_blur"]]), "mean principal angle (°)", "subspace: clean ↔ blurred"),
    ]
    return plot_against_sigma([0.0, *m["sigmas"]], panels, m["class_names"], path, highlight=_fragile(m))


FIGURES = {  # file name → draw(measured, path)
    "map_tsne_images.png": map_tsne_images,
    "map_tsne_images_captions.png": map_tsne_images_captions,
    "map_gap_images_captions.png": map_gap_images_captions,
    "similarity_zero_shot.png": partial(
        similarity,
        key="zero-shot: class-mean image · class caption ensemble",
        title="zero-shot matrix: class-mean image (rows) · class captions (columns)",
    ),
    "similarity_images.png": partial(
        similarity, key="class-mean image · class-mean image", title="class-mean image · class-mean image"
    ),
    "similarity_captions.png": partial(
        similarity, key="caption ensemble · caption ensemble", title="class captions · class captions"
    ),
    "blur_examples.png": blur_examples,
    "blur_accuracy.png": blur_accuracy,
    "subspace_angles.png": subspace_angles,
    "persistence.png": persistence,
    "persistence_distance.png": persistence_distance,
}
