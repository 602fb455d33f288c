# %% [markdown]
# # Lesson 06b — BatchNorm, AdamW and the learning-rate schedule
#
# Three more pieces that lessons 07–10 use without deriving them:
#
# * **BatchNorm2d**, the CNN's normalisation (lesson 07): LayerNorm's formula, but each
#   *channel* is normalised over the whole batch instead of each token over its features;
#   so it behaves differently in training and in evaluation, and keeps running statistics;
# * **AdamW**, the optimiser every training run uses (lesson 09): one step by hand, with its
#   bias correction and its *decoupled* weight decay, against `miniclip.optim.AdamW`;
# * the **warm-up + cosine** learning-rate schedule, by hand at a few steps, and as a curve.
#
# As in lesson 06a, every hand-derived gradient is checked against the layer's `backward`
# and against central differences, in float64.
#
# The code: `miniclip/layers/batch_norm.py`, `miniclip/optim/adamw.py` and `miniclip/optim/schedule.py`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from miniclip import Module, Parameter, set_device
from miniclip.layers import BatchNorm2d, LayerNorm, TransformerBlock
from miniclip.optim import AdamW, decays, warmup_cosine
from miniclip.teaching.gradcheck import gradcheck, numerical_gradient
from miniclip.teaching.lesson_output import show

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## BatchNorm: each channel over the batch
#
# The CNN's activations are images, stored channels-last `(N, H, W, C)` (lesson 07 says
# why). Seen as a matrix they are `(M, C)` with `M = N·H·W`: one row per pixel of every image
# in the batch, one column per channel. LayerNorm would normalise each *row* (one pixel's C
# numbers); BatchNorm normalises each *column* — channel c over all M pixels of the batch:
#
# $$
# \mu_c = \frac{1}{M} \sum_{m} x_{mc} \qquad \sigma_c^2 = \frac{1}{M} \sum_{m} (x_{mc} - \mu_c)^2 \qquad \hat{x}_{mc}
# = \frac{x_{mc} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} \qquad y_{mc} = \gamma_c \hat{x}_{mc} + \beta_c
# $$
#
# with γ and β of shape (C,), learned.
#
# A batch of N = 2 images of 1×2 pixels with C = 2 channels, so M = 4 rows, chosen so that
# the two columns have σ = 2 and σ = 3:
#
#     pixel            channel 0   channel 1
#     image 0, left        1           5
#     image 0, right       1          11           channel 0: μ = 3,  x − μ = [−2, −2, 2, 2],  σ² = 16/4 = 4
#     image 1, left        5          11           channel 1: μ = 10, x − μ = [−5, 1, 1, 3],   σ² = 36/4 = 9
#     image 1, right       5          13
#
# so x̂ is `[−1, −1, 1, 1]` in channel 0 and `[−5/3, 1/3, 1/3, 1]` in channel 1.

# %%
x = np.array([[[[1.0, 5.0], [1.0, 11.0]]], [[[5.0, 11.0], [5.0, 13.0]]]])  # (N, H, W, C) = (2, 1, 2, 2)
x_hat_by_hand = np.array([[-1.0, -5 / 3], [-1.0, 1 / 3], [1.0, 1 / 3], [1.0, 1.0]])  # (M, C)
bn = BatchNorm2d(2, dtype=np.float64)  # momentum 0.1, ε = 1e-5, γ = 1, β = 0
y = bn(x)  # (2, 1, 2, 2), training mode
print("x as (M, C) rows:\n", x.reshape(-1, 2))
print("BatchNorm2d(x) in training mode, as (M, C):\n", y.reshape(-1, 2))
rows_normalised = LayerNorm(2, dtype=np.float64)(x).reshape(-1, 2)  # each pixel's two channels: always ±1
print("LayerNorm of the same rows, for contrast (each row normalised alone):\n", rows_normalised)
assert np.allclose(y.reshape(-1, 2), x_hat_by_hand, atol=1e-5)
assert np.allclose(y.reshape(-1, 2).mean(axis=0), 0.0) and np.allclose(y.reshape(-1, 2).std(axis=0), 1.0, atol=1e-5)

# %% [markdown]
# The statistics belong to the batch, so in training mode **an image's output depends on
# the other images in the batch**: change image 1 and image 0's output changes too. (An
# image alone would be normalised with only its own two pixels; here its channel 0 is
# constant, so it would come out as zeros.)

# %%
other = x.copy()
other[1] = [[[9.0, 20.0], [9.0, 20.0]]]  # a different image 1
print("image 0's output, next to the first image 1: ", y[0].reshape(-1))
print("image 0's output, next to another image 1:   ", bn(other)[0].reshape(-1))
assert not np.allclose(bn(other)[0], y[0])

# %% [markdown]
# ## Running statistics, and evaluation mode
#
# A trained model must give one image the same embedding whatever else is in the batch — or
# with no batch at all. So in training every forward also updates **running averages** of
# the statistics (buffers: saved with the model, never trained), with momentum 0.1:
#
#     running_mean ← 0.9 · running_mean + 0.1 · μ
#     running_var  ← 0.9 · running_var  + 0.1 · σ² · M/(M − 1)     (the unbiased variance, as PyTorch)
#
# and `eval()` switches the layer to use them instead of the batch's. They start at 0 and 1.
# After our first batch alone, by hand:
#
#     running_mean = 0.1 · [3, 10] = [0.3, 1.0]
#     running_var  = 0.9 + 0.1 · [4, 9] · 4/3 = [0.9 + 0.5333, 0.9 + 1.2] = [1.4333, 2.1]

# %%
fresh = BatchNorm2d(2, dtype=np.float64)
print("running statistics at the start:", fresh.buffers())
fresh(x)
print("after one batch:                ", fresh.buffers())
assert np.allclose(fresh.running_mean, [0.3, 1.0]) and np.allclose(fresh.running_var, [0.9 + 0.4 * 4 / 3, 2.1])

fresh.eval()  # evaluation mode: y = γ (x − running_mean) / √(running_var + ε) + β
y_eval = fresh(x)
print("the same batch in evaluation mode, as (M, C):\n", y_eval.reshape(-1, 2))
assert np.allclose(y_eval.reshape(-1, 2), (x.reshape(-1, 2) - [0.3, 1.0]) / np.sqrt(np.array([4.3, 6.3]) / 3 + 1e-5))
assert np.allclose(fresh.buffers()["running_mean"], [0.3, 1.0])  # evaluation never updates them
fresh.train()

# %% [markdown]
# After one batch the running statistics are still far from the data, and the evaluation
# output is nothing like the training output. Over many batches they converge to the
# statistics of the data. Draw batches of 8 images of 4×4 pixels (M = 128) whose channel 0
# has mean 3 and spread 2, channel 1 mean 10 and spread 3; after 100 batches the running
# statistics are close to `[3, 10]` and `[4, 9]`, and a new batch comes out nearly the same
# in both modes. In evaluation mode, and only there, one image alone gets exactly the output
# it gets inside the batch.

# %%
rng = np.random.default_rng(0)
centre, spread = np.array([3.0, 10.0]), np.array([2.0, 3.0])


def draw_batch() -> np.ndarray:
    return centre + spread * rng.standard_normal((8, 4, 4, 2))  # (N, H, W, C)


for _ in range(100):
    fresh(draw_batch())
print(f"after 100 batches: running mean {fresh.running_mean}, running var {fresh.running_var}")
assert np.allclose(fresh.running_mean, centre, atol=0.2) and np.allclose(fresh.running_var, spread**2, rtol=0.1)

test = draw_batch()
y_train = fresh(test)  # training mode: this batch's statistics
fresh.eval()
y_eval = fresh(test)  # evaluation mode: the running ones
print(f"largest difference, training against evaluation output: {np.abs(y_train - y_eval).max():.3f}")
assert np.abs(y_train - y_eval).max() < 0.3
assert np.allclose(fresh(test[:1]), y_eval[:1])  # one image alone: its output inside the batch
fresh.train()

# %% [markdown]
# `Module.eval()` and `Module.train()` walk the children, so `model.eval()` switches every
# BatchNorm (and every Dropout) inside a whole model at once; the zero-shot evaluation and
# every command that loads a trained run do exactly that before encoding images.

# %%


class TwoNorms(Module):
    """Two BatchNorms in a row, to show eval() reaching the children."""

    def __init__(self) -> None:
        self.first = BatchNorm2d(2, dtype=np.float64)
        self.second = BatchNorm2d(2, dtype=np.float64)


pair = TwoNorms().eval()
print("after eval():", {name: child.training for name, child in pair.children()}, " buffers:", sorted(pair.buffers()))
assert not pair.first.training and not pair.second.training
assert pair.train().second.training

# %% [markdown]
# ## BatchNorm backward, derived
#
# In training μ and σ² are functions of every value in the column, so the derivation is
# LayerNorm's (lesson 06a) with the mean taken down a column of M values instead of across a
# row of D: with $\hat{g} = dy \cdot \gamma$, for each channel c,
#
# $$
# d\beta_c = \sum_{m} dy_{mc} \qquad d\gamma_c = \sum_{m} dy_{mc} \hat{x}_{mc} \qquad dx_{mc} =
# \frac{1}{\sqrt{\sigma_c^2 + \epsilon}} \left( \hat{g}_{mc} - \frac{1}{M} \sum_{k} \hat{g}_{kc} - \hat{x}_{mc}
# \frac{1}{M} \sum_{k} \hat{g}_{kc} \hat{x}_{kc} \right)
# $$
#
# the sums and means over the M pixels of each channel. By hand, with γ = 1 and an upstream
# gradient that is 1 at the first pixel of channel 0 and 3 at the last pixel of channel 1:
#
#     channel 0: dy = [1, 0, 0, 0], mean 1/4, mean(dy ⊙ x̂) = −1/4, σ = 2:
#                dx = ½ ([1, 0, 0, 0] − ¼ + ¼ · [−1, −1, 1, 1]) = ½ [½, −½, 0, 0] = [0.25, −0.25, 0, 0]
#     channel 1: dy = [0, 0, 0, 3], mean 3/4, mean(dy ⊙ x̂) = 3/4, σ = 3:
#                dx = ⅓ ([0, 0, 0, 3] − ¾ − ¾ · [−5/3, 1/3, 1/3, 1]) = ⅓ [½, −1, −1, 1.5] = [1/6, −1/3, −1/3, ½]
#     dβ = [1, 3],  dγ = [1 · (−1), 3 · 1] = [−1, 3]
#
# The gradient reaches pixels whose own `dy` is zero: they moved the batch's mean and spread.
#
# In evaluation the statistics are constants, so the layer is a fixed per-channel affine map
# and `dx = dy · γ / √(running_var + ε)`, nothing more. With running statistics set to this
# batch's own, `[3, 10]` and `[4, 9]` (as if trained on many batches like it), that is
# `dy / 2` in channel 0 and `dy / 3` in channel 1: 1/2 at the first pixel, 3/3 = 1 at the
# last. No other pixel gets any gradient now.

# %%
dy = np.zeros_like(x)
dy[0, 0, 0, 0] = 1.0  # first pixel, channel 0
dy[1, 0, 1, 1] = 3.0  # last pixel, channel 1
dx_by_hand = np.array([[0.25, 1 / 6], [-0.25, -1 / 3], [0.0, -1 / 3], [0.0, 0.5]])  # (M, C)

bn = BatchNorm2d(2, dtype=np.float64)
bn(x)
bn.zero_grad()
dx_layer = bn.backward(dy)  # (2, 1, 2, 2)
dx_numeric = numerical_gradient(lambda: float((bn(x) * dy).sum()), x)
print("dx by hand, as (M, C):\n", dx_by_hand)
print("dx, BatchNorm2d.backward:\n", dx_layer.reshape(-1, 2))
print("dx, central differences:\n", dx_numeric.reshape(-1, 2))
print("dβ =", bn.bias.grad, "  dγ =", bn.weight.grad)
assert np.allclose(dx_layer.reshape(-1, 2), dx_by_hand, atol=1e-5)  # up to ε
assert np.allclose(dx_layer, dx_numeric, atol=1e-8)
assert np.array_equal(bn.bias.grad, [1.0, 3.0]) and np.allclose(bn.weight.grad, [-1.0, 3.0], atol=1e-5)

bn.running_mean[...] = [3.0, 10.0]
bn.running_var[...] = [4.0, 9.0]
bn.eval()
bn(x)
dx_eval = bn.backward(dy)
print("dx in evaluation mode, as (M, C):\n", dx_eval.reshape(-1, 2))
assert np.allclose(dx_eval.reshape(-1, 2), [[0.5, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]], atol=1e-5)
assert np.allclose(dx_eval, numerical_gradient(lambda: float((bn(x) * dy).sum()), x), atol=1e-8)

# %% [markdown]
# And `gradcheck` of both modes with random γ, β, inputs and upstream gradient:

# %%
rng = np.random.default_rng(1)
bn_check = BatchNorm2d(3, dtype=np.float64)
bn_check.weight.data[...] = rng.standard_normal(3)
bn_check.bias.data[...] = rng.standard_normal(3)
x_check = rng.standard_normal((2, 3, 3, 3))  # (N, H, W, C)
bn_check.running_var[...] = [0.5, 1.0, 2.0]
trained = gradcheck(bn_check, x_check.copy(), label="BatchNorm2d (training)")
bn_check.eval()
evaluated = gradcheck(bn_check, x_check.copy(), label="BatchNorm2d (evaluation)")
for result in (trained, evaluated):
    print(result.report(width=26))
    assert result.ok

# %% [markdown]
# ## AdamW, one step by hand
#
# For a weight `w` with gradient `g`, at step `t = 1, 2, …` (moments `m`, `v` start at 0):
#
#     w ← w − lr · λ · w                          decoupled weight decay (matrices only)
#     m ← β₁ m + (1 − β₁) g                       running mean of g             β₁ = 0.9
#     v ← β₂ v + (1 − β₂) g²                      running mean of g²            β₂ = 0.999
#     m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)      bias correction
#     w ← w − lr · m̂ / (√v̂ + ε)
#
# the step itself, as an equation:
#
# $$
# w \leftarrow w - \mathrm{lr} \cdot \frac{\hat{m}}{\sqrt{\hat{v}} + \epsilon} \qquad \hat{m} = \frac{m}{1 -
# \beta_1^t} \qquad \hat{v} = \frac{v}{1 - \beta_2^t}
# $$
#
# At t = 1: `m = 0.1 g`, `v = 0.001 g²`, and the corrections divide by exactly 0.1 and 0.001,
# so `m̂ = g`, `v̂ = g²` and the step is
# $\mathrm{lr} \cdot g / |g| = \mathrm{lr} \cdot \mathrm{sign}(g)$: **every weight moves by lr,
# whatever the size of its gradient** (a zero gradient: no move). With lr = 0.1 and
# λ = 0.1, a 2×2 weight and a bias:
#
#     weight  w = [[1, −2], [0.5, 3]]   g = [[0.5, −0.01], [0, 4]]
#             decay: w · (1 − 0.01) = [[0.99, −1.98], [0.495, 2.97]]
#             step:  − 0.1 · sign(g) → [[0.89, −1.88], [0.495, 2.87]]
#     bias    b = [1, 1]                g = [2, −2]         (no decay)  → [0.9, 1.1]

# %%
params = {
    "layer.weight": Parameter(np.array([[1.0, -2.0], [0.5, 3.0]])),  # (2, 2)
    "layer.bias": Parameter(np.array([1.0, 1.0])),  # (2,)
}
gradients = [
    {"layer.weight": np.array([[0.5, -0.01], [0.0, 4.0]]), "layer.bias": np.array([2.0, -2.0])},  # step 1
    {"layer.weight": np.array([[0.5, 0.01], [0.0, -4.0]]), "layer.bias": np.array([2.0, 2.0])},  # step 2
]
lr, wd = 0.1, 0.1
optimizer = AdamW(params, lr=lr, weight_decay=wd)
print("decays:", {name: decays(name, p) for name, p in params.items()})

for name, g in gradients[0].items():
    params[name].grad[...] = g
optimizer.step()
step1_by_hand = {"layer.weight": np.array([[0.89, -1.88], [0.495, 2.87]]), "layer.bias": np.array([0.9, 1.1])}
for name, p in params.items():
    print(f"after step 1, {name}: {p.data.ravel()}   by hand {step1_by_hand[name].ravel()}")
    assert np.allclose(p.data, step1_by_hand[name], atol=1e-6)  # ε/|g| ≤ 1e-6 is all that separates them

# %% [markdown]
# **Step 2.** Some entries of the new gradients agree with step 1, others flip sign (and
# the weight's zero-gradient entry stays at zero, so only the decay moves it). Written out
# (no decay on the bias):
#
#     m = 0.9 · 0.1 g₁ + 0.1 g₂ = 0.09 g₁ + 0.1 g₂       m̂ = m / (1 − 0.9²) = m / 0.19
#     v = 0.999 · 0.001 g₁² + 0.001 g₂²                   v̂ = v / (1 − 0.999²) = v / 0.001999
#
# * g₁ = g₂ = 0.5: m̂ = 0.095/0.19 = 0.5, v̂ = 0.25, √v̂ = 0.5: again a full step of lr;
# * g₁ = −0.01, g₂ = +0.01: m = 0.0001, m̂ = 0.000526, √v̂ = 0.01: a step of lr/19 ≈ 0.0053;
# * g₁ = 4, g₂ = −4: the same ratio, −1/19, at four hundred times the gradient.
#
# Where the gradients agree, Adam keeps stepping at full size; where they flip, the mean
# cancels and the step shrinks — the same for small and large gradients.

# %%
expected = {name: p.data.copy() for name, p in params.items()}
table = []
for name, g2 in gradients[1].items():
    g1 = gradients[0][name]
    m = 0.09 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    if decays(name, params[name]):
        expected[name] *= 1 - lr * wd
    update = lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    expected[name] -= update
    table.append((name, m_hat, v_hat, update))
    params[name].grad[...] = g2
optimizer.step()
for name, m_hat, v_hat, update in table:
    print(f"{name}:  m̂ {m_hat.ravel()}  v̂ {v_hat.ravel()}  update {update.ravel()}")
    print(f"{'':<13} by hand {expected[name].ravel()}   AdamW {params[name].data.ravel()}")
    assert np.allclose(params[name].data, expected[name], rtol=1e-12, atol=1e-15)
assert math.isclose(table[0][3][0, 0], lr, rel_tol=1e-6) and math.isclose(table[0][3][0, 1], lr / 19, rel_tol=1e-4)
assert optimizer.t == 2 and np.allclose(optimizer.m["layer.bias"], [0.38, 0.02])  # 0.09·[2, −2] + 0.1·[2, 2]

# %% [markdown]
# **Why the bias correction.** Without it, `m` and `v` are pulled towards the zeros they
# started from, and `v` (β₂ = 0.999, a memory of about a thousand steps) far more than `m`
# (β₁ = 0.9, about ten). For a constant gradient the uncorrected step is
# $\mathrm{lr} \cdot (1 - \beta_1^t) / \sqrt{1 - \beta_2^t}$ instead of lr: 3.2 lr at the first step,
# 6.5 lr at the tenth, still 1.3 lr after a thousand steps.

# %%
for t in (1, 10, 100, 1000):
    print(f"t = {t:4d}: uncorrected step = {(1 - 0.9**t) / math.sqrt(1 - 0.999**t):.2f} · lr, corrected = 1.00 · lr")
assert math.isclose((1 - 0.9) / math.sqrt(1 - 0.999), 3.16, abs_tol=0.01)
assert math.isclose((1 - 0.9**10) / math.sqrt(1 - 0.999**10), 6.53, abs_tol=0.01)

# %% [markdown]
# **Why decoupled.** The older way to decay weights adds `λ w` to the gradient (L2
# regularisation). Inside Adam that term is then divided by `√v̂` like the rest of the
# gradient — and where the gradient is large it all but disappears. One weight `w = 3` with
# `g = 2`, λ = 0.1, lr = 0.1, first step:
#
# * Adam, no decay: `3 − 0.1 · sign(2) = 2.9`;
# * Adam with L2: the gradient becomes `2 + 0.1 · 3 = 2.3`, the step is still `0.1 · sign(2.3)`:
#   `2.9` again — the decay did nothing;
# * AdamW: `3 · (1 − 0.01) − 0.1 = 2.87` — the weight shrinks by `lr · λ · w` whatever its gradient.


# %%
def one_step(weight: float, grad: float, weight_decay: float) -> float:
    """One AdamW step on a 1×1 weight matrix; returns the new weight."""
    p = {"w.weight": Parameter(np.array([[weight]]))}
    p["w.weight"].grad[...] = grad
    AdamW(p, lr=0.1, weight_decay=weight_decay).step()
    return float(p["w.weight"].data[0, 0])


no_decay = one_step(3.0, 2.0, weight_decay=0.0)
l2_in_adam = one_step(3.0, 2.0 + 0.1 * 3.0, weight_decay=0.0)  # λ w added to the gradient
adamw = one_step(3.0, 2.0, weight_decay=0.1)
print(f"no decay {no_decay:.4f}   L2 inside Adam {l2_in_adam:.4f}   AdamW {adamw:.4f}")
assert math.isclose(no_decay, 2.9) and math.isclose(l2_in_adam, 2.9) and math.isclose(adamw, 2.87)

# %% [markdown]
# Which parameters decay: `decays(name, p)` says yes for a `…weight` with two or more axes,
# the matrices that mix features; biases, normalisation gains and shifts, token tables,
# positions and the logit scale (lesson 04) are left alone. In a transformer block (lesson 06a):

# %%
block = TransformerBlock(4, heads=2, rng=np.random.default_rng(0), dtype=np.float64)
decayed = [name for name, p in block.parameters().items() if decays(name, p)]
print("decay:   ", decayed)
print("no decay:", [name for name in block.parameters() if name not in decayed])
assert decayed == ["attn.qkv.weight", "attn.out.weight", "mlp.fc1.weight", "mlp.fc2.weight"]

# %% [markdown]
# ## The learning-rate schedule: linear warm-up, then a cosine
#
# For step `s` (counting from 0) of `S`, with `W` warm-up steps, a peak rate `base` and a
# floor `min`:
#
# $$
# \mathrm{lr}(s) = \mathrm{base} \cdot \frac{s}{W} \quad (s < W) \qquad \mathrm{lr}(s) = \mathrm{min} + (\mathrm{base}
# - \mathrm{min}) \cdot \frac{1}{2} \left( 1 + \cos \left( \pi \frac{s - W}{S - W} \right) \right) \quad (s \ge W)
# $$
#
# climbing from 0 to `base` during the warm-up, then falling from `base` to `min`.
#
# **Why the warm-up starts at lr = 0.** Look again at what the first AdamW steps do (above).
# At step 1, `m̂ = g` and `v̂ = g²` exactly, so the update is `lr · sign(g)`: every weight
# moves by the full `lr`, whatever the size of its gradient — a weight whose gradient is
# 10⁻⁶ (pure noise from one batch) moves as far as one whose gradient is 4. For the next few
# steps the moments are still averages of one or two batches' gradients, so the steps stay
# close to `±lr` and point wherever those batches happened to point. Adam's usual safeguard,
# small steps where the gradient is noisy, needs many batches in `v` to work. Starting the
# rate at 0 and raising it linearly makes those first blind steps tiny (the very first is
# exactly zero); by the time the rate is large, `m` and `v` average many batches. The cosine
# then keeps the rate near its peak for a long time and lowers it gently at the end.
#
# By hand, S = 100, W = 10, base = 1e-3, min = 0: step 5 is half-way up, 5e-4; at step 40 a
# third of the cosine has passed, `½ (1 + cos(π/3)) = 0.75`, so 7.5e-4; at step 55, half of
# it, `½ (1 + cos(π/2)) = ½`, 5e-4; at 70, `½ (1 + cos(2π/3)) = 0.25`, 2.5e-4. With
# min = 1e-4 the half-way point is `1e-4 + 9e-4 · ½ = 5.5e-4`.

# %%
S, W, base = 100, 10, 1e-3
by_hand = {0: 0.0, 5: 5e-4, 10: 1e-3, 40: 7.5e-4, 55: 5e-4, 70: 2.5e-4, 100: 0.0}
for s, lr_hand in by_hand.items():
    lr_s = warmup_cosine(s, S, W, base)
    print(f"step {s:3d}: lr {lr_s:.3e}   by hand {lr_hand:.3e}")
    assert math.isclose(lr_s, lr_hand, abs_tol=1e-15)
assert math.isclose(warmup_cosine(55, S, W, base, min_lr=1e-4), 5.5e-4)
curve = [warmup_cosine(s, S, W, base) for s in range(S + 1)]
assert curve.index(max(curve)) == W and np.all(np.diff(curve[: W + 1]) > 0)  # climbs to the peak at step W
assert np.all(np.diff(curve[W:]) <= 0)  # and never rises again

# %% [markdown]
# The curve, with and without a floor (saved as `06b_schedule.png` when `MINICLIP_LESSON_OUT`
# names a folder):

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(range(S + 1), curve, label="min_lr = 0")
ax.plot(range(S + 1), [warmup_cosine(s, S, W, base, min_lr=1e-4) for s in range(S + 1)], label="min_lr = 1e-4")
ax.axvline(W, color="grey", linestyle=":", label="end of warm-up")
ax.scatter(list(by_hand), list(by_hand.values()), color="black", s=12, zorder=3, label="by hand")
ax.set(xlabel="step", ylabel="learning rate", title="warm-up + cosine (S = 100, W = 10)")
ax.legend(fontsize=7)
show(fig, "06b_schedule.png")

# %% [markdown]
# ## What you should take away
#
# * BatchNorm normalises each channel over every pixel of every image in the batch, then
#   scales and shifts it; in training an image's output (and gradient) depends on the rest of
#   the batch, in evaluation the running statistics make it a fixed per-channel map — so call
#   `model.eval()` before using a trained model;
# * its training backward is LayerNorm's formula taken down a channel instead of across a
#   token; in evaluation it is just `dy · γ / √(running_var + ε)`;
# * AdamW's first step moves every weight by `lr` against the sign of its gradient; after
#   that, agreeing gradients keep the step near `lr` and flipping ones shrink it; the bias
#   correction removes the pull of the zero start, and the decay `lr · λ · w` is applied to
#   the weights directly, so Adam's rescaling cannot cancel it;
# * the learning rate climbs linearly from 0 during the warm-up, so that AdamW's first
#   full-size, poorly informed steps are small, and then follows half a cosine down.
#
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/06b_batch_norm_and_adamw.py`.
#
# 1. **Write the backward first: a BatchNorm without the mean.** Some networks normalise a
#    channel by its root mean square over the batch only, with no centring:
#    $y_{mc} = x_{mc} / r_c$ with $r_c = \sqrt{\frac{1}{M} \sum_{m} x_{mc}^2 + \epsilon}$ (no γ, β).
#    Derive $dx$ by hand — every value of the column moves $r_c$ — as LayerNorm's formula with
#    one term fewer, write it as a `Module`'s `backward`, and check it with `gradcheck` on a
#    random `(2, 3, 3, 2)` batch. Then check that its gradient, like BatchNorm's, has no
#    component along $y$ in each channel.
# 2. **Predict, then run: a tiny gradient.** AdamW's first step is `lr · sign(g)` only while
#    |g| is much larger than ε = 10⁻⁸. Predict the first step of a weight (lr = 0.1, no decay)
#    whose gradient is 10⁻⁶, then 10⁻⁸, then run `AdamW` to see.
# 3. **Change a number: a longer warm-up.** With S = 100 and base = 10⁻³, set W = 20 instead of
#    10. Predict the rate at steps 5, 20 and 60 by hand, then compute them with `warmup_cosine`.
print("lesson 06b passed: BatchNorm in both modes, one AdamW step by hand, the warm-up + cosine schedule")
