# %% [markdown]
# # Solutions to lesson 04's exercises
#
# Each exercise of `lessons/04_cosine_similarity_and_temperature.py`, solved in order and checked
# with an assert. Run it from the repository root:
# `python lessons/solutions/04_cosine_similarity_and_temperature.py`.

# %%
import math

import numpy as np

from miniclip import set_device
from miniclip.layers import ContrastiveLoss, L2Normalize, LogitScale, softmax
from miniclip.layers.logit_scale import INIT
from miniclip.module import Module, Parameter
from miniclip.teaching.gradcheck import gradcheck

set_device("cpu")

# %% [markdown]
# ## Exercise 1 · Write the backward of the whole head: `Z = e^s · (T/‖T‖)(I/‖I‖)ᵀ`
#
# Name the pieces `t = T/‖T‖`, `u = I/‖I‖`, `C = t uᵀ`, `Z = e^s C`. Backward, in reverse:
#
#     dC = e^s dZ          ds = Σ dZ ⊙ Z
#     dt = dC u            du = dCᵀ t
#     dT = (dt − t (t · dt)) / ‖T‖   row by row (and the same for dI with u, du, ‖I‖)
#
# The last line: `t = T/‖T‖` changes only where `T` changes direction, so the part of `dt` along
# `t` is removed and the rest is scaled by `1/‖T‖`.


# %%
class MyCosineHead(Module):
    """Logits e^s · cos(T_i, I_j) with a learned s, forward and backward by hand."""

    def __init__(self) -> None:
        self.s = Parameter(np.array(INIT, dtype=np.float64))

    def forward(self, T: np.ndarray, I: np.ndarray) -> np.ndarray:
        self.nT = np.linalg.norm(T, axis=1, keepdims=True)  # (N, 1)
        self.nI = np.linalg.norm(I, axis=1, keepdims=True)  # (M, 1)
        self.t, self.u = T / self.nT, I / self.nI  # (N, d), (M, d)
        self.Z = math.exp(float(self.s.data)) * (self.t @ self.u.T)  # (N, M)
        return self.Z

    def backward(self, dZ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.s.grad += (dZ * self.Z).sum()
        dC = math.exp(float(self.s.data)) * dZ  # (N, M)
        dt, du = dC @ self.u, dC.T @ self.t  # (N, d), (M, d)
        dT = (dt - self.t * (self.t * dt).sum(axis=1, keepdims=True)) / self.nT
        dI = (du - self.u * (self.u * du).sum(axis=1, keepdims=True)) / self.nI
        return dT, dI


rng = np.random.default_rng(0)
T, I = rng.normal(0.0, 3.0, (4, 5)), rng.normal(0.0, 0.5, (4, 5))  # (N, d) each
result = gradcheck(MyCosineHead(), T.copy(), I.copy(), label="MyCosineHead")
print(result.report())
assert result.ok and len(result.tensors) == 3
# The same logits as the package's layers in a row.
head = MyCosineHead()
assert np.allclose(head(T, I), LogitScale(dtype=np.float64)(L2Normalize()(T) @ L2Normalize()(I).T))

# %% [markdown]
# ## Exercise 2 · Derive: how large must the scale be?
#
# A perfect match (cosine 1 against −1 for the other three images) at scale `a` gets
# `p = e^a / (e^a + 3 e^{−a}) = 1 / (1 + 3 e^{−2a})`. Setting `p = 0.99`: `3 e^{−2a} = 1/99`, so
# `a = ln(297) / 2 ≈ 2.846`. At CLIP's starting scale of 14.29 the same match gets
# `1 − 3 e^{−28.6}`, about `1 − 10⁻¹²`.

# %%
a = math.log(297) / 2
row = np.array([[1.0, -1.0, -1.0, -1.0]])  # (1, 4): cosines
print(f"scale {a:.4f}: p = {softmax(a * row, axis=1)[0, 0]:.6f}")
assert math.isclose(a, 2.846, abs_tol=1e-3)
assert math.isclose(float(softmax(a * row, axis=1)[0, 0]), 0.99)
assert 1 - float(softmax(math.exp(INIT) * row, axis=1)[0, 0]) < 1e-11

# %% [markdown]
# ## Exercise 3 · Predict, then run: a smaller "mistake"
#
# With `C_mistake[1, 2] = 0.27` instead of 0.31, caption 2 scores image 3 (0.27) just below its
# own image 2 (0.28), and column 3 still prefers its own caption 3 (0.30): every pair is right
# again. Each row's loss `log Σ_j e^{a (c_j − c_i)}` then falls as the scale grows, so gradient
# descent on `s` runs into the clamp: the learned scale is 100, as for the matrix with no mistake.

# %%
C = np.array(
    [
        [0.32, 0.12, 0.05, 0.18],
        [0.10, 0.28, 0.15, 0.02],
        [0.08, 0.20, 0.30, 0.11],
        [0.15, 0.03, 0.09, 0.25],
    ]
)  # lesson 04's cosines


def learn_scale(cosines: np.ndarray, steps: int = 300, lr: float = 2.0) -> float:
    """Gradient descent on s only (cosines fixed), clamping after every step; returns the final scale."""
    logit_scale, loss_fn = LogitScale(dtype=np.float64), ContrastiveLoss()
    for _ in range(steps):
        logit_scale.zero_grad()
        loss_fn(logit_scale(cosines))
        logit_scale.backward(loss_fn.backward(1.0))
        logit_scale.log_scale.data -= lr * logit_scale.log_scale.grad
        logit_scale.clamp()
    return float(logit_scale.scale)


small_mistake = C.copy()
small_mistake[1, 2] = 0.27
big_mistake = C.copy()
big_mistake[1, 2] = 0.31
print(f"learned scale: 0.27 → {learn_scale(small_mistake):.2f}   0.31 → {learn_scale(big_mistake):.2f}")
assert math.isclose(learn_scale(small_mistake), 100.0)
assert learn_scale(big_mistake) < 100.0

print("lesson 04 solutions: all checked")
