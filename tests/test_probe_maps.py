"""Maps of the embedding space: PCA against scikit-learn's, t-SNE's affinities, gradient and maps, the gap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.probe.maps import (
    choose_k,
    conditional_affinities,
    fit_pca,
    joint_affinities,
    kl_divergence,
    kl_gradient,
    modality_gap,
    neighbour_agreement,
    squared_distances,
    student_t_similarities,
    tsne,
)


def _correlated(rng: np.random.Generator, n: int = 60, d: int = 8) -> np.ndarray:
    """Points with clearly different variances along different directions (no ties between components)."""
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * np.linspace(3.0, 0.3, d) + 5.0


# ----------------------------------------------------------------------------- PCA


@pytest.mark.parametrize("k", [None, 3])
def test_pca_equals_scikit_learns_up_to_sign(k: int | None) -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    x = _correlated(np.random.default_rng(0))
    ours = fit_pca(x, k)
    theirs = decomposition.PCA(n_components=k, svd_solver="full").fit(x)
    np.testing.assert_allclose(ours.explained_variance, theirs.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_ratio, theirs.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(ours.mean, theirs.mean_, rtol=1e-12)
    signs = np.sign((ours.components * theirs.components_).sum(axis=1))  # (k,) ±1 per component
    assert np.all(signs != 0)
    np.testing.assert_allclose(ours.components * signs[:, None], theirs.components_, atol=1e-10)
    np.testing.assert_allclose(ours.transform(x) * signs, theirs.transform(x), atol=1e-9)


def test_pca_by_its_definition() -> None:
    """Orthonormal components; the coordinates' variances are the explained variances; all of them reconstruct x."""
    x = _correlated(np.random.default_rng(1))
    pca = fit_pca(x)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(8), atol=1e-12)
    z = pca.transform(x)  # (N, 8)
    np.testing.assert_allclose(z.var(axis=0, ddof=1), pca.explained_variance, rtol=1e-10)
    np.testing.assert_allclose(z @ pca.components + pca.mean, x, atol=1e-10)
    assert math.isclose(pca.explained_variance_ratio.sum(), 1.0, rel_tol=1e-12)
    assert np.all(np.diff(pca.explained_variance) <= 0)


def test_choose_k_is_the_fewest_components_reaching_the_fraction() -> None:
    ratio = np.array([0.5, 0.3, 0.15, 0.05])
    assert choose_k(ratio, 0.5) == 1
    assert choose_k(ratio, 0.51) == 2
    assert choose_k(ratio, 0.8) == 2
    assert choose_k(ratio, 0.9) == 3
    assert choose_k(ratio, 1.0) == 4
    with pytest.raises(ValueError, match="fraction"):
        choose_k(ratio, 0.0)


def test_choose_k_agrees_with_scikit_learns_fraction() -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    x = _correlated(np.random.default_rng(2))
    ratio = fit_pca(x).explained_variance_ratio
    for fraction in (0.6, 0.9, 0.99):
        theirs = decomposition.PCA(n_components=fraction, svd_solver="full").fit(x)
        assert choose_k(ratio, fraction) == theirs.n_components_


# ----------------------------------------------------------------------------- t-SNE


@pytest.mark.parametrize("perplexity", [5.0, 30.0])
def test_binary_search_hits_the_perplexity(perplexity: float) -> None:
    x = np.random.default_rng(3).standard_normal((120, 10)) * np.linspace(0.1, 10.0, 10)  # uneven scales
    d2 = squared_distances(x)
    p, beta, perp = conditional_affinities(d2, perplexity)
    np.testing.assert_allclose(np.diag(p), 0.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    # the perplexity recomputed from the returned rows by its definition, 2^H with H in bits
    h = -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=1)
    assert np.abs(2.0**h - perplexity).max() < 1e-4
    np.testing.assert_allclose(perp, 2.0**h, rtol=1e-9)
    # and the rows are exp(−β D) normalised
    w = np.exp(-beta[:, None] * d2)
    np.fill_diagonal(w, 0.0)
    np.testing.assert_allclose(p, w / w.sum(axis=1, keepdims=True), rtol=1e-8, atol=1e-300)


def test_joint_affinities_are_symmetric_and_sum_to_one() -> None:
    x = np.random.default_rng(4).standard_normal((30, 5))
    p = joint_affinities(x, perplexity=8.0)
    np.testing.assert_allclose(p, p.T, rtol=1e-12)
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12)
    np.testing.assert_array_equal(np.diag(p), 0.0)
    assert p[~np.eye(30, dtype=bool)].min() > 0


def test_kl_gradient_equals_finite_differences() -> None:
    """∂KL(P‖Q)/∂Y by the formula against central differences of KL as a function of Y (P fixed), float64."""
    rng = np.random.default_rng(5)
    p = joint_affinities(rng.standard_normal((12, 6)), perplexity=4.0)
    y = rng.standard_normal((12, 2))
    analytic = kl_gradient(p, y)
    numeric = np.zeros_like(y)
    eps = 1e-6
    for index in np.ndindex(*y.shape):
        plus, minus = y.copy(), y.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = (kl_divergence(p, plus) - kl_divergence(p, minus)) / (2 * eps)
    rel = np.abs(analytic - numeric).max() / np.abs(numeric).max()
    worst = np.unravel_index(np.argmax(np.abs(analytic - numeric)), y.shape)
    assert rel < 1e-6, f"relative error {rel:.2e}; worst at {worst}: {analytic[worst]} vs {numeric[worst]}"


def test_kl_is_zero_when_q_equals_p() -> None:
    y = np.random.default_rng(6).standard_normal((10, 2))
    q, _ = student_t_similarities(y)
    assert abs(kl_divergence(q, y)) < 1e-12
    np.testing.assert_allclose(kl_gradient(q, y), 0.0, atol=1e-14)


def _blobs(rng: np.random.Generator, blobs: int = 4, per: int = 50, d: int = 20) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.standard_normal((blobs, d)) * 10.0
    x = np.concatenate([c + rng.standard_normal((per, d)) for c in centres])  # (blobs·per, d)
    return x, np.repeat(np.arange(blobs), per)


def test_tsne_keeps_well_separated_blobs_apart() -> None:
    x, labels = _blobs(np.random.default_rng(7))
    y = tsne(x, perplexity=20.0, n_iter=400, exaggeration_iter=150, seed=0)
    assert y.shape == (200, 2)
    assert np.isfinite(y).all()
    agreement = neighbour_agreement(y, labels, k=10)
    assert agreement.min() >= 0.9, f"worst point: {agreement.min():.2f} of its 10 neighbours from its blob"


def test_tsne_is_seeded() -> None:
    x, _ = _blobs(np.random.default_rng(8), blobs=2, per=15, d=5)
    a = tsne(x, perplexity=5.0, n_iter=60, seed=3)
    np.testing.assert_array_equal(a, tsne(x, perplexity=5.0, n_iter=60, seed=3))
    assert not np.array_equal(a, tsne(x, perplexity=5.0, n_iter=60, seed=4))


@pytest.mark.parametrize(
    ("x", "perplexity", "message"),
    [
        (np.zeros((10, 3)) + np.arange(10)[:, None], 10.0, "perplexity 10.0 is too large for 10 points"),
        (np.zeros((10, 3)) + np.arange(10)[:, None], 30.0, "perplexity 30.0 is too large for 10 points"),
        (np.zeros((10, 3)) + np.arange(10)[:, None], 0.0, "perplexity must be positive"),
        (np.ones((2, 3)), 0.5, "at least 3 points"),
        (np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0], [5.0, 6.0]]), 1.5, "NaN"),
        (np.array([[0.0, 1.0], [np.inf, 2.0], [3.0, 4.0], [5.0, 6.0]]), 1.5, "infinite"),
        (np.ones(5), 1.5, "2-D"),
    ],
)
def test_tsne_refuses_bad_input_naming_the_problem(x: np.ndarray, perplexity: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tsne(x, perplexity=perplexity, n_iter=5)


# ----------------------------------------------------------------------------- the gap


def test_gap_on_hand_made_points() -> None:
    """Images around e1, captions around e2, symmetric: centroids e1 and e2, 90° apart, √2 apart."""
    image = np.array([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [1.0, 0.0, 0.2], [1.0, 0.0, -0.2]])
    text = np.array([[0.3, 1.0, 0.0], [-0.3, 1.0, 0.0]])
    gap = modality_gap(image, text)
    assert math.isclose(gap.angle_degrees, 90.0, rel_tol=1e-12)
    assert math.isclose(gap.distance, math.sqrt(2.0), rel_tol=1e-12)
    # centroids (2, 0) and (1, 1): 45°; distance √2; scaling a cloud changes the distance, not the angle
    gap = modality_gap(np.array([[2.0, 1.0], [2.0, -1.0]]), np.array([[1.0, 1.0]]))
    assert math.isclose(gap.angle_degrees, 45.0, rel_tol=1e-12)
    assert math.isclose(gap.distance, math.sqrt(2.0), rel_tol=1e-12)
    gap = modality_gap(np.array([[4.0, 2.0], [4.0, -2.0]]), np.array([[1.0, 1.0]]))
    assert math.isclose(gap.angle_degrees, 45.0, rel_tol=1e-12)
    assert math.isclose(gap.distance, math.sqrt(10.0), rel_tol=1e-12)
    # one cloud: no gap; a tiny angle is still accurate (arccos would lose it)
    assert modality_gap(image, image).angle_degrees == 0.0
    tiny = modality_gap(np.array([[1.0, 0.0]]), np.array([[1.0, 1e-9]]))
    assert math.isclose(tiny.angle_degrees, math.degrees(1e-9), rel_tol=1e-6)


def test_gap_refuses_what_it_cannot_measure() -> None:
    with pytest.raises(ValueError, match="differ in width"):
        modality_gap(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="zero vector"):
        modality_gap(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        modality_gap(np.array([[np.nan, 0.0]]), np.ones((2, 2)))


# ----------------------------------------------------------------------------- the GPU backend


@pytest.mark.gpu
def test_maps_give_the_same_numbers_on_the_gpu() -> None:
    """The same arrays on CuPy: PCA, affinities, the KL gradient and the gap as on the CPU; t-SNE's map as good."""
    rng = np.random.default_rng(9)
    x = _correlated(rng)
    blobs, labels = _blobs(rng)
    y = rng.standard_normal((60, 2))
    with backend.using("gpu"):
        xg, yg = backend.to_device(x), backend.to_device(y)
        pca = fit_pca(xg, 3)
        pg = joint_affinities(xg, perplexity=10.0)
        host = {
            "components": backend.to_host(pca.components),
            "ratio": backend.to_host(pca.explained_variance_ratio),
            "z": backend.to_host(pca.transform(xg)),
            "p": backend.to_host(pg),
            "grad": backend.to_host(kl_gradient(pg, yg)),
            "kl": kl_divergence(pg, yg),
            "gap": modality_gap(xg[:30], xg[30:]),
            "agreement": backend.to_host(
                neighbour_agreement(tsne(backend.to_device(blobs), perplexity=20.0, n_iter=400, seed=0), labels)
            ),
        }
    cpu = fit_pca(x, 3)
    p = joint_affinities(x, perplexity=10.0)
    np.testing.assert_allclose(host["components"], cpu.components, atol=1e-10)
    np.testing.assert_allclose(host["ratio"], cpu.explained_variance_ratio, rtol=1e-10)
    np.testing.assert_allclose(host["z"], cpu.transform(x), atol=1e-9)
    np.testing.assert_allclose(host["p"], p, rtol=1e-8, atol=1e-15)
    np.testing.assert_allclose(host["grad"], kl_gradient(p, y), rtol=1e-7, atol=1e-12)
    assert math.isclose(host["kl"], kl_divergence(p, y), rel_tol=1e-9)
    gap = modality_gap(x[:30], x[30:])
    assert math.isclose(host["gap"].angle_degrees, gap.angle_degrees, rel_tol=1e-9)
    assert math.isclose(host["gap"].distance, gap.distance, rel_tol=1e-9)
    assert host["agreement"].min() >= 0.9
