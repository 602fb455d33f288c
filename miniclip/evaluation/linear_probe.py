"""The linear probe: softmax regression fitted on frozen image features, CLIP's yardstick for zero-shot.

Radford et al. (2021, §3.2) compare zero-shot CLIP with a *linear probe*: a logistic-regression
classifier trained on the frozen image embeddings of the training images, the regularisation
strength swept on a validation split. Zero-shot names each class in words; the probe instead
learns one weight vector per class from labelled images, so it is what zero-shot is measured against.

**The objective.** Features are standardised with the training features' mean μ and standard
deviation σ (stored with the probe), x ← (x − μ)/σ; then, with one weight column per class::

    Z = X W + b                                   X (N, D)   W (D, K)   b (K,)   Z (N, K)
    P = softmax(Z) row by row                     (N, K)
    J(W, b) = −(1/N) Σ_n log P[n, y_n] + (λ/2) ‖W‖²_F          (the bias is not penalised)

**Its gradient**, with Y the one-hot labels (N, K)::

    dZ = (P − Y) / N                              (N, K)
    dW = Xᵀ dZ + λ W                              (D, K)
    db = Σ_n dZ[n]                                (K,)

Each row of P − Y sums to 0, so Σ_k db_k = 0: started from b = 0, the bias keeps mean zero
(the softmax cannot tell b from b + c·1, and this picks the one representative with Σ b = 0).

**The step size.** J is smooth: its Hessian is bounded by a constant L, and gradient descent with
step 1/L never overshoots. Write x̃_n = (x_n, 1) for a row with the bias's constant input appended
and X̃ (N, D+1) for all of them. The cross-entropy's Hessian with respect to (W, b) is
(1/N) Σ_n (diag(p_n) − p_n p_nᵀ) ⊗ x̃_n x̃_nᵀ, and diag(p) − p pᵀ ⪯ ½ I for every probability
vector p (Böhning, 1992: its largest eigenvalue is at most ½, e.g. p = (½, ½, 0, …)). Hence::

    ∇²J ⪯ (1/2N) (I_K ⊗ X̃ᵀX̃) + λ I      so     L = ‖X̃‖₂² / (2N) + λ

with ‖X̃‖₂² the largest eigenvalue of X̃ᵀX̃ (D+1, D+1). The penalty also makes J λ-strongly
convex in W, so the condition number is at most κ = L/λ.

**The optimiser**: Nesterov's accelerated gradient with the constant momentum of a strongly
convex problem, and O'Donoghue & Candès' (2015) gradient restart::

    x_{t+1} = v_t − ∇J(v_t) / L                   a gradient step from the look-ahead point v
    β = (√L − √λ) / (√L + √λ)
    m_t = 0 if ∇J(v_t) · (x_{t+1} − x_t) > 0 else β      (the step went uphill: drop the momentum once)
    v_{t+1} = x_{t+1} + m_t (x_{t+1} − x_t)

β is tuned for the worst case, curvature λ; along most directions the data add curvature of their
own, so β is more momentum than they need and the iterate would overshoot and oscillate there: the
restart damps that without having to know the true curvature. The fit stops once
‖∇J(v_t)‖ ≤ tol/2, which guarantees ‖∇J(x_{t+1})‖ ≤ ‖∇J(v_t)‖ + L‖x_{t+1} − v_t‖ = 2‖∇J(v_t)‖ ≤ tol
at the weights returned, or after ``steps`` steps. It starts from W = 0, b = 0 and draws nothing
at random: the same features give the same probe.

Everything runs through the features' array module (NumPy or CuPy). Inside the loop the only
device → host transfer is one scalar, the gradient norm, every ``check_every`` steps; the
restart test is a 0-d device array, never a Python ``if``.

:func:`choose_l2` sweeps λ over a log-spaced grid by accuracy on a seeded, class-stratified
held-out part of the training features and refits on all of them; :func:`few_shot_indices`
picks k training images per class for the few-shot probes of the paper's Figure 6.

No lesson derives it yet; ``miniclip eval --linear-probe`` runs it beside zero-shot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from miniclip.backend import get_array_module, to_float, to_host
from miniclip.evaluation.inputs import check_labels, check_points
from miniclip.layers.softmax import softmax, softmax_and_log
from miniclip.module import Module, Parameter

L2_GRID = tuple(10.0**e for e in range(-6, 1))  # λ = 1e-6, 1e-5, …, 1: the default sweep of choose_l2
DEFAULT_TOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-4}  # gradient norms each dtype can reach


# ---------------------------------------------------------------------------------------------
# The objective and its gradient
# ---------------------------------------------------------------------------------------------


def softmax_regression(x: Any, labels: Any, weight: Any, bias: Any, l2: float) -> tuple[Any, Any, Any]:
    """The objective J and its gradients: ``(loss 0-d, dW (D, K), db (K,))`` for features ``x`` (N, D).

    ``labels`` (N,) integers on ``x``'s device; they are NOT range-checked here (that would cost a
    device sync every step; :func:`fit_linear_probe` checks them once, on the host, before the loop).
    The loss stays a 0-d array: no synchronisation.
    """
    xp = get_array_module(x)
    n, d = x.shape
    if weight.ndim != 2 or weight.shape[0] != d or tuple(bias.shape) != (weight.shape[1],):
        raise ValueError(
            f"need features (N, D), weight (D, K) and bias (K,) of the same D and K, got "
            f"{tuple(x.shape)}, {tuple(weight.shape)} and {tuple(bias.shape)}"
        )
    if tuple(labels.shape) != (n,):
        raise ValueError(f"labels must have shape ({n},), one per feature row, got {tuple(labels.shape)}")
    rows = xp.arange(n)
    z = x @ weight + bias  # (N, K) logits
    p, log_p = softmax_and_log(z, axis=1)  # (N, K) each
    loss = -log_p[rows, labels].sum() / n + 0.5 * l2 * (weight * weight).sum()
    dz = p.copy()  # (N, K)
    dz[rows, labels] -= 1.0  # P − Y
    dz /= n  # (P − Y) / N
    d_weight = x.T @ dz + l2 * weight  # (D, K)
    d_bias = dz.sum(axis=0)  # (K,)
    return loss, d_weight, d_bias


class SoftmaxRegressionLoss(Module):
    """:func:`softmax_regression` as a module, so :func:`miniclip.teaching.gradcheck.gradcheck` can check its gradients.

    The probe's fit calls the pure function: it needs the loss and both gradients from one
    softmax, and no parameter bookkeeping. This wrapper holds W and b as parameters, takes the
    features and labels as *keyword* inputs (the features are frozen: nothing is differentiated
    with respect to them, just as with a mask) and returns the loss; ``backward(dloss)`` adds
    ``dloss · dW`` and ``dloss · db`` and returns nothing.
    """

    def __init__(self, weight: Any, bias: Any, l2: float) -> None:
        if not float(l2) >= 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.weight = Parameter(weight)  # (D, K)
        self.bias = Parameter(bias)  # (K,)
        self.l2 = float(l2)
        self._grads: Any = None

    def forward(self, *, features: Any, labels: Any) -> Any:
        k = self.weight.data.shape[1]
        y = get_array_module(features).asarray(check_labels(labels, features.shape[0], k))  # (N,)
        loss, d_weight, d_bias = softmax_regression(features, y, self.weight.data, self.bias.data, self.l2)
        self._grads = (d_weight, d_bias)
        return loss

    def backward(self, dloss: Any = 1.0) -> None:
        self._require_forward(self._grads)
        d_weight, d_bias = self._grads
        self.weight.grad += dloss * d_weight  # (D, K)
        self.bias.grad += dloss * d_bias  # (K,)
        return None


# ---------------------------------------------------------------------------------------------
# The fitted probe
# ---------------------------------------------------------------------------------------------


@dataclass
class LinearProbe:
    """A fitted probe: the standardisation it learned, its weights, and how the fit ended.

    Arrays stay on the device the features came from; the numbers describing the fit are floats.
    """

    mean: Any  # (D,) of the training features
    std: Any  # (D,) of the training features (1 where a feature is constant)
    weight: Any  # (D, K)
    bias: Any  # (K,) sums to 0
    l2: float  # λ
    loss: float  # J at the weights returned
    grad_norm: float  # ‖∇J‖ there
    steps: int  # gradient steps taken
    converged: bool  # grad_norm reached the tolerance before the step cap

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[1])

    def standardise(self, features: Any) -> Any:
        """(features − mean) / std with the TRAINING statistics: (M, D) → (M, D)."""
        check_points(features, "features")
        if features.shape[1] != self.weight.shape[0]:
            raise ValueError(f"the probe was fitted on {self.weight.shape[0]} features, got {features.shape[1]}")
        return (features - self.mean) / self.std

    def logits(self, features: Any) -> Any:
        """Z = x W + b of the standardised features: (M, D) → (M, K)."""
        return self.standardise(features) @ self.weight + self.bias  # (M, K)

    def probabilities(self, features: Any) -> Any:
        """softmax(Z) row by row: (M, D) → (M, K), each row summing to 1."""
        return softmax(self.logits(features), axis=1)  # (M, K)

    def predict(self, features: Any) -> Any:
        """argmax_k of the logits (the lower class first on a tie): (M, D) → (M,) int64, on the device."""
        return get_array_module(features).argmax(self.logits(features), axis=1).astype(np.int64)  # (M,)

    def accuracy(self, features: Any, labels: Any) -> float:
        """The fraction of ``features`` (M, D) whose prediction equals ``labels`` (M,)."""
        y = check_labels(labels, features.shape[0], self.num_classes)  # (M,) host int64
        if y.size == 0:
            raise ValueError("accuracy needs at least one feature row")
        return float((to_host(self.predict(features)) == y).mean())  # one device → host copy


def _check_l2(l2: float) -> float:
    try:
        value = float(l2)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"l2 (λ) must be a positive number, got {l2!r}") from exc
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"l2 (λ) must be finite and > 0 (without it separable classes push the weights to infinity), got {l2!r}"
        )
    return value


def _check_fit_inputs(features: Any, labels: Any, num_classes: int) -> tuple[Any, np.ndarray]:
    """The features' array module and the labels as a host int64 array, after every check a fit needs."""
    xp = check_points(features, "features")
    if not np.issubdtype(features.dtype, np.floating):
        raise ValueError(f"features must be floating point, got dtype {features.dtype}")
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if features.shape[0] == 0:
        raise ValueError("a linear probe needs at least one training feature row")
    y = check_labels(labels, features.shape[0], int(num_classes))  # (N,) host int64, each in [0, K)
    return xp, y


def fit_linear_probe(
    features: Any,
    labels: Any,
    num_classes: int,
    l2: float = 1e-3,
    steps: int = 10_000,
    tol: float | None = None,
    check_every: int = 25,
) -> LinearProbe:
    """Fit softmax regression on ``features`` (N, D) with integer ``labels`` (N,) in [0, num_classes).

    Standardises the features (their mean and std are stored), then runs accelerated gradient
    descent with step 1/L (see the module docstring) from W = 0, b = 0 until ‖∇J‖ ≤ ``tol``
    (default: 1e-6 in float64, 1e-4 in float32) or for at most ``steps`` steps, checking the
    gradient norm every ``check_every`` steps. The probe lives on the features' device, in their dtype.
    """
    xp, y_host = _check_fit_inputs(features, labels, num_classes)
    l2 = _check_l2(l2)
    if int(steps) != steps or steps < 1 or int(check_every) != check_every or check_every < 1:
        raise ValueError(f"steps and check_every must be positive integers, got {steps!r} and {check_every!r}")
    if tol is None:
        tol = DEFAULT_TOL.get(np.dtype(features.dtype), 1e-6)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    n, d = features.shape
    dtype = features.dtype
    y = xp.asarray(y_host)  # (N,) on the features' device, checked

    mean = features.mean(axis=0)  # (D,)
    std = features.std(axis=0)  # (D,)
    std = xp.where(std > 0, std, xp.ones_like(std))  # a constant feature standardises to 0, not NaN
    x = (features - mean) / std  # (N, D)

    # L = ‖X̃‖₂²/(2N) + λ from the largest eigenvalue of X̃ᵀX̃, X̃ = [X, 1]: one host sync, before the loop
    x1 = xp.concatenate([x, xp.ones((n, 1), dtype=dtype)], axis=1)  # (N, D+1)
    top = to_float(xp.linalg.eigvalsh((x1.T @ x1).astype(xp.float64))[-1])
    lipschitz = top / (2.0 * n) + l2
    lr = 1.0 / lipschitz
    beta = (math.sqrt(lipschitz) - math.sqrt(l2)) / (math.sqrt(lipschitz) + math.sqrt(l2))

    w = xp.zeros((d, num_classes), dtype=dtype)  # (D, K) x_t
    b = xp.zeros(num_classes, dtype=dtype)  # (K,)
    v_w, v_b = w, b  # (D, K), (K,) the look-ahead point v_t
    taken, converged = 0, False
    for step in range(1, int(steps) + 1):
        _, g_w, g_b = softmax_regression(x, y, v_w, v_b, l2)  # ∇J(v_t)
        new_w = v_w - lr * g_w  # (D, K) x_{t+1}
        new_b = v_b - lr * g_b  # (K,)
        taken = step
        if step % check_every == 0 and math.sqrt(to_float((g_w * g_w).sum() + (g_b * g_b).sum())) <= tol / 2:
            w, b, converged = new_w, new_b, True  # ‖∇J(x_{t+1})‖ ≤ 2‖∇J(v_t)‖ ≤ tol
            break
        uphill = ((g_w * (new_w - w)).sum() + (g_b * (new_b - b)).sum()) > 0  # 0-d bool, stays on the device
        momentum = (~uphill).astype(dtype) * beta  # 0-d: β, or 0 to restart
        v_w = new_w + momentum * (new_w - w)
        v_b = new_b + momentum * (new_b - b)
        w, b = new_w, new_b

    loss, g_w, g_b = softmax_regression(x, y, w, b, l2)  # at the weights returned
    grad_norm = math.sqrt(to_float((g_w * g_w).sum() + (g_b * g_b).sum()))
    return LinearProbe(
        mean=mean,
        std=std,
        weight=w,
        bias=b,
        l2=l2,
        loss=to_float(loss),
        grad_norm=grad_norm,
        steps=taken,
        converged=converged or grad_norm <= tol,
    )


# ---------------------------------------------------------------------------------------------
# Choosing λ, and few-shot subsets
# ---------------------------------------------------------------------------------------------


def holdout_split(labels: Any, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, class-stratified split of ``labels`` (N,): host index arrays (train, held out), each sorted.

    Each class holds out ⌊fraction · n_c⌋ of its n_c images (so a class with one image stays
    whole in the training part), chosen by ``np.random.default_rng(seed)``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    y = np.asarray(to_host(labels))
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(y == c))[: int(fraction * np.count_nonzero(y == c))] for c in np.unique(y)]
    held_out = np.sort(np.concatenate(held)).astype(np.int64) if held else np.zeros(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(y.shape[0]), held_out).astype(np.int64)
    if held_out.size == 0 or train.size == 0:
        raise ValueError(
            f"holding out {fraction:.0%} of each class leaves {held_out.size} held-out and {train.size} training "
            "rows: give more features per class or a larger fraction"
        )
    return train, held_out


def choose_l2(
    features: Any,
    labels: Any,
    num_classes: int,
    grid: Sequence[float] = L2_GRID,
    holdout: float = 0.2,
    seed: int = 0,
    **fit_options: Any,
) -> tuple[LinearProbe, dict[float, float]]:
    """Pick λ from ``grid`` by held-out accuracy, then refit on ALL the features with it.

    The training features (N, D) are split by :func:`holdout_split` (``holdout`` of each class,
    seeded); a probe is fitted on the rest for each λ and scored on the held-out part. Among
    equally accurate λ the largest (the simplest probe) wins. ``fit_options`` (``steps``, ``tol``,
    ``check_every``) go to every :func:`fit_linear_probe`. Returns (the probe fitted on all the
    features with the chosen λ, {λ: held-out accuracy}).
    """
    xp, y_host = _check_fit_inputs(features, labels, num_classes)
    lambdas = sorted({_check_l2(value) for value in grid})
    if not lambdas:
        raise ValueError("the λ grid is empty")
    train, held_out = holdout_split(y_host, holdout, seed)
    train_d, held_d = xp.asarray(train), xp.asarray(held_out)  # index arrays on the features' device
    scores = {}
    for lam in lambdas:
        probe = fit_linear_probe(features[train_d], y_host[train], num_classes, l2=lam, **fit_options)
        scores[lam] = probe.accuracy(features[held_d], y_host[held_out])
    best = max(scores.values())
    chosen = max(lam for lam, score in scores.items() if score == best)
    return fit_linear_probe(features, y_host, num_classes, l2=chosen, **fit_options), scores


def few_shot_indices(labels: Any, per_class: int, seed: int, num_classes: int | None = None) -> np.ndarray:
    """Exactly ``per_class`` indices of each class 0 … K−1 of ``labels`` (N,), seeded; a sorted host int64 array.

    K is ``num_classes`` (default: the largest label + 1). A class with fewer than ``per_class``
    images is a ValueError naming it. The same ``seed`` gives the same subset; for each class the
    generator draws ``per_class`` of its indices without replacement, classes in order.
    """
    if int(per_class) != per_class or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    y = np.asarray(to_host(labels))
    if y.ndim != 1 or y.size == 0 or y.dtype.kind not in "iu":
        raise ValueError(f"labels must be a non-empty 1-D integer array, got dtype {y.dtype} shape {y.shape}")
    k = int(y.max()) + 1 if num_classes is None else int(num_classes)
    y = check_labels(y, y.shape[0], k)  # each in [0, K)
    counts = np.bincount(y, minlength=k)  # (K,)
    short = [c for c in range(k) if counts[c] < per_class]
    if short:
        c = short[0]
        raise ValueError(
            f"class {c} has {counts[c]} images, fewer than the {per_class} per class asked for"
            + (f" (so have classes {short[1:]})" if len(short) > 1 else "")
        )
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(y == c), size=int(per_class), replace=False) for c in range(k)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
