# %% [markdown]
# # Solutions to the exercises of lesson 06b
#
# Each exercise of `lessons/06b_batch_norm_and_adamw.py`, solved and checked by asserts.

# %%
import math

import numpy as np

from miniclip import Module, Parameter, set_device
from miniclip.optim import AdamW, warmup_cosine
from miniclip.teaching.gradcheck import gradcheck

set_device("cpu")
np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## 1. A BatchNorm without the mean
#
# Per channel, over the M = N·H·W values of its column: $y_m = x_m / r$ with
# $r = \sqrt{\frac{1}{M} \sum_{k} x_k^2 + \epsilon}$. Moving $x_j$ moves its own $y_j$ and, through
# $\partial r / \partial x_j = x_j / (M r) = y_j / M$, every $y_m$:
#
# $$
# \frac{\partial y_m}{\partial x_j} = \frac{\delta_{mj}}{r} - \frac{x_m}{r^2} \cdot \frac{y_j}{M} = \frac{1}{r} \left(
# \delta_{mj} - \frac{y_m y_j}{M} \right)
# $$
#
# so, summing $g_m \, \partial y_m / \partial x_j$ over m,
#
# $$
# dx_j = \frac{1}{r} \left( g_j - y_j \cdot \frac{1}{M} \sum_{m} g_m y_m \right)
# $$
#
# LayerNorm's formula without its "− mean(ĝ)" term (there is no mean to forget). Its
# component along y: $\sum_{j} dx_j y_j = \frac{1}{r} \sum_{m} g_m y_m \left( 1 - \frac{1}{M} \sum_{j} y_j^2 \right)$,
# zero up to ε (the mean square of y is $1 - \epsilon / r^2$).


# %%
class RMSBatchNorm(Module):
    """x / √(mean over the batch of x² + ε), per channel of a channels-last (N, H, W, C) batch."""

    def __init__(self, eps: float = 1e-5) -> None:
        self.eps = eps
        self._y = None
        self._r = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._r = np.sqrt((x * x).mean(axis=(0, 1, 2)) + self.eps)  # (C,)
        self._y = x / self._r
        return self._y

    def backward(self, g: np.ndarray) -> np.ndarray:
        y, r = self._y, self._r
        return (g - y * (g * y).mean(axis=(0, 1, 2))) / r  # the formula above, every channel at once


rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 3, 2)) + 1.0  # (N, H, W, C), not centred
rms = RMSBatchNorm()
result = gradcheck(rms, x.copy(), label="RMSBatchNorm")
print(result.report())
assert result.ok

y = rms(x)
dx = rms.backward(rng.standard_normal(x.shape))
along_y = (dx * y).sum(axis=(0, 1, 2))  # (C,)
print("per channel, Σ dx ⊙ y =", along_y)
assert np.abs(along_y).max() < 1e-4  # zero up to ε
assert np.allclose((y * y).mean(axis=(0, 1, 2)), 1.0, atol=1e-4)

# %% [markdown]
# ## 2. A tiny gradient
#
# At step 1, m̂ = g and √v̂ = |g|, so the step is `lr · g / (|g| + ε)`: for g = 10⁻⁶ that is
# 0.1 · 10⁻⁶ / (1.01 · 10⁻⁶) = 0.0990 — still nearly the full lr; for g = 10⁻⁸ it is
# 0.1 · 10⁻⁸ / (2 · 10⁻⁸) = 0.05, half of it. Only gradients near ε or below get a smaller
# first step.


# %%
def first_step(grad: float) -> float:
    """How far one AdamW step (lr 0.1, no decay) moves a 1×1 weight with this gradient."""
    params = {"w.weight": Parameter(np.array([[1.0]]))}
    params["w.weight"].grad[...] = grad
    AdamW(params, lr=0.1, weight_decay=0.0).step()
    return 1.0 - float(params["w.weight"].data[0, 0])


for g, predicted in ((1e-6, 0.1 / 1.01), (1e-8, 0.05)):
    moved = first_step(g)
    print(f"g = {g:.0e}: moved {moved:.5f}, predicted {predicted:.5f}")
    assert math.isclose(moved, predicted, rel_tol=1e-6)

# %% [markdown]
# ## 3. A longer warm-up
#
# W = 20: step 5 is a quarter of the way up, 2.5 · 10⁻⁴; step 20 is the peak, 10⁻³; step 60
# is half-way through the 80 cosine steps, ½ (1 + cos(π/2)) = ½, so 5 · 10⁻⁴.

# %%
predicted = {5: 2.5e-4, 20: 1e-3, 60: 5e-4}
for s, value in predicted.items():
    lr = warmup_cosine(s, 100, 20, 1e-3)
    print(f"step {s}: lr {lr:.3e}, predicted {value:.3e}")
    assert math.isclose(lr, value, abs_tol=1e-15)
print("lesson 06b's exercises solved")
