# %% [markdown]
# # Solutions to lesson 03's exercises
#
# Each exercise of `lessons/03_backprop_through_the_encoders.py`, solved in order and checked with
# an assert. Run it from the repository root: `python lessons/solutions/03_backprop_through_the_encoders.py`.

# %%
import math
from fractions import Fraction

import numpy as np

from miniclip import set_device
from miniclip.layers import MeanPool
from miniclip.module import Module
from miniclip.optim import SGD
from miniclip.teaching.gradcheck import gradcheck
from miniclip.teaching.walkthrough import compute_walkthrough
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

set_device("cpu")

# %% [markdown]
# ## Exercise 1 · Derive: the gradient at "big table" against image 1
#
# Row 1 of the logits is `[1 0 −2]`: `3^x` times 9 gives `[27 9 1] / 37`. Column 1 is `[1 −2 0]`:
# `[27 1 9] / 37`. Both put 27/37 on the diagonal, both targets are 1, so
# `dS[1, 1] = ((27/37 − 1) + (27/37 − 1)) / 6 = −20/222 = −10/111 ≈ −0.0901`: a pull up, and the
# smallest of the three diagonal pulls, since pair 1 is already the surest.

# %%
walkthrough = compute_walkthrough(base=3)
by_hand = ((Fraction(27, 37) - 1) + (Fraction(27, 37) - 1)) / 6
print("dS[1, 1] by hand:", by_hand, "=", float(by_hand), "  printed:", walkthrough["dlogits"][0, 0])
assert by_hand == Fraction(-10, 111)
assert math.isclose(walkthrough["dlogits"][0, 0], float(by_hand))
assert abs(walkthrough["dlogits"][0, 0]) == np.abs(np.diag(walkthrough["dlogits"])).min()

# %% [markdown]
# ## Exercise 2 · Write the backward of mean pooling with a padding mask
#
# `y[n] = Σ_l m[n, l] x[n, l] / c[n]` with `c[n] = Σ_l m[n, l]` the number of real positions.
# Each real position contributed `1/c[n]` of the mean, each padded one nothing, so
# `dx[n, l] = m[n, l] / c[n] · dy[n]`. The mask is data, not differentiated.


# %%
class MyMaskedMean(Module):
    """Mean over axis 1 of the positions the mask marks as real, with its backward written by hand."""

    def forward(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.share = (mask / mask.sum(axis=1, keepdims=True))[:, :, None]  # (N, L, 1): m / c
        return (x * self.share).sum(axis=1)  # (N, D)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy[:, None, :] * self.share  # (N, L, D): zero at padding


rng = np.random.default_rng(0)
x = rng.standard_normal((3, 4, 5))  # (N, L, D)
mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=np.float64)  # (N, L)
result = gradcheck(MyMaskedMean(), x.copy(), kwargs={"mask": mask}, label="MyMaskedMean")
print(result.report())
assert result.ok
dy = rng.standard_normal((3, 5))
mine, theirs = MyMaskedMean(), MeanPool()
mine(x, mask)
theirs(x, mask)
assert np.allclose(mine.backward(dy), theirs.backward(dy))
assert np.allclose(mine.backward(dy)[1, 0], dy[1] / 2) and np.all(mine.backward(dy)[1, 2:] == 0)

# %% [markdown]
# ## Exercise 3 · Predict, then run: zero both projections
#
# With `P_t = P_i = 0` every `T` and `I` is zero, every logit is zero, every softmax is uniform
# and the loss is exactly `ln 3`. `dS` is not zero (`(1/3 − Y) / 3` in both directions), but
# `dT = dS @ I` and `dI = dSᵀ @ T` are, and so is every gradient below them, and the projections'
# own gradients `pooledᵀ @ dT` too: a saddle point. SGD never moves, and the loss stays at `ln 3`.

# %%
ids = np.array([[0, 2], [1, 2], [0, 3]])  # "red cat", "blue cat", "red dog" in lesson 03's vocabulary
images = np.array(
    [[[[1, 0, 1, 0], [1, 0, 1, 0]]], [[[1, 1, 1, 1], [0, 0, 0, 0]]], [[[1, 0, 0, 1], [0, 1, 1, 0]]]],
    dtype=np.float64,
)  # (N, C, H, W): lesson 03's stripes, bar and checkerboard
model = WalkthroughCLIP(WalkthroughConfig(), rng=np.random.default_rng(1), dtype=np.float64)
model.text.project.weight.data[...] = 0.0
model.image.project.weight.data[...] = 0.0
opt = SGD(model.parameters(), lr=0.5)
for _ in range(20):
    opt.zero_grad()
    loss = float(model(ids, images))
    model.backward()
    assert all(np.all(p.grad == 0) for p in model.parameters().values())
    opt.step()
print(f"loss after 20 steps: {loss:.6f}   ln 3 = {math.log(3):.6f}")
assert math.isclose(loss, math.log(3), rel_tol=1e-12)
assert not np.allclose(model.loss.backward(1.0), 0.0)  # dS itself is not zero

print("lesson 03 solutions: all checked")
