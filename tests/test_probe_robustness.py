"""Blur robustness and subspace angles (miniclip.probe.robustness): the hand-written Gaussian blur
against scipy.ndimage, principal angles against scipy.linalg.subspace_angles and on two planes in
3-D, and the bookkeeping on hand-made numbers. SciPy is a reference only: those tests skip without it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miniclip.backend import to_host
from miniclip.probe.maps import fit_pca
from miniclip.probe.robustness import (
    accuracy_drops,
    angle_matrices,
    angle_matrix,
    blur_float,
    blur_radius,
    class_bases,
    clean_vs_blurred_angles,
    fragile_classes,
    gaussian_blur,
    gaussian_kernel,
    mean_cosine_per_class,
    per_class_accuracy,
    principal_angles,
    principal_directions,
)

# ---------------------------------------------------------------------------------------------
# Gaussian blur
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0, 5.0])
def test_kernel_sums_to_one_is_symmetric_and_has_radius_ceil_3_sigma(sigma):
    g = gaussian_kernel(sigma)
    r = math.ceil(3 * sigma)
    assert blur_radius(sigma) == r
    assert g.shape == (2 * r + 1,)
    assert g.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_array_equal(g, g[::-1])
    assert np.argmax(g) == r  # the peak at offset 0


def test_the_2d_kernel_is_the_outer_product_of_the_1d_one():
    """Blurring a single bright pixel (an impulse) draws the 2-D kernel: it equals g gᵀ."""
    sigma, r = 1.5, blur_radius(1.5)
    size = 2 * r + 1
    impulse = np.zeros((size, size))
    impulse[r, r] = 1.0
    g = gaussian_kernel(sigma)
    # The impulse sits r from every edge, so no reflected copy reaches inside: the response is the kernel.
    np.testing.assert_allclose(blur_float(impulse, sigma), np.outer(g, g), atol=1e-15)


def test_a_constant_image_stays_constant():
    images = np.full((2, 3, 9, 7), 137, dtype=np.uint8)
    for sigma in (0.7, 2.0, 5.0):  # 5.0: the radius (15) is wider than the image; the mirror repeats
        np.testing.assert_array_equal(gaussian_blur(images, sigma), images)


@pytest.mark.parametrize("sigma", [0.8, 1.0, 2.0, 3.3, 5.0])
def test_blur_matches_scipy_gaussian_filter_on_floats(sigma):
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 17, 13))
    # scipy's mode="reflect" is half-sample symmetric (np.pad's "symmetric"); its radius is int(3σ + 0.5),
    # so give it ours (⌈3σ⌉) explicitly, and also give ours its rule: both ways they agree.
    r = blur_radius(sigma)
    want = ndimage.gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="reflect", radius=(0, 0, r, r))
    np.testing.assert_allclose(blur_float(x, sigma), want, atol=1e-10, rtol=0)
    r_scipy = int(3.0 * sigma + 0.5)
    want = ndimage.gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="reflect", truncate=3.0)
    np.testing.assert_allclose(blur_float(x, sigma, radius=r_scipy), want, atol=1e-10, rtol=0)


def test_uint8_blur_is_scipy_rounded():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 3, 16, 16), dtype=np.uint8)
    out = gaussian_blur(images, 2.0)
    assert out.dtype == np.uint8 and out.shape == images.shape
    r = blur_radius(2.0)
    want = ndimage.gaussian_filter(images.astype(np.float64), sigma=(0, 0, 2, 2), mode="reflect", radius=(0, 0, r, r))
    # float32 arithmetic against float64: at most one grey level apart where a value sits on a half.
    assert np.abs(out.astype(int) - np.rint(want).astype(int)).max() <= 1
    assert (out.astype(int) == np.rint(want).astype(int)).mean() > 0.99


def test_blur_leaves_each_channel_to_itself():
    images = np.zeros((1, 3, 8, 8), dtype=np.uint8)
    images[0, 1] = 200  # only the green channel is lit
    out = gaussian_blur(images, 1.0)
    assert out[0, 0].max() == 0 and out[0, 2].max() == 0
    np.testing.assert_array_equal(out[0, 1], 200)


@pytest.mark.parametrize("sigma", [0, -1.0, float("nan"), float("inf"), "two"])
def test_a_bad_sigma_is_refused_naming_sigma(sigma):
    images = np.zeros((1, 3, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="σ"):
        gaussian_blur(images, sigma)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(sigma)


def test_blur_refuses_what_is_not_a_uint8_batch():
    with pytest.raises(ValueError, match="uint8"):
        gaussian_blur(np.zeros((1, 3, 4, 4), dtype=np.float32), 1.0)
    with pytest.raises(ValueError, match="uint8"):
        gaussian_blur(np.zeros((3, 4, 4), dtype=np.uint8), 1.0)


# ---------------------------------------------------------------------------------------------
# Subspace angles
# ---------------------------------------------------------------------------------------------


def test_principal_directions_are_orthonormal_and_ordered_by_spread():
    rng = np.random.default_rng(2)
    scales = np.array([10.0, 5.0, 2.0, 0.5, 0.1])
    points = rng.standard_normal((400, 5)) * scales  # spread along the axes, largest first
    q = principal_directions(points, k=3)
    assert q.shape == (5, 3)
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.abs(q), np.eye(5)[:, :3], atol=0.05)  # the three widest axes, in order
    share = fit_pca(points).explained_variance_ratio
    assert share.sum() == pytest.approx(1.0) and np.all(np.diff(share) <= 0)


def test_k_from_explained_variance_is_the_smallest_that_reaches_it():
    points = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 0.5, 0], [0, -0.5, 0], [0, 0, 0.1], [0, 0, -0.1]])
    share = np.cumsum(fit_pca(points).explained_variance_ratio)  # 2/2.52, (2 + 0.5)/2.52, 1
    assert principal_directions(points, variance=share[0]).shape == (3, 1)
    assert principal_directions(points, variance=share[0] + 1e-6).shape == (3, 2)
    assert principal_directions(points, variance=0.99).shape == (3, 2)
    assert principal_directions(points, variance=1.0).shape == (3, 3)


def test_two_planes_at_a_known_dihedral_angle():
    """The xy-plane and the plane through the x-axis tilted by 30°: they share the x-axis (angle 0)
    and meet at 30° across it."""
    rng = np.random.default_rng(3)
    tilt = np.radians(30.0)
    u, v = rng.standard_normal((2, 200))
    flat = np.stack([u, v, np.zeros(200)], axis=1)  # (200, 3) on z = 0
    tilted = np.stack([u, v * np.cos(tilt), v * np.sin(tilt)], axis=1)  # (200, 3) rotated about x
    angles = principal_angles(principal_directions(flat, k=2), principal_directions(tilted, k=2))
    np.testing.assert_allclose(angles, [0.0, 30.0], atol=1e-5)  # arccos near 1: ~1e-6°


@pytest.mark.parametrize(("d", "ka", "kb"), [(10, 3, 3), (20, 5, 2), (8, 4, 6)])
def test_principal_angles_match_scipy_subspace_angles(d, ka, kb):
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(d + ka + kb)
    qa = principal_directions(rng.standard_normal((50, d)), k=ka)
    qb = principal_directions(rng.standard_normal((50, d)), k=kb)
    ours = principal_angles(qa, qb)
    assert np.all(np.diff(ours) >= 0)  # ascending
    want = np.degrees(linalg.subspace_angles(qa, qb))[::-1]  # scipy: radians, descending
    np.testing.assert_allclose(ours, want, atol=1e-7)


def test_angle_matrix_of_classes():
    """Class 0 and class 1 span the same plane, class 2 a plane at 90° to it across a shared axis."""
    rng = np.random.default_rng(4)
    u, v = rng.standard_normal((2, 30))
    plane_xy = np.stack([u, v, np.zeros(30)], axis=1)
    plane_xz = np.stack([u, np.zeros(30), v], axis=1)
    embeddings = np.concatenate([plane_xy, plane_xy[::-1] * 2.0, plane_xz])  # (90, 3)
    labels = np.repeat([0, 1, 2], 30)
    bases = class_bases(embeddings, labels, k=2, class_names=["a", "b", "c"])
    largest = angle_matrix(bases)
    np.testing.assert_allclose(largest, [[0, 0, 90], [0, 0, 90], [90, 90, 0]], atol=1e-5)  # arccos near 1
    np.testing.assert_allclose(angle_matrix(bases, reduce="mean"), largest / 2, atol=1e-5)  # angles 0 and 90
    with pytest.raises(ValueError, match="reduce"):
        angle_matrix(bases, reduce="min")


def _per_reduce_angle_matrix(bases, reduce: str) -> np.ndarray:
    """The matrix as it was computed before ``angle_matrices``: one ``principal_angles`` per pair, per reduction."""
    out = np.zeros((len(bases), len(bases)))
    for a in range(len(bases)):
        for b in range(a + 1, len(bases)):
            angles = to_host(principal_angles(bases[a], bases[b]))
            out[a, b] = out[b, a] = angles.max() if reduce == "max" else angles.mean()
    return out


def test_angle_matrices_equal_the_per_reduce_matrices():
    """One pass over the pairs gives both matrices, number for number, for classes of different ranks."""
    rng = np.random.default_rng(8)
    bases = [principal_directions(rng.standard_normal((12, 7)), k=k) for k in (1, 2, 3, 2, 4)]
    mean, largest = angle_matrices(bases)
    np.testing.assert_array_equal(mean, _per_reduce_angle_matrix(bases, "mean"))
    np.testing.assert_array_equal(largest, _per_reduce_angle_matrix(bases, "max"))
    assert np.all(largest >= mean) and np.any(largest > mean + 1.0)  # several angles per pair: they differ
    np.testing.assert_array_equal(angle_matrix(bases, reduce="mean"), mean)
    np.testing.assert_array_equal(angle_matrix(bases), largest)


def test_a_rank_too_large_for_a_class_is_refused_naming_it():
    rng = np.random.default_rng(5)
    embeddings = rng.standard_normal((13, 4))
    labels = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ValueError, match=r"dog: rank k=3 .* 3 point\(s\)"):
        class_bases(embeddings, labels, k=3, class_names=["cat", "dog"])
    with pytest.raises(ValueError, match=r"cat: rank k=5 .* 4 dimension\(s\)"):
        class_bases(embeddings, labels, k=5, class_names=["cat", "dog"])
    with pytest.raises(ValueError, match="exactly one"):
        principal_directions(embeddings, k=2, variance=0.9)
    with pytest.raises(ValueError, match="fraction"):
        principal_directions(embeddings, variance=1.5)


def test_clean_vs_blurred_angles_per_class_and_sigma():
    """Class 0 is left where it is at every σ; class 1's plane tilts about the x-axis by 10° per unit σ."""
    rng = np.random.default_rng(7)
    u, v = rng.standard_normal((2, 25))
    flat = np.stack([u, v, np.zeros(25)], axis=1)  # (25, 3)

    def tilted(degrees):
        t = np.radians(degrees)
        return np.stack([u, v * np.cos(t), v * np.sin(t)], axis=1)

    clean = np.concatenate([flat, flat])  # (50, 3)
    labels = np.repeat([0, 1], 25)
    blurred = {2.0: np.concatenate([flat, tilted(20)]), 1.0: np.concatenate([flat, tilted(10)])}
    sigmas, angles = clean_vs_blurred_angles(clean, blurred, labels, k=2)
    assert sigmas == [1.0, 2.0]
    np.testing.assert_allclose(angles, [[0, 0], [10, 20]], atol=1e-5)
    _, mean = clean_vs_blurred_angles(clean, blurred, labels, k=2, reduce="mean")
    np.testing.assert_allclose(mean, [[0, 0], [5, 10]], atol=1e-5)  # the shared x-axis: one angle 0


# ---------------------------------------------------------------------------------------------
# Robustness bookkeeping
# ---------------------------------------------------------------------------------------------

NAMES = ["cat", "dog", "ship", "frog"]
ACCURACY = {  # σ → per-class top-1, hand-made
    0: [0.90, 0.80, 0.95, 0.60],
    1: [0.85, 0.70, 0.94, 0.60],
    3: [0.60, 0.50, 0.93, 0.55],
    5: [0.30, 0.50, 0.90, 0.55],
}


def test_accuracy_drops_go_from_clean_to_the_largest_sigma():
    np.testing.assert_allclose(accuracy_drops(ACCURACY), [0.60, 0.30, 0.05, 0.05])
    table = np.array([ACCURACY[s] for s in (0, 1, 3, 5)])
    np.testing.assert_allclose(accuracy_drops(table, sigmas=[0, 1, 3, 5]), [0.60, 0.30, 0.05, 0.05])


def test_most_and_least_fragile_classes():
    out = fragile_classes(ACCURACY, NAMES, n=2)
    assert [name for name, _ in out["most"]] == ["cat", "dog"]
    assert [name for name, _ in out["least"]] == ["ship", "frog"]  # equal drops keep the class order
    assert out["most"][0][1] == pytest.approx(0.60)


def test_bookkeeping_refuses_tables_without_a_clean_row():
    with pytest.raises(ValueError, match="clean"):
        accuracy_drops({1: [0.5], 2: [0.4]})
    with pytest.raises(ValueError, match="sigmas"):
        accuracy_drops(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class names"):
        fragile_classes(ACCURACY, ["cat"])


def test_per_class_accuracy():
    labels = np.array([0, 0, 1, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0, 2])
    np.testing.assert_allclose(per_class_accuracy(predictions, labels, 4), [0.5, 2 / 3, 1.0, np.nan])


def test_mean_cosine_per_class():
    clean = np.array([[1.0, 0], [0, 2.0], [3.0, 0], [1.0, 1.0]])
    blurred = np.array([[1.0, 0], [0, -1.0], [1.0, 1.0], [2.0, 2.0]])  # cosines 1, −1, 1/√2, 1
    labels = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(mean_cosine_per_class(clean, blurred, labels, 2), [0.0, (1 / np.sqrt(2) + 1) / 2])
    with pytest.raises(ValueError, match="class 2"):
        mean_cosine_per_class(clean, blurred, labels, 3)


# ---------------------------------------------------------------------------------------------
# The same numbers on the GPU
# ---------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_blur_and_angles_on_the_gpu_match_the_cpu():
    import cupy

    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, size=(2, 3, 12, 12), dtype=np.uint8)
    on_gpu = gaussian_blur(cupy.asarray(images), 2.0)
    assert isinstance(on_gpu, cupy.ndarray) and on_gpu.dtype == cupy.uint8
    assert np.abs(on_gpu.get().astype(int) - gaussian_blur(images, 2.0).astype(int)).max() <= 1
    x = rng.standard_normal((2, 3, 10, 9))
    np.testing.assert_allclose(blur_float(cupy.asarray(x), 3.0).get(), blur_float(x, 3.0), atol=1e-12)
    embeddings = rng.standard_normal((40, 6))
    labels = np.repeat([0, 1], 20)
    cpu = angle_matrix(class_bases(embeddings, labels, k=3))
    gpu = angle_matrix(class_bases(cupy.asarray(embeddings), cupy.asarray(labels), k=3))
    np.testing.assert_allclose(gpu, cpu, atol=1e-6)
    device_bases = [cupy.asarray(principal_directions(rng.standard_normal((12, 7)), k=k)) for k in (1, 3, 2)]
    mean, largest = angle_matrices(device_bases)  # host matrices from the bases copied once
    assert isinstance(mean, np.ndarray) and isinstance(largest, np.ndarray)
    np.testing.assert_allclose(mean, _per_reduce_angle_matrix(device_bases, "mean"), atol=1e-6)  # SVDs on the GPU
    np.testing.assert_allclose(largest, _per_reduce_angle_matrix(device_bases, "max"), atol=1e-6)
    clean, blurred = rng.standard_normal((2, 40, 6))
    np.testing.assert_allclose(
        mean_cosine_per_class(cupy.asarray(clean), cupy.asarray(blurred), cupy.asarray(labels), 2),
        mean_cosine_per_class(clean, blurred, labels, 2),
    )
