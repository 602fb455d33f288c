"""Finite-difference gradient checking: the proof that every hand-written backward is right.

For a module ``f`` with output ``y`` we draw a *random* upstream gradient ``g`` (same shape
as ``y``; an all-ones ``g`` would hide mistakes such as a transposed or summed gradient)
and check the scalar ``φ = Σ g ⊙ f(x)``. Its analytic gradient is what ``backward(g)``
returns (for inputs) and accumulates (for parameters). Its numerical gradient comes from
central differences, one entry at a time::

    ∂φ/∂x_k ≈ (φ(x + ε e_k) − φ(x − ε e_k)) / 2ε          error O(ε²)

Everything runs in float64; with ε = 1e-5 both the O(ε²) truncation error and the
rounding noise (about 1e-16 / ε) stay far below the 1e-6 tolerance.

The error reported for each tensor is ``max_k |analytic_k − numeric_k|`` divided by the
largest magnitude in either gradient: a relative error that does not explode on entries
that happen to be close to zero. A gradient that is zero everywhere is reported as such.

Lesson 02 derives the central difference by hand, then checks the loss's gradient with this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from miniclip.backend import to_device, to_float, to_host
from miniclip.module import Module

TOLERANCE = 1e-6
ZERO_SCALE = 1e-5  # gradients smaller than this everywhere count as zero (see relative_error)
UPSTREAM_STREAM = 0x75707374  # salt that keeps the upstream gradient's random stream apart


@dataclass
class TensorError:
    """The result for one input or parameter."""

    name: str
    error: float  # max |analytic − numeric| / max(|analytic|, |numeric|)
    zero: bool = False  # the gradient is zero everywhere (below ZERO_SCALE): the check proves little
    worst: list[tuple[tuple[int, ...], float, float]] = field(default_factory=list)  # (index, analytic, numeric)


@dataclass
class GradCheckResult:
    """All tensors checked for one module; ``ok`` when every error is below ``tol``."""

    label: str
    tensors: list[TensorError]
    tol: float = TOLERANCE

    @property
    def ok(self) -> bool:
        return all(t.error < self.tol for t in self.tensors)

    @property
    def max_error(self) -> float:
        return max((t.error for t in self.tensors), default=0.0)

    def report(self, width: int = 28) -> str:
        """A readable account, listing the worst entries of any tensor that failed."""
        lines = []
        for t in self.tensors:
            status = ("ok" if t.error < self.tol else "FAIL") + (" (zero gradient)" if t.zero else "")
            lines.append(f"{self.label:<{width}} {t.name:<30} {t.error:10.2e}  {status}")
            if t.error >= self.tol:
                for index, a, n in t.worst:
                    lines.append(f"{'':<{width}}   at {index}: analytic {a:+.8e}  numeric {n:+.8e}")
        return "\n".join(lines)


def gradient_scale(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """The largest magnitude in either gradient."""
    return max(float(np.abs(analytic).max(initial=0.0)), float(np.abs(numeric).max(initial=0.0)))


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``max |a − n| / max(max |a|, max |n|, ZERO_SCALE)``.

    The floor ``ZERO_SCALE`` matters only for a gradient that is zero in truth (every unit
    behind a dead ReLU, say): finite differences then return rounding noise of about 1e-12,
    which would otherwise count as a 100% error.
    """
    return float(np.abs(analytic - numeric).max(initial=0.0)) / max(gradient_scale(analytic, numeric), ZERO_SCALE)


def numerical_gradient(phi: Callable[[], float], x: Any, eps: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar ``phi()`` with respect to every entry of ``x`` (perturbed in place)."""
    grad = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(*x.shape):
        original = float(x[index])
        x[index] = original + eps
        plus = phi()
        x[index] = original - eps
        minus = phi()
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def _worst(analytic: np.ndarray, numeric: np.ndarray, k: int = 3) -> list[tuple[tuple[int, ...], float, float]]:
    diff = np.abs(analytic - numeric).reshape(-1)
    top = np.argsort(diff)[::-1][:k]
    return [
        (tuple(int(i) for i in np.unravel_index(j, analytic.shape)), float(analytic.flat[j]), float(numeric.flat[j]))
        for j in top
    ]


def _is_float(x: Any) -> bool:
    return hasattr(x, "dtype") and np.issubdtype(x.dtype, np.floating)


def gradcheck(
    module: Module,
    *inputs: Any,
    kwargs: dict[str, Any] | None = None,
    label: str | None = None,
    seed: int = 0,
    eps: float = 1e-5,
    tol: float = TOLERANCE,
) -> GradCheckResult:
    """Check ``module.backward`` against central differences, for every float input and parameter.

    ``inputs`` are passed to ``module.forward`` positionally; those with a floating dtype are
    checked against what ``backward`` returns for them, in order. ``kwargs`` (masks, token
    ids, targets) are passed along but not differentiated. Inputs and parameters must be
    float64: in float32 the differences drown in rounding.
    """
    kwargs = kwargs or {}
    label = label or type(module).__name__
    params = module.parameters()
    for name, value in [(f"input {i}", x) for i, x in enumerate(inputs) if _is_float(x)] + [
        (n, p.data) for n, p in params.items()
    ]:
        if value.dtype != np.float64:
            raise ValueError(f"gradcheck needs float64 tensors, but {name} of {label} is {value.dtype}")

    out = module(*inputs, **kwargs)
    # A random upstream gradient, from a stream of its own: were it drawn like the inputs, g could
    # equal x, and e.g. L2 normalisation's gradient at g ∥ x is exactly zero — a check of nothing.
    g = to_device(np.random.default_rng([seed, UPSTREAM_STREAM]).standard_normal(np.shape(out)))

    def phi() -> float:
        return to_float((module(*inputs, **kwargs) * g).sum())

    module.zero_grad()
    module(*inputs, **kwargs)  # fresh caches
    returned = module.backward(g)
    if returned is None:
        returned = ()
    elif not isinstance(returned, tuple):
        returned = (returned,)

    float_inputs = [(i, x) for i, x in enumerate(inputs) if _is_float(x)]
    if len(returned) != len(float_inputs):
        raise ValueError(f"{label}.backward returned {len(returned)} gradients for {len(float_inputs)} float inputs")

    analytic: list[tuple[str, Any, np.ndarray]] = [
        (f"d(input {i})", x, to_host(dx).astype(np.float64)) for (i, x), dx in zip(float_inputs, returned, strict=True)
    ]
    analytic += [(f"d({name})", p.data, to_host(p.grad).copy()) for name, p in params.items()]

    tensors = []
    for name, x, a in analytic:
        host_x = to_host(x)
        if host_x is x:  # NumPy: perturb in place
            n = numerical_gradient(phi, x, eps)
        else:  # CuPy: perturb a host copy and copy it back before each evaluation
            n = numerical_gradient(_device_phi(phi, x, host_x), host_x, eps)
            x[...] = to_device(host_x)  # leave the device copy unperturbed
        zero = gradient_scale(a, n) < ZERO_SCALE
        tensors.append(TensorError(name, relative_error(a, n), zero=zero, worst=_worst(a, n)))
    return GradCheckResult(label, tensors, tol)


def _device_phi(phi: Callable[[], float], device_x: Any, host_x: np.ndarray) -> Callable[[], float]:
    def wrapped() -> float:
        device_x[...] = to_device(host_x)
        return phi()

    return wrapped
