# %% [markdown]
# # Lesson 06 — Attention by hand
#
# Self-attention lets every token gather information from every other token, with weights
# it computes itself. One head, for one sequence $X$ of $L$ tokens of width $D$:
#
# $$
# Q = X W_q, \quad K = X W_k, \quad V = X W_v, \qquad S = \frac{Q K^{\top}}{\sqrt{d}}, \qquad
# P_{ij} = \frac{\exp(S_{ij})}{\sum_{k} \exp(S_{ik})}, \qquad O = P V, \qquad Y = O W_o
# $$
#
# with the shapes
#
#     Q, K, V   (L, D) @ (D, d) → (L, d)   queries, keys, values
#     S         (L, L)  how well query i matches key j
#     P         (L, L)  attention weights, each row sums to 1
#     O         (L, d)  each token: a weighted mean of the values
#     Y         (L, D)  back to the model's width
#
# This lesson writes that forward pass and its whole backward pass out in NumPy, checks the
# backward against central differences, then shows that the package's
# `MultiHeadSelfAttention` computes exactly the same thing, and finishes with several heads
# and the key padding mask.
#
# The code: `miniclip/layers/attention.py`.

# %%
import math

import numpy as np

from miniclip import set_device
from miniclip.layers import softmax
from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.teaching.gradcheck import gradcheck

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The forward pass, one line per equation
#
# Four tokens of width 6 and one head of width 6 (with one head, `d = D`). Everything is
# float64 so the finite differences later agree to many digits. (The package's layer also
# adds a bias after each projection; we leave biases out here and set them to zero below.)

# %%
rng = np.random.default_rng(0)
L, D = 4, 6
X = rng.standard_normal((L, D))  # (L, D): four token vectors
Wq, Wk, Wv, Wo = (rng.standard_normal((D, D)) / math.sqrt(D) for _ in range(4))  # (D, d) and (d, D)


def attention_forward(
    X: np.ndarray, Wq: np.ndarray, Wk: np.ndarray, Wv: np.ndarray, Wo: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One head, written out; returns the output and everything the backward needs."""
    d = Wq.shape[1]
    Q, K, V = X @ Wq, X @ Wk, X @ Wv  # (L, d) each
    S = Q @ K.T / math.sqrt(d)  # (L, L) scores
    P = softmax(S, axis=1)  # (L, L) each row sums to 1
    O = P @ V  # (L, d)
    Y = O @ Wo  # (L, D)
    return Y, (Q, K, V, P, O)


Y, (Q, K, V, P, O) = attention_forward(X, Wq, Wk, Wv, Wo)
print("attention weights P (row i: how much token i takes from each token j):\n", P)
print("output Y:\n", Y)
assert np.allclose(P.sum(axis=1), 1.0) and np.all(P > 0)

# %% [markdown]
# Why divide by $\sqrt{d}$: a score $q \cdot k = \sum_{m} q_m k_m$ is a sum of $d$ products. For
# independent entries of mean 0 and variance 1 each product has variance 1, so the sum has
# variance $d$ and spread $\sqrt{d}$, and wide heads would then give scores so large that the
# softmax picks one key and its gradient vanishes. Dividing by $\sqrt{d}$ keeps the scores of
# order one at any width.

# %%
for d in (4, 64, 1024):
    q, k = rng.standard_normal((2000, d)), rng.standard_normal((2000, d))
    dots = (q * k).sum(axis=1)  # 2000 scores
    print(f"d = {d:4d}: std of q·k = {dots.std():6.2f}   std of q·k/√d = {(dots / math.sqrt(d)).std():.2f}")
    assert 0.9 < (dots / math.sqrt(d)).std() < 1.1

# %% [markdown]
# ## The backward pass, step by step
#
# Take a random upstream gradient `dY = ∂ℓ/∂Y` (any scalar `ℓ` downstream; here
# `ℓ = Σ dY ⊙ Y`). Walk the forward lines in reverse; each is a matrix product or the
# softmax, and for a product `A = B C` the rule is `dB = dA Cᵀ`, `dC = Bᵀ dA`:
#
#     Y = O Wo          →  dO  = dY Woᵀ,            dWo = Oᵀ dY
#     O = P V           →  dP  = dO Vᵀ,             dV  = Pᵀ dO
#     P = softmax(S)    →  dS  = P ⊙ (dP − rowsum(dP ⊙ P))           (derived below)
#     S = Q Kᵀ / √d     →  dQ  = dS K / √d,         dK  = dSᵀ Q / √d
#     Q = X Wq, ...     →  dWq = Xᵀ dQ,  dWk = Xᵀ dK,  dWv = Xᵀ dV
#                          dX  = dQ Wqᵀ + dK Wkᵀ + dV Wvᵀ
#
# `X` is used three times (for Q, K and V), so its gradient is the sum of three terms.
#
# **The softmax backward.** One row: $p = \mathrm{softmax}(s)$. From lesson 02,
# $\frac{\partial p_j}{\partial s_k} = p_j (\delta_{jk} - p_k)$. The chain rule sums over every
# $p_j$ that $s_k$ moves (writing $dp_j$ for $\partial \ell / \partial p_j$):
#
# $$
# ds_k = \sum_{j} dp_j \, p_j (\delta_{jk} - p_k) = p_k \, dp_k - p_k \sum_{j} dp_j \, p_j
# = p_k \left( dp_k - \sum_{j} dp_j \, p_j \right)
# $$
#
# For the whole matrix, row by row: `dS = P ⊙ (dP − rowsum(dP ⊙ P))`. No `L × L` Jacobian
# per row is ever built.

# %%
dY = rng.standard_normal(Y.shape)  # (L, D): random upstream gradient


def attention_backward(
    dY: np.ndarray, X: np.ndarray, Wq: np.ndarray, Wk: np.ndarray, Wv: np.ndarray, Wo: np.ndarray, cache: tuple
) -> dict[str, np.ndarray]:
    """The backward of attention_forward, one line per rule above."""
    Q, K, V, P, O = cache
    d = Wq.shape[1]
    dO = dY @ Wo.T  # (L, d)
    dWo = O.T @ dY  # (d, D)
    dP = dO @ V.T  # (L, L)
    dV = P.T @ dO  # (L, d)
    dS = P * (dP - (dP * P).sum(axis=1, keepdims=True))  # (L, L) softmax backward
    dQ = dS @ K / math.sqrt(d)  # (L, d)
    dK = dS.T @ Q / math.sqrt(d)  # (L, d)
    dWq, dWk, dWv = X.T @ dQ, X.T @ dK, X.T @ dV  # (D, d) each
    dX = dQ @ Wq.T + dK @ Wk.T + dV @ Wv.T  # (L, D): X feeds Q, K and V
    return {"X": dX, "Wq": dWq, "Wk": dWk, "Wv": dWv, "Wo": dWo}


grads = attention_backward(dY, X, Wq, Wk, Wv, Wo, (Q, K, V, P, O))
for name, g in grads.items():
    print(f"d{name}: shape {g.shape}, largest |entry| {np.abs(g).max():.4f}")

# %% [markdown]
# ## Checking every gradient with central differences
#
# Nudge one entry of one tensor by ±ε, recompute `ℓ = Σ dY ⊙ Y`, divide the change by 2ε.
# Five tensors of at most 36 entries: a few hundred forward passes.

# %%
tensors = {"X": X, "Wq": Wq, "Wk": Wk, "Wv": Wv, "Wo": Wo}


def loss() -> float:
    return float((attention_forward(X, Wq, Wk, Wv, Wo)[0] * dY).sum())


eps = 1e-6
for name, A in tensors.items():
    numeric = np.zeros_like(A)
    for index in np.ndindex(*A.shape):  # A is perturbed in place, then restored
        original = A[index]
        A[index] = original + eps
        plus = loss()
        A[index] = original - eps
        minus = loss()
        A[index] = original
        numeric[index] = (plus - minus) / (2 * eps)
    error = np.abs(numeric - grads[name]).max() / np.abs(numeric).max()
    print(f"d{name:<3} by hand vs central differences: relative error {error:.1e}")
    assert error < 1e-7

# %% [markdown]
# ## The package's layer computes the same thing
#
# `MultiHeadSelfAttention(D, heads)` keeps the three input projections in one fused
# `Linear(D, 3D)` (its weight is `[Wq | Wk | Wv]` side by side, so one matrix product makes
# Q, K and V at once) and the output projection in `Linear(D, D)`. It takes a batch
# `(N, L, D)`. With `heads=1`, our weights copied in and the biases zero, its output and every
# gradient match ours.

# %%
layer = MultiHeadSelfAttention(D, heads=1, rng=np.random.default_rng(1), dtype=np.float64)
layer.qkv.weight.data[...] = np.concatenate([Wq, Wk, Wv], axis=1)  # (D, 3D)
layer.out.weight.data[...] = Wo  # (D, D)
layer.qkv.bias.data[...] = 0.0
layer.out.bias.data[...] = 0.0

Y_pkg = layer(X[None])  # (1, L, D): a batch of one sequence
layer.zero_grad()
dX_pkg = layer.backward(dY[None])  # (1, L, D)
dWq_pkg, dWk_pkg, dWv_pkg = np.split(layer.qkv.weight.grad, 3, axis=1)  # (D, D) each
print(f"largest difference, output: {np.abs(Y_pkg[0] - Y).max():.1e}   dX: {np.abs(dX_pkg[0] - grads['X']).max():.1e}")
assert np.allclose(Y_pkg[0], Y) and np.allclose(layer.attention_weights[0, 0], P)
assert np.allclose(dX_pkg[0], grads["X"])
for mine, theirs in [(grads["Wq"], dWq_pkg), (grads["Wk"], dWk_pkg), (grads["Wv"], dWv_pkg)]:
    assert np.allclose(mine, theirs)
assert np.allclose(layer.out.weight.grad, grads["Wo"])

# %% [markdown]
# ## Several heads
#
# With `H` heads the width `D` is cut into `H` slices of `d = D / H`. Head `h` uses the
# columns `h·d … (h+1)·d − 1` of Q, K and V: its own (narrower) queries, keys and values,
# and its own attention pattern. The heads' outputs are laid side by side again and one
# output projection mixes them. The cost is the same as one wide head, but each head can
# attend to something different (one to the previous word, another to the subject, ...).
#
# Checked by running our one-head function once per slice, with `Wo` as the identity, and
# concatenating:

# %%
H = 2
multi = MultiHeadSelfAttention(D, heads=H, rng=np.random.default_rng(2), dtype=np.float64)
multi.qkv.bias.data[...] = 0.0
multi.out.bias.data[...] = 0.0
W_q, W_k, W_v = np.split(multi.qkv.weight.data, 3, axis=1)  # (D, D) each
d = D // H
heads_out = [
    attention_forward(X, W_q[:, cols], W_k[:, cols], W_v[:, cols], np.eye(d))[0]  # (L, d): that head's O
    for cols in (slice(h * d, (h + 1) * d) for h in range(H))
]
Y_heads = np.concatenate(heads_out, axis=1) @ multi.out.weight.data  # (L, D)
Y_multi = multi(X[None])  # (1, L, D)
print(f"attention weights: shape {multi.attention_weights.shape} = (N, H, L, L)")
for h in range(H):
    print(f"head {h + 1}:\n", multi.attention_weights[0, h])
assert np.allclose(Y_multi[0], Y_heads)
assert not np.allclose(multi.attention_weights[0, 0], multi.attention_weights[0, 1])  # each head its own pattern

# %% [markdown]
# ## The key padding mask
#
# In a batch, short captions are padded (lesson 05). A real token must not take anything
# from padding, so the score of every padded *key* is set to −∞ before the softmax: $e^{-\infty} = 0$
# gives it exactly zero weight, and the remaining weights of the row still sum to 1. Below,
# the second sequence (sequence 2, `X_batch[1]`) has 2 real tokens and 2 padded ones (tokens 3
# and 4). As in the earlier lessons, the text and the printout count sequences, heads and tokens
# from 1, the code from 0.

# %%
X_batch = rng.standard_normal((2, L, D))  # (N, L, D)
pad_mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=np.float64)  # (N, L): 1 = real, 0 = padding
Y_masked = multi(X_batch, key_padding_mask=pad_mask)  # (N, L, D)
weights = multi.attention_weights  # (N, H, L, L)
print("sequence 2, head 1 (rows: queries, columns: keys; keys 3 and 4 are padding):\n", weights[1, 0])
assert np.all(weights[1, :, :, 2:] == 0.0)  # padded keys: exactly zero weight, every head, every query
assert np.allclose(weights.sum(axis=-1), 1.0)
assert np.all(weights[0] > 0)  # the unpadded sequence attends everywhere

# %% [markdown]
# So whatever sits in the padded positions cannot change the real tokens' outputs (the
# padded *queries* still compute something, which pooling then ignores):

# %%
X_other = X_batch.copy()
X_other[1, 2:] = 100.0 * rng.standard_normal((2, D))  # different garbage in the padding
Y_other = multi(X_other, key_padding_mask=pad_mask)
print(f"change at the real tokens of sequence 2: {np.abs(Y_other[1, :2] - Y_masked[1, :2]).max():.1e}")
assert np.allclose(Y_other[1, :2], Y_masked[1, :2])
assert np.allclose(Y_other[0], Y_masked[0])  # the other sequence is untouched too

# %% [markdown]
# ## Gradient check of the package layer
#
# `gradcheck` checks the input and all four parameters (fused qkv weight and bias, output
# weight and bias) of a two-head layer over a padded batch, against central differences.

# %%
check_layer = MultiHeadSelfAttention(D, heads=2, rng=np.random.default_rng(3), dtype=np.float64)
result = gradcheck(check_layer, X_batch.copy(), kwargs={"key_padding_mask": pad_mask}, label="MultiHeadSelfAttention")
print(result.report())
assert result.ok and len(result.tensors) == 5

# %% [markdown]
# ## What you should take away
#
# * attention is three projections, one scaled score matrix, a row softmax and a weighted
#   mean of the values; every step's backward is a matrix-product rule or the softmax rule
#   `dS = P ⊙ (dP − rowsum(dP ⊙ P))`;
# * a token that feeds queries, keys and values collects all three gradients;
# * several heads are the same computation on slices of the width; the padding mask gives
#   padded keys exactly zero weight, so padding cannot leak into real tokens.

# %%
print("lesson 06 passed: attention by hand = MultiHeadSelfAttention, forward and backward")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/06_attention_by_hand.py`.
#
# 1. **Write the backward first: one causal head.** A causal head sets the score of every key
#    later than its query to −∞ (token $i$ sees tokens 1 to $i$). Write a `Module` for one head
#    with this mask (weights `Wq`, `Wk`, `Wv`, `Wo` as `Parameter`s, no biases), derive what its
#    backward must change compared with `attention_backward` above, write it, and check it with
#    `gradcheck` and against `MultiHeadSelfAttention(D, heads=1, causal=True)`. Which inputs does
#    a gradient at token 1's output reach?
# 2. **Predict, then run: queries of zero.** Set `Wq` to zero. Predict every attention weight and
#    how the four rows of the output compare, for the lesson's head and for the causal head of
#    exercise 1.
# 3. **Change a number: one real token.** Change sequence 2's mask to `[1, 0, 0, 0]`. Predict its
#    attention weights in every head and its four output rows (in terms of token 1's value and
#    the layer's weights and biases), then run.
