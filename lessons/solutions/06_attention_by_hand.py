# %% [markdown]
# # Solutions to lesson 06's exercises
#
# Each exercise of `lessons/06_attention_by_hand.py`, solved in order and checked with an assert.
# Run it from the repository root: `python lessons/solutions/06_attention_by_hand.py`.

# %%
import math

import numpy as np

from miniclip import set_device
from miniclip.layers import softmax
from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.module import Module, Parameter
from miniclip.teaching.gradcheck import gradcheck

set_device("cpu")
rng = np.random.default_rng(0)
L, D = 4, 6

# %% [markdown]
# ## Exercise 1 · Write the backward of one causal head
#
# The causal mask sets `S[i, j] = −∞` for every key `j` later than query `i`, so `P[i, j] = 0`
# there. The softmax backward `dS = P ⊙ (dP − rowsum(dP ⊙ P))` is then zero at every masked
# entry by itself: the backward of lesson 06 needs no change at all. What changes is what flows:
# token 1's output depends on token 1 only, so `dY` at token 1 reaches no later token's input.


# %%
class MyCausalHead(Module):
    """One attention head with a causal mask, forward and backward by hand (no biases)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.Wq, self.Wk, self.Wv, self.Wo = (Parameter(rng.standard_normal((D, D)) / math.sqrt(D)) for _ in range(4))

    def forward(self, X: np.ndarray) -> np.ndarray:
        self.X = X
        self.Q, self.K, self.V = X @ self.Wq.data, X @ self.Wk.data, X @ self.Wv.data  # (L, d) each
        S = self.Q @ self.K.T / math.sqrt(D)  # (L, L)
        later = np.triu(np.ones((len(X), len(X)), dtype=bool), k=1)  # key j after query i
        self.P = softmax(np.where(later, -np.inf, S), axis=1)  # (L, L): exactly 0 above the diagonal
        self.O = self.P @ self.V  # (L, d)
        return self.O @ self.Wo.data  # (L, D)

    def backward(self, dY: np.ndarray) -> np.ndarray:
        dO = dY @ self.Wo.data.T
        self.Wo.grad += self.O.T @ dY
        dP, dV = dO @ self.V.T, self.P.T @ dO
        dS = self.P * (dP - (dP * self.P).sum(axis=1, keepdims=True))  # zero wherever P is zero
        dQ, dK = dS @ self.K / math.sqrt(D), dS.T @ self.Q / math.sqrt(D)
        self.Wq.grad += self.X.T @ dQ
        self.Wk.grad += self.X.T @ dK
        self.Wv.grad += self.X.T @ dV
        return dQ @ self.Wq.data.T + dK @ self.Wk.data.T + dV @ self.Wv.data.T


X = rng.standard_normal((L, D))  # (L, D)
head = MyCausalHead(np.random.default_rng(1))
result = gradcheck(head, X.copy(), label="MyCausalHead")
print(result.report())
assert result.ok and len(result.tensors) == 5

# Against the package's causal layer, one head, biases zero:
layer = MultiHeadSelfAttention(D, heads=1, causal=True, rng=np.random.default_rng(2), dtype=np.float64)
layer.qkv.weight.data[...] = np.concatenate([head.Wq.data, head.Wk.data, head.Wv.data], axis=1)
layer.out.weight.data[...] = head.Wo.data
layer.qkv.bias.data[...] = 0.0
layer.out.bias.data[...] = 0.0
dY = rng.standard_normal((L, D))
assert np.allclose(layer(X[None])[0], head(X))
assert np.allclose(layer.backward(dY[None])[0], head.backward(dY))
# A gradient only at token 1's output reaches token 1's input alone.
only_first = np.zeros((L, D))
only_first[0] = dY[0]
head(X)
assert np.all(head.backward(only_first)[1:] == 0.0)

# %% [markdown]
# ## Exercise 2 · Predict, then run: `Wq = 0`
#
# Every query is zero, so every score is zero, and each row of `P` is uniform: `1/L = 0.25`
# everywhere. Every token then takes the plain mean of the values, so all four rows of `Y` are
# the same vector, `mean(X) Wv Wo` (biases zero). In exercise 1's causal head, row i is uniform
# over its first i keys instead, so its outputs are running means: token i gets the mean of the
# values of tokens 1 to i.

# %%
head(X)
head.Wq.data[...] = 0.0
Y = head(X)
print("P with Wq = 0:\n", head.P)
assert np.allclose(head.P[0], [1.0, 0.0, 0.0, 0.0])  # the causal head: row i is uniform over i + 1 keys
full = MultiHeadSelfAttention(D, heads=1, rng=np.random.default_rng(3), dtype=np.float64)
full.qkv.weight.data[:, :D] = 0.0  # Wq = 0
full.qkv.bias.data[...] = 0.0
full.out.bias.data[...] = 0.0
Y_full = full(X[None])[0]
Wv, Wo = full.qkv.weight.data[:, 2 * D :], full.out.weight.data
assert np.allclose(full.attention_weights[0, 0], 0.25)
assert np.allclose(Y_full, np.tile(X.mean(axis=0) @ Wv @ Wo, (L, 1)))
assert np.allclose(Y, np.cumsum(X, axis=0) / np.arange(1, L + 1)[:, None] @ head.Wv.data @ head.Wo.data)

# %% [markdown]
# ## Exercise 3 · Change a number: only one real token
#
# With the mask `[1, 0, 0, 0]` for sequence 2, every query of that sequence has one key left:
# each row of its weights is exactly `[1, 0, 0, 0]`, in every head, and every output row of
# sequence 2 is the same: token 1's value projected, `(x₁ W_v + b_v) W_o + b_o`.

# %%
X_batch = rng.standard_normal((2, L, D))  # (N, L, D)
pad_mask = np.array([[1, 1, 1, 1], [1, 0, 0, 0]], dtype=np.float64)
multi = MultiHeadSelfAttention(D, heads=2, rng=np.random.default_rng(2), dtype=np.float64)
Y_masked = multi(X_batch, key_padding_mask=pad_mask)  # (N, L, D)
print("sequence 2, head 1:\n", multi.attention_weights[1, 0])
assert np.all(multi.attention_weights[1, :, :, 0] == 1.0) and np.all(multi.attention_weights[1, :, :, 1:] == 0.0)
value_1 = X_batch[1, 0] @ multi.qkv.weight.data[:, 2 * D :] + multi.qkv.bias.data[2 * D :]  # (D,): token 1's value
expected = value_1 @ multi.out.weight.data + multi.out.bias.data
assert np.allclose(Y_masked[1], np.tile(expected, (L, 1)))

print("lesson 06 solutions: all checked")
