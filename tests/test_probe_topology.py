"""Persistence diagrams (H0, H1), the Hungarian algorithm and the Wasserstein-1 distance, from scratch.

Checked against ripser (diagrams), persim (Wasserstein) and SciPy (assignment) where they are
installed; those tests skip cleanly without them. Every random test is seeded.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from miniclip.probe.topology import (
    check_distance_matrix,
    cosine_distances,
    h0_diagram,
    h1_diagram,
    hungarian,
    persistence_diagrams,
    subsample,
    wasserstein,
    wasserstein_matching,
)


def _cloud(seed: int, n: int, dim: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim))


def _finite_sorted(diagram: np.ndarray) -> np.ndarray:
    """The finite (birth, death) bars, sorted, as (K, 2)."""
    d = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    d = d[np.isfinite(d[:, 1])]
    return d[np.lexsort((d[:, 1], d[:, 0]))]


def _circle(n: int) -> np.ndarray:
    """n points evenly spaced on the unit circle → their (n, n) Euclidean distance matrix."""
    angle = 2 * np.pi * np.arange(n) / n
    x = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


# ---------------------------------------------------------------- distances


def test_cosine_distances_are_one_minus_cosine_symmetric_with_zero_diagonal():
    x = _cloud(0, 12, 4)
    d = cosine_distances(x)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(d, np.clip(1 - u @ u.T, 0, 2), atol=1e-12)
    assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0)
    scipy_distance = pytest.importorskip("scipy.spatial.distance")
    reference = scipy_distance.squareform(scipy_distance.pdist(x, "cosine"), checks=False)
    np.testing.assert_allclose(d, reference, atol=1e-12)


def test_subsample_is_seeded_without_replacement():
    x = _cloud(1, 50)
    a, b, c = subsample(x, 20, seed=3), subsample(x, 20, seed=3), subsample(x, 20, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(set(a.tolist())) == 20 and a.min() >= 0 and a.max() < 50
    assert len(subsample(x, 50)) == 50


# ---------------------------------------------------------------- diagrams against ripser


@pytest.mark.parametrize("seed, n", [(0, 20), (1, 30), (2, 45), (3, 60), (4, 100)])
def test_h0_and_h1_match_ripser_on_random_clouds(seed, n):
    ripser = pytest.importorskip("ripser").ripser
    d = cosine_distances(_cloud(seed, n))
    reference = ripser(d, distance_matrix=True, maxdim=1)["dgms"]
    h0, h1 = persistence_diagrams(d)
    assert np.isinf(h0[-1, 1]) and np.sum(np.isinf(h0[:, 1])) == 1 and np.all(h0[:, 0] == 0)
    for ours, theirs in [(h0, reference[0]), (h1, reference[1])]:
        ours, theirs = _finite_sorted(ours), _finite_sorted(theirs)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-6)  # ripser works in float32
    assert len(h1) > 0  # the clouds do have loops, so H1 is really compared


def test_h0_on_a_line_dies_at_the_gaps():
    x = np.array([0.0, 1.0, 3.0, 7.0])
    d = np.abs(x[:, None] - x[None])
    np.testing.assert_array_equal(h0_diagram(d), [[0, 1], [0, 2], [0, 4], [0, np.inf]])
    assert h1_diagram(d).shape == (0, 2)  # points on a line have no loop


def test_eight_points_on_a_circle_give_exactly_one_long_h1_bar():
    d = _circle(8)
    h1 = h1_diagram(d)
    assert h1.shape == (1, 2)
    # born when the 8 sides join (chord of 1 step), filled when chords of 3 steps appear
    np.testing.assert_allclose(h1[0], [2 * np.sin(np.pi / 8), 2 * np.sin(3 * np.pi / 8)], atol=1e-12)
    np.testing.assert_allclose(h0_diagram(d)[:, 1], [2 * np.sin(np.pi / 8)] * 7 + [np.inf], atol=1e-12)


def test_eight_points_on_a_circle_match_ripser():
    ripser = pytest.importorskip("ripser").ripser
    d = _circle(8)
    np.testing.assert_allclose(h1_diagram(d), ripser(d, distance_matrix=True, maxdim=1)["dgms"][1], atol=1e-6)


# ---------------------------------------------------------------- Hungarian algorithm


@pytest.mark.parametrize("seed, n", [(0, 1), (1, 5), (2, 17), (3, 40)])
def test_hungarian_matches_scipy(seed, n):
    linear_sum_assignment = pytest.importorskip("scipy.optimize").linear_sum_assignment
    cost = np.random.default_rng(seed).random((n, n)) * 10
    ours = hungarian(cost)
    rows, theirs = linear_sum_assignment(cost)
    assert sorted(ours.tolist()) == list(range(n))  # a permutation
    np.testing.assert_allclose(cost[np.arange(n), ours].sum(), cost[rows, theirs].sum(), atol=1e-9)
    assert np.array_equal(ours, theirs)  # random continuous costs: the optimum is unique


def test_hungarian_on_integer_costs_with_ties():
    cost = np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]], dtype=float)
    columns = hungarian(cost)
    assert cost[np.arange(3), columns].sum() == 5  # 1 + 2 + 2


# ---------------------------------------------------------------- Wasserstein against persim


def _random_diagram(rng: np.random.Generator, k: int) -> np.ndarray:
    birth = rng.random(k)
    return np.stack([birth, birth + rng.random(k)], axis=1)


@pytest.mark.parametrize("seed, m, n", [(0, 5, 5), (1, 3, 9), (2, 12, 4), (3, 0, 6), (4, 20, 25)])
def test_wasserstein_matches_persim_on_random_diagrams(seed, m, n):
    persim = pytest.importorskip("persim")
    rng = np.random.default_rng(seed)
    a, b = _random_diagram(rng, m), _random_diagram(rng, n)
    np.testing.assert_allclose(wasserstein(a, b), persim.wasserstein(a, b), atol=1e-6)
    np.testing.assert_allclose(wasserstein(a, b), wasserstein(b, a), atol=1e-12)


def test_wasserstein_matches_persim_on_two_clouds_diagrams():
    persim = pytest.importorskip("persim")
    (a0, a1), (b0, b1) = (persistence_diagrams(cosine_distances(_cloud(seed, 40))) for seed in (10, 11))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # persim warns that it drops the infinite H0 bar
        for a, b in [(a0, b0), (a1, b1)]:
            np.testing.assert_allclose(wasserstein(a, b), persim.wasserstein(a, b), atol=1e-6)


def test_wasserstein_by_hand():
    a = np.array([[0.0, 2.0]])
    b = np.array([[0.0, 2.0], [1.0, 1.5]])
    # a's bar matches b's first exactly; b's second goes to the diagonal: (1.5 − 1)/√2 in L2, /2 in L∞
    assert wasserstein(a, b) == pytest.approx(0.5 / np.sqrt(2))
    assert wasserstein(a, b, ground="linf") == pytest.approx(0.25)
    total, matching = wasserstein_matching(a, b)
    assert sorted(matching) == [(-1, 1), (0, 0)]
    assert wasserstein(a, a) == 0 and wasserstein(np.zeros((0, 2)), np.zeros((0, 2))) == 0
    assert wasserstein([[0, np.inf]], np.zeros((0, 2))) == 0  # infinite bars are dropped


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "matrix, message",
    [
        (np.zeros((3, 4)), "square"),
        (np.array([[0.0, 1.0], [2.0, 0.0]]), "not symmetric"),
        (np.array([[0.0, np.nan], [np.nan, 0.0]]), "NaN"),
        (np.array([[0.0, -1.0], [-1.0, 0.0]]), "negative"),
    ],
)
def test_bad_distance_matrices_are_refused_naming_the_fault(matrix, message):
    for function in (check_distance_matrix, h0_diagram, h1_diagram):
        with pytest.raises(ValueError, match=message):
            function(matrix)


def test_bad_clouds_and_requests_are_refused_naming_the_fault():
    with pytest.raises(ValueError, match="asked for 11 points but the cloud has 10"):
        subsample(_cloud(0, 10), 11)
    with pytest.raises(ValueError, match="NaN"):
        cosine_distances(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="zero vectors"):
        cosine_distances(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="square"):
        hungarian(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="ground"):
        wasserstein([[0, 1]], [[0, 1]], ground="l3")
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        wasserstein(np.zeros((2, 3)), [[0, 1]])
