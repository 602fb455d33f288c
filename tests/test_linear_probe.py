"""The linear probe: its gradient, its fit against sklearn's, λ on a held-out split, few-shot subsets, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.evaluation.linear_probe import (
    L2_GRID,
    SoftmaxRegressionLoss,
    choose_l2,
    few_shot_indices,
    fit_linear_probe,
    holdout_split,
    softmax_regression,
)
from miniclip.teaching.gradcheck import gradcheck
from miniclip.teaching.gradient_cases import case_rng
from miniclip.teaching.gradient_cases.linear_probe import CASES


def _blobs(
    rng: np.random.Generator, k: int = 4, per: int = 40, d: int = 8, spread: float = 1.0, separation: float = 6.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per`` Gaussian points around each of ``k`` random centres (shifted off the origin); and the centres."""
    centres = rng.standard_normal((k, d)) * separation + 3.0
    labels = np.repeat(np.arange(k), per)
    return centres[labels] + spread * rng.standard_normal((k * per, d)), labels, centres


def _overlapping(rng: np.random.Generator, n: int = 240, d: int = 10, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Blobs that overlap (so no probe is perfect and λ matters), in unequal numbers and scales per feature."""
    centres = rng.standard_normal((k, d))
    labels = rng.integers(0, k, n)
    x = (centres[labels] + 1.5 * rng.standard_normal((n, d))) * np.linspace(0.5, 4.0, d) + 2.0
    return x, labels


# ----------------------------------------------------------------------------- the gradient


@pytest.mark.parametrize("name", list(CASES))
def test_gradient_against_central_differences(name: str) -> None:
    module, inputs, kwargs = CASES[name](case_rng(name))
    result = gradcheck(module, *inputs, kwargs=kwargs, label=name)
    assert {t.name for t in result.tensors} == {"d(weight)", "d(bias)"}
    assert result.ok, result.report()
    assert not any(t.zero for t in result.tensors), result.report()


def test_the_loss_by_its_definition() -> None:
    """J = mean −log P[n, y_n] + λ/2 ‖W‖², written out row by row; Σ_k db_k = 0."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    y = np.array([0, 3, 1, 1, 2])
    loss, d_w, d_b = softmax_regression(x, y, w, b, 0.7)
    expected = 0.0
    for n in range(5):
        z = x[n] @ w + b
        expected += (math.log(np.exp(z).sum()) - z[y[n]]) / 5
    expected += 0.35 * (w**2).sum()
    assert math.isclose(float(loss), expected, rel_tol=1e-12)
    assert d_w.shape == (3, 4) and d_b.shape == (4,)
    assert abs(d_b.sum()) < 1e-15


def test_the_module_refuses_backward_before_forward() -> None:
    loss = SoftmaxRegressionLoss(np.zeros((3, 2)), np.zeros(2), l2=0.1)
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward(1.0)


# ----------------------------------------------------------------------------- the fit


def test_separable_blobs_are_classified_perfectly() -> None:
    rng = np.random.default_rng(1)
    x, y, centres = _blobs(rng)
    probe = fit_linear_probe(x, y, 4)
    assert probe.converged, (probe.steps, probe.grad_norm)
    assert probe.accuracy(x, y) == 1.0
    fresh = centres[y] + rng.standard_normal(x.shape)  # new draws from the same blobs
    assert probe.accuracy(fresh, y) == 1.0
    p = probe.probabilities(x)  # (N, K)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(probe.predict(x), p.argmax(axis=1))
    assert abs(probe.bias.sum()) < 1e-12  # the bias keeps mean zero from its start at 0


def test_agrees_with_scikit_learns_logistic_regression() -> None:
    """Both minimise (1/N) Σ −log p + (λ/2)‖W‖² (sklearn: C Σ −log p + ½‖W‖², so C = 1/(λN)) on the same features."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y = _overlapping(np.random.default_rng(2))
    lam, n = 1e-2, x.shape[0]
    probe = fit_linear_probe(x, y, 5, l2=lam, tol=1e-10)
    assert probe.converged and probe.grad_norm <= 1e-10
    standardised = (x - x.mean(axis=0)) / x.std(axis=0)
    np.testing.assert_allclose(probe.standardise(x), standardised, rtol=1e-12, atol=1e-12)
    theirs = linear_model.LogisticRegression(C=1.0 / (lam * n), tol=1e-12, max_iter=10_000).fit(standardised, y)
    w, b = theirs.coef_.T, theirs.intercept_ - theirs.intercept_.mean()  # (D, K), (K,) the bias centred like ours
    their_loss, _, _ = softmax_regression(standardised, y, w, b, lam)
    assert probe.loss <= float(their_loss) + 1e-12  # ours is at least as low ...
    assert math.isclose(probe.loss, float(their_loss), rel_tol=1e-10)  # ... and the same minimum
    scale = np.abs(w).max()
    np.testing.assert_allclose(probe.weight, w, atol=1e-5 * scale)
    np.testing.assert_allclose(probe.bias, b, atol=1e-5 * scale)
    np.testing.assert_allclose(probe.probabilities(x), theirs.predict_proba(standardised), atol=1e-6)
    np.testing.assert_array_equal(probe.predict(x), theirs.predict(standardised))


def test_the_fit_is_deterministic_and_ignores_each_features_scale() -> None:
    x, y = _overlapping(np.random.default_rng(3))
    a, b = fit_linear_probe(x, y, 5), fit_linear_probe(x, y, 5)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.bias, b.bias)
    rescaled = fit_linear_probe(x * np.linspace(0.1, 10.0, x.shape[1]) - 4.0, y, 5)  # standardisation undoes it
    np.testing.assert_allclose(rescaled.weight, a.weight, atol=1e-6)
    np.testing.assert_array_equal(rescaled.predict(x * np.linspace(0.1, 10.0, x.shape[1]) - 4.0), a.predict(x))


def test_a_constant_feature_and_float32_features() -> None:
    x, y = _overlapping(np.random.default_rng(4))
    x[:, 0] = 5.0  # std 0: standardised to 0, not NaN
    probe = fit_linear_probe(x, y, 5)
    assert np.isfinite(probe.weight).all() and probe.std[0] == 1.0
    assert np.all(probe.weight[0] == 0)  # a feature that is 0 everywhere gets no weight
    probe32 = fit_linear_probe(x.astype(np.float32), y, 5)
    assert probe32.weight.dtype == np.float32 and probe32.converged
    assert math.isclose(probe32.loss, probe.loss, rel_tol=1e-5)
    assert (probe32.predict(x.astype(np.float32)) == probe.predict(x)).mean() >= 0.99


def test_the_step_cap_stops_the_fit() -> None:
    x, y = _overlapping(np.random.default_rng(5))
    probe = fit_linear_probe(x, y, 5, l2=1e-4, steps=7, tol=1e-12)
    assert probe.steps == 7 and not probe.converged


# ----------------------------------------------------------------------------- λ and few-shot subsets


def test_holdout_split_is_stratified_and_seeded() -> None:
    y = np.repeat(np.arange(3), [10, 5, 1])
    train, held = holdout_split(y, 0.2, seed=0)
    assert np.bincount(y[held], minlength=3).tolist() == [2, 1, 0]  # ⌊0.2 · n_c⌋; the single image stays
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(16))
    again, _ = holdout_split(y, 0.2, seed=0)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(holdout_split(y, 0.2, seed=1)[1], held)
    with pytest.raises(ValueError, match="held-out"):
        holdout_split(np.array([0, 1, 2]), 0.2, seed=0)


def test_choose_l2_sweeps_the_grid_and_refits_on_everything() -> None:
    x, y = _overlapping(np.random.default_rng(6))
    grid = (1e-4, 1e-2, 1.0, 100.0)
    probe, scores = choose_l2(x, y, 5, grid=grid, seed=0)
    assert sorted(scores) == list(grid)
    best = max(scores.values())
    assert probe.l2 == max(lam for lam, s in scores.items() if s == best)  # the largest of the best
    assert scores[100.0] < best  # λ = 100 flattens the probe: worse than the best
    refit = fit_linear_probe(x, y, 5, l2=probe.l2)
    np.testing.assert_array_equal(probe.weight, refit.weight)
    assert len(L2_GRID) == 7 and L2_GRID[0] == 1e-6 and L2_GRID[-1] == 1.0


def test_few_shot_indices_gives_exactly_k_per_class_seeded() -> None:
    y = np.random.default_rng(7).integers(0, 4, 100)
    idx = few_shot_indices(y, 3, seed=0)
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)  # sorted, no repeats
    assert np.bincount(y[idx], minlength=4).tolist() == [3, 3, 3, 3]
    np.testing.assert_array_equal(few_shot_indices(y, 3, seed=0), idx)
    assert not np.array_equal(few_shot_indices(y, 3, seed=1), idx)
    assert few_shot_indices(y, 1, seed=0, num_classes=4).size == 4


def test_few_shot_indices_names_a_class_that_is_short() -> None:
    y = np.array([0, 0, 0, 1, 2, 2, 2])
    with pytest.raises(ValueError, match=r"class 1 has 1 images, fewer than the 2"):
        few_shot_indices(y, 2, seed=0)
    with pytest.raises(ValueError, match=r"class 3 has 0 images"):
        few_shot_indices(y, 1, seed=0, num_classes=4)
    with pytest.raises(ValueError, match="per_class"):
        few_shot_indices(y, 0, seed=0)
    with pytest.raises(ValueError, match="integer"):
        few_shot_indices(y.astype(float), 1, seed=0)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_clearly() -> None:
    x, y = _overlapping(np.random.default_rng(8), n=30)
    with pytest.raises(ValueError, match="30 integers"):
        fit_linear_probe(x, y[:-1], 5)  # one label short
    with pytest.raises(ValueError, match=r"must lie in \[0, 5\)"):
        fit_linear_probe(x, np.where(y == 0, 5, y), 5)
    with pytest.raises(ValueError, match=r"must lie in \[0, 5\)"):
        fit_linear_probe(x, np.where(y == 0, -1, y), 5)
    with pytest.raises(ValueError, match="integers"):
        fit_linear_probe(x, y.astype(float), 5)
    nan = x.copy()
    nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_linear_probe(nan, y, 5)
    with pytest.raises(ValueError, match="2-D"):
        fit_linear_probe(x[:, 0], y, 5)
    with pytest.raises(ValueError, match="floating point"):
        fit_linear_probe(x.astype(np.int64), y, 5)
    with pytest.raises(ValueError, match="num_classes"):
        fit_linear_probe(x, np.zeros(30, dtype=np.int64), 1)
    for l2 in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="l2"):
            fit_linear_probe(x, y, 5, l2=l2)
    with pytest.raises(ValueError, match="steps"):
        fit_linear_probe(x, y, 5, steps=0)
    probe = fit_linear_probe(x, y, 5)
    with pytest.raises(ValueError, match="fitted on 10 features"):
        probe.predict(x[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        probe.accuracy(nan, y)
    with pytest.raises(ValueError, match="30 integers"):
        probe.accuracy(x, y[:3])
    with pytest.raises(ValueError, match="same D and K"):
        softmax_regression(x, y, np.zeros((4, 5)), np.zeros(5), 0.1)
    with pytest.raises(ValueError, match="grid"):
        choose_l2(x, y, 5, grid=())


# ----------------------------------------------------------------------------- the GPU backend


@pytest.mark.gpu
def test_the_probe_gives_the_same_numbers_on_the_gpu() -> None:
    """The same fit on CuPy: weights, loss, predictions, accuracy and the choice of λ as on the CPU.

    Both fits stop at ‖∇J‖ ≤ 1e-10, so each is within ‖∇J‖/λ = 1e-8 of the one minimum (J is λ-strongly
    convex in W); rounding may flip a restart and change the path, so the number of steps may differ.
    """
    x, y = _overlapping(np.random.default_rng(9))
    cpu = fit_linear_probe(x, y, 5, l2=1e-2, tol=1e-10)
    cpu_choice, cpu_scores = choose_l2(x, y, 5, grid=(1e-3, 1e-1, 10.0))
    with backend.using("gpu"):
        xg, yg = backend.to_device(x), backend.to_device(y)
        gpu = fit_linear_probe(xg, yg, 5, l2=1e-2, tol=1e-10)
        host = {
            "weight": backend.to_host(gpu.weight),
            "bias": backend.to_host(gpu.bias),
            "mean": backend.to_host(gpu.mean),
            "probabilities": backend.to_host(gpu.probabilities(xg)),
            "predictions": backend.to_host(gpu.predict(xg)),
            "accuracy": gpu.accuracy(xg, yg),
        }
        gpu_choice, gpu_scores = choose_l2(xg, yg, 5, grid=(1e-3, 1e-1, 10.0))
    assert gpu.converged and cpu.converged
    np.testing.assert_allclose(host["weight"], cpu.weight, atol=1e-7)
    np.testing.assert_allclose(host["bias"], cpu.bias, atol=1e-7)
    np.testing.assert_allclose(host["mean"], cpu.mean, rtol=1e-12)
    np.testing.assert_allclose(host["probabilities"], cpu.probabilities(x), atol=1e-7)
    np.testing.assert_array_equal(host["predictions"], cpu.predict(x))
    assert host["accuracy"] == cpu.accuracy(x, y)
    assert math.isclose(gpu.loss, cpu.loss, rel_tol=1e-12)  # a minimum: J moves by O(‖∇J‖²/λ)
    assert gpu_choice.l2 == cpu_choice.l2 and gpu_scores == cpu_scores
