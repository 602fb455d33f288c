"""The gradient checker itself: central differences, relative error, and proof that it catches
broken backward passes (both through ``gradcheck`` and through ``miniclip gradcheck``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from miniclip import cli
from miniclip.checks import CASES, run_checks
from miniclip.gradcheck import gradcheck, numerical_gradient, relative_error
from miniclip.layers import ContrastiveLoss, Linear, ReLU, Similarity

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


@pytest.mark.parametrize("bug", list(BROKEN))
def test_cli_gradcheck_fails_on_a_broken_backward(monkeypatch, capsys, bug):
    cls, backward, case = BROKEN[bug]
    monkeypatch.setattr(cls, "backward", backward)
    assert cli.main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert case in out.split("FAILED:")[1]


def test_cli_gradcheck_passes_and_lists_every_case(capsys):
    assert cli.main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    for name in CASES:
        assert name in out
    assert f"{len(CASES)}/{len(CASES)} checks passed" in out
    assert "FAIL" not in out


def test_cli_gradcheck_only(capsys):
    assert cli.main(["gradcheck", "--only", "relu"]) == 0
    out = capsys.readouterr().out
    assert "ReLU" in out and "Linear" not in out
    assert "1/1 checks passed" in out


def test_cli_gradcheck_only_with_no_match(capsys):
    assert cli.main(["gradcheck", "--only", "nosuchlayer"]) == 2
    assert "no check matches" in capsys.readouterr().err


def test_readme_states_the_number_of_checks():
    """The README gradcheck excerpt gives the count ``miniclip gradcheck`` prints (regenerate it when cases change)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    n = len(CASES)
    assert f"({n} checks," in readme
    assert f"{n}/{n} checks passed" in readme
