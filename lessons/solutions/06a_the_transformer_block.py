# %% [markdown]
# # Solutions to the exercises of lesson 06a
#
# Each exercise of `lessons/06a_the_transformer_block.py`, solved and checked by asserts.

# %%
import math

import numpy as np

from miniclip import Module, set_device
from miniclip.layers import GELU, MLP, LayerNorm
from miniclip.teaching.gradcheck import gradcheck

set_device("cpu")
np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## 1. The exact GELU's backward
#
# With $y = x \Phi(x)$, the product rule gives
#
# $$
# \frac{dy}{dx} = \Phi(x) + x \phi(x) \qquad \phi(x) = \frac{\exp(-x^2/2)}{\sqrt{2 \pi}}
# $$
#
# At x = 0 that is Φ(0) = ½ (as for the tanh form); at x = 1 it is
# Φ(1) + φ(1) = 0.8413 + 0.2420 = 1.0833, 0.0003 above the tanh form's 1.0830.

# %%
erf = np.vectorize(math.erf)


class ExactGELU(Module):
    """y = x Φ(x), element-wise; keeps x and Φ(x) for the backward."""

    def __init__(self) -> None:
        self._x = None
        self._cdf = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        self._cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))  # Φ(x)
        return x * self._cdf

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x = self._x
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)  # φ(x)
        return dy * (self._cdf + x * pdf)


exact = ExactGELU()
result = gradcheck(exact, np.random.default_rng(0).standard_normal((3, 4)) * 2, label="ExactGELU")
print(result.report())
assert result.ok

points = np.array([0.0, 1.0])
exact(points)
slopes = exact.backward(np.ones(2))
tanh_form = GELU()
tanh_form(points)
tanh_slopes = tanh_form.backward(np.ones(2))
print(f"exact slopes at 0 and 1: {slopes}, tanh form: {tanh_slopes}, gap at 1: {slopes[1] - tanh_slopes[1]:.1e}")
assert slopes[0] == 0.5 and math.isclose(slopes[1], 1.0833, abs_tol=1e-4)
assert 0 < slopes[1] - tanh_slopes[1] < 1e-3

# %% [markdown]
# ## 2. Gradients LayerNorm ignores
#
# With ĝ = 3x̂ + 2: mean(ĝ) = 2 (x̂ has mean 0) and mean(ĝ ⊙ x̂) = 3 · mean(x̂²) = 3 (x̂ has mean
# square 1, up to ε), so ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂) = 3x̂ + 2 − 2 − 3x̂ = 0: a shift of the
# token and a scaling of it are exactly the two directions LayerNorm forgets, so dx = 0 (to
# about ε). For any dy the entries of dx sum to 0, so for `[1, 0, 0, 0, 0]` the sum is 0.

# %%
x = np.array([[2.0, 4.0, 5.0, 6.0, 8.0]])
x_hat = np.array([[-1.5, -0.5, 0.0, 0.5, 1.5]])
norm = LayerNorm(5, dtype=np.float64)
norm(x)
dx = norm.backward(3 * x_hat + 2)
print("dx for dy = 3x̂ + 2:", dx)
assert np.abs(dx).max() < 1e-5
norm(x)
dx_one = norm.backward(np.array([[1.0, 0.0, 0.0, 0.0, 0.0]]))
print("dx for dy = [1, 0, 0, 0, 0]:", dx_one, " sum", dx_one.sum())
assert abs(dx_one.sum()) < 1e-12

# %% [markdown]
# ## 3. Twice as deep
#
# 12 layers took the plain stack's gradient to about 2 · 10⁻¹⁰, a factor of about
# (2 · 10⁻¹⁰)^(1/12) ≈ 0.16 per layer; 24 layers: about (2 · 10⁻¹⁰)² ≈ 4 · 10⁻²⁰ — the same
# order, since each layer multiplies the gradient by a similar factor. The residual stack's
# gradient does not vanish — it *grows* (to about 3 here), because each block adds its
# branch's gradient to the one passing down, and 24 of those branch terms outweigh `dy`
# itself: the cosine falls from 0.87 to about 0.3. That is why GPT-2 scales the last layer of
# each branch by 1/√n, and why some models start it at zero (the lesson's block with zeroed
# branches): a deep residual stack should begin close to the identity.


# %%
def stack_gradient(depth: int, norm: bool, skip: bool, width: int = 8) -> tuple[float, float]:
    """The lesson's stack at ``depth`` layers: |dx| / |dy| and cos(dx, dy)."""
    rng = np.random.default_rng(0)
    stack = [
        (LayerNorm(width, dtype=np.float64), MLP(width, 4 * width, rng=rng, dtype=np.float64)) for _ in range(depth)
    ]
    x0, dy0 = rng.standard_normal((5, width)), rng.standard_normal((5, width))
    h = x0
    for ln, f in stack:
        branch = f(ln(h)) if norm else f(h)
        h = h + branch if skip else branch
    g = dy0
    for ln, f in reversed(stack):
        back = f.backward(g)
        back = ln.backward(back) if norm else back
        g = g + back if skip else back
    return float(np.linalg.norm(g) / np.linalg.norm(dy0)), float(
        (g * dy0).sum() / np.linalg.norm(g) / np.linalg.norm(dy0)
    )


plain_12, plain_24 = stack_gradient(12, False, False)[0], stack_gradient(24, False, False)[0]
residual_12, residual_24 = stack_gradient(12, True, True), stack_gradient(24, True, True)
print(f"plain: 12 layers {plain_12:.1e}, 24 layers {plain_24:.1e} (predicted about {plain_12**2:.0e})")
print(f"pre-norm residual: 12 layers size {residual_12[0]:.2f} cosine {residual_12[1]:.2f};", end=" ")
print(f"24 layers size {residual_24[0]:.2f} cosine {residual_24[1]:.2f}")
assert plain_24 < 1e-15 and 1e-3 < plain_24 / plain_12**2 < 1e3  # the square, to within the layers' spread
assert residual_24[0] > residual_12[0] > 0.5  # no vanishing: the branch terms add up
assert 0.0 < residual_24[1] < residual_12[1]  # dy is a smaller part of dx
print("lesson 06a's exercises solved")
