# %% [markdown]
# # Solutions to lesson 01's exercises
#
# Each exercise of `lessons/01_walkthrough_by_hand.py`, solved in order and checked with an assert.
# Run it from the repository root: `python lessons/solutions/01_walkthrough_by_hand.py`.

# %%
import math
from fractions import Fraction

import numpy as np

from miniclip import set_device
from miniclip.module import Module
from miniclip.optim import SGD
from miniclip.teaching.gradcheck import gradcheck
from miniclip.teaching.walkthrough import compute_walkthrough, diagonal_share, walkthrough_batch, walkthrough_state
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

set_device("cpu")
walkthrough = compute_walkthrough(base=3)
logits = walkthrough["logits"]  # (3, 3): the step-9 logits of lesson 01

# %% [markdown]
# ## Exercise 1 · Derive: caption 2's row and image 3's column, as fractions
#
# Row 2 of the logits is `[−2 2 3]`: `3^x` gives `[1/9 9 27]`, times 9 `[1 81 243]`, sum 325, so
# `P_rows` for caption 2 is `[1/325, 81/325, 243/325]` and its cross-entropy is
# `log_3(325/81) ≈ 1.265`. Column 3 is `[−2 3 1]`: `[1/9 27 3]`, times 9 `[1 243 27]`, sum 271,
# so image 3 gives its own caption 3 only `27/271` and costs `log_3(271/27) ≈ 2.099`.

# %%
row = [3 ** (int(v) + 2) for v in logits[1]]  # times 3^2 = 9: whole numbers
column = [3 ** (int(v) + 2) for v in logits[:, 2]]
p_row = [Fraction(p, sum(row)) for p in row]
p_column = [Fraction(p, sum(column)) for p in column]
print("caption 2's row:", p_row, "  image 3's column:", p_column)
assert p_row == [Fraction(1, 325), Fraction(81, 325), Fraction(243, 325)]
assert p_column == [Fraction(1, 271), Fraction(243, 271), Fraction(27, 271)]
assert np.allclose(walkthrough["p_rows"][1], [float(p) for p in p_row])
assert np.allclose(walkthrough["p_cols"][:, 2], [float(p) for p in p_column])
assert math.isclose(math.log(325 / 81, 3), 1.2647, abs_tol=1e-4)
assert math.isclose(math.log(271 / 27, 3), 2.0993, abs_tol=1e-4)

# %% [markdown]
# ## Exercise 2 · Write the similarity's backward
#
# `logits[i, j] = T[i] · I[j]`, i.e. `logits = T Iᵀ`. A nudge of `T[i, k]` moves every logit in
# row i by `I[j, k]`, so `dT = dlogits · I`; a nudge of `I[j, k]` moves column j by `T[i, k]`, so
# `dI = dlogitsᵀ · T`. Written as a module and checked by `gradcheck` (central differences
# against a random upstream gradient), then against the walkthrough's own layer.


# %%
class MySimilarity(Module):
    """logits = T Iᵀ, with its backward written by hand."""

    def forward(self, T: np.ndarray, I: np.ndarray) -> np.ndarray:
        self.T, self.I = T, I
        return T @ I.T  # (N, N)

    def backward(self, dlogits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return dlogits @ self.I, dlogits.T @ self.T  # (N, d), (N, d)


T, I = walkthrough["T"].astype(np.float64), walkthrough["I"].astype(np.float64)
result = gradcheck(MySimilarity(), T.copy(), I.copy(), label="MySimilarity")
print(result.report())
assert result.ok

model = WalkthroughCLIP(WalkthroughConfig(base=3), rng=np.random.default_rng(0), dtype=np.float64)
g = np.random.default_rng(1).standard_normal((3, 3))
model.similarity(T, I)
mine = MySimilarity()
mine(T, I)
for a, b in zip(mine.backward(g), model.similarity.backward(g), strict=True):
    assert np.allclose(a, b)

# %% [markdown]
# ## Exercise 3 · Predict, then run: other learning rates
#
# With `lr = 0.01` the step is ten times shorter: the loss falls a little (0.7217 → 0.627), the
# diagonal share grows a little (0.571 → 0.595), but row 2 still prefers image 3. With `lr = 1.0`
# the step overshoots: the loss jumps to about 7.2, far above where it started, although the
# diagonal share still grows (to 0.634) and caption 2 now prefers its own image 2, but caption 3
# now prefers image 2 and image 3 caption 1. A step along the gradient only promises a lower loss
# for small enough steps.


# %%
def one_step(lr: float) -> tuple[float, float, float, float, np.ndarray]:
    """Loss and diagonal share before and after one SGD step at ``lr``, and the new logits."""
    ids, images = walkthrough_batch()
    m = WalkthroughCLIP(WalkthroughConfig(base=3), rng=np.random.default_rng(0), dtype=np.float64)
    m.load_state(walkthrough_state())
    before = float(m.forward(ids, images))
    share_before = diagonal_share(m.loss.p_rows, m.loss.p_cols)
    m.zero_grad()
    m.backward()
    SGD(m.parameters(), lr=lr).step()
    after = float(m.forward(ids, images))
    return before, after, share_before, diagonal_share(m.loss.p_rows, m.loss.p_cols), m.logits


for lr in (0.01, 0.1, 1.0):
    before, after, s0, s1, new_logits = one_step(lr)
    print(
        f"lr {lr:5}: loss {before:.4f} → {after:.4f}   share {s0:.3f} → {s1:.3f}   "
        f"row argmax {new_logits.argmax(axis=1) + 1}  column argmax {new_logits.argmax(axis=0) + 1}"
    )
    diagonal = np.arange(3)
    all_right = (new_logits.argmax(axis=1) == diagonal).all() and (new_logits.argmax(axis=0) == diagonal).all()
    if lr == 0.01:
        assert after < before and s1 > s0 and new_logits.argmax(axis=1)[1] == 2 and not all_right
    elif lr == 0.1:
        assert after < before and s1 > s0 and all_right
    else:
        assert after > 5 * before and s1 > s0 and not all_right

print("lesson 01 solutions: all checked")
