# %% [markdown]
# # Lesson 06a — LayerNorm, GELU and the transformer block
#
# Lesson 06 built attention. A transformer does not stack bare attention layers: it wraps
# each one, and a small per-token network after it, in the same pattern, the *pre-norm
# block* of GPT-2 and CLIP:
#
#     h = x + Attention(LayerNorm₁(x))          (N, L, D) → (N, L, D)
#     y = h + MLP(LayerNorm₂(h))                MLP(z) = GELU(z W₁ + b₁) W₂ + b₂
#
# Three new pieces are in it — the LayerNorm, the GELU inside the MLP, and the residual
# additions `x + …` — and this lesson derives each one's forward and backward on numbers
# small enough to check by hand, checks every hand-derived gradient against the layer's
# `backward` and against central differences (in float64), and then puts the block
# together and checks it whole. Lessons 07–10 use all of it: the ViT and the text
# transformer are stacks of these blocks.
#
# The code: `layer_norm.py`, `gelu.py`, `mlp.py` and `transformer_block.py` in `miniclip/layers/`.

# %%
import math

import numpy as np

from miniclip import Module, set_device
from miniclip.layers import GELU, MLP, LayerNorm, TransformerBlock
from miniclip.teaching.gradcheck import gradcheck, numerical_gradient

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True, linewidth=120)


def central_differences(layer: Module, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """∂ℓ/∂x for ℓ = Σ dy ⊙ layer(x), one entry at a time by central differences (x is nudged in place)."""
    return numerical_gradient(lambda: float((layer(x) * dy).sum()), x)


# %% [markdown]
# ## LayerNorm: every token to mean 0 and spread 1
#
# A token's vector can drift to any size as it passes through many layers. LayerNorm puts
# each token back on a common scale, using only that token's own `D` numbers:
#
# $$
# \mu = \frac{1}{D} \sum_{i} x_i \qquad \sigma = \sqrt{\frac{1}{D} \sum_{i} (x_i - \mu)^2 + \epsilon} \qquad \hat{x}_i
# = \frac{x_i - \mu}{\sigma} \qquad y_i = \gamma_i \hat{x}_i + \beta_i
# $$
#
# `γ` (the layer's `weight`, ones at the start) and `β` (`bias`, zeros) are learned, so the
# network can undo the normalisation where it helps. `ε = 10⁻⁵` only guards against a
# constant token (σ = 0); it moves the numbers below in the sixth digit.
#
# Two tokens of width D = 5, chosen so that both have σ = 2:
#
# * `[2, 4, 5, 6, 8]`: μ = 5, x − μ = `[−3, −1, 0, 1, 3]`, mean square (9+1+0+1+9)/5 = 4;
# * `[1, 1, 1, 1, 6]`: μ = 2, x − μ = `[−1, −1, −1, −1, 4]`, mean square (4·1 + 16)/5 = 4.
#
# So x̂ is `[−1.5, −0.5, 0, 0.5, 1.5]` and `[−0.5, −0.5, −0.5, −0.5, 2]`.

# %%
x = np.array([[2.0, 4.0, 5.0, 6.0, 8.0], [1.0, 1.0, 1.0, 1.0, 6.0]])  # (tokens, D) = (2, 5)
x_hat_by_hand = np.array([[-1.5, -0.5, 0.0, 0.5, 1.5], [-0.5, -0.5, -0.5, -0.5, 2.0]])
norm = LayerNorm(5, dtype=np.float64)
y = norm(x)  # (2, 5); γ = 1, β = 0, so y = x̂
print("x:\n", x)
print("LayerNorm(x):\n", y)
assert np.allclose(y, x_hat_by_hand, atol=1e-5)
assert np.allclose(y.mean(axis=1), 0.0) and np.allclose(y.std(axis=1), 1.0, atol=1e-5)

# %% [markdown]
# Each token is normalised alone (the second token's numbers never enter the first's
# statistics), and a token scaled or shifted as a whole comes out the same: LayerNorm
# forgets the overall level and size of a vector and keeps its *pattern*. A learned gain
# and shift then act per feature.

# %%
assert np.allclose(norm(10 * x + 3), y, atol=1e-6)  # scale and shift each token: the same output
assert np.allclose(norm(x[:1]), y[:1])  # one token alone: the same output as in the pair
norm.weight.data[...] = [1.0, 2.0, 1.0, 1.0, 0.5]  # γ
norm.bias.data[...] = [0.0, 0.0, 1.0, 0.0, 0.0]  # β
print("with γ = [1, 2, 1, 1, 0.5], β = [0, 0, 1, 0, 0]:\n", norm(x))
assert np.allclose(norm(x), x_hat_by_hand * norm.weight.data + norm.bias.data, atol=1e-5)
norm.weight.data[...], norm.bias.data[...] = 1.0, 0.0  # back to γ = 1, β = 0 for the backward

# %% [markdown]
# ## LayerNorm backward, derived
#
# The gain and shift are easy: `y = γ ⊙ x̂ + β`, summed over every token that used them,
#
#     dγ = Σ_tokens dy ⊙ x̂          dβ = Σ_tokens dy          and the gradient reaching x̂ is  ĝ = dy ⊙ γ.
#
# The input is the interesting part, because moving one entry `x_j` moves *every* `x̂_i`:
# through its own numerator (if i = j), through the mean, and through σ. With
# $\partial \mu / \partial x_j = 1/D$ and $\partial \sigma / \partial x_j = (x_j - \mu)/(D \sigma) = \hat{x}_j / D$,
#
# $$
# \frac{\partial \hat{x}_i}{\partial x_j} = \frac{\delta_{ij} - 1/D}{\sigma} - \frac{x_i - \mu}{\sigma^2} \cdot
# \frac{\hat{x}_j}{D} = \frac{1}{\sigma} \left( \delta_{ij} - \frac{1}{D} - \frac{\hat{x}_i \hat{x}_j}{D} \right)
# $$
#
# and summing $\hat{g}_i \, \partial \hat{x}_i / \partial x_j$ over i:
#
# $$
# dx_j = \frac{1}{\sigma} \left( \hat{g}_j - \frac{1}{D} \sum_{i} \hat{g}_i - \hat{x}_j \cdot \frac{1}{D} \sum_{i}
# \hat{g}_i \hat{x}_i \right)
# $$
#
# Read it as: take the incoming gradient, remove its mean (shifting the whole token changes
# nothing, so that direction gets no gradient), remove its component along x̂ (scaling the
# token changes nothing either), divide by σ. Both facts can be checked on the result:
# `Σ_j dx_j = 0` and `Σ_j dx_j x̂_j = 0` (the second exactly only for ε = 0, since ε makes
# the mean square of x̂ a hair below 1).
#
# By hand, for the first token with γ = 1 and `dy = [3, 0, 0, 0, 1]`: ĝ = dy, mean(ĝ) = 0.8,
# ĝ ⊙ x̂ = `[−4.5, 0, 0, 0, 1.5]` with mean −0.6, so
#
#     dx = ½ ([3, 0, 0, 0, 1] − 0.8 + 0.6 · [−1.5, −0.5, 0, 0.5, 1.5])
#        = ½ [1.3, −1.1, −0.8, −0.5, 1.1] = [0.65, −0.55, −0.4, −0.25, 0.55]
#
# For the second token take `dy = [0, 1, 0, 0, 0]`: mean(ĝ) = 0.2, mean(ĝ ⊙ x̂) = −0.1, and
# `dx = ½ ([0, 1, 0, 0, 0] − 0.2 + 0.1 · x̂) = [−0.125, 0.375, −0.125, −0.125, 0]`.

# %%
dy = np.array([[3.0, 0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0]])  # (2, 5): an upstream gradient
dx_by_hand = np.array([[0.65, -0.55, -0.4, -0.25, 0.55], [-0.125, 0.375, -0.125, -0.125, 0.0]])


def layer_norm_backward(dy: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float) -> np.ndarray:
    """dx of LayerNorm, the formula above written out (no caches, recomputed from x)."""
    mu = x.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    x_hat, g = (x - mu) / sigma, dy * gamma
    return (g - g.mean(axis=-1, keepdims=True) - x_hat * (g * x_hat).mean(axis=-1, keepdims=True)) / sigma


norm(x)
norm.zero_grad()
dx_layer = norm.backward(dy)  # (2, 5)
dx_formula = layer_norm_backward(dy, x, norm.weight.data, norm.eps)
dx_numeric = central_differences(norm, x, dy)
print("dx by hand:\n", dx_by_hand)
print("dx, LayerNorm.backward:\n", dx_layer)
print("dx, central differences:\n", dx_numeric)
print("dγ =", norm.weight.grad, "  dβ =", norm.bias.grad)
assert np.allclose(dx_layer, dx_by_hand, atol=1e-5)  # the hand numbers, up to ε
assert np.allclose(dx_layer, dx_formula, rtol=1e-12, atol=1e-14)  # the formula, exactly
assert np.allclose(dx_layer, dx_numeric, atol=1e-8)
assert np.allclose(dx_layer.sum(axis=1), 0.0)  # no gradient for shifting a token
assert np.allclose((dx_layer * y).sum(axis=1), 0.0, atol=1e-5)  # none for scaling it (y = x̂ here; exact for ε = 0)
assert np.allclose(norm.weight.grad, (dy * x_hat_by_hand).sum(axis=0), atol=1e-5)
assert np.array_equal(norm.bias.grad, dy.sum(axis=0))

# %% [markdown]
# ## GELU: a smooth ReLU
#
# The MLP of a transformer uses GELU instead of ReLU: `GELU(x) = x · Φ(x)`, the input times
# the probability that a standard normal variable is below it. Large positive x pass almost
# unchanged, large negative x are almost zeroed, as with ReLU; near 0 the curve is smooth
# and dips a little below zero (its minimum is about −0.17 at x ≈ −0.75), so small negative
# inputs still pass a gradient. NumPy has no `erf`, so the layer uses the tanh approximation
# of GPT-2 (and PyTorch's `approximate="tanh"`):
#
# $$
# u = \sqrt{2/\pi} \left( x + 0.044715 \, x^3 \right) \qquad t = \tanh(u) \qquad y = \frac{1}{2} x (1 + t)
# $$
#
# Its derivative, by the product rule with $dt/du = 1 - t^2$:
#
# $$
# \frac{dy}{dx} = \frac{1}{2} (1 + t) + \frac{1}{2} x (1 - t^2) \cdot \sqrt{2/\pi} \left( 1 + 3 \cdot 0.044715 \, x^2
# \right)
# $$
#
# At x = 0: t = 0, so y = 0 and dy/dx = ½ exactly. At x = 1: u = 0.7979 · 1.0447 = 0.8336,
# t = 0.6824, y = ½ · 1.6824 = 0.8412 (the exact x Φ(x) is 0.8413), and
# dy/dx = 0.8412 + ½ · 0.5344 · 0.7979 · 1.1341 = 1.0830: a slope above 1 just past the bend.
# Python's `math.erf` gives the exact GELU to compare with.

# %%
xs = np.array([-3.0, -2.0, -1.0, -0.75, 0.0, 0.5, 1.0, 2.0, 3.0])  # (9,)
gelu = GELU()
ys = gelu(xs)
exact = np.array([v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in xs])  # x Φ(x)
t = np.tanh(math.sqrt(2 / math.pi) * (xs + 0.044715 * xs**3))
slope_by_hand = 0.5 * (1 + t) + 0.5 * xs * (1 - t**2) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * xs**2)
ones = np.ones_like(xs)
slope_layer = gelu.backward(ones)  # dy = 1 everywhere: the backward returns the slope itself
slope_numeric = central_differences(gelu, xs.copy(), ones)
print("    x    ReLU    GELU  exact xΦ(x)   slope: by hand   backward   central diff.")
for row in zip(xs, np.maximum(xs, 0), ys, exact, slope_by_hand, slope_layer, slope_numeric, strict=True):
    print(f"{row[0]:5.2f} {row[1]:7.3f} {row[2]:7.4f} {row[3]:12.4f} {row[4]:16.4f} {row[5]:10.4f} {row[6]:14.4f}")
assert np.abs(ys - exact).max() < 1e-3  # the approximation is good to a few 1e-4
assert ys[4] == 0.0 and slope_layer[4] == 0.5  # x = 0: y = 0 and slope ½, exactly
assert math.isclose(ys[6], 0.8412, abs_tol=1e-4) and math.isclose(slope_layer[6], 1.0830, abs_tol=1e-4)
assert ys.min() < 0 and math.isclose(ys.min(), -0.17, abs_tol=0.01)  # the dip, at x = −0.75
assert np.allclose(slope_layer, slope_by_hand) and np.allclose(slope_layer, slope_numeric, atol=1e-8)

# %% [markdown]
# ## The MLP: widen, GELU, narrow, one token at a time
#
# `MLP(D, hidden)` is `Linear(D, hidden) → GELU → Linear(hidden, D)`, with hidden = 4·D in
# CLIP. It acts on every token separately — the same weights, no mixing across positions
# (mixing is attention's job) — so changing one token changes only that token's output. Its
# backward is the three backwards in reverse order, each from its own file: `fc2`, `gelu`,
# `fc1`.

# %%
rng = np.random.default_rng(0)
D = 4
mlp = MLP(D, 4 * D, rng=rng, dtype=np.float64)
tokens = rng.standard_normal((2, 3, D))  # (N, L, D)
before = mlp(tokens)  # (N, L, D)
changed = tokens.copy()
changed[0, 1] += 5.0  # change one token
after = mlp(changed)
moved = np.abs(after - before).max(axis=-1)  # (N, L): how far each token's output moved
print("how far each output token moved when token (0, 1) changed:\n", moved)
assert moved[0, 1] > 0 and np.count_nonzero(moved) == 1

mlp(tokens)
mlp.zero_grad()
d_tokens = rng.standard_normal(tokens.shape)  # (N, L, D): an upstream gradient
by_chain = mlp.fc1.backward(mlp.activation.backward(mlp.fc2.backward(d_tokens)))  # the chain, run by hand
mlp(tokens)
mlp.zero_grad()
assert np.allclose(mlp.backward(d_tokens), by_chain)
result = gradcheck(mlp, tokens.copy(), label="MLP")
print(result.report())
assert result.ok

# %% [markdown]
# ## Residual connections: the gradient's straight road
#
# A residual layer adds its input back: `y = x + f(x)`. `x` is used twice — directly and
# inside f — so its gradient is the sum of both uses (lesson 03's rule for a value used
# twice):
#
# $$
# dx = dy + f^{\top}(dy)
# $$
#
# where $f^{\top}(g)$ is f's backward applied to g. The first term reaches `x` untouched,
# however many layers sit in between. Without it, the gradient is multiplied by every layer's
# Jacobian in turn. Twelve MLPs of width 8, the same weights throughout, changed one thing at
# a time:
#
# 1. **plain**, `h ← fₖ(h)`: with weights initialised to keep activations small, every layer
#    shrinks the activations and the gradient with them;
# 2. **LayerNorm, no skip**, `h ← fₖ(LayerNorm(h))`: each LayerNorm puts its input back on
#    the unit scale (and its backward divides by the small σ), so the gradient keeps its
#    *size* — but it is still a product of twelve Jacobians, so its *direction* has nothing
#    left of the gradient that arrived;
# 3. **LayerNorm and skip**, `h ← h + fₖ(LayerNorm(h))`, the pre-norm residual: the skip
#    alone is what changed from 2, and it hands `dy` itself down to `x`.
#
# For each, the size `|dx| / |dy|` and the cosine between `dx` and `dy` (1: the arriving
# gradient came through unchanged in direction; near 0: unrelated to it):

# %%
depth, width = 12, 8
rng = np.random.default_rng(0)
stack = [(LayerNorm(width, dtype=np.float64), MLP(width, 4 * width, rng=rng, dtype=np.float64)) for _ in range(depth)]
x0 = rng.standard_normal((5, width))  # (tokens, D)
dy0 = rng.standard_normal((5, width))  # the gradient arriving at the top


def through_the_stack(norm: bool, skip: bool) -> tuple[float, float]:
    """Forward and backward through the 12 layers; returns |dx| / |dy| and the cosine of dx with dy."""
    h = x0
    for ln, f in stack:
        branch = f(ln(h)) if norm else f(h)  # (tokens, D)
        h = h + branch if skip else branch
    g = dy0
    for ln, f in reversed(stack):
        back = f.backward(g)
        if norm:
            back = ln.backward(back)
        g = g + back if skip else back  # with the skip: dx = dy + fᵀ(dy), block by block
    size = np.linalg.norm(g) / np.linalg.norm(dy0)
    cosine = (g * dy0).sum() / (np.linalg.norm(g) * np.linalg.norm(dy0))
    return float(size), float(cosine)


variants = {"plain": (False, False), "LayerNorm, no skip": (True, False), "LayerNorm and skip": (True, True)}
through = {name: through_the_stack(*flags) for name, flags in variants.items()}
print(f"through {depth} layers:       |dx| / |dy|   cosine(dx, dy)")
for name, (size, cosine) in through.items():
    print(f"  {name:<20} {size:12.1e} {cosine:15.2f}")
assert through["plain"][0] < 1e-6  # the plain stack's gradient has all but vanished
assert (
    0.5 < through["LayerNorm, no skip"][0] < 2.0 and abs(through["LayerNorm, no skip"][1]) < 0.3
)  # size, no direction
assert 0.5 < through["LayerNorm and skip"][0] < 2.0 and through["LayerNorm and skip"][1] > 0.7  # both kept

# %% [markdown]
# LayerNorm alone rescued the gradient's size, not its message: what reaches `x` through
# twelve Jacobians is as good as a random direction. Adding the skip — the only change from
# the second line to the third — puts `dy` itself into `dx`, and the cosine jumps from about
# 0 to near 1. (The skip without LayerNorm keeps the size here too; the pre-norm block has
# both, so that each branch reads its input at a known scale however the sum
# `x + f₁ + f₂ + …` has grown.)

# %% [markdown]
# ## The pre-norm transformer block
#
# `TransformerBlock(D, heads)` holds `ln1`, `attn` (lesson 06), `ln2` and `mlp`, with
# dropout after each branch (p = 0 here; in evaluation mode dropout is always the identity).
# Its forward is the two lines at the top of this lesson. Its backward applies the residual
# rule twice, from the top:
#
#     dh = dy + ln2ᵀ(mlpᵀ(dy))          the skip path + the MLP path
#     dx = dh + ln1ᵀ(attnᵀ(dh))         the skip path + the attention path
#
# "Pre-norm" means the LayerNorm sits at the entrance of each branch, not on the sum (the
# original Transformer of 2017 normalised after the addition, `LayerNorm(x + f(x))`, so its
# gradient had to pass through a LayerNorm in every block). Here the path `x → h → y` is
# additions only.
#
# First, the block run by hand from its own parts, forward and backward, on a batch of two
# sequences of three tokens (the second with one padded position), against the block:

# %%
rng = np.random.default_rng(1)
block = TransformerBlock(D, heads=2, rng=rng, dtype=np.float64)
xb = rng.standard_normal((2, 3, D))  # (N, L, D)
mask = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # (N, L): the last token of sequence 1 is padding
dyb = rng.standard_normal(xb.shape)  # (N, L, D)

h = xb + block.attn(block.ln1(xb), key_padding_mask=mask)  # (N, L, D)
yb = h + block.mlp(block.ln2(h))  # (N, L, D)
block.zero_grad()
mlp_path = block.ln2.backward(block.mlp.backward(dyb))
dh = dyb + mlp_path
attention_path = block.ln1.backward(block.attn.backward(dh))
dx_by_parts = dh + attention_path
by_parts = {name: p.grad.copy() for name, p in block.parameters().items()}

y_block = block(xb, key_padding_mask=mask)
block.zero_grad()
dx_block = block.backward(dyb)
print(f"largest difference from TransformerBlock: output {np.abs(y_block - yb).max():.1e}, ", end="")
print(f"dx {np.abs(dx_block - dx_by_parts).max():.1e}")
parts = {"skip": dyb, "MLP path": mlp_path, "attention path": attention_path}  # dx = the sum of the three
print("size of the three parts of dx:", ", ".join(f"{name} {np.linalg.norm(g):.3f}" for name, g in parts.items()))
assert np.allclose(y_block, yb) and np.allclose(dx_block, dx_by_parts)
assert all(np.allclose(p.grad, by_parts[name]) for name, p in block.parameters().items())

# %% [markdown]
# If both branches output zero, the block is exactly the identity and the gradient passes
# through it unchanged: `dx = dy`. Zeroing the last linear layer of each branch (the
# attention's output projection, the MLP's `fc2`) does it. This is why some models start
# those layers at zero, or small (GPT-2 scales them by 1/√n for n residual layers): a
# freshly built deep stack then begins as, or close to, the identity.

# %%
for layer in (block.attn.out, block.mlp.fc2):
    layer.weight.data[...] = 0.0
    layer.bias.data[...] = 0.0
y_identity = block(xb, key_padding_mask=mask)
block.zero_grad()
dx_identity = block.backward(dyb)
assert np.array_equal(y_identity, xb) and np.array_equal(dx_identity, dyb)
print("branches zeroed: y = x and dx = dy, exactly")

# %% [markdown]
# ## Gradient checks
#
# Every input and parameter gradient of LayerNorm (random γ and β), GELU and a whole
# two-head block over the padded batch, against central differences with a random upstream
# gradient.

# %%
rng = np.random.default_rng(2)
ln_check = LayerNorm(5, dtype=np.float64)
ln_check.weight.data[...] = rng.standard_normal(5)
ln_check.bias.data[...] = rng.standard_normal(5)
block_check = TransformerBlock(D, heads=2, rng=np.random.default_rng(3), dtype=np.float64)
results = [
    gradcheck(ln_check, rng.standard_normal((3, 5)), label="LayerNorm"),
    gradcheck(GELU(), rng.standard_normal((3, 5)) * 2, label="GELU"),
    gradcheck(block_check, xb.copy(), kwargs={"key_padding_mask": mask}, label="TransformerBlock"),
]
for result in results:
    print(result.report())
    assert result.ok
assert len(results[2].tensors) == 1 + len(block_check.parameters())  # the input and all 12 parameters

# %% [markdown]
# ## What you should take away
#
# * LayerNorm gives each token mean 0 and spread 1 over its own features, then a learned
#   gain and shift; its input gradient is the incoming one with its mean and its component
#   along x̂ removed, divided by σ — so it sums to zero and is orthogonal to x̂;
# * GELU is a smooth ReLU, `x Φ(x)`, computed with a tanh; its slope is ½ at 0 and slightly
#   above 1 just past the bend;
# * the MLP widens each token 4×, applies GELU and narrows it back, one token at a time;
# * a residual `x + f(x)` hands the gradient to x unchanged as well as through f, which is
#   what keeps a deep stack trainable; the pre-norm block is two such residuals, attention
#   then MLP, each reading a LayerNorm of its input.
#
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/06a_the_transformer_block.py`.
#
# 1. **Write the backward first: the exact GELU.** The layer uses the tanh approximation; the
#    exact one is $y = x \Phi(x)$ with $\Phi(x) = \frac{1}{2} \left( 1 + \mathrm{erf}(x / \sqrt{2}) \right)$.
#    Derive $dy/dx$ by hand (the product rule, and $\Phi'(x) = \exp(-x^2/2) / \sqrt{2 \pi}$), then
#    write a `Module` `ExactGELU` with `forward` (keep what the backward needs) and `backward`,
#    and check it with `gradcheck` on a few random inputs in float64. What are the exact slopes
#    at x = 0 and x = 1, and how far is the second from the tanh form's 1.0830?
# 2. **Predict, then run: gradients LayerNorm ignores.** For the first token of the lesson,
#    `[2, 4, 5, 6, 8]`, take the upstream gradient `dy = 3 x̂ + 2` (γ = 1). Say what
#    `LayerNorm.backward` returns before running it, and why. Then take `dy = [1, 0, 0, 0, 0]`
#    and predict the sum of dx's entries.
# 3. **Change a number: deeper.** The plain stack took the gradient from 1 to about 2 · 10⁻¹⁰
#    in 12 layers. Predict its size after 24 layers (same construction, `depth = 24`, the same
#    seed), then run it; run the pre-norm residual stack at 24 too and compare its size and
#    cosine with the 12-layer ones.
print("lesson 06a passed: LayerNorm, GELU, the MLP, residuals and the pre-norm block, each backward checked")
