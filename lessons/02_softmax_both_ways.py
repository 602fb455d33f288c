# %% [markdown]
# # Lesson 02 — Softmax both ways, and why the gradient is P − Y
#
# CLIP scores every caption against every image in one square matrix of logits
# `S[i, j]` (caption i against image j; pair i sits on the diagonal). The loss reads
# that matrix twice, each direction named by *query→what it ranks* as in lesson 01:
#
# * **text→image**, along each **row**: for caption i, which image is its own? A softmax
#   over the row;
# * **image→text**, along each **column**: for image j, which caption is its own? A softmax
#   over the column.
#
# Each direction is a cross-entropy against the targets `Y`, here the identity matrix
# (pair i is caption i with image i), and the loss is their mean. This lesson computes both
# by hand, then derives the one line that makes the whole backward pass start so simply:
#
# $$
# \frac{\partial L}{\partial S} = \frac{(P_{\mathrm{rows}} - Y) + (P_{\mathrm{cols}} - Y)}{2N}
# $$
#
# and checks it numerically, first with a ten-line loop, then with `miniclip.teaching.gradcheck`.
#
# As in lesson 01, pairs are counted from 1 in the text (caption 1 is "big table") and from
# 0 in the code: caption 1's row is `S[0]`.
#
# The code: `miniclip/layers/softmax.py`, `miniclip/layers/contrastive_loss.py` and `miniclip/teaching/gradcheck.py`.

# %%
import math
from fractions import Fraction

import numpy as np

from miniclip import set_device
from miniclip.layers import ContrastiveLoss, log_softmax, softmax
from miniclip.teaching.gradcheck import gradcheck
from miniclip.teaching.walkthrough import compute_walkthrough

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The logits
#
# The logits the walkthrough of lesson 01 ends its forward pass with (`miniclip walkthrough`,
# step 9): small integers, so that `3^x` can be done in your head. The model is untrained
# and it shows: caption 2 ("small dog") scores image 3 (3) above its own image 2 (2), and
# image 3 scores caption 2 above its own caption 3 ("red car", 1); captions 1 and 3, and
# images 1 and 2, already pick their partner.

# %%
S = np.array(
    [
        [1.0, 0.0, -2.0],
        [-2.0, 2.0, 3.0],
        [0.0, -2.0, 1.0],
    ]
)  # (N, N): S[i, j] = caption i · image j (0-based)
N = S.shape[0]
Y = np.eye(N)  # (N, N): the targets, pair i is (caption i, image i)
print("S =\n", S)
assert np.array_equal(S, compute_walkthrough(base=3)["logits"])  # the same numbers as lesson 01

# %% [markdown]
# ## Softmax by rows and by columns, base 3 beside base e
#
# $$
# \mathrm{softmax}_b(x)_j = \frac{b^{x_j}}{\sum_{k} b^{x_k}}
# $$
#
# With base 3 and integer logits every number is a
# fraction you can write down. Negative logits give powers like `3^-2 = 1/9`; multiplying
# top and bottom by `3^2` clears them: row 1, `[1, 0, −2]`, is `[3, 1, 1/9]`, which becomes
# `[27, 9, 1] / 37`; row 2, `[−2, 2, 3]`, becomes `[1, 81, 243] / 325`. Base e is what
# real models use; base 3 behaves the same way (it *is* base e applied to `x · ln 3`) and is
# kinder to mental arithmetic.


# %%
def by_hand(row: np.ndarray) -> list[Fraction]:
    """Base-3 softmax of integer logits as exact fractions: 3^x / Σ 3^x (shifted to whole powers)."""
    low = int(row.min())
    powers = [3 ** (int(v) - low) for v in row]  # 3^(x − min): the same ratios, no fractions of 3
    return [Fraction(p, sum(powers)) for p in powers]


P_rows3 = softmax(S, axis=1, base=3)  # (N, N): each row sums to 1
P_cols3 = softmax(S, axis=0, base=3)  # (N, N): each column sums to 1
P_rows_e = softmax(S, axis=1)  # (N, N): base e
P_cols_e = softmax(S, axis=0)  # (N, N)

for i in range(N):  # printed counting from 1, like the pairs
    fractions = ", ".join(str(f) for f in by_hand(S[i]))
    print(f"row {i + 1}:    base 3 = [{fractions}] = {P_rows3[i]}   base e = {P_rows_e[i]}")
for j in range(N):
    fractions = ", ".join(str(f) for f in by_hand(S[:, j]))
    print(f"column {j + 1}: base 3 = [{fractions}] = {P_cols3[:, j]}   base e = {P_cols_e[:, j]}")

# The package agrees with the fractions, and base 3 is base e on logits scaled by ln 3.
for i in range(N):
    assert np.allclose(P_rows3[i], [float(f) for f in by_hand(S[i])])
    assert np.allclose(P_cols3[:, i], [float(f) for f in by_hand(S[:, i])])
assert np.allclose(P_rows3.sum(axis=1), 1) and np.allclose(P_cols3.sum(axis=0), 1)
assert np.allclose(P_rows3, softmax(S * math.log(3), axis=1))
# The two directions really differ: caption 2 gives its own image only 81/325 (image 3 takes
# 243/325), while image 2 gives caption 2 a share of 81/91 (captions 1 and 3 score it lower).
assert by_hand(S[0]) == [Fraction(27, 37), Fraction(9, 37), Fraction(1, 37)]
assert math.isclose(P_rows3[1, 1], 81 / 325) and math.isclose(P_cols3[1, 1], 81 / 91)

# %% [markdown]
# ## Why subtracting the maximum is safe
#
# $$
# \frac{b^{x_j - m}}{\sum_{k} b^{x_k - m}} = \frac{b^{x_j} / b^m}{\sum_{k} b^{x_k} / b^m}
# = \frac{b^{x_j}}{\sum_{k} b^{x_k}}
# $$
#
# The factor $b^m$ cancels, so any shift $m$ leaves the softmax unchanged. Choosing `m = max x` makes the
# largest exponent `b^0 = 1` and every other one smaller, so nothing can overflow. Without
# it, logits of a few hundred already overflow float64 (`e^710 = inf`) and `inf / inf`
# is `nan`.

# %%
big = np.array([[1000.0, 999.0, 998.0]])  # (1, 3)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(big) / np.exp(big).sum(axis=1, keepdims=True)
stable = softmax(big, axis=1)
print("naive exp:", naive, "   shifted by the max:", stable)
assert np.isnan(naive).all()
assert np.allclose(stable, softmax(big - 1000.0, axis=1))  # the same as the small logits [0, -1, -2]
assert np.allclose(softmax(S + 100.0, axis=1, base=3), P_rows3)  # a shift changes nothing

# %% [markdown]
# ## Cross-entropy against the identity, in each direction
#
# For each row `i` the target puts all its mass on column `i`, so the cross-entropy is just
# `−log_b P_rows[i, i]`; average over the `N` rows. The column direction is the same with
# `P_cols`. The log is taken in the same base as the softmax (see below for why).
#
# $$
# L_{\mathrm{rows}} = -\frac{1}{N} \sum_{i} \log_{b} P_{\mathrm{rows}}[i, i] \qquad
# L_{\mathrm{cols}} = -\frac{1}{N} \sum_{j} \log_{b} P_{\mathrm{cols}}[j, j] \qquad
# L = \frac{L_{\mathrm{rows}} + L_{\mathrm{cols}}}{2}
# $$

# %%
L_rows = -np.trace(log_softmax(S, axis=1, base=3)) / N
L_cols = -np.trace(log_softmax(S, axis=0, base=3)) / N
head = ContrastiveLoss(base=3)
L = float(head(S))
print(f"L_rows = {L_rows:.4f}   L_cols = {L_cols:.4f}   L = {L:.4f}  (base 3, in 'trits')")

# By hand, from the diagonals: rows 27/37, 81/325, 27/37; columns 27/37, 81/91, 27/271.
assert math.isclose(L_rows, -(math.log(27 / 37, 3) + math.log(81 / 325, 3) + math.log(27 / 37, 3)) / 3)
assert math.isclose(L_cols, -(math.log(27 / 37, 3) + math.log(81 / 91, 3) + math.log(27 / 271, 3)) / 3)
assert L_cols > L_rows  # image 3's 27/271 for its own caption costs log_3(271/27) ≈ 2.1 on its own
assert math.isclose(L, (L_rows + L_cols) / 2)

# %% [markdown]
# ## Deriving the gradient of one row
#
# Take one row $x$ (length $N$) whose correct column is $i$. Write $Z = \sum_{k} b^{x_k}$ and
# $p_k = b^{x_k} / Z$. Remember $\frac{d}{dx} b^x = b^x \ln b$.
#
# **Step 1, the softmax (quotient rule).** $p_i = b^{x_i} / Z$ and $\frac{\partial Z}{\partial x_j} = b^{x_j} \ln b$.
#
# * Case $j = i$: the numerator depends on $x_i$ too:
#
# $$
# \frac{\partial p_i}{\partial x_i} = \frac{b^{x_i} \ln b \cdot Z - b^{x_i} \cdot b^{x_i} \ln b}{Z^2}
# = \ln b \cdot p_i (1 - p_i)
# $$
#
# * Case $j \ne i$: only the denominator depends on $x_j$:
#
# $$
# \frac{\partial p_i}{\partial x_j} = \frac{0 \cdot Z - b^{x_i} \cdot b^{x_j} \ln b}{Z^2} = -\ln b \cdot p_i p_j
# $$
#
# **Step 2, the log.** $\ell = -\log_{b} p_i = -\ln p_i / \ln b$, so
# $\frac{\partial \ell}{\partial x_j} = -\frac{1}{p_i \ln b} \cdot \frac{\partial p_i}{\partial x_j}$:
#
# * $j = i$: $-\frac{1}{p_i \ln b} \cdot \ln b \cdot p_i (1 - p_i) = p_i - 1$
# * $j \ne i$: $-\frac{1}{p_i \ln b} \cdot \left( -\ln b \cdot p_i p_j \right) = p_j$
#
# Both cases in one line, the probabilities minus the one-hot target:
#
# $$
# \frac{\partial \ell}{\partial x_j} = p_j - [i = j]
# $$
#
# Over all rows at once: the matrix `P_rows − Y`.
#
# **Why the same base on both sides.** The $\ln b$ from differentiating $b^x$ (step 1) is
# cancelled by the $1 / \ln b$ of $\log_{b}$ (step 2). Had we paired a base-3 softmax with a
# natural log, every gradient would carry an extra factor `ln 3 ≈ 1.0986`. With matching
# bases the gradient is exactly `P − Y` whatever the base.
#
# **Both directions and the mean.** `L_rows` averages `N` row losses, so its gradient is
# `(P_rows − Y) / N`. A column loss is the same computation on a column: its gradient is the
# matching column of `P_cols − Y`, so `L_cols` contributes `(P_cols − Y) / N`. Each logit
# appears in exactly one row and one column, the two contributions add, and the final `/2`
# averages the directions:
#
# $$
# \frac{\partial L}{\partial S} = \frac{(P_{\mathrm{rows}} - Y) + (P_{\mathrm{cols}} - Y)}{2N}
# $$
#
# A check you can do by eye: every row of `P_rows − Y` and every column of `P_cols − Y` sums
# to zero, so the gradient's entries sum to zero. That must be so: adding the same number to
# every logit changes no softmax, so it cannot change the loss.

# %%
dS_formula = ((P_rows3 - Y) + (P_cols3 - Y)) / (2 * N)  # (N, N)
dS = head.backward(1.0)  # (N, N): what ContrastiveLoss.backward returns
print("P_rows − Y =\n", P_rows3 - Y)
print("P_cols − Y =\n", P_cols3 - Y)
print("dL/dS = ((P_rows − Y) + (P_cols − Y)) / (2N) =\n", dS)
assert np.allclose(dS, dS_formula)
assert abs(dS.sum()) < 1e-12  # a shift of all logits cannot change the loss

# %% [markdown]
# ## Checking it numerically, by hand
#
# The definition of a derivative, made symmetric: nudge one logit up by $\varepsilon$, then down,
# and divide the change in loss by $2\varepsilon$:
#
# $$
# \frac{\partial L}{\partial S_{ij}} \approx \frac{L(S + \varepsilon E_{ij}) - L(S - \varepsilon E_{ij})}{2 \varepsilon}
# $$
#
# with $E_{ij}$ the matrix that is 1 at $(i, j)$ and 0 elsewhere. The error of this *central
# difference* shrinks like $\varepsilon^2$, so with `eps = 1e-6` in float64 it matches the
# formula to about eight digits.

# %%
eps = 1e-6
numeric = np.zeros_like(S)  # (N, N)
for i in range(N):
    for j in range(N):
        step = np.zeros_like(S)
        step[i, j] = eps
        plus = float(ContrastiveLoss(base=3)(S + step))
        minus = float(ContrastiveLoss(base=3)(S - step))
        numeric[i, j] = (plus - minus) / (2 * eps)
print("central differences =\n", numeric)
print(f"largest difference from backward: {np.abs(numeric - dS).max():.2e}")
assert np.abs(numeric - dS).max() < 1e-8

# %% [markdown]
# ## The same check with `miniclip.teaching.gradcheck`
#
# `gradcheck` does this loop for every input and parameter of any module, with a random
# upstream gradient, and reports a relative error. It is how every layer in miniclip is
# tested. Base e and base 3 both pass.

# %%
for base, name in [(3.0, "base 3"), (math.e, "base e")]:
    result = gradcheck(ContrastiveLoss(base=base), S.copy(), label=f"ContrastiveLoss ({name})")
    print(result.report())
    assert result.ok

# %% [markdown]
# ## Mixing bases makes `ln b` visible
#
# Put a natural log on top of the base-3 softmax and the loss is measured in nats instead of
# trits: `L · ln 3`. That is a base-e head applied to `z = S · ln 3` (same probabilities).
# By the chain rule through `z`, its gradient with respect to `S` is `ln 3` times the
# base-e head's `P − Y` term: the stray factor that matching bases removes.

# %%
ln3 = math.log(3)
head_e = ContrastiveLoss()  # base e
assert math.isclose(float(head_e(S * ln3)), L * ln3)  # same probabilities, loss in nats
dS_mixed = head_e.backward(1.0) * ln3  # (N, N): chain rule through z = S · ln 3
step = np.zeros_like(S)
step[2, 2] = eps
numeric_22 = (float(head_e((S + step) * ln3)) - float(head_e((S - step) * ln3))) / (2 * eps)
print(f"dL/dS[2, 2] (pair 3): matching bases {dS[2, 2]:+.4f}, natural log on base 3 {dS_mixed[2, 2]:+.4f} (× ln 3)")
assert math.isclose(numeric_22, dS_mixed[2, 2], rel_tol=1e-7)
assert np.allclose(dS_mixed, dS * ln3)

# %% [markdown]
# ## What you should take away
#
# * softmax by rows (text→image) asks "which image for this caption?", by columns
#   (image→text) "which caption for this image?"; the CLIP loss averages the two
#   cross-entropies;
# * subtracting the maximum changes nothing mathematically and prevents overflow;
# * with the log in the softmax's own base, `d(−log p_i)/dx = p − onehot(i)`, so the whole
#   head's backward is `((P_rows − Y) + (P_cols − Y)) / (2N)`: no Jacobian ever needs to be built.
#
# Outlook: when two captions in a batch are identical, the identity is the wrong target; lesson
# 08 makes `Y` soft (label-aware) targets, and the same derivation still gives `(P − Y) / N`.

# %%
print("lesson 02 passed: dL/dS = ((P_rows − Y) + (P_cols − Y)) / (2N), checked twice")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/02_softmax_both_ways.py`.
#
# 1. **Derive: one row's gradient as fractions.** For caption 2's row `x = [−2, 2, 3]` (right
#    column 2) and base 3, write $\partial \ell / \partial x_j$ as three exact fractions using
#    $p_j - [i = j]$, check that they sum to zero, and compare them with central differences of
#    $\ell(x) = -\log_{3} \mathrm{softmax}_3(x)_2$ (`miniclip.teaching.gradcheck.numerical_gradient`).
# 2. **Write the backward first: `log_softmax` on its own.** Derive the backward of
#    $y_j = \log_{b} \mathrm{softmax}_b(x)_j$ for any upstream gradient $g$ (not only a one-hot
#    one): show that $\partial y_j / \partial x_k = [j = k] - p_k$, so the base cancels once more,
#    and that $dx_k = g_k - p_k \sum_{j} g_j$. Write it as a `Module` (row-wise, keeping `p`) and
#    check it with `gradcheck` in base 3 and base e.
# 3. **Predict, then run: shift one column.** Add 5 to every logit of column 3 (`S[:, 2] += 5`).
#    Before running, say which of `P_rows`, `P_cols`, `L_rows`, `L_cols` change, which diagonal
#    entries of `P_rows` rise or fall, and what the gradient's entries sum to.
