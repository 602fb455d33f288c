"""Blur robustness and subspace angles: how a class's embeddings move when its images are blurred.

**Gaussian blur, by hand.** A blur replaces each pixel by a weighted mean of its neighbours,
the weights a Gaussian of standard deviation σ sampled at the integer offsets −r … r and
normalised to sum to 1::

    g[j] = exp(−j² / 2σ²) / Σ_i exp(−i² / 2σ²)          j = −r … r,  r = ⌈3σ⌉ by default

(within 3σ lies 99.7 % of a Gaussian's mass). The 2-D kernel is the outer product
G[i, j] = g[i]·g[j], so the 2-D blur is two 1-D ones: a horizontal pass along each row,
then a vertical pass along each column — 2(2r + 1) multiply-adds per pixel instead of
(2r + 1)². Each pass pads the image by r on both sides by mirroring it about its edge
(d c b a | a b c d … — half-sample symmetric, ``np.pad(mode="symmetric")``, which is
``scipy.ndimage``'s ``mode="reflect"``), so the mean brightness at the border is kept, and
then sums 2r + 1 shifted copies of the padded image, each times its weight::

    y[.., w] = Σ_{j=0}^{2r} g[j − r] · x_pad[.., w + j]        (a correlation; g is symmetric)

**Subspace angles.** A class's n embeddings (n, d), centred, have the SVD X_c = U S Vᵀ; the
first k rows of Vᵀ are the directions along which the class spreads most, an orthonormal
basis Q (d, k) of its principal subspace (the fraction of the spread along direction i is
s_i² / Σ s²). Two subspaces with bases Q_a, Q_b meet at principal angles θ_1 ≤ θ_2 ≤ … whose
cosines are the singular values of Q_aᵀQ_b (Björck & Golub, 1973)::

    cos θ_i = σ_i(Q_aᵀ Q_b),    θ_i = arccos(clip(σ_i, 0, 1))

θ = 0 for a direction both share; 90° for a direction of one orthogonal to all of the other.

**Bookkeeping.** Per-class accuracy at each σ gives each class's drop from clean to the
largest σ (the most fragile class drops most); the mean cosine between each clean image's
embedding and its blurred one says how far the blur moved it.

Lesson 12 works both by hand first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from miniclip.backend import get_array_module, to_host
from miniclip.probe.maps import choose_k, fit_pca

# ---------------------------------------------------------------------------------------------
# Gaussian blur
# ---------------------------------------------------------------------------------------------


def check_sigma(sigma: float) -> float:
    """σ as a float; a ValueError naming σ unless it is finite and positive."""
    try:
        s = float(sigma)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"blur σ (sigma) must be a positive number, got {sigma!r}") from exc
    if not math.isfinite(s) or s <= 0:
        raise ValueError(f"blur σ (sigma) must be finite and > 0, got {sigma!r}")
    return s


def blur_radius(sigma: float, truncate: float = 3.0) -> int:
    """The default kernel radius r = ⌈truncate·σ⌉ (⌈3σ⌉): the kernel has 2r + 1 taps."""
    return int(math.ceil(truncate * check_sigma(sigma)))


def gaussian_kernel(sigma: float, radius: int | None = None, xp: Any = np) -> Any:
    """The 1-D Gaussian kernel g (2r + 1,) float64 at offsets −r … r, summing to 1.

    ``radius`` defaults to :func:`blur_radius` (⌈3σ⌉). ``scipy.ndimage.gaussian_filter`` uses
    r = int(truncate·σ + 0.5) instead; pass that radius to reproduce it exactly.
    """
    s = check_sigma(sigma)
    r = blur_radius(s) if radius is None else int(radius)
    if r < 0:
        raise ValueError(f"blur radius must be >= 0, got {radius!r}")
    offsets = xp.arange(-r, r + 1, dtype=xp.float64)  # (2r+1,)
    g = xp.exp(-(offsets**2) / (2.0 * s * s))  # (2r+1,)
    return g / g.sum()


def _blur_axis(x: Any, g: Any, axis: int) -> Any:
    """Correlate the float array ``x`` with the symmetric kernel ``g`` along ``axis`` (half-sample reflect)."""
    xp = get_array_module(x)
    r = (g.shape[0] - 1) // 2
    width = [(0, 0)] * x.ndim
    width[axis] = (r, r)
    padded = xp.pad(x, width, mode="symmetric")  # d c b a | a b c d | d c b a, r more on each side
    n = x.shape[axis]
    out = xp.zeros_like(x)
    before = (slice(None),) * axis
    for j in range(2 * r + 1):  # a loop over the 2r+1 taps, each a whole shifted image
        out += g[j] * padded[before + (slice(j, j + n),)]  # g[j − r] · x_pad[.., w + j]
    return out


def blur_float(x: Any, sigma: float, radius: int | None = None) -> Any:
    """Blur a float array over its last two axes (..., H, W): a horizontal pass, then a vertical one.

    Computed in ``x``'s own float dtype (float32 stays float32); the kernel is :func:`gaussian_kernel`.
    """
    xp = get_array_module(x)
    if x.ndim < 2:
        raise ValueError(f"blur needs images (..., H, W), got shape {tuple(x.shape)}")
    g = gaussian_kernel(sigma, radius, xp=xp).astype(x.dtype)  # (2r+1,)
    y = _blur_axis(x, g, axis=x.ndim - 1)  # horizontal: along each row
    return _blur_axis(y, g, axis=x.ndim - 2)  # vertical: along each column


def gaussian_blur(images: Any, sigma: float, radius: int | None = None) -> Any:
    """Blur a uint8 batch (N, C, H, W) with σ, each channel on its own; returns uint8 (N, C, H, W).

    The blur runs in float32; the result is rounded to the nearest integer (``rint``: halves to
    even) and clipped to [0, 255] (the weights are positive and sum to 1, so only rounding error
    could leave that range). Same device as ``images``.
    """
    xp = get_array_module(images)
    if images.ndim != 4 or images.dtype != xp.uint8:
        raise ValueError(f"gaussian_blur expects uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    y = blur_float(images.astype(xp.float32), sigma, radius)  # (N, C, H, W) float32
    return xp.clip(xp.rint(y), 0, 255).astype(xp.uint8)


# ---------------------------------------------------------------------------------------------
# Subspace angles
# ---------------------------------------------------------------------------------------------


def principal_directions(points: Any, k: int | None = None, variance: float | None = None, name: str = "points") -> Any:
    """An orthonormal basis Q (d, k) of the top-k principal directions of ``points`` (n, d).

    Give ``k``, or ``variance`` in (0, 1]: then k is the smallest rank whose directions explain at
    least that fraction of the spread (:func:`miniclip.probe.maps.choose_k`). The directions are
    :func:`miniclip.probe.maps.fit_pca`'s components. Centring n points leaves at most n − 1
    directions with any spread, so k must be at most min(n − 1, d); otherwise a ValueError names
    ``name`` (the class) and the rank.
    """
    if points.ndim != 2:
        raise ValueError(f"{name}: points must be (n, d), got shape {tuple(points.shape)}")
    n, d = points.shape
    if (k is None) == (variance is None):
        raise ValueError(f"{name}: give exactly one of k (the rank) or variance (a fraction)")
    limit = min(n - 1, d)
    if limit < 1:
        raise ValueError(f"{name}: {n} point(s) in {d} dimension(s) have no spread to explain")
    pca = fit_pca(points)  # every direction, largest spread first
    if variance is not None:
        if not 0 < variance <= 1:
            raise ValueError(f"{name}: variance must be a fraction in (0, 1], got {variance!r}")
        k = min(choose_k(pca.explained_variance_ratio, variance), limit)
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"{name}: rank k must be a positive integer, got {k!r}")
    if k > limit:
        raise ValueError(
            f"{name}: rank k={k} is more than its {n} point(s) in {d} dimension(s) allow (at most {limit})"
        )
    return pca.components[:k].T  # (d, k), orthonormal columns


def principal_angles(qa: Any, qb: Any) -> Any:
    """The principal angles in degrees, ascending (min(ka, kb),), between the spans of Q_a (d, ka) and Q_b (d, kb).

    Both bases must have orthonormal columns (as :func:`principal_directions` returns). Near 0°
    arccos is ill-conditioned: a cosine one rounding step below 1 (1 − 1.1e-16) is already
    1.5e-8 rad ≈ 1e-6°, so equal subspaces come out within about 1e-5° of 0, not exactly 0
    (``scipy.linalg.subspace_angles`` switches to sines there; the arccos is kept for clarity).
    """
    xp = get_array_module(qa)
    if qa.ndim != 2 or qb.ndim != 2 or qa.shape[0] != qb.shape[0]:
        raise ValueError(f"bases must be (d, ka) and (d, kb) with the same d, got {tuple(qa.shape)}, {tuple(qb.shape)}")
    cosines = xp.linalg.svd(qa.T @ qb, compute_uv=False)  # (min(ka, kb),) descending
    return xp.degrees(xp.arccos(xp.clip(cosines, 0.0, 1.0)))  # ascending


def class_bases(
    embeddings: Any,
    labels: Any,
    k: int | None = None,
    variance: float | None = None,
    class_names: Sequence[str] | None = None,
) -> list[Any]:
    """One principal basis (d, k_c) per class 0 … C − 1 (C = len(class_names), else labels.max() + 1).

    ``embeddings`` (N, d) and ``labels`` (N,) on one device. A class with too few points for the
    rank is refused, by name.
    """
    xp = get_array_module(embeddings)
    host_labels = to_host(labels).astype(np.int64)
    if embeddings.ndim != 2 or host_labels.shape != (embeddings.shape[0],):
        raise ValueError(f"embeddings (N, d) and labels (N,) must match, got {tuple(embeddings.shape)}, {labels.shape}")
    count = len(class_names) if class_names is not None else int(host_labels.max()) + 1
    names = list(class_names) if class_names is not None else [f"class {c}" for c in range(count)]
    bases = []
    for c in range(count):
        rows = xp.asarray(np.flatnonzero(host_labels == c))
        bases.append(principal_directions(embeddings[rows], k=k, variance=variance, name=names[c]))
    return bases


def angle_matrices(bases: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The (C, C) host matrices of the mean and of the largest principal angle in degrees per pair of class subspaces.

    Each basis is copied to the host once and each pair's angles found once, so ``C(C − 1)/2``
    small SVDs run on the CPU (a (k_a, k_b) SVD is far too small to be worth a GPU launch and a
    synchronisation) and give both matrices. The largest angle is 0 only when the smaller
    subspace lies inside the other, a measure of how different the two are; the mean one is
    gentler. Both are symmetric with a zero diagonal.
    """
    host = [to_host(q) for q in bases]  # (d, k_c) each, one device→host copy per class
    count = len(host)
    mean, largest = np.zeros((count, count)), np.zeros((count, count))  # (C, C) float64
    for a in range(count):
        for b in range(a + 1, count):
            angles = principal_angles(host[a], host[b])  # (min(k_a, k_b),) degrees
            mean[a, b] = mean[b, a] = angles.mean()
            largest[a, b] = largest[b, a] = angles.max()
    return mean, largest


def angle_matrix(bases: Sequence[Any], reduce: str = "max") -> np.ndarray:
    """One matrix of :func:`angle_matrices`: the largest principal angles (``reduce="max"``) or the mean ones."""
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    mean, largest = angle_matrices(bases)
    return largest if reduce == "max" else mean


def clean_vs_blurred_angles(
    clean: Any,
    blurred: Mapping[float, Any],
    labels: Any,
    k: int | None = None,
    variance: float | None = None,
    class_names: Sequence[str] | None = None,
    reduce: str = "max",
) -> tuple[list[float], np.ndarray]:
    """For each class and σ, the angle in degrees between its clean subspace and its blurred one.

    ``clean`` (N, d) and each ``blurred[σ]`` (N, d) are the same N images' embeddings, with one
    ``labels`` (N,). Returns the σ in ascending order and a host (C, S) array: row c, column s is
    the largest (``reduce="max"``) or mean principal angle between class c's clean and σ-blurred
    principal subspaces, each found as :func:`class_bases` finds it.
    """
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    sigmas = sorted(float(s) for s in blurred)
    before = class_bases(clean, labels, k=k, variance=variance, class_names=class_names)
    out = np.zeros((len(before), len(sigmas)))  # (C, S)
    for s, sigma in enumerate(sigmas):
        after = class_bases(blurred[sigma], labels, k=k, variance=variance, class_names=class_names)
        for c, (qa, qb) in enumerate(zip(before, after, strict=True)):
            angles = to_host(principal_angles(qa, qb))
            out[c, s] = angles.max() if reduce == "max" else angles.mean()
    return sigmas, out


# ---------------------------------------------------------------------------------------------
# Robustness bookkeeping
# ---------------------------------------------------------------------------------------------


def per_class_accuracy(predictions: Any, labels: Any, num_classes: int) -> np.ndarray:
    """Top-1 accuracy of each class (C,) on the host: right predictions / images of that class (NaN if none)."""
    pred = to_host(predictions).astype(np.int64)
    lab = to_host(labels).astype(np.int64)
    total = np.bincount(lab, minlength=num_classes).astype(np.float64)  # (C,)
    right = np.bincount(lab[pred == lab], minlength=num_classes).astype(np.float64)  # (C,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return right / total


def accuracy_drops(accuracy: Mapping[float, Any] | Any, sigmas: Sequence[float] | None = None) -> np.ndarray:
    """Each class's accuracy drop (C,) from clean (σ = 0) to the largest σ: clean − blurred.

    ``accuracy`` is a mapping σ → per-class accuracy (C,), with σ = 0 for the clean images, or an
    array (S, C) whose rows go with ``sigmas`` (one of them 0).
    """
    if isinstance(accuracy, Mapping):
        table = {float(s): np.asarray(to_host(a), dtype=np.float64) for s, a in accuracy.items()}
    else:
        rows = np.asarray(to_host(accuracy), dtype=np.float64)
        if sigmas is None or rows.ndim != 2 or len(sigmas) != rows.shape[0]:
            raise ValueError("an accuracy array (S, C) needs sigmas, one per row")
        table = {float(s): row for s, row in zip(sigmas, rows, strict=True)}
    if 0.0 not in table:
        raise ValueError(f"accuracy needs the clean images' row (σ = 0); got σ = {sorted(table)}")
    largest = max(table)
    if largest <= 0:
        raise ValueError("accuracy needs at least one blurred σ > 0 beside the clean row")
    return table[0.0] - table[largest]


def fragile_classes(
    accuracy: Mapping[float, Any] | Any,
    class_names: Sequence[str],
    sigmas: Sequence[float] | None = None,
    n: int = 3,
) -> dict[str, list[tuple[str, float]]]:
    """The ``n`` most and least fragile classes, as (name, drop) pairs, by :func:`accuracy_drops`.

    ``{"most": [...largest drop first], "least": [...smallest drop first]}``; equal drops keep
    the classes' order.
    """
    drops = accuracy_drops(accuracy, sigmas)
    if len(class_names) != drops.shape[0]:
        raise ValueError(f"{len(class_names)} class names for {drops.shape[0]} classes")
    most = np.argsort(-drops, kind="stable")[:n]
    least = np.argsort(drops, kind="stable")[:n]
    return {
        "most": [(class_names[c], float(drops[c])) for c in most],
        "least": [(class_names[c], float(drops[c])) for c in least],
    }


def mean_cosine_per_class(clean: Any, blurred: Any, labels: Any, num_classes: int) -> np.ndarray:
    """Per class (C,), the mean cosine between each clean embedding (N, d) and its blurred one (row n with row n).

    Both are normalised here, so they need not be unit vectors. A class with no images is refused.
    """
    xp = get_array_module(clean)
    if clean.shape != blurred.shape or clean.ndim != 2:
        raise ValueError(f"clean and blurred embeddings must both be (N, d), got {clean.shape}, {blurred.shape}")
    a = clean / xp.linalg.norm(clean, axis=1, keepdims=True)  # (N, d)
    b = blurred / xp.linalg.norm(blurred, axis=1, keepdims=True)  # (N, d)
    cos = to_host((a * b).sum(axis=1)).astype(np.float64)  # (N,)
    lab = to_host(labels).astype(np.int64)
    count = np.bincount(lab, minlength=num_classes)  # (C,)
    if (count == 0).any():
        raise ValueError(f"no images of class {int(np.flatnonzero(count == 0)[0])}: its mean cosine is undefined")
    return np.bincount(lab, weights=cos, minlength=num_classes) / count
