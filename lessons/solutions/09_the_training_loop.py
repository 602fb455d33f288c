# %% [markdown]
# # Solutions to the exercises of lesson 09
#
# Each exercise of `lessons/09_the_training_loop.py`, solved and checked by asserts.

# %%
import math

import numpy as np

from miniclip import Parameter, set_device
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.model.targets import label_aware_targets
from miniclip.optim import clip_grad_norm, warmup_cosine
from miniclip.teaching.gradcheck import numerical_gradient
from miniclip.training.configs import named_config

set_device("cpu")
np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## 1. The temperature's gradient
#
# $Z_{ij} = e^{s} C_{ij}$, so $\partial Z_{ij} / \partial s = e^{s} C_{ij} = Z_{ij}$ and
#
# $$
# \frac{\partial L}{\partial s} = \sum_{i} \sum_{j} dZ_{ij} \, e^{s} C_{ij}
# $$
#
# one number, the sum of the gradient weighted by the logits themselves. At the clamp's top
# the step may raise s above ln 100 and the clamp puts it back: a gradient that asks for a
# sharper softmax is then ignored (Adam's moments still remember it).

# %%
rng = np.random.default_rng(0)
images = rng.standard_normal((8, 16))
texts = rng.standard_normal((8, 16))
images /= np.linalg.norm(images, axis=1, keepdims=True)
texts /= np.linalg.norm(texts, axis=1, keepdims=True)
C = texts @ images.T  # (8, 8) cosines
Y = label_aware_targets(np.array([0, 1, 0, 2, 1, 3, 3, 2]), np.float64)
loss = ContrastiveLoss()
s = np.array([math.log(14.3)])  # a 1-entry array, so that numerical_gradient can nudge it
loss(math.exp(s[0]) * C, Y)
dZ = loss.backward()  # (8, 8)
ds = float((dZ * math.exp(s[0]) * C).sum())
ds_numeric = float(numerical_gradient(lambda: float(loss(math.exp(s[0]) * C, Y)), s)[0])
print(f"dL/ds by hand {ds:.8f}, central differences {ds_numeric:.8f}")
assert math.isclose(ds, ds_numeric, rel_tol=1e-6, abs_tol=1e-10)

# %% [markdown]
# ## 2. The schedule of the tiny run
#
# 2048 / 64 = 32 steps an epoch, 128 in all; warm-up int(0.05 · 128) = 6 steps. Step 0: 0;
# step 3: half-way up, 2 · 10⁻³; the last step, 127: one step before the end of the cosine,
# 4 · 10⁻³ · ½ (1 + cos(π · 121/122)) ≈ 6.6 · 10⁻⁷ (with `min_lr` 0).

# %%
cfg = named_config("tiny", out_dir="unused")
steps = cfg.n_train // cfg.batch_size * cfg.epochs
warmup = int(cfg.warmup * steps)
print(f"{steps} steps, warm-up {warmup}, lr {cfg.lr}, min_lr {cfg.min_lr}")
assert (steps, warmup, cfg.lr, cfg.min_lr) == (128, 6, 4e-3, 0.0)
predicted = {0: 0.0, 3: 2e-3, 127: 4e-3 * 0.5 * (1 + math.cos(math.pi * 121 / 122))}
for step, value in predicted.items():
    lr = warmup_cosine(step, steps, warmup, cfg.lr, cfg.min_lr)
    print(f"step {step:>3}: lr {lr:.3e}, predicted {value:.3e}")
    assert math.isclose(lr, value, rel_tol=1e-12, abs_tol=1e-18)

# %% [markdown]
# ## 3. The clip
#
# Norm 5 with `max_norm = 2`: every gradient is multiplied by 2/5, the direction kept, the
# norm now 2. Norm 0.5 is below the limit: nothing changes. `clip_grad_norm` returns the norm
# before clipping. (It divides by the norm + 10⁻⁶, so the clipped norm is 2 to about 10⁻⁷.)

# %%
for norm, expected in ((5.0, 2.0), (0.5, 0.5)):
    params = {"a": Parameter(np.zeros(3)), "b": Parameter(np.zeros((2, 2)))}
    raw = [rng.standard_normal(3), rng.standard_normal((2, 2))]
    scale = norm / math.sqrt(sum((g**2).sum() for g in raw))
    for p, g in zip(params.values(), raw, strict=True):
        p.grad[...] = scale * g
    before = float(clip_grad_norm(params, 2.0))
    after = math.sqrt(sum(float((p.grad**2).sum()) for p in params.values()))
    print(f"norm {before:.3f} → {after:.3f}")
    assert math.isclose(before, norm) and math.isclose(after, expected, rel_tol=1e-6)  # ε = 1e-6 in the divisor
    assert np.allclose(params["a"].grad, scale * raw[0] * expected / norm, rtol=1e-6)  # the same direction
print("lesson 09's exercises solved")
