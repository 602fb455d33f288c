# %% [markdown]
# # Solutions to the exercises of lesson 14 — Batch size, prompts and ensembles
#
# Each exercise of `lessons/14_batch_size_prompts_and_ensembles.py`, solved and checked on
# small numbers (no training).

# %%

import numpy as np

from miniclip.evaluation.zeroshot import prompt_ensemble
from miniclip.module import Module
from miniclip.teaching.gradcheck import gradcheck

np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## Exercise 1 — the prompt ensemble's backward
#
# Forward: $m = \frac{1}{T} \sum_t e_t$, then $w = m / \|m\|$. The normalisation's backward (lesson 04)
# removes the part of dw along w and divides by the length:
#
# $$\frac{\partial L}{\partial m} = \frac{dw - w \, (w \cdot dw)}{\|m\|}$$
#
# and the mean hands each template an equal share,
# $\partial L / \partial e_t = \frac{1}{T} \partial L / \partial m$. So every template gets the same
# gradient, at right angles to w: pushing all the prompts along the direction they already
# share changes nothing.


# %%
class PromptEnsemble(Module):
    """One class's T template embeddings (T, d) → their mean, normalised to unit length (d,)."""

    def forward(self, e: np.ndarray) -> np.ndarray:
        self.m = e.mean(axis=0)  # (d,)
        self.length = np.linalg.norm(self.m)
        self.w = self.m / self.length  # (d,)
        self.count = len(e)
        return self.w

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dm = (grad - self.w * (self.w @ grad)) / self.length  # (d,) at right angles to w
        return np.repeat(dm[None] / self.count, self.count, axis=0)  # (T, d): an equal share each


rng = np.random.default_rng(0)
prompts = rng.standard_normal((5, 8))
prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)  # (5, 8) five unit-length template embeddings
ensemble = PromptEnsemble()
assert np.allclose(ensemble(prompts), prompt_ensemble(prompts[None])[0])  # the package's, for one class
result = gradcheck(ensemble, prompts.copy(), label="prompt ensemble")
print(result.report())
assert result.ok
d_prompts = ensemble.backward(rng.standard_normal(8))
assert np.allclose(d_prompts @ ensemble.w, 0.0) and np.allclose(d_prompts, d_prompts[0])

# %% [markdown]
# ## Exercise 2 — the spread is about σ²/2
#
# Write a row's logits as $z_j = \bar{z} + d_j$, with $\frac{1}{N} \sum_j d_j = 0$ and
# $\frac{1}{N} \sum_j d_j^2 = \sigma^2$. For small d, $e^{d_j} \approx 1 + d_j + d_j^2 / 2$, so
# $\frac{1}{N} \sum_j e^{z_j} \approx e^{\bar{z}} (1 + \sigma^2 / 2)$, and
#
# $$\mathrm{spread} = \log \left( \frac{1}{N} \sum_j e^{z_j} \right) - \bar{z} \approx \frac{\sigma^2}{2}$$
#
# The error is of order $\sigma^3$: the ratio spread / (σ²/2) tends to 1 as σ shrinks.


# %%
def spread(z: np.ndarray) -> float:
    return float(np.log(np.exp(z - z.max()).mean()) + z.max() - z.mean())


for sigma in (0.5, 0.1, 0.02):
    row = sigma * np.random.default_rng(1).standard_normal(64)  # (64,) one row of logits
    ratio = spread(row) / (row.var() / 2)
    print(f"σ = {sigma:4}: spread {spread(row):.6f}, σ²/2 {row.var() / 2:.6f}, ratio {ratio:.4f}")
    assert abs(ratio - 1) < 3 * sigma  # the error shrinks with σ
assert abs(spread(np.full(64, 3.7))) < 1e-12  # equal logits: no spread at all

# %% [markdown]
# ## Exercise 3 — how many distinct other classes does a batch hold?
#
# Take a batch of N labels drawn uniformly from 40 classes and one image in it. Each of the
# other N − 1 labels is one of the 40 classes, so a given class other than the image's own is
# missed by all of them with probability $(39/40)^{N-1}$. Adding up over the 39 other classes,
# the expected number of distinct other classes in the batch is
#
# $$39 \left( 1 - \left( \frac{39}{40} \right)^{N-1} \right)$$
#
# which is 12.3 for N = 16, 31.1 for N = 64 and 38.9 for N = 256: past a few dozen pairs a
# bigger batch brings copies, not new classes. (The shapes' training split is close to
# uniform over its 40 classes.)

# %%
simulation = np.random.default_rng(2)
for n in (16, 64, 256):
    formula = 39 * (1 - (39 / 40) ** (n - 1))
    draws = [len(set(batch[1:]) - {batch[0]}) for batch in simulation.integers(0, 40, size=(4000, n))]
    print(f"N = {n:3d}: expected {formula:5.2f}, simulated {np.mean(draws):5.2f}")
    assert abs(np.mean(draws) - formula) < 0.1
assert [round(39 * (1 - (39 / 40) ** (n - 1)), 1) for n in (16, 64, 256)] == [12.3, 31.1, 38.9]
print("lesson 14 solutions: all checks passed")
