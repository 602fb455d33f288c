"""``miniclip probe RUN``: every probe of a trained run, measured; then its figures and a summary.

Lesson 11 derives the maps and the similarity matrices by hand, lesson 12 the blur, the subspace
angles and the persistence diagrams. What :func:`measure` measures, on the run's test split (see
:mod:`miniclip.probe.embeddings`):

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

The report has the shape of ``miniclip eval``'s (:mod:`miniclip.evaluation.report`): :func:`summary`
(``summary.json``), :func:`markdown` (``summary.md``) and each figure of :data:`~miniclip.probe.figures.FIGURES`
read the plain dict of host values :func:`measure` returns. The options are checked before anything is
computed (a bad σ, more points than a class has, a class with too few images for the subspace rank: a
ValueError, no file); :func:`write_report` writes every file together once everything is computed, so an
interrupted probe leaves every file either old or new.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from miniclip.atomic import json_text
from miniclip.backend import get_array_module, to_host
from miniclip.evaluation.report import write_files
from miniclip.evaluation.trained_run import TrainedRun, load_run
from miniclip.evaluation.zeroshot import zero_shot
from miniclip.probe import maps, robustness, topology
from miniclip.probe.embeddings import RunEmbeddings, embed_blurred, embed_run
from miniclip.probe.figures import FIGURES

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
    give_rank = f"give --rank between 1 and {min(least - 1, embed_dim)}"
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


def measure(
    run_path: str | os.PathLike[str] | TrainedRun,
    *,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    points: int | None = None,
    rank: int = DEFAULT_RANK,
    seed: int = 0,
    data: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Load the run (or take one already read, such as released weights), check the options against its test
    split, and measure everything (module docstring).

    A plain dict of host values, K classes, S blur levels (``sigmas``, ascending), p points per class:
    ``run``, ``class_names``, ``labels`` (N,), ``templates`` (T,), the options, ``chosen`` (K·p,) the
    test images of the maps and diagrams (class-major), then what :func:`measure_blur`,
    :func:`measure_geometry`, :func:`measure_maps` and :func:`pick_examples` return, ``fragile`` (the
    classes whose accuracy drops most and least by the largest σ) and ``seconds``.
    """
    started = time.perf_counter()
    run = run_path if isinstance(run_path, TrainedRun) else load_run(run_path)  # released weights: read already
    run.require_text_encoder("probing the image–caption space (the class captions are embedded)")
    model_config = run.checkpoint.model_config
    sigmas = check_sigmas(sigmas, model_config.image_size)
    dataset = run.dataset(data, data_dir)
    if dataset.test_images.shape[-1] < model_config.image_size:  # blurred in the dataset's pixels, then resized
        sigmas = check_sigmas(sigmas, dataset.test_images.shape[-1])
    names, labels = list(dataset.class_names), np.asarray(dataset.test_labels, dtype=np.int64)
    k = len(names)
    points = check_class_sizes(np.bincount(labels, minlength=k), names, points, rank, model_config.embed_dim)
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([np.sort(rng.choice(np.flatnonzero(labels == c), points, replace=False)) for c in range(k)])
    measured = {"run": str(run.checkpoint.path), "class_names": names, "labels": labels}
    measured |= {"sigmas": sigmas, "points": points, "rank": rank, "seed": seed, "chosen": chosen}
    with tqdm(total=len(sigmas) + 4, desc="probe", unit="stage", disable=not progress, leave=False) as bar:
        bar.set_postfix_str("embedding the test images and the captions")
        emb = embed_run(run, dataset)
        embedded = {0.0: emb.images}  # σ (0: clean) → the test images' embeddings (N, d), on the device
        bar.update()
        for sigma in sigmas:
            bar.set_postfix_str(f"embedding the images blurred with σ = {sigma:g}")
            embedded[sigma] = embed_blurred(run, dataset.test_images, sigma)
            bar.update()
        bar.set_postfix_str("zero-shot and persistence diagrams at every σ")
        measured |= measure_blur(emb, embedded, chosen)
        bar.update()
        bar.set_postfix_str("subspace angles and similarity matrices")
        measured |= measure_geometry(emb, embedded, rank)
        bar.update()
        bar.set_postfix_str("t-SNE and PCA maps")
        measured |= measure_maps(emb, chosen, seed)
        bar.update()
    measured |= pick_examples(dataset.test_images, labels, names, sigmas)
    measured["templates"] = emb.templates
    measured["fragile"] = robustness.fragile_classes(measured["accuracy"].T, names, [0.0, *sigmas])
    measured["seconds"] = time.perf_counter() - started
    return measured


def measure_blur(emb: RunEmbeddings, embedded: dict[float, Any], chosen: np.ndarray) -> dict[str, Any]:
    """Zero-shot and the persistence diagrams at every blur level, clean first, and how far each blur moves them.

    ``accuracy`` (K, 1 + S) per-class top-1, ``top1`` (1 + S,), ``predicted`` (1 + S, K) the share of
    all test images given each class; ``cosine`` (K, S) each class's mean cosine clean · blurred;
    ``diagrams`` σ (0: clean) → K × [H0, H1] of the chosen images under the cosine distance;
    ``wasserstein`` (K, S, 2) the W1 distance between each class's clean and blurred diagrams, H0 and H1.
    """
    k, sigmas, xp = len(emb.class_names), list(embedded)[1:], get_array_module(emb.images)
    results = [zero_shot(images, emb.labels, emb.ensemble) for images in embedded.values()]
    rows = [xp.asarray(r) for r in np.split(chosen, k)]  # K arrays of each class's p chosen images
    diagrams = {
        sigma: [topology.persistence_diagrams(topology.cosine_distances(images[r])) for r in rows]
        for sigma, images in embedded.items()
    }
    cosine = [robustness.mean_cosine_per_class(emb.images, embedded[s], emb.labels, k) for s in sigmas]
    wasserstein = [  # (K, S, 2): each class, each σ, H0 and H1
        [[topology.wasserstein(diagrams[0.0][c][h], diagrams[s][c][h]) for h in (0, 1)] for s in sigmas]
        for c in range(k)
    ]
    return {
        "accuracy": np.array([r["per_class"] for r in results]).T,
        "top1": np.array([r["top1"] for r in results]),
        "predicted": np.array([r["confusion"].sum(axis=0) for r in results]) / len(emb.labels),
        "cosine": np.array(cosine).T,
        "diagrams": diagrams,
        "wasserstein": np.array(wasserstein),
    }


def measure_geometry(emb: RunEmbeddings, embedded: dict[float, Any], rank: int) -> dict[str, Any]:
    """Subspace angles, the similarity matrices and the image–caption gap.

    ``angles_mean`` and ``angles_max`` (K, K) the mean and largest principal angle between every two
    classes' rank-``rank`` subspaces, ``angles_blur`` (K, S) the mean one between each class's clean
    and blurred subspaces (degrees); ``similarity`` name → (K, K) cosines; ``gap`` the centroids'
    ``angle_degrees`` and ``distance``; ``own_cosine`` an image's mean cosine with its own class's ensemble.
    """
    names, k = emb.class_names, len(emb.class_names)
    bases = robustness.class_bases(emb.images, emb.labels, k=rank, class_names=names)
    blurred = {sigma: images for sigma, images in embedded.items() if sigma > 0}
    _, angles_blur = robustness.clean_vs_blurred_angles(
        emb.images, blurred, emb.labels, k=rank, class_names=names, reduce="mean"
    )
    xp = get_array_module(emb.images)
    means = xp.stack([emb.images[xp.asarray(np.flatnonzero(emb.labels == c))].mean(axis=0) for c in range(k)])
    means = means / xp.linalg.norm(means, axis=1, keepdims=True)  # (K, d) each class's mean image, renormalised
    own = (emb.images * emb.ensemble[xp.asarray(emb.labels)]).sum(axis=1)  # (N,) cosine with its own class
    angles_mean, angles_max = robustness.angle_matrices(bases)  # (K, K) each, one pass over the pairs
    return {
        "angles_mean": angles_mean,
        "angles_max": angles_max,
        "angles_blur": angles_blur,
        "similarity": {
            "zero-shot: class-mean image · class caption ensemble": to_host(means @ emb.ensemble.T),
            "class-mean image · class-mean image": to_host(means @ means.T),
            "caption ensemble · caption ensemble": to_host(emb.ensemble @ emb.ensemble.T),
        },
        "gap": asdict(maps.modality_gap(emb.images, emb.captions.reshape(-1, emb.captions.shape[-1]))),
        "own_cosine": float(to_host(own).mean()),
    }


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


def measure_maps(emb: RunEmbeddings, chosen: np.ndarray, seed: int) -> dict[str, Any]:
    """t-SNE of the chosen images alone and with the captions; images and captions along the gap.

    ``maps`` name → (M, 2), the chosen images first, then the class captions class-major;
    ``agreement`` the share of each image's 10 nearest neighbours in the t-SNE map of its class.
    """
    xp = get_array_module(emb.images)
    images = emb.images[xp.asarray(chosen)]  # (K·p, d)
    captions = emb.captions.reshape(-1, emb.captions.shape[-1])  # (K·T, d)
    tsne = lambda x: maps.tsne(x, perplexity=min(PERPLEXITY, (x.shape[0] - 1) / 3), seed=seed)  # noqa: E731
    found = {
        "tsne images": tsne(images),
        "tsne images and captions": tsne(xp.concatenate([images, captions])),  # (K·p + K·T, d)
        "gap map": _gap_coordinates(images, captions),
    }
    found = {name: to_host(xy) for name, xy in found.items()}
    agreement = maps.neighbour_agreement(found["tsne images"], emb.labels[chosen], k=min(10, len(chosen) - 1))
    return {"maps": found, "agreement": float(np.mean(agreement))}


def pick_examples(
    images_uint8: np.ndarray, labels: np.ndarray, names: Sequence[str], sigmas: Sequence[float]
) -> dict[str, Any]:
    """The first test image of up to :data:`EXAMPLES` classes, clean and at every σ, for the blur figure.

    ``examples`` (E·(1 + S), C, H, W) uint8 and their ``example_titles``.
    """
    shown, titles = [], []
    for c in range(min(len(names), EXAMPLES)):
        first = images_uint8[int(np.flatnonzero(labels == c)[0])][None]  # (1, C, H, W)
        shown += [first, *(robustness.gaussian_blur(first, s) for s in sigmas)]
        titles += [f"{names[c]}, clean", *(f"σ = {s:g}" for s in sigmas)]
    return {"examples": np.concatenate(shown), "example_titles": titles}


# ---------------------------------------------------------------------------------------------
# The report: summary.json, summary.md and the figures
# ---------------------------------------------------------------------------------------------


def summary(measured: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready numbers of a probe (lists of lists for the matrices)."""
    m = measured
    names, levels = m["class_names"], ["0", *(f"{s:g}" for s in m["sigmas"])]
    per_class = lambda rows: {name: [round(float(v), 4) for v in row] for name, row in zip(names, rows, strict=True)}  # noqa: E731
    return {
        "run": m["run"],
        "classes": names,
        "test_images": int(len(m["labels"])),
        "options": {"sigmas": m["sigmas"], "points_per_class": m["points"], "rank": m["rank"], "seed": m["seed"]},
        "templates": len(m["templates"]),
        "zero_shot_top1": dict(zip(levels, map(float, m["top1"]), strict=True)),
        "zero_shot_per_class": {"sigmas": levels, **per_class(m["accuracy"])},
        "fragile": m["fragile"],
        "predicted_share": {"sigmas": levels, **per_class(m["predicted"].T)},
        "mean_cosine_clean_vs_blurred": {"sigmas": levels[1:], **per_class(m["cosine"])},
        "gap": {
            "angle_degrees": m["gap"]["angle_degrees"],
            "centroid_distance": m["gap"]["distance"],
            "mean_cosine_image_own_class_caption": m["own_cosine"],
        },
        "tsne_neighbour_agreement": m["agreement"],
        "similarity": {name: matrix.round(4).tolist() for name, matrix in m["similarity"].items()},
        "subspace_angles_degrees": {
            "mean": m["angles_mean"].round(3).tolist(),
            "max": m["angles_max"].round(3).tolist(),
            "clean_vs_blurred_mean": {"sigmas": levels[1:], **per_class(m["angles_blur"])},
        },
        "wasserstein_clean_vs_blurred": {
            "sigmas": levels[1:],
            "H0": per_class(m["wasserstein"][:, :, 0]),
            "H1": per_class(m["wasserstein"][:, :, 1]),
        },
        "seconds": round(m["seconds"], 1),
    }


def markdown(measured: dict[str, Any]) -> str:
    """A short markdown report: the headline numbers, then one table row per class."""
    m = measured
    names, largest, fragile = m["class_names"], m["sigmas"][-1], m["fragile"]
    most_given = int(np.argmax(m["predicted"][-1]))
    attractor = f"{100 * m['predicted'][-1, most_given]:.1f} % of all test images are classified {names[most_given]!r}"
    drops = lambda pairs: ", ".join(f"{name} ({100 * d:+.1f} pts)" for name, d in pairs)  # noqa: E731
    top1 = " · ".join(f"σ={s:g}: {100 * a:.1f} %" for s, a in zip([0.0, *m["sigmas"]], m["top1"], strict=True))
    lines = [
        f"# miniclip probe — {m['run']}",
        "",
        f"{len(m['labels'])} test images, {len(names)} classes; {m['points']} images per class in "
        f"the maps and diagrams (seed {m['seed']}); subspaces of rank {m['rank']}; {m['seconds']:.0f} s.",
        "",
        f"- Zero-shot top-1 (prompt ensemble of {len(m['templates'])}): {top1} (σ=0 is the clean images).",
        f"- Accuracy lost most by σ = {largest:g}: {drops(fragile['most'])}; least: {drops(fragile['least'])} "
        "(a drop is clean − blurred, in percentage points).",
        f"- Where the blurred images go: at σ = {largest:g}, {attractor} — against "
        f"{100 * m['predicted'][0, most_given]:.1f} % of the clean ones (a class can look robust only because "
        "blurred images of every class fall into it).",
        f"- Image–caption gap: the two clouds' centroids are {m['gap']['angle_degrees']:.1f}° apart on the sphere "
        f"(distance {m['gap']['distance']:.3f}); an image's mean cosine with its own class's caption is "
        f"{m['own_cosine']:.3f}.",
        f"- t-SNE of the images: {100 * m['agreement']:.1f} % of each image's 10 nearest neighbours in the map are "
        "of its class.",
        "",
        f"Each column but the first is at σ = {largest:g}, against the clean images.",
        "",
        "| class | top-1 clean | top-1 blurred | cosine clean·blurred | subspace angle | W1 H0 | W1 H1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c, name in enumerate(names):
        lines.append(
            f"| {name} | {100 * m['accuracy'][c, 0]:.1f} % | {100 * m['accuracy'][c, -1]:.1f} % | "
            f"{m['cosine'][c, -1]:.3f} | {m['angles_blur'][c, -1]:.1f}° | {m['wasserstein'][c, -1, 0]:.3f} | "
            f"{m['wasserstein'][c, -1, 1]:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _figures(measured: dict[str, Any], folder: Path) -> None:
    """Every figure of :data:`~miniclip.probe.figures.FIGURES` into ``folder``, each under its file name."""
    for name, draw in FIGURES.items():
        draw(measured, folder / name)


def write_report(measured: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Write the figures, ``summary.json`` and ``summary.md`` into ``out`` (created), all together; returns ``out``.

    The command line checks ``out`` (:func:`~miniclip.atomic.check_output_folder`) before measuring.
    """
    out = Path(out)
    texts = {"summary.json": json_text(summary(measured), indent=2) + "\n", "summary.md": markdown(measured)}
    write_files(out, texts, lambda folder: _figures(measured, folder))
    return out
