"""The gradient checks, each run once, and the checker itself: central differences, relative error, and
proof that it catches broken backward passes.

:func:`test_check_passes` is the one place in the suite that runs the checks of :mod:`miniclip.teaching.gradient_cases`
(every layer, encoder and CLIP pairing; the same cases, seeds and table lines as ``miniclip gradcheck``),
on the CPU and, where there is one, on the GPU. The command itself is tested in ``test_cli.py`` on one
cheap check (``--only relu``); the topic test files test shapes and behaviour, not gradients.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from miniclip import backend
from miniclip.layers import ContrastiveLoss, Linear, ReLU, Similarity
from miniclip.teaching import gradient_cases as checks
from miniclip.teaching.gradcheck import GradCheckResult, gradcheck, numerical_gradient, relative_error
from miniclip.teaching.gradient_cases import CASES, run_checks

# --- every check, once per device ----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("name", list(CASES))
def test_check_passes(name: str, device: str) -> None:
    with backend.using(device):
        (result,) = run_checks([name])
    assert result.label == name
    assert result.tensors, "a check must compare at least one gradient"
    assert result.ok, result.report()
    zero = [t.name for t in result.tensors if t.zero]
    assert not zero, f"{name}: {zero} zero everywhere, so the check proves nothing there"


def test_run_checks_runs_every_case_in_order_by_default(monkeypatch) -> None:
    """Without names, ``run_checks`` (so ``miniclip gradcheck``) runs every case; the differencing is faked here."""
    seen: list[tuple[str, int]] = []

    def fake(module, *inputs, kwargs=None, label=None, seed=0):
        seen.append((label, seed))
        return GradCheckResult(label, [])

    monkeypatch.setattr(checks, "gradcheck", fake)
    assert [r.label for r in run_checks(seed=3)] == list(CASES)
    assert seen == [(name, 3) for name in CASES]


# --- the pieces ----------------------------------------------------------------------------------------------------


def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.2, 2.0], [0.0, 3.0, -0.3]])
    original = x.copy()
    grad = numerical_gradient(lambda: float((np.sin(x) + x**3).sum()), x)
    np.testing.assert_allclose(grad, np.cos(original) + 3 * original**2, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, original)  # every entry is put back exactly


def test_relative_error_edge_cases():
    zero = np.zeros((2, 3))
    assert relative_error(zero, zero) == 0.0  # both zero: no error, not 0/0
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0  # nothing to compare
    a = np.array([1.0, -2.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, np.array([1.0, -2.5])) == pytest.approx(0.5 / 2.5)
    assert relative_error(zero, np.ones((2, 3))) == 1.0  # a missing gradient is a 100% error
    assert relative_error(a, -a) == 2.0  # a sign flip


def test_gradcheck_leaves_parameters_and_inputs_unchanged():
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 4))
    weight, inputs = layer.weight.data.copy(), x.copy()
    result = gradcheck(layer, x)
    assert result.ok
    assert [t.name for t in result.tensors] == ["d(input 0)", "d(weight)", "d(bias)"]
    np.testing.assert_array_equal(layer.weight.data, weight)
    np.testing.assert_array_equal(x, inputs)


def test_gradcheck_refuses_float32_modules():
    rng = np.random.default_rng(1)
    layer = Linear(3, 2, rng=rng, dtype=np.float32)
    with pytest.raises(ValueError, match="gradcheck needs float64 tensors, but weight of Linear is float32"):
        gradcheck(layer, rng.standard_normal((2, 3)))


def test_gradcheck_refuses_float32_inputs():
    x = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="input 0 of ReLU is float32"):
        gradcheck(ReLU(), x)


def test_gradcheck_rejects_the_wrong_number_of_returned_gradients(monkeypatch):
    monkeypatch.setattr(Similarity, "backward", lambda self, ds: ds @ self._i)  # forgets dI
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="returned 1 gradients for 2 float inputs"):
        gradcheck(Similarity(), rng.standard_normal((3, 2)), rng.standard_normal((3, 2)))


# --- broken backward passes must be caught ---------------------------------------------------------------------------


def _relu_unmasked(self, dy):
    return dy  # forgets the mask x > 0


def _linear_forgets_bias(self, dy):
    d_in, d_out = self.weight.data.shape
    self.weight.grad += self._x.reshape(-1, d_in).T @ dy.reshape(-1, d_out)
    return dy @ self.weight.data.T  # bias gradient never written


def _similarity_transposed(self, ds):
    return ds.T @ self._i, ds.T @ self._t  # dT should use dS, not dSᵀ


def _contrastive_without_half(self, dloss=1.0):
    n = self.targets.shape[0]
    return ((self.p_rows - self.targets) + (self.p_cols - self.targets)) * dloss / n  # forgets the /2


BROKEN = {
    "ReLU unmasked": (ReLU, _relu_unmasked, "ReLU"),
    "Linear forgets bias": (Linear, _linear_forgets_bias, "Linear"),
    "Similarity transposed": (Similarity, _similarity_transposed, "Similarity"),
    "ContrastiveLoss without /2": (ContrastiveLoss, _contrastive_without_half, "ContrastiveLoss (base e)"),
}


@pytest.mark.parametrize("bug", list(BROKEN))
def test_gradcheck_catches_a_broken_backward(monkeypatch, bug):
    cls, backward, case = BROKEN[bug]
    monkeypatch.setattr(cls, "backward", backward)
    (result,) = run_checks([case])
    assert not result.ok
    assert result.max_error > 1e-2  # not a near miss: the bug is plainly visible
    report = result.report()
    assert "FAIL" in report
    assert "analytic" in report and "numeric" in report  # the worst entries are listed
    failed = [t for t in result.tensors if t.error >= result.tol]
    assert failed and all(t.worst for t in failed)
    assert report.count("   at (") == sum(len(t.worst) for t in failed)


def test_readme_states_the_number_of_checks():
    """The README gradcheck excerpt gives the count ``miniclip gradcheck`` prints (regenerate it when cases change)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    n = len(CASES)
    assert f"({n} checks," in readme
    assert f"{n}/{n} checks passed" in readme
