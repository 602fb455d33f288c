"""Maps of the embedding space: PCA written out, t-SNE in NumPy, and the image–caption gap.

**PCA.** Centre the N points (rows of X), take the thin SVD of the centred matrix, and read
everything off it::

    X̃ = X − mean(X)                              (N, d)
    X̃ = U S Vᵀ                                   U (N, r), S (r,), Vᵀ (r, d), r = min(N, d)
    components  = rows of Vᵀ                     (the principal directions, unit length)
    variance_k  = S_k² / (N − 1)                 (the variance along direction k)
    ratio_k     = variance_k / Σ_j variance_j    (its share of the total variance)
    transform(X) = (X − mean) · Vᵀ[:k]ᵀ          (N, k) coordinates along the top k directions

**t-SNE** (van der Maaten & Hinton, "Visualizing Data using t-SNE", JMLR 2008). Each point i
turns its squared distances D_ij into a distribution over its neighbours, with a precision
β_i = 1/(2σ_i²) chosen by binary search so that the distribution's perplexity 2^H(P_i) equals
the target (H in bits, the "effective number of neighbours")::

    p_j|i = exp(−β_i D_ij) / Σ_{k≠i} exp(−β_i D_ik)          (p_i|i = 0)
    H(P_i) = −Σ_j p_j|i log₂ p_j|i

The conditional distributions are symmetrised into one joint distribution over pairs::

    p_ij = (p_j|i + p_i|j) / 2N                  (Σ_ij p_ij = 1)

The map Y (N, 2) gets heavy-tailed Student-t similarities, and t-SNE minimises KL(P‖Q)::

    q_ij = (1 + ‖y_i − y_j‖²)⁻¹ / Σ_{k≠l} (1 + ‖y_k − y_l‖²)⁻¹
    C = KL(P‖Q) = Σ_{i≠j} p_ij log(p_ij / q_ij)
    ∂C/∂y_i = 4 Σ_j (p_ij − q_ij)(y_i − y_j)(1 + ‖y_i − y_j‖²)⁻¹

Gradient descent with the tricks of the paper and of its reference implementation (tsne.py):
P multiplied by 12 for the first 250 iterations ("early exaggeration": clusters form first,
then spread), momentum 0.5 then 0.8, and per-coordinate gains that grow by 0.2 while the
gradient keeps changing sign against the step and shrink by ×0.8 while it agrees.

**The gap** between the image and the caption clouds (Liang et al., "Mind the Gap", 2022):
the angle between the two centroids on the unit sphere, and the Euclidean distance between them.

Array code runs through :mod:`miniclip.backend`'s array module, so it works on CuPy arrays as well.

Lesson 11 works each piece by hand first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from miniclip.backend import get_array_module, to_device, to_float, to_host
from miniclip.evaluation.inputs import check_points

# ---------------------------------------------------------------------------------------------
# PCA
# ---------------------------------------------------------------------------------------------


@dataclass
class PCA:
    """A fitted PCA: the mean, the principal directions and the variance along each.

    ``components`` (k, d) are unit rows, ordered by falling variance; each has its sign chosen so
    that its largest-magnitude entry is positive (an SVD fixes a direction only up to sign).
    """

    mean: Any  # (d,)
    components: Any  # (k, d)
    singular_values: Any  # (k,)
    explained_variance: Any  # (k,)  S² / (N − 1)
    explained_variance_ratio: Any  # (k,)  share of the TOTAL variance (all r directions)

    def transform(self, x: Any) -> Any:
        """Coordinates of ``x`` (M, d) along the components: (x − mean) · componentsᵀ, shape (M, k)."""
        return (x - self.mean) @ self.components.T  # (M, d) @ (d, k) → (M, k)


def fit_pca(x: Any, k: int | None = None) -> PCA:
    """PCA of the rows of ``x`` (N, d), keeping the top ``k`` directions (all min(N, d) if None)."""
    xp = check_points(x)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"PCA needs at least 2 points, got {n}")
    r = min(n, d)
    if k is None:
        k = r
    if not 1 <= k <= r:
        raise ValueError(f"k must be between 1 and min(N, d) = {r}, got {k}")
    mean = x.mean(axis=0)  # (d,)
    _, s, vt = xp.linalg.svd(x - mean, full_matrices=False)  # s (r,), vt (r, d)
    largest = xp.argmax(xp.abs(vt), axis=1)  # (r,) where each direction is biggest
    signs = xp.sign(vt[xp.arange(r), largest])  # (r,) make that entry positive
    vt = vt * signs[:, None]
    variance = s**2 / (n - 1)  # (r,)
    ratio = variance / variance.sum()  # (r,)
    return PCA(mean, vt[:k], s[:k], variance[:k], ratio[:k])


def choose_k(explained_variance_ratio: Any, fraction: float) -> int:
    """The fewest components whose explained-variance ratios add up to at least ``fraction`` (0 < fraction ≤ 1).

    Pass the ratios of a PCA fitted with all components (``fit_pca(x)``). A fraction the ratios
    cannot reach by rounding (cumulative sum 0.9999999999 for fraction 1) gives all of them.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    cumulative = np.cumsum(to_host(explained_variance_ratio))  # (r,)
    k = int(np.searchsorted(cumulative, fraction - 1e-12)) + 1  # first index with cumulative ≥ fraction
    return min(k, len(cumulative))


# ---------------------------------------------------------------------------------------------
# t-SNE
# ---------------------------------------------------------------------------------------------


def squared_distances(x: Any) -> Any:
    """All squared Euclidean distances ‖x_i − x_j‖² (N, N), from ‖a‖² + ‖b‖² − 2a·b, floored at 0."""
    xp = get_array_module(x)
    sq = (x * x).sum(axis=1)  # (N,)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)  # (N, N)
    d2 = xp.maximum(d2, 0.0)  # rounding can make a tiny distance negative
    xp.fill_diagonal(d2, 0.0)
    return d2


def _check_perplexity(n: int, perplexity: float) -> None:
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {n}")
    if not perplexity > 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    if perplexity >= n - 1:  # the most a point can have: all N − 1 others equally likely
        raise ValueError(
            f"perplexity {perplexity} is too large for {n} points: it must be below the number of points "
            f"minus one ({n - 1}); lower it or give more points"
        )


def conditional_affinities(d2: Any, perplexity: float, tol: float = 1e-5, max_iter: int = 200) -> tuple[Any, Any, Any]:
    """Each row's p_j|i with its precision β_i found by binary search, so that 2^H(P_i) = perplexity.

    ``d2`` (N, N) squared distances. All rows are searched at once: β goes up (the distribution
    narrows, the perplexity falls) while the perplexity is too high, and down while it is too low;
    doubling or halving until the target is bracketed, then bisecting, until every row's perplexity
    is within ``tol`` of the target. Returns (P_cond (N, N), β (N,), perplexity of each row (N,)).

    Each row's distances are shifted by its smallest off-diagonal one before exponentiating
    (the shift cancels in the normalisation), so the nearest neighbour always weighs 1 and no row
    underflows to all zeros.
    """
    xp = get_array_module(d2)
    n = d2.shape[0]
    _check_perplexity(n, perplexity)
    off = ~xp.eye(n, dtype=bool)  # (N, N) True off the diagonal
    big = xp.where(off, d2, xp.inf)  # the diagonal never counts
    shifted = big - big.min(axis=1, keepdims=True)  # (N, N) ≥ 0, ∞ on the diagonal
    finite = xp.where(off, shifted, 0.0)  # (N, N) the same with 0 on the diagonal, for the entropy
    scale = finite.sum(axis=1) / (n - 1)  # (N,) mean shifted distance
    beta = 1.0 / xp.maximum(scale, 1e-12)  # (N,) a start of the right order of magnitude
    lo = xp.zeros(n)  # (N,) bracket [lo, hi] around the β sought
    hi = xp.full(n, xp.inf)
    log2_target = math.log2(perplexity)

    def perplexity_of(b: Any) -> tuple[Any, Any]:
        w = xp.exp(-b[:, None] * shifted)  # (N, N) unnormalised; 0 on the diagonal (exp(−∞))
        z = w.sum(axis=1)  # (N,) ≥ 1 (the nearest neighbour weighs 1)
        p = w / z[:, None]
        # H in nats = log Z + β Σ_j p_j|i D_ij (shifted distances; the shift cancels): no 0·log 0
        h = (xp.log(z) + b * (p * finite).sum(axis=1)) / math.log(2)  # (N,) bits
        return p, h

    p, h = perplexity_of(beta)
    for _ in range(max_iter):
        if float(xp.abs(2.0**h - perplexity).max()) < tol:  # one host sync per step of the search
            break
        too_wide = h > log2_target  # perplexity too high → raise β
        lo = xp.where(too_wide, beta, lo)
        hi = xp.where(too_wide, hi, beta)
        beta = xp.where(xp.isinf(hi), beta * 2.0, (lo + hi) / 2.0)
        p, h = perplexity_of(beta)
    return p, beta, 2.0**h


def joint_affinities(x: Any, perplexity: float = 30.0, tol: float = 1e-5) -> Any:
    """The symmetric t-SNE affinities p_ij = (p_j|i + p_i|j) / 2N of the rows of ``x`` (N, d) → (N, N).

    Entries are floored at 1e-12 (as the reference implementation does, so log p is finite) and the
    matrix renormalised to sum to 1, which the KL gradient assumes.
    """
    xp = check_points(x)
    _check_perplexity(x.shape[0], perplexity)
    p_cond, _, _ = conditional_affinities(squared_distances(x), perplexity, tol=tol)
    p = (p_cond + p_cond.T) / (2.0 * x.shape[0])  # (N, N) sums to 1
    p = xp.maximum(p, 1e-12)
    xp.fill_diagonal(p, 0.0)
    return p / p.sum()


def student_t_similarities(y: Any) -> tuple[Any, Any]:
    """Q (N, N) of the map ``y`` (N, 2), and the kernel (1 + ‖y_i − y_j‖²)⁻¹ (N, N) the gradient reuses."""
    xp = get_array_module(y)
    kernel = 1.0 / (1.0 + squared_distances(y))  # (N, N)
    xp.fill_diagonal(kernel, 0.0)  # q_ii = 0
    return kernel / kernel.sum(), kernel


def kl_divergence(p: Any, y: Any) -> float:
    """KL(P‖Q) = Σ_{i≠j} p_ij log(p_ij / q_ij) of the map ``y`` for fixed affinities ``p``."""
    xp = get_array_module(y)
    q, _ = student_t_similarities(y)
    mask = p > 0  # the diagonal (and nothing else, once P is floored)
    return to_float(xp.where(mask, p * (xp.log(xp.where(mask, p, 1.0)) - xp.log(xp.where(mask, q, 1.0))), 0.0).sum())


def kl_gradient(p: Any, y: Any) -> Any:
    """∂KL(P‖Q)/∂y_i = 4 Σ_j (p_ij − q_ij)(y_i − y_j)(1 + ‖y_i − y_j‖²)⁻¹, all rows at once → (N, 2).

    With W = (P − Q) ∘ kernel, Σ_j W_ij (y_i − y_j) = (Σ_j W_ij) y_i − (W y)_i: two matrix products.
    """
    q, kernel = student_t_similarities(y)
    w = (p - q) * kernel  # (N, N)
    return 4.0 * (w.sum(axis=1)[:, None] * y - w @ y)  # (N, 2)


def tsne(
    x: Any,
    dims: int = 2,
    perplexity: float = 30.0,
    n_iter: int = 1000,
    learning_rate: float | None = None,
    exaggeration: float = 12.0,
    exaggeration_iter: int = 250,
    momentum: tuple[float, float] = (0.5, 0.8),
    seed: int = 0,
) -> Any:
    """Embed the rows of ``x`` (N, d) in ``dims`` dimensions with t-SNE → (N, dims), on ``x``'s device.

    The map starts from N(0, 1e-4²) drawn on the host from ``seed``. ``learning_rate`` None is
    scikit-learn's "auto": max(N / exaggeration / 4, 50). The first ``exaggeration_iter``
    iterations multiply P by ``exaggeration`` and use momentum ``momentum[0]``, the rest ``momentum[1]``.
    The map is re-centred after every step (the KL does not depend on where its centre is).
    """
    xp = check_points(x)
    n = x.shape[0]
    _check_perplexity(n, perplexity)
    if n_iter < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    if learning_rate is None:
        learning_rate = max(n / exaggeration / 4.0, 50.0)
    p = joint_affinities(x, perplexity)  # (N, N)
    y = to_device(np.random.default_rng(seed).normal(0.0, 1e-4, size=(n, dims)), dtype=x.dtype)  # (N, dims)
    if xp is not get_array_module(y):  # x lives elsewhere than the current device: follow x
        y = xp.asarray(to_host(y))
    step = xp.zeros_like(y)  # (N, dims) the previous update, for momentum
    gains = xp.ones_like(y)  # (N, dims)
    for it in range(n_iter):
        early = it < exaggeration_iter
        grad = kl_gradient(p * exaggeration if early else p, y)  # (N, dims)
        # a gain grows while the gradient points against the last step (keep going), else shrinks
        against = (grad > 0) != (step > 0)
        gains = xp.maximum(xp.where(against, gains + 0.2, gains * 0.8), 0.01)
        step = (momentum[0] if early else momentum[1]) * step - learning_rate * gains * grad
        y = y + step
        y = y - y.mean(axis=0)
    return y


def neighbour_agreement(y: Any, labels: Any, k: int = 10) -> Any:
    """For each point, the fraction of its ``k`` nearest neighbours in ``y`` (N, m) that share its label → (N,)."""
    xp = get_array_module(y)
    d2 = squared_distances(y)
    xp.fill_diagonal(d2, xp.inf)  # a point is not its own neighbour
    nearest = xp.argsort(d2, axis=1)[:, :k]  # (N, k)
    labels = xp.asarray(labels)
    return (labels[nearest] == labels[:, None]).mean(axis=1)


# ---------------------------------------------------------------------------------------------
# The image–caption gap
# ---------------------------------------------------------------------------------------------


@dataclass
class Gap:
    """How far apart two clouds sit: their centroids' angle on the unit sphere and their distance."""

    angle_degrees: float  # angle between the centroids' directions
    distance: float  # ‖mean(image) − mean(text)‖


def modality_gap(image: Any, text: Any) -> Gap:
    """The gap between the image embeddings (N, d) and the caption embeddings (M, d).

    The angle is arccos(ĉ_I · ĉ_T) for the normalised centroids ĉ, computed as
    2·atan2(‖ĉ_I − ĉ_T‖, ‖ĉ_I + ĉ_T‖) — the same angle, but accurate when it is small.
    """
    xp = check_points(image, "image embeddings")
    check_points(text, "caption embeddings")
    if image.shape[1] != text.shape[1]:
        raise ValueError(f"image and caption embeddings differ in width: {image.shape[1]} vs {text.shape[1]}")
    if image.shape[0] == 0 or text.shape[0] == 0:
        raise ValueError("both clouds need at least one point")
    ci, ct = image.mean(axis=0), text.mean(axis=0)  # (d,), (d,)
    ni, nt = xp.linalg.norm(ci), xp.linalg.norm(ct)
    if to_float(ni) == 0 or to_float(nt) == 0:
        raise ValueError("a centroid is the zero vector: its direction (and so the angle) is undefined")
    ui, ut = ci / ni, ct / nt
    angle = 2.0 * xp.arctan2(xp.linalg.norm(ui - ut), xp.linalg.norm(ui + ut))
    return Gap(angle_degrees=math.degrees(to_float(angle)), distance=to_float(xp.linalg.norm(ci - ct)))
