# %% [markdown]
# # Solutions to lesson 02's exercises
#
# Each exercise of `lessons/02_softmax_both_ways.py`, solved in order and checked with an assert.
# Run it from the repository root: `python lessons/solutions/02_softmax_both_ways.py`.

# %%
import math
from fractions import Fraction

import numpy as np

from miniclip import set_device
from miniclip.layers import ContrastiveLoss, log_softmax, softmax
from miniclip.module import Module
from miniclip.teaching.gradcheck import gradcheck, numerical_gradient
from miniclip.teaching.walkthrough import compute_walkthrough

set_device("cpu")
S = compute_walkthrough(base=3)["logits"].astype(np.float64)  # (3, 3): lesson 02's logits

# %% [markdown]
# ## Exercise 1 · Derive: the gradient of caption 2's row loss, as fractions
#
# Row 2 is `x = [−2, 2, 3]` and its right column is 2. Its base-3 softmax is
# `[1, 81, 243] / 325`, and `dℓ/dx_j = p_j − [j = 2]` gives
# `[1/325, 81/325 − 1, 243/325] = [1/325, −244/325, 243/325]`: the entries sum to zero, and the
# largest push (down) is on image 3, the wrong image that scores highest.

# %%
x = S[1].copy()  # (3,)
expected = [Fraction(1, 325), Fraction(-244, 325), Fraction(243, 325)]


def row_loss() -> float:
    return float(-log_softmax(x[None], axis=1, base=3)[0, 1])


numeric = numerical_gradient(row_loss, x)
print("by hand:", [str(f) for f in expected], "  central differences:", numeric)
assert np.allclose(numeric, [float(f) for f in expected], atol=1e-8)
assert sum(expected) == 0

# %% [markdown]
# ## Exercise 2 · Write the backward of `log_softmax` in base b
#
# `y_j = log_b p_j = x_j − ln Z / ln b` with `Z = Σ_k b^{x_k}`. Since `∂ ln Z / ∂x_k = p_k ln b`,
# `∂y_j / ∂x_k = [j = k] − p_k`: the `ln b` cancels again, and for an upstream gradient `g`
# (one row) `dx_k = g_k − p_k Σ_j g_j`. The base enters only through `p`.


# %%
class MyLogSoftmax(Module):
    """Row-wise log_b softmax_b(x), with its backward written by hand."""

    def __init__(self, base: float) -> None:
        self.base = base

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.p = softmax(x, axis=1, base=self.base)  # (N, K)
        return log_softmax(x, axis=1, base=self.base)  # (N, K)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g - self.p * g.sum(axis=1, keepdims=True)  # (N, K)


for base in (3.0, math.e):
    result = gradcheck(MyLogSoftmax(base), S.copy(), label=f"MyLogSoftmax (base {base:.3g})")
    print(result.report())
    assert result.ok
# With a one-hot g (the cross-entropy of row i), dx = onehot − p: minus lesson 02's p − onehot.
layer = MyLogSoftmax(3.0)
layer(S)
assert np.allclose(-layer.backward(np.eye(3)), softmax(S, axis=1, base=3) - np.eye(3))

# %% [markdown]
# ## Exercise 3 · Predict, then run: add 5 to every logit of column 3
#
# A column softmax does not notice a shift of its own column, so `P_cols` and `L_cols` do not
# change at all. Every row softmax sees image 3 rise by 5 against the others: captions 1 and 2
# lose probability on their own images (their row losses grow), caption 3 gains (`P_rows[3, 3]`
# goes from 27/37 to nearly 1). The gradient's entries still sum to zero.

# %%
shifted = S.copy()
shifted[:, 2] += 5.0
head, head_shifted = ContrastiveLoss(base=3), ContrastiveLoss(base=3)
head(S)
head_shifted(shifted)
assert np.allclose(head_shifted.p_cols, head.p_cols)
assert not np.allclose(head_shifted.p_rows, head.p_rows)
before, after = np.diag(head.p_rows), np.diag(head_shifted.p_rows)
print("P_rows diagonal before:", before, " after:", after)
assert after[0] < before[0] and after[1] < before[1] and after[2] > 0.99
L_cols = -np.trace(log_softmax(S, axis=0, base=3)) / 3
L_cols_shifted = -np.trace(log_softmax(shifted, axis=0, base=3)) / 3
assert math.isclose(L_cols, L_cols_shifted)
assert abs(head_shifted.backward(1.0).sum()) < 1e-12

print("lesson 02 solutions: all checked")
