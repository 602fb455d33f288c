"""``miniclip probe RUN``: every probe of a trained run, measured; then its figures and a summary.

What :func:`measure` measures, on the run's test split (see :mod:`miniclip.probe.embeddings`):

1. **Maps** — t-SNE of ``points`` images per class alone, and with every class caption
   (each template) in the same map; the same images and captions drawn along the gap between
   the two clouds (and the widest direction across it, by PCA); the gap itself
   (:func:`~miniclip.probe.maps.modality_gap`, all test images against all class captions).
2. **Similarity matrices** — the cosines of class-mean image embeddings (renormalised) with
   each class's prompt ensemble (the zero-shot matrix), with each other, and of the
   ensembles with each other.
3. **Blur** — every test image blurred with each σ: zero-shot top-1 per class (the prompt
   ensemble), and each class's mean cosine between its images' clean and blurred embeddings.
4. **Subspace angles** — each class's top-``rank`` principal subspace, from all its test
   images: the mean principal angle between every pair of classes, and between each class's
   clean and blurred subspaces at each σ.
5. **Persistence** — H0 and H1 diagrams of each class's ``points`` images (cosine distance),
   clean and at each σ (the same images), and the Wasserstein-1 distance between the clean
   diagram and each blurred one.

The options are checked before anything is computed (a bad σ, more points than a class has,
a class with too few images for the subspace rank: a ValueError, no file), and everything is
computed before anything is written. :func:`write_report` then writes the figures and the
summary into a hidden folder beside ``out`` and moves them into ``out`` one by one, each
move atomic, so an interrupted probe leaves every file either old or new.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from miniclip.atomic import json_text, staged_folder, write_text
from miniclip.backend import get_array_module, to_host
from miniclip.evaluation.trained_run import load_run
from miniclip.evaluation.zeroshot import zero_shot
from miniclip.plots import plot_heatmap, plot_image_grid
from miniclip.probe import figures, maps, robustness, topology
from miniclip.probe.embeddings import RunEmbeddings, embed_blurred, embed_run

DEFAULT_SIGMAS = (1.0, 2.0, 3.0, 4.0, 5.0)
DEFAULT_POINTS = 100  # per class, for the maps and the diagrams (H1 of 100 points: about a second)
DEFAULT_RANK = 5  # dimensions of each class's principal subspace
PERPLEXITY = 30.0  # t-SNE's, or (N − 1)/3 when the map has too few points for it
EXAMPLES = 10  # classes shown in the blur-examples grid


def check_sigmas(sigmas: Sequence[float], image_size: int) -> list[float]:
    """The σ list sorted, without repeats; a ValueError for an empty list or a σ not in (0, image size].

    A Gaussian wider than the image is pointless: at σ = S pixels on S × S images every pixel is
    already within about one σ of every other, so the blurred image is close to a flat patch of
    its mean colour, and a wider kernel (2⌈3σ⌉ + 1 taps) only costs time and memory.
    """
    if not sigmas:
        raise ValueError("give at least one blur σ (--blur 1 2 3 4 5)")
    checked = [robustness.check_sigma(s) for s in sigmas]
    for s in checked:
        if s > image_size:
            raise ValueError(
                f"--blur {s:g} is wider than the {image_size}×{image_size} images: at σ = {image_size} every pixel "
                f"is already blurred into the image's mean colour, so give σ between 0 and {image_size}"
            )
    return sorted(set(checked))


def check_class_sizes(
    counts: np.ndarray, class_names: Sequence[str], points: int | None, rank: int, embed_dim: int
) -> int:
    """The points per class to use (``points``; None: up to :data:`DEFAULT_POINTS`), checked against the run.

    Each class's subspace is spanned by its centred test embeddings: n points in d dimensions span
    at most min(n − 1, d) directions, so ``rank`` can be 1 … that for the smallest class. The maps
    and diagrams need 3 … (the smallest class's size) points per class. A ValueError names the
    option and the values that work for this run (or says that none do).
    """
    smallest = int(np.argmin(counts))
    least, name = int(counts[smallest]), class_names[smallest]
    if least < 3:
        raise ValueError(
            f"class {name!r} has {least} test image(s): the maps and persistence diagrams need at least 3 per class "
            "(fewer points close no loop), so no --points works for this run; train it with a larger test split "
            "(--n-test, or --test-fraction for a folder)"
        )
    most_rank = min(least - 1, embed_dim)
    give_rank = f"give --rank between 1 and {most_rank}"
    if rank > least - 1:
        raise ValueError(
            f"--rank {rank}: class {name!r} has {least} test image(s), too few for a rank-{rank} subspace, which needs "
            f"at least {rank + 1}; {give_rank}"
        )
    if not 1 <= rank <= embed_dim:
        raise ValueError(f"--rank {rank}: the embedding has {embed_dim} dimensions, no more; {give_rank}")
    if points is None:
        return min(DEFAULT_POINTS, least)
    give_points = f"give --points between 3 and {least}"
    if points < 3:
        raise ValueError(f"--points must be at least 3 (fewer points close no loop), got {points}; {give_points}")
    if points > least:
        raise ValueError(f"--points {points} is more than class {name!r} has: {least} test image(s); {give_points}")
    return points


@dataclass
class Probe:
    """Everything :func:`measure` found, on the host. K classes, S blur levels, p points per class."""

    emb: RunEmbeddings  # the clean embeddings (on the device)
    sigmas: list[float]  # (S,) ascending
    points: int  # p
    rank: int
    seed: int
    chosen: np.ndarray  # (K·p,) test-image indices, class-major
    run: str  # the checkpoint probed
    accuracy: np.ndarray = field(init=False)  # (K, 1 + S) per-class top-1, clean first
    top1: np.ndarray = field(init=False)  # (1 + S,)
    predicted: np.ndarray = field(init=False)  # (1 + S, K) share of all test images predicted as each class
    cosine: np.ndarray = field(init=False)  # (K, S) mean cosine clean·blurred
    wasserstein: np.ndarray = field(init=False)  # (K, S, 2) W1(clean, blurred) for H0, H1
    diagrams: dict[float, list[list[np.ndarray]]] = field(default_factory=dict)  # σ (0 = clean) → K × [H0, H1]
    angles_mean: np.ndarray = field(init=False)  # (K, K) mean principal angle, degrees
    angles_max: np.ndarray = field(init=False)  # (K, K) largest principal angle
    angles_blur: np.ndarray = field(init=False)  # (K, S) mean angle clean subspace ↔ blurred
    similarity: dict[str, np.ndarray] = field(default_factory=dict)  # name → (K, K)
    gap: maps.Gap = field(init=False)
    own_cosine: float = field(init=False)  # mean cosine of an image with its own class's ensemble
    maps2d: dict[str, np.ndarray] = field(default_factory=dict)  # name → (M, 2)
    agreement: float = field(init=False)  # t-SNE of the images: share of 10 neighbours of the same class
    examples: np.ndarray = field(init=False)  # (E·(1 + S), C, H, W) uint8: a test image per class, clean then blurred
    example_titles: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def class_names(self) -> list[str]:
        return self.emb.class_names

    def fragile(self, n: int = 3) -> dict[str, list[tuple[str, float]]]:
        """The ``n`` classes whose accuracy drops most and least from clean to the largest σ."""
        return robustness.fragile_classes(self.accuracy.T, self.class_names, [0.0, *self.sigmas], n=n)


def _class_means(images: Any, labels: np.ndarray, k: int) -> Any:
    """The renormalised mean image embedding of each class (K, d), on ``images``' device."""
    xp = get_array_module(images)
    means = xp.stack([images[xp.asarray(np.flatnonzero(labels == c))].mean(axis=0) for c in range(k)])  # (K, d)
    return means / xp.linalg.norm(means, axis=1, keepdims=True)


def _class_diagrams(images: Any, chosen: np.ndarray, k: int) -> list[list[np.ndarray]]:
    """[H0, H1] of each class's chosen images under the cosine distance (K lists)."""
    rows = np.split(chosen, k)  # K arrays of p indices
    xp = get_array_module(images)
    return [topology.persistence_diagrams(topology.cosine_distances(images[xp.asarray(r)])) for r in rows]


def measure(
    run_path: str | os.PathLike[str],
    *,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    points: int | None = None,
    rank: int = DEFAULT_RANK,
    seed: int = 0,
    data: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
) -> Probe:
    """Load the run, check the options against its test split, and measure everything (module docstring)."""
    started = time.perf_counter()
    run = load_run(run_path)
    run.require_text_encoder("probing the image–caption space (the class captions are embedded)")
    model_config = run.checkpoint.model_config
    sigmas = check_sigmas(sigmas, model_config.image_size)
    dataset = run.dataset(data, data_dir)
    k = len(dataset.class_names)
    labels = np.asarray(dataset.test_labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=k)  # (K,) test images per class
    points = check_class_sizes(counts, dataset.class_names, points, rank, model_config.embed_dim)
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([np.sort(rng.choice(np.flatnonzero(labels == c), points, replace=False)) for c in range(k)])
    with tqdm(total=len(sigmas) + 3, desc="probe", unit="stage", disable=not progress, leave=False) as bar:
        bar.set_postfix_str("embedding the test images and the captions")
        probe = Probe(embed_run(run, dataset), sigmas, points, rank, seed, chosen, str(run.checkpoint.path))
        emb = probe.emb
        clean = zero_shot(emb.images, labels, emb.ensemble)
        probe.diagrams[0.0] = _class_diagrams(emb.images, chosen, k)
        bar.update()
        accuracy, top1, predicted = [clean["per_class"]], [clean["top1"]], [clean["confusion"].sum(axis=0)]
        cosine, blurred = [], {}
        for sigma in sigmas:
            bar.set_postfix_str(f"blur σ = {sigma:g}")
            blurred[sigma] = embed_blurred(run, dataset.test_images, sigma)  # (N, d), kept for the subspaces
            result = zero_shot(blurred[sigma], labels, emb.ensemble)
            accuracy.append(result["per_class"])
            top1.append(result["top1"])
            predicted.append(result["confusion"].sum(axis=0))  # (K,) images given each class
            cosine.append(robustness.mean_cosine_per_class(emb.images, blurred[sigma], labels, k))
            probe.diagrams[sigma] = _class_diagrams(blurred[sigma], chosen, k)
            bar.update()
        probe.accuracy, probe.top1, probe.cosine = np.array(accuracy).T, np.array(top1), np.array(cosine).T
        probe.predicted = np.array(predicted) / len(labels)
        probe.wasserstein = np.array(
            [
                [
                    [topology.wasserstein(probe.diagrams[0.0][c][h], probe.diagrams[s][c][h]) for h in (0, 1)]
                    for s in sigmas
                ]
                for c in range(k)
            ]
        )  # (K, S, 2)
        bar.set_postfix_str("subspace angles and similarity matrices")
        _geometry(probe, blurred)
        bar.update()
        bar.set_postfix_str("t-SNE and PCA maps")
        _maps(probe)
        bar.update()
    _examples(probe, dataset.test_images)
    probe.seconds = time.perf_counter() - started
    return probe


def _examples(probe: Probe, images_uint8: np.ndarray) -> None:
    """The first test image of up to :data:`EXAMPLES` classes, clean and at every σ, for the blur figure."""
    labels, names = probe.emb.labels, probe.class_names
    shown = []
    for c in range(min(len(names), EXAMPLES)):
        first = images_uint8[int(np.flatnonzero(labels == c)[0])][None]  # (1, C, H, W)
        shown += [first, *(robustness.gaussian_blur(first, s) for s in probe.sigmas)]
        probe.example_titles += [f"{names[c]}, clean", *(f"σ = {s:g}" for s in probe.sigmas)]
    probe.examples = np.concatenate(shown)


def _geometry(probe: Probe, blurred: dict[float, Any]) -> None:
    """Subspace angles, the similarity matrices and the image–caption gap."""
    emb, k = probe.emb, len(probe.class_names)
    bases = robustness.class_bases(emb.images, emb.labels, k=probe.rank, class_names=probe.class_names)
    probe.angles_mean = robustness.angle_matrix(bases, reduce="mean")
    probe.angles_max = robustness.angle_matrix(bases, reduce="max")
    _, probe.angles_blur = robustness.clean_vs_blurred_angles(
        emb.images, blurred, emb.labels, k=probe.rank, class_names=probe.class_names, reduce="mean"
    )
    means = _class_means(emb.images, emb.labels, k)  # (K, d)
    probe.similarity = {
        "zero-shot: class-mean image · class caption ensemble": to_host(means @ emb.ensemble.T),
        "class-mean image · class-mean image": to_host(means @ means.T),
        "caption ensemble · caption ensemble": to_host(emb.ensemble @ emb.ensemble.T),
    }
    probe.gap = maps.modality_gap(emb.images, emb.captions.reshape(-1, emb.captions.shape[-1]))
    xp = get_array_module(emb.images)
    own = (emb.images * emb.ensemble[xp.asarray(emb.labels)]).sum(axis=1)  # (N,) cosine with its own class
    probe.own_cosine = float(to_host(own).mean())


def _gap_coordinates(images: Any, captions: Any) -> Any:
    """Images and captions (M, d) → (M, 2): along the gap, and along the widest direction across it.

    x is each point's coordinate along u, the unit vector from the image centroid to the caption
    centroid, so the two clouds sit apart by exactly the centroid distance; y is its coordinate
    along the first principal direction of all the points once their u-component is removed.
    (The first two principal directions of the points may hide the gap: on a small model it can
    lie along a direction of little variance.)
    """
    xp = get_array_module(images)
    both = xp.concatenate([images, captions])  # (M, d)
    u = captions.mean(axis=0) - images.mean(axis=0)  # (d,)
    u = u / xp.linalg.norm(u)
    along = both @ u  # (M,)
    across = both - along[:, None] * u  # (M, d) the rest, orthogonal to u
    return xp.stack([along, maps.fit_pca(across, k=1).transform(across)[:, 0]], axis=1)  # (M, 2)


def _maps(probe: Probe) -> None:
    """t-SNE of the chosen images alone and with the captions; images and captions along the gap."""
    emb = probe.emb
    xp = get_array_module(emb.images)
    images = emb.images[xp.asarray(probe.chosen)]  # (K·p, d)
    captions = emb.captions.reshape(-1, emb.captions.shape[-1])  # (K·T, d)
    both = xp.concatenate([images, captions])  # (K·p + K·T, d)
    n_images, n_both = images.shape[0], both.shape[0]
    probe.maps2d["tsne images"] = to_host(
        maps.tsne(images, perplexity=min(PERPLEXITY, (n_images - 1) / 3), seed=probe.seed)
    )
    probe.maps2d["tsne images and captions"] = to_host(
        maps.tsne(both, perplexity=min(PERPLEXITY, (n_both - 1) / 3), seed=probe.seed)
    )
    probe.maps2d["gap map"] = to_host(_gap_coordinates(images, captions))
    agreement = maps.neighbour_agreement(probe.maps2d["tsne images"], emb.labels[probe.chosen], k=min(10, n_images - 1))
    probe.agreement = float(np.mean(agreement))


# ---------------------------------------------------------------------------------------------
# The report: summary.json, summary.md and the figures
# ---------------------------------------------------------------------------------------------


def summary(probe: Probe) -> dict[str, Any]:
    """The JSON-ready numbers of a probe (lists of lists for the matrices)."""
    names, levels = probe.class_names, ["0", *(f"{s:g}" for s in probe.sigmas)]
    per_class = lambda m: {name: [round(float(v), 4) for v in row] for name, row in zip(names, m, strict=True)}  # noqa: E731
    return {
        "run": probe.run,
        "classes": names,
        "test_images": int(len(probe.emb.labels)),
        "options": {"sigmas": probe.sigmas, "points_per_class": probe.points, "rank": probe.rank, "seed": probe.seed},
        "templates": len(probe.emb.templates),
        "zero_shot_top1": dict(zip(levels, map(float, probe.top1), strict=True)),
        "zero_shot_per_class": {"sigmas": levels, **per_class(probe.accuracy)},
        "fragile": probe.fragile(),
        "predicted_share": {"sigmas": levels, **per_class(probe.predicted.T)},
        "mean_cosine_clean_vs_blurred": {"sigmas": levels[1:], **per_class(probe.cosine)},
        "gap": {
            "angle_degrees": probe.gap.angle_degrees,
            "centroid_distance": probe.gap.distance,
            "mean_cosine_image_own_class_caption": probe.own_cosine,
        },
        "tsne_neighbour_agreement": probe.agreement,
        "similarity": {name: m.round(4).tolist() for name, m in probe.similarity.items()},
        "subspace_angles_degrees": {
            "mean": probe.angles_mean.round(3).tolist(),
            "max": probe.angles_max.round(3).tolist(),
            "clean_vs_blurred_mean": {"sigmas": levels[1:], **per_class(probe.angles_blur)},
        },
        "wasserstein_clean_vs_blurred": {
            "sigmas": levels[1:],
            "H0": per_class(probe.wasserstein[:, :, 0]),
            "H1": per_class(probe.wasserstein[:, :, 1]),
        },
        "seconds": round(probe.seconds, 1),
    }


def markdown(probe: Probe) -> str:
    """A short markdown report: the headline numbers, then one table row per class."""
    largest = probe.sigmas[-1]
    fragile = probe.fragile()
    most_given = int(np.argmax(probe.predicted[-1]))
    share, name = 100 * probe.predicted[-1, most_given], probe.class_names[most_given]
    attractor = f"{share:.1f} % of all test images are classified {name!r}"
    drops = lambda pairs: ", ".join(f"{name} ({100 * d:+.1f} pts)" for name, d in pairs)  # noqa: E731
    top1 = " · ".join(f"σ={s:g}: {100 * a:.1f} %" for s, a in zip([0.0, *probe.sigmas], probe.top1, strict=True))
    lines = [
        f"# miniclip probe — {probe.run}",
        "",
        f"{len(probe.emb.labels)} test images, {len(probe.class_names)} classes; {probe.points} images per class in "
        f"the maps and diagrams (seed {probe.seed}); subspaces of rank {probe.rank}; {probe.seconds:.0f} s.",
        "",
        f"- Zero-shot top-1 (prompt ensemble of {len(probe.emb.templates)}): {top1} (σ=0 is the clean images).",
        f"- Accuracy lost most by σ = {largest:g}: {drops(fragile['most'])}; least: {drops(fragile['least'])} "
        "(a drop is clean − blurred, in percentage points).",
        f"- Where the blurred images go: at σ = {largest:g}, {attractor} — against "
        f"{100 * probe.predicted[0, most_given]:.1f} % of the clean ones (a class can look robust only because "
        "blurred images of every class fall into it).",
        f"- Image–caption gap: the two clouds' centroids are {probe.gap.angle_degrees:.1f}° apart on the sphere "
        f"(distance {probe.gap.distance:.3f}); an image's mean cosine with its own class's caption is "
        f"{probe.own_cosine:.3f}.",
        f"- t-SNE of the images: {100 * probe.agreement:.1f} % of each image's 10 nearest neighbours in the map are "
        "of its class.",
        "",
        f"Each column but the first is at σ = {largest:g}, against the clean images.",
        "",
        "| class | top-1 clean | top-1 blurred | cosine clean·blurred | subspace angle | W1 H0 | W1 H1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c, name in enumerate(probe.class_names):
        lines.append(
            f"| {name} | {100 * probe.accuracy[c, 0]:.1f} % | {100 * probe.accuracy[c, -1]:.1f} % | "
            f"{probe.cosine[c, -1]:.3f} | {probe.angles_blur[c, -1]:.1f}° | {probe.wasserstein[c, -1, 0]:.3f} | "
            f"{probe.wasserstein[c, -1, 1]:.3f} |"
        )
    return "\n".join(lines) + "\n"


FIGURES = (
    "map_tsne_images.png",
    "map_tsne_images_captions.png",
    "map_gap_images_captions.png",
    "similarity_zero_shot.png",
    "similarity_images.png",
    "similarity_captions.png",
    "blur_examples.png",
    "blur_accuracy.png",
    "subspace_angles.png",
    "persistence.png",
    "persistence_distance.png",
)


def _figures(probe: Probe, folder: Path) -> None:
    """Every figure of :data:`FIGURES` into ``folder``."""
    names, k, p = probe.class_names, len(probe.class_names), probe.points
    emb = probe.emb
    chosen_labels = emb.labels[probe.chosen]  # (K·p,)
    caption_labels = np.repeat(np.arange(k), len(emb.templates))  # (K·T,) class-major
    n = len(probe.chosen)
    both = probe.maps2d["tsne images and captions"]
    figures.plot_map(
        probe.maps2d["tsne images"],
        chosen_labels,
        names,
        folder / FIGURES[0],
        title=f"t-SNE of {p} test images per class",
    )
    figures.plot_map(
        both[:n],
        chosen_labels,
        names,
        folder / FIGURES[1],
        captions=both[n:],
        caption_labels=caption_labels,
        title="t-SNE of the images and the class captions (★)",
    )
    gap = probe.maps2d["gap map"]
    figures.plot_map(
        gap[:n],
        chosen_labels,
        names,
        folder / FIGURES[2],
        captions=gap[n:],
        caption_labels=caption_labels,
        title=f"images and class captions (★) along the gap (x), {probe.gap.angle_degrees:.1f}° between the centroids",
        axes=("from the image centroid towards the caption centroid", "widest direction across it (PCA)"),
    )
    titles = (
        "zero-shot matrix: class-mean image (rows) · class captions (columns)",
        "class-mean image · class-mean image",
        "class captions · class captions",
    )
    for file, (_, matrix), title in zip(FIGURES[3:6], probe.similarity.items(), titles, strict=True):
        plot_heatmap(matrix, folder / file, rows=names, columns=names, colorbar="cosine", title=title)
    plot_image_grid(probe.examples, probe.example_titles, folder / FIGURES[6], ncols=1 + len(probe.sigmas))
    highlight = [c for group in probe.fragile().values() for c in (names.index(name) for name, _ in group)]
    levels = [0.0, *probe.sigmas]
    figures.plot_against_sigma(
        levels,
        [
            (100 * probe.accuracy, "zero-shot top-1 (%)", "accuracy against blur"),
            (np.hstack([np.ones((k, 1)), probe.cosine]), "mean cosine", "clean · blurred embedding"),
        ],
        names,
        folder / FIGURES[7],
        highlight=highlight,
    )
    plot_heatmap(
        probe.angles_mean,
        folder / FIGURES[8],
        rows=names,
        columns=names,
        fmt="{:.0f}",
        cmap="magma",
        colorbar="degrees",
        title=f"mean principal angle between class subspaces (rank {probe.rank})",
    )
    most, least = (names.index(probe.fragile(1)[key][0][0]) for key in ("most", "least"))
    panels = [
        (f"{names[c]} ({which}), {label}", probe.diagrams[s][c])
        for c, which in ((most, "most fragile"), (least, "least fragile"))
        for s, label in ((0.0, "clean"), (probe.sigmas[-1], f"σ = {probe.sigmas[-1]:g}"))
    ]
    figures.plot_diagrams(panels, folder / FIGURES[9])
    zero = np.zeros((k, 1))
    figures.plot_against_sigma(
        levels,
        [
            (np.hstack([zero, probe.wasserstein[:, :, 0]]), "W1 distance", "H0: clean ↔ blurred"),
            (np.hstack([zero, probe.wasserstein[:, :, 1]]), "W1 distance", "H1: clean ↔ blurred"),
            (np.hstack([zero, probe.angles_blur]), "mean principal angle (°)", "subspace: clean ↔ blurred"),
        ],
        names,
        folder / FIGURES[10],
        highlight=highlight,
    )


def write_report(probe: Probe, out: str | os.PathLike[str]) -> Path:
    """Write the figures, ``summary.json`` and ``summary.md`` into ``out`` (created); returns ``out``.

    Everything is written into a hidden folder first (:func:`~miniclip.atomic.staged_folder`);
    only when all of it is there are the files moved into ``out``, each with an atomic rename.
    The command line checks ``out`` (:func:`~miniclip.atomic.check_output_folder`) before measuring.
    """
    out = Path(out)
    with staged_folder(out) as staging:
        _figures(probe, staging)
        write_text(staging / "summary.json", json_text(summary(probe), indent=2) + "\n")
        write_text(staging / "summary.md", markdown(probe))
    return out
