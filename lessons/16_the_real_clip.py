# %% [markdown]
# # Lesson 16 — The real CLIP
#
# miniclip's small models are CLIP in every idea that matters for learning: two encoders,
# normalised embeddings, a learned temperature, the contrastive loss both ways. OpenAI's
# released CLIP makes five more choices, and its weights only give their numbers through
# exactly those choices:
#
#                   OpenAI's CLIP                                               (miniclip's small models)
#     image tower   a class token before the patches, read back at the end     (the patches' mean)
#                   a LayerNorm before the first block, ln_pre                  (none)
#                   the patch embedding as a bias-free strided convolution      (patchify + linear with bias)
#     both towers   QuickGELU, x · σ(1.702 x), in every MLP                     (the tanh GELU)
#     text tower    the causal mask: each token sees itself and those before it (every token sees every token)
#
# plus the projections into the shared space without bias, which miniclip's projections
# already were. This lesson derives each piece on small numbers and checks it twice — the
# layer against the computation written out, and its gradient against central differences —
# then puts them together at CLIP's size (ViT-B/32: 151 M parameters), reads the table that
# renames every released tensor to a miniclip parameter, matches a random-weight
# `transformers.CLIPModel` number for number (where PyTorch and `transformers` are
# installed), and, where OpenAI's files have been fetched, classifies a photograph.
#
# The code: `miniclip/layers/class_token.py`, `miniclip/layers/quick_gelu.py`, the `causal`
# option of `miniclip/layers/attention.py`, the CLIP options of `miniclip/encoders/vit.py` and
# `miniclip/encoders/text_transformer.py`, `miniclip/model/openai.py`, and
# `miniclip/pretrained/` (`names.py`, `load.py`, `preprocess.py`).

# %%
import importlib.util
import json
import math
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from miniclip import set_device
from miniclip.backend import to_host
from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES
from miniclip.encoders.vit import ViT
from miniclip.layers import GELU, TransformerBlock, projection, softmax
from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.layers.class_token import ClassToken, ClassTokenPool
from miniclip.layers.quick_gelu import QuickGELU
from miniclip.measure.cost import clip_cost
from miniclip.model.bpe import BPETokenizer
from miniclip.model.bpe_training import learn_merges
from miniclip.model.openai import ARCHITECTURES, CLIP_CHOICES, openai_config
from miniclip.pretrained.load import fetched_folder, load_pretrained
from miniclip.pretrained.names import name_table, patches
from miniclip.pretrained.preprocess import normalize, prepare
from miniclip.pretrained.safetensors import read_safetensors
from miniclip.teaching.gradcheck import gradcheck
from miniclip.teaching.lesson_output import scratch_folder, show

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True, linewidth=120)
print("OpenAI's choices, as miniclip's configuration names them:", CLIP_CHOICES)

# %% [markdown]
# ## The class token
#
# The small ViT of lesson 07 averages its patches into one vector. CLIP's (like the original
# ViT) puts one extra *learned* vector in front of the patches, the class token, lets the
# blocks mix it with every patch, and takes its final state as the image's summary. It holds
# nothing about any image to begin with — every image gets the same vector — so whatever it
# carries at the end, it gathered by attention. Prepending it takes (N, P, D) to (N, P + 1, D):
# $y_{n,0} = \mathrm{token}$ and $y_{n,1:} = x_n$. One vector went to all N images, so its
# gradient is the sum over them, and the patches' gradient is the rest of dy:
#
# $$\frac{\partial L}{\partial \mathrm{token}} = \sum_n dy_{n,0}, \quad \frac{\partial L}{\partial x} = dy_{:,1:}$$
#
# and, after the blocks, the pool reads position 0 back: `pooled[n] = h[n, 0]`, whose
# backward puts `dpooled` at position 0 and zeros everywhere else. Two images of two
# patches, D = 3, the token set to [1, 2, 3]:

# %%
prepend = ClassToken(3, rng=np.random.default_rng(0), dtype=np.float64)
prepend.token.data[...] = [1.0, 2.0, 3.0]
x = np.arange(12, dtype=np.float64).reshape(2, 2, 3)  # (N, P, D): two images, two patches each
y = prepend(x)  # (N, P + 1, D)
print("patches x:\n", x, "\nwith the class token in front:\n", y)
dy = np.array([[[1, 0, 2], [5, 5, 5], [5, 5, 5]], [[3, -1, 1], [5, 5, 5], [5, 5, 5]]], dtype=np.float64)
prepend.zero_grad()
dx = prepend.backward(dy)  # (N, P, D)
print("dtoken = dy[0, 0] + dy[1, 0] = [1, 0, 2] + [3, −1, 1] =", prepend.token.grad)
assert y.shape == (2, 3, 3) and np.array_equal(y[:, 0], [[1, 2, 3], [1, 2, 3]]) and np.array_equal(y[:, 1:], x)
assert np.array_equal(prepend.token.grad, [4.0, -1.0, 3.0]) and np.array_equal(dx, dy[:, 1:])

pool = ClassTokenPool()
h = np.random.default_rng(1).standard_normal((2, 3, 3))  # (N, P + 1, D): the blocks' output
pooled = pool(h)  # (N, D)
dh = pool.backward(np.ones((2, 3)))
assert np.array_equal(pooled, h[:, 0]) and np.array_equal(dh[:, 0], np.ones((2, 3))) and not dh[:, 1:].any()

results = [
    gradcheck(ClassToken(3, rng=np.random.default_rng(2), dtype=np.float64), x.copy(), label="ClassToken"),
    gradcheck(ClassTokenPool(), h.copy(), label="ClassTokenPool"),
]
for result in results:
    print(result.report())
    assert result.ok

# %% [markdown]
# The class token takes a position of its own: the positional embedding that follows has
# P + 1 rows, row 0 the class token's (for ViT-B/32, 7 × 7 = 49 patches + 1 = 50 rows).
#
# ## ln_pre: one LayerNorm before the first block
#
# Each block normalises the input of its two branches (lesson 06a), but the residual stream
# itself enters the first block as it is: patch embeddings whose size depends on the pixels,
# next to a class token and positions drawn small. CLIP normalises the stream once, before the
# first block, so every token starts at mean 0 and spread 1 (then a learned gain and shift).
#
# Below, a tiny ViT with all of CLIP's options (8 × 8 images in 4 × 4 patches, width 8), run
# step by step by hand and against the layer. Before `ln_pre` the tokens' spreads differ (the
# class token's, drawn with σ = D^(−½), is the smallest); after it every token has spread 1.

# %%
vit = ViT(
    image_size=8,
    patch_size=4,
    channels=3,
    width=8,
    depth=1,
    heads=2,
    embed_dim=4,
    pool="class",
    ln_pre=True,
    patch_bias=False,
    activation="quick_gelu",
    rng=np.random.default_rng(3),
    dtype=np.float64,
)
images = np.random.default_rng(4).standard_normal((2, 3, 8, 8))  # (N, C, H, W), CLIP-normalised pixels
tokens = vit.positions(vit.class_token(vit.patch_embed(vit.patchify(images))))  # (N, 4 + 1, 8)
normed = vit.ln_pre(tokens)  # (N, 5, 8)
stream = normed
for block in vit.blocks:
    stream = block(stream)
by_hand = vit.project(vit.norm(stream)[:, 0])  # (N, 4): read at the class token
print("spread of each token before ln_pre (class token first):", tokens[0].std(axis=-1))
print("spread of each token after ln_pre:                       ", normed[0].std(axis=-1))
assert vit.patch_embed.bias is None and vit.positions.positions.data.shape == (5, 8)
assert tokens[0, 0].std() < tokens[0, 1:].std(axis=-1).min()  # the class token starts small
assert np.allclose(normed.mean(axis=-1), 0.0) and np.allclose(normed.std(axis=-1), 1.0, atol=1e-4)
assert np.allclose(vit(images), by_hand)
result = gradcheck(vit, images.copy(), label="ViT, CLIP's options")
print(f"gradient check of every one of the tiny ViT's {len(result.tensors) - 1} parameters and its input:")
print(f"  largest relative error {result.max_error:.1e}")
assert result.ok and len(result.tensors) == 1 + len(vit.parameters())

# %% [markdown]
# ## QuickGELU
#
# OpenAI trained CLIP with `x · σ(1.702 x)`: GELU's `x · Φ(x)` with the normal CDF Φ replaced
# by a cheap stand-in, the logistic sigmoid stretched by 1.702 to lie close to it:
#
# $$s = \sigma(1.702 x) = \frac{1}{1 + e^{-1.702 x}}, \quad y = x s, \quad \frac{dy}{dx} = s + 1.702 \, x \, s (1 - s)$$
#
# At x = 0: s = ½, so y = 0 and the slope is ½, as GELU's. At x = 1: s = σ(1.702) = 0.8458,
# y = 0.8458 (the tanh GELU gives 0.8412), and dy/dx = 0.8458 + 1.702 · 0.8458 · 0.1542 =
# 1.0678 (GELU: 1.0830).

# %%
xs = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
quick, gelu = QuickGELU(), GELU()
q_values, g_values = quick(xs), gelu(xs)
s = 1.0 / (1.0 + np.exp(-1.702 * xs))
slope_by_hand = s + 1.702 * xs * s * (1 - s)
slope_layer = quick.backward(np.ones_like(xs))  # dy = 1: the backward returns the slope
print("    x   QuickGELU   GELU(tanh)   slope: by hand   backward")
for row in zip(xs, q_values, g_values, slope_by_hand, slope_layer, strict=True):
    print(f"{row[0]:5.1f} {row[1]:11.4f} {row[2]:12.4f} {row[3]:16.4f} {row[4]:10.4f}")
assert np.allclose(q_values, xs * s) and np.allclose(slope_layer, slope_by_hand)
assert q_values[3] == 0.0 and slope_layer[3] == 0.5
assert math.isclose(q_values[4], 0.8458, abs_tol=1e-4) and math.isclose(slope_layer[4], 1.0678, abs_tol=1e-4)
result = gradcheck(QuickGELU(), np.random.default_rng(5).standard_normal((3, 5)) * 3, label="QuickGELU")
print(result.report())
assert result.ok

# %% [markdown]
# Over the whole line the two curves are close, but not equal: they differ by at most about
# 0.02, near x = ±2.3 (both satisfy f(x) − f(−x) = x, so the difference is the same at x and
# −x). Their slopes differ by up to about 0.03. Small, yet every one of CLIP's 24 MLPs would
# make that error, so weights trained with one activation are run with exactly that one: a
# Hugging Face `config.json` names it (`"hidden_act": "quick_gelu"`), and miniclip refuses an
# activation it cannot reproduce rather than approximate it.

# %%
line = np.linspace(-6.0, 6.0, 12001)
difference = np.abs(QuickGELU()(line) - GELU()(line))
where = line[np.argmax(difference)]
quick_slope = QuickGELU()
quick_slope(line)
gelu_slope = GELU()
gelu_slope(line)
slope_gap = np.abs(quick_slope.backward(np.ones_like(line)) - gelu_slope.backward(np.ones_like(line)))
print(f"largest |QuickGELU − GELU| on [−6, 6]: {difference.max():.4f} at x = {where:+.2f};")
print(f"largest difference of their slopes: {slope_gap.max():.3f}")
assert 0.019 < difference.max() < 0.022 and 2.2 < abs(where) < 2.4
assert 0.02 < slope_gap.max() < 0.04

with_quick = TransformerBlock(8, 2, activation="quick_gelu", rng=np.random.default_rng(6), dtype=np.float64)
with_gelu = TransformerBlock(8, 2, activation="gelu", rng=np.random.default_rng(6), dtype=np.float64)  # same weights
stream = np.random.default_rng(7).standard_normal((1, 5, 8))
gap = np.abs(with_quick(stream) - with_gelu(stream)).max()
print(f"one block, the same weights, QuickGELU against GELU: outputs differ by up to {gap:.1e}")
assert gap > 1e-3

# %% [markdown]
# ## The causal mask
#
# CLIP's text transformer is *causal*, as GPT-2's: query i may attend only to keys j ≤ i.
# Before the softmax, every score above the diagonal is set to −∞, so its weight is exactly 0
# and each row still sums to 1. Four tokens, one head, written out and against the layer:

# %%
L, D = 4, 4
rng = np.random.default_rng(8)
attention = MultiHeadSelfAttention(D, heads=1, causal=True, rng=rng, dtype=np.float64)
attention.qkv.bias.data[...] = rng.standard_normal(3 * D) * 0.1
tokens = rng.standard_normal((1, L, D))  # (N, L, D)
Q, K, V = np.split(tokens[0] @ attention.qkv.weight.data + attention.qkv.bias.data, 3, axis=1)  # (L, D) each
S = Q @ K.T / math.sqrt(D)  # (L, L)
later = np.triu(np.ones((L, L), dtype=bool), k=1)  # key j > query i
S[later] = -np.inf
P = softmax(S, axis=1)  # (L, L)
Y = P @ V @ attention.out.weight.data + attention.out.bias.data  # (L, D)
Y_layer = attention(tokens)
print("attention weights (rows: queries, columns: keys):\n", attention.attention_weights[0, 0])
assert np.allclose(Y_layer[0], Y) and np.allclose(attention.attention_weights[0, 0], P)
assert np.all(P[later] == 0.0) and np.allclose(P.sum(axis=1), 1.0) and P[0, 0] == 1.0  # token 0 sees only itself

# %% [markdown]
# With padding, a key is kept when it is real **and** not later than the query. Mark the
# last position as padding; which keys each query sees:

# %%
real = np.array([1, 1, 1, 0])  # the last position is padding
keep = np.tril(np.ones((L, L), dtype=bool)) & (real[None, :] == 1)  # (L, L): query i may read key j
print("        keys: " + " ".join(f"{j}" for j in range(L)))
for i in range(L):
    print(f"query {i}{' (pad)' if not real[i] else '      '} " + " ".join("✓" if k else "·" for k in keep[i]))
attention(tokens, key_padding_mask=real[None].astype(np.float64))
assert np.array_equal(attention.attention_weights[0, 0] > 0, keep)

# %% [markdown]
# The first three rows are the same with or without the padding mask: in a caption the
# padding comes after the end token, so the causal mask already hides it from every real
# token. (OpenAI's own code passes no padding mask at all; the two agree on every real token,
# and only the padded positions' outputs, which nothing reads, differ.)

# %%
causal_only = attention(tokens)
with_padding = attention(tokens, key_padding_mask=real[None].astype(np.float64))
assert np.allclose(causal_only[0, :3], with_padding[0, :3]) and not np.allclose(causal_only[0, 3], with_padding[0, 3])

# %% [markdown]
# **Why the end token sees the whole caption.** Change a token and see which outputs move:
# through any stack of causal blocks, the output at position i depends on the tokens 0 … i
# only, so a token's output does not change when a *later* token changes. The output at the
# last position depends on all of them — the only position that does. That is why CLIP reads
# the caption at its end token: not because the end token is special, but because it comes
# last. (Read at the start token, every caption would get the same vector.) Without the
# mask — miniclip's small text transformer — every output moves.

# %%
for causal in (True, False):
    rng = np.random.default_rng(9)
    stack = [TransformerBlock(D, 2, causal=causal, rng=rng, dtype=np.float64) for _ in range(2)]

    def run(x: np.ndarray, stack: list = stack) -> np.ndarray:
        for block in stack:
            x = block(x)
        return x

    base = run(tokens)
    moved = np.zeros((L, L), dtype=bool)  # moved[i, j]: output i changed when token j changed
    for j in range(L):
        changed = tokens.copy()
        changed[0, j] += np.random.default_rng(j).standard_normal(D)  # (not a constant: LayerNorm would erase it)
        moved[:, j] = np.abs(run(changed) - base)[0].max(axis=-1) > 1e-12
    print(f"causal={causal}: output i moves when token j changes (rows i, columns j):\n", moved.astype(int))
    expected = np.tril(np.ones((L, L), dtype=bool)) if causal else np.ones((L, L), dtype=bool)
    assert np.array_equal(moved, expected)
    if causal:
        assert moved[L - 1].all() and moved[:, 0].all() and moved[0].sum() == 1  # only the last sees all

# %% [markdown]
# The backward needs nothing new: a masked weight is exactly 0, and the softmax backward
# `dS = P ⊙ (…)` is zero wherever P is. So a gradient arriving at output 1 reaches tokens 0
# and 1 and no later one; and the layer passes the gradient check with both masks:

# %%
attention(tokens)
only_at_1 = np.zeros_like(tokens)
only_at_1[0, 1] = rng.standard_normal(D)
d_tokens = attention.backward(only_at_1)
print("|dx| per token for a gradient at output 1:", np.abs(d_tokens[0]).sum(axis=-1))
assert not d_tokens[0, 2:].any() and d_tokens[0, :2].any()
batch = np.random.default_rng(10).standard_normal((2, L, D))
pad = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
check = MultiHeadSelfAttention(D, heads=2, causal=True, rng=np.random.default_rng(11), dtype=np.float64)
result = gradcheck(check, batch, kwargs={"key_padding_mask": pad}, label="causal attention + padding")
print(result.report())
assert result.ok

# %% [markdown]
# ## Projections without bias
#
# The last step of each tower maps its width to the shared space with a plain matrix,
# `e = x W` — OpenAI's `visual_projection` and `text_projection` have no bias, and neither
# have miniclip's projections (lesson 01's). A bias would add the same vector to every
# embedding before the L2 normalisation: a direction every image (or every caption) shares,
# which carries nothing that tells one from another, yet changes every angle once the
# embeddings are normalised. Two orthogonal embeddings, [1, 0] and [0, 1], with b = [2, 2]
# added become [3, 2] and [2, 3], at cosine 12/13 = 0.92.

# %%
e = np.array([[1.0, 0.0], [0.0, 1.0]]) + np.array([2.0, 2.0])
cosine = e[0] @ e[1] / (np.linalg.norm(e[0]) * np.linalg.norm(e[1]))
print(f"cosine after the shared bias: {cosine:.4f} (12/13 = {12 / 13:.4f}), before: 0")
assert math.isclose(cosine, 12 / 13)
project = projection(8, 4, rng=np.random.default_rng(12), dtype=np.float64)
features = np.random.default_rng(13).standard_normal((3, 8))
assert project.bias is None and np.array_equal(project(features), features @ project.weight.data)

# %% [markdown]
# ## The patch embedding is a strided convolution
#
# OpenAI writes the patch embedding as a convolution with kernel p, stride p and no bias,
# weight (D, C, p, p):
#
# $$\mathrm{out}[d, i, j] = \sum_c \sum_u \sum_v w[d, c, u, v] \, x[c, p i + u, p j + v]$$
#
# With stride = kernel the windows do not overlap, and window (i, j) is exactly patch
# (i, j): the convolution multiplies each patch by the weights and sums. That is patchify
# (lesson 01: patches row by row, each flattened channel, row, column) followed by a linear
# layer whose weight is w flattened the same way, `w.reshape(D, C·p·p)ᵀ` — which is how the
# name table converts it (`patches`). A 4 × 4 image of 2 channels, p = 2, D = 3, in integers,
# with the convolution as an explicit loop:

# %%
p, C, D = 2, 2, 3
exact = {"rng": np.random.default_rng(16), "dtype": np.float64}
image = np.arange(2 * 4 * 4, dtype=np.float64).reshape(1, C, 4, 4)  # (N, C, H, W)
w = np.random.default_rng(15).integers(-2, 3, size=(D, C, p, p)).astype(np.float64)  # (D, C, p, p)
conv = np.zeros((D, 2, 2))  # (D, H/p, W/p)
for d in range(D):
    for i in range(2):
        for j in range(2):
            for c in range(C):
                for u in range(p):
                    for v in range(p):
                        conv[d, i, j] += w[d, c, u, v] * image[0, c, p * i + u, p * j + v]
embed = ViT(image_size=4, patch_size=p, channels=C, width=D, depth=0, heads=1, patch_bias=False, **exact)
embed.patch_embed.weight.data[...] = patches(w)  # (C·p·p, D) = (8, 3)
linear = embed.patch_embed(embed.patchify(image))[0]  # (P, D) = (4, 3)
print("convolution, one map per output channel:\n", conv)
print("patchify + linear, one row per patch:\n", linear)
assert np.array_equal(linear, conv.reshape(D, 4).T)  # patch (i, j) is row 2i + j

# %% [markdown]
# ## CLIP at full size
#
# `openai_config("ViT-B/32")` is a miniclip `ModelConfig` with CLIP's choices and sizes:
# 224 × 224 images in 32 × 32 patches (7 × 7 = 49), a 12-block image tower of width 768 with
# 12 heads, a 12-block text tower of width 512 with 8 heads over 77 tokens of a 49,408-token
# vocabulary, a shared space of 512. The parameters can be counted by hand: a block of width
# D holds $12 D^2 + 13 D$ (Q, K, V and the output: $4 D^2 + 4 D$; the MLP, 4× wide: $8 D^2 + 5 D$;
# two LayerNorms: $4 D$).
#
#     text   49,408 · 512 (tokens) + 77 · 512 (positions) + 12 blocks + 2 · 512 (final LN) + 512 · 512
#     image  3 · 32 · 32 · 768 (patches, no bias) + 768 (class token) + 50 · 768 (positions)
#            + 2 · 768 (ln_pre) + 12 blocks + 2 · 768 (final LN) + 768 · 512
#
# plus the logit scale. `clip_cost` counts the same from the configuration, layer by layer.

# %%
cfg = openai_config("ViT-B/32")
cost = clip_cost(cfg, batch_size=1)


def block_parameters(width: int) -> int:
    return 12 * width**2 + 13 * width


text_by_hand = 49408 * 512 + 77 * 512 + 12 * block_parameters(512) + 2 * 512 + 512 * 512
image_by_hand = 3 * 32 * 32 * 768 + 768 + 50 * 768 + 2 * 768 + 12 * block_parameters(768) + 2 * 768 + 768 * 512
print(f"ViT-B/32: image {cfg.image_size}² in {cfg.patch_size}² patches, width {cfg.image_width}, ", end="")
print(f"{cfg.image_depth} blocks, {cfg.image_heads} heads;")
print(f"  text width {cfg.text_width}, {cfg.text_depth} blocks, {cfg.text_heads} heads, ", end="")
print(f"{cfg.context_length} tokens, vocabulary {cfg.vocab_size:,}; embed {cfg.embed_dim}")
print(f"parameters: image {cost.part('image.').parameters:,} + text {cost.part('text.').parameters:,} + 1 = ", end="")
print(f"{cost.parameters:,}; multiply-adds per image and caption {cost.multiply_adds / 1e9:.1f} G")
for name in ARCHITECTURES:
    print(f"  {name}: {clip_cost(openai_config(name), 1).parameters / 1e6:6.1f} M parameters")
assert cost.part("text.").parameters == text_by_hand == 63_428_096
assert cost.part("image.").parameters == image_by_hand == 87_849_216
assert cost.parameters == text_by_hand + image_by_hand + 1 == 151_277_313
assert all(getattr(cfg, key) == value for key, value in CLIP_CHOICES.items())

# %% [markdown]
# ## The name table
#
# Released weights name their tensors after Hugging Face's modules
# (`vision_model.encoder.layers.3.self_attn.q_proj.weight`), miniclip after its own
# (`image.blocks.3.attn.qkv.weight`). `name_table(cfg)` is the whole translation, one row per
# miniclip parameter, with one of four conversions:
#
#     as_is       the same array: LayerNorms, biases, embeddings, the class token, the logit scale
#     transposed  a linear weight: PyTorch stores (out, in), miniclip (in, out), so y = x W
#     patches     the patch convolution's (D, C, p, p) as patchify + linear's (C·p·p, D) (above)
#     fused       q, k and v: three (D, D) in the file, one (D, 3D) in miniclip's attention
#                 (weights [W_qᵀ | W_kᵀ | W_vᵀ], biases side by side)
#
# A block is 12 rows — 7 as they are, 3 transposed, the fused weight and the fused bias — from
# 16 tensors; 24 blocks and 14 rows outside them make 302 rows from 398 tensors.

# %%
table = name_table(cfg)
kinds = Counter(row.convert.__name__ for row in table)
examples = [
    "image.patch_embed.weight",
    "image.class_token.token",
    "image.ln_pre.weight",
    "image.blocks.0.attn.qkv.weight",
    "image.blocks.0.attn.qkv.bias",
    "image.blocks.0.mlp.fc1.weight",
    "text.lookup.table",
    "text.blocks.11.attn.out.weight",
    "text.project.weight",
    "logit_scale.log_scale",
]
rows = {row.miniclip: row for row in table}
for name in examples:
    print(f"{rows[name].convert.__name__:14} {name:31} ← {', '.join(rows[name].hf)}")
print("rows by kind:", dict(kinds), f"— {len(table)} rows from {sum(len(row.hf) for row in table)} tensors")
assert kinds == {"as_is": 24 * 7 + 11, "transposed": 24 * 3 + 2, "fused_weights": 24, "fused_biases": 24, "patches": 1}
assert len(table) == 24 * 12 + 14 == 302 and sum(len(row.hf) for row in table) == 24 * 16 + 14 == 398

# %% [markdown]
# ## A random-weight CLIP, matched number for number
#
# The proof that the table and every layer are right is a reference model. No weights can be
# downloaded while the lesson runs, so the stand-in is built the way users' downloads are
# made: a `transformers.CLIPModel` with random weights — small, two blocks of width 16 per
# tower, 64 × 64 images — saved with `save_pretrained` (`config.json` and `model.safetensors`)
# beside a tokenizer's `vocab.json` and `merges.txt`, here the vocabulary of lesson 15 learned
# on CIFAR-10's captions. `load_pretrained` reads the folder with miniclip's own safetensors
# reader, builds the CLIP its `config.json` describes and renames every tensor by the table.
# Then both models embed the same captions and images, and the image embeddings, the text
# embeddings and the logits must agree to float32 rounding (relative 1e-5). Where PyTorch or
# `transformers` is not installed this part is skipped.

# %%
have_reference = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
captions = [template.format(c) for c in classes for template in CLIP_CIFAR10_TEMPLATES]
small_tokenizer = BPETokenizer.from_merges(learn_merges(captions, 1000))


def write_tokenizer(tokenizer: BPETokenizer, folder: Path) -> None:
    """vocab.json (token → id) and merges.txt ("#version" line, then one merge a line), as Hugging Face writes them."""
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokenizer.tokens)}), encoding="utf-8")
    merges = "".join(f"{a} {b}\n" for a, b in tokenizer.merges)
    (folder / "merges.txt").write_text("#version: 0.2\n" + merges, encoding="utf-8")


if not have_reference:
    print("PyTorch or transformers is not installed: skipping the comparison with transformers.CLIPModel")
else:
    import torch
    from transformers import CLIPConfig, CLIPModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    text_sizes = {"hidden_size": 16, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    text_sizes |= {"vocab_size": small_tokenizer.vocab_size, "pad_token_id": 0}
    text_sizes |= {"bos_token_id": small_tokenizer.start_id, "eos_token_id": small_tokenizer.end_id}
    vision_sizes = {"hidden_size": 16, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    vision_sizes |= {"image_size": 64, "patch_size": 16}
    torch.manual_seed(0)
    reference = CLIPModel(CLIPConfig(text_config=text_sizes, vision_config=vision_sizes, projection_dim=12)).eval()
    with torch.no_grad():  # no weight left at exactly 0 or 1, where a mix-up could cancel out
        for weight in reference.parameters():
            weight.add_(0.02 * torch.randn_like(weight))

    saved = scratch_folder("16_reference_clip")  # lasts as long as the kernel: the cell can run again
    reference.save_pretrained(saved)
    write_tokenizer(small_tokenizer, saved)
    print("the folder holds:", sorted(f.name for f in saved.iterdir()))
    pretrained = load_pretrained(saved)
    file_tensors = sorted(read_safetensors(saved / "model.safetensors"))
    small_cfg, ours = pretrained.config, pretrained.model
    small_table = name_table(small_cfg)
    print({key: getattr(small_cfg, key) for key in ("image_width", "image_depth", "text_width", "vocab_size")})
    assert sorted(row.miniclip for row in small_table) == sorted(ours.parameters())  # every parameter, once
    assert sorted(h for row in small_table for h in row.hf) == file_tensors  # every tensor of the file, once

    ids, mask = pretrained.tokenizer.encode_batch(["a photo of a cat.", "a blurry photo of the big truck.", "a frog"])
    pixels = np.random.default_rng(15).standard_normal((3, 3, 64, 64)).astype(np.float32)  # (N, C, H, W)
    with torch.no_grad():
        theirs = reference(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask.astype(np.int64)),
            pixel_values=torch.from_numpy(pixels),
        )
    unit = lambda e: (e / e.norm(dim=-1, keepdim=True)).numpy()  # noqa: E731
    text_ours, image_ours = to_host(ours.encode_text(ids, mask)), to_host(ours.encode_image(pixels))  # (3, 12) each
    logits_ours = float(to_host(ours.logit_scale.scale)) * text_ours @ image_ours.T  # (3, 3)
    for what, mine, reference_value in [
        ("text embeddings", text_ours, unit(theirs.text_embeds)),
        ("image embeddings", image_ours, unit(theirs.image_embeds)),
        ("logits", logits_ours, theirs.logits_per_text.numpy()),
    ]:
        relative = np.abs(mine - reference_value).max() / np.abs(reference_value).max()
        print(f"{what:17} largest difference, relative to the largest value: {relative:.1e}")
        assert relative < 1e-5  # float32 rounding, nothing more

# %% [markdown]
# ## OpenAI's CLIP, where the files are present
#
# `miniclip pretrained fetch openai/clip-vit-base-patch32` downloads the released ViT-B/32
# (about 600 MB) into `$MINICLIP_PRETRAINED` (else `~/.cache/miniclip/pretrained`). Where it has
# been fetched, the lesson preprocesses its test photograph — lesson 07's portrait of Grace
# Hopper from matplotlib's sample data — as CLIP was trained (shortest side to 224, bicubic,
# centre crop, CLIP's mean and std) and asks the model which of four captions fits. Where it
# has not, it prints the command and stops here.

# %%
folder = fetched_folder("openai/clip-vit-base-patch32")
photo = None
try:
    import matplotlib.cbook as cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = Image.open(f)
        photo.load()
except (ImportError, OSError, ValueError):
    print("matplotlib's sample photo grace_hopper.jpg is not available here")

if not folder.is_dir():
    print(f"{folder} is not here: `miniclip pretrained fetch openai/clip-vit-base-patch32` fetches it; skipping")
elif photo is not None:
    clip = load_pretrained(folder)
    pixels = normalize(prepare(photo, clip.config.image_size)[None])  # (1, 3, 224, 224) float32
    labels = ["a woman", "a man", "a cat", "a ship"]
    ids, mask = clip.tokenizer.encode_batch([f"a photo of {label}." for label in labels], clip.config.context_length)
    image_embedding = clip.model.encode_image(pixels)  # (1, 512)
    text_embeddings = clip.model.encode_text(ids, mask)  # (4, 512)
    cosines = to_host(image_embedding @ text_embeddings.T)[0]  # (4,)
    probabilities = softmax(float(to_host(clip.model.logit_scale.scale)) * cosines)
    print(f"{clip.folder.name}: logit scale {float(to_host(clip.model.logit_scale.scale)):.1f}")
    for label, c, prob in sorted(zip(labels, cosines, probabilities, strict=True), key=lambda r: -r[2]):
        print(f"  {'a photo of ' + label + '.':22} cosine {c:.3f}   probability {prob:.3f}")
    assert math.isclose(float(probabilities.sum()), 1.0, rel_tol=1e-5)

# %% [markdown]
# QuickGELU against GELU, their difference, and the causal attention weights of the four
# tokens above:

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
axes[0].plot(line, QuickGELU()(line), label="QuickGELU  x·σ(1.702x)")
axes[0].plot(line, GELU()(line), "--", label="GELU (tanh)")
axes[0].set_xlim(-4, 4)
axes[0].set_ylim(-0.5, 4)
axes[0].legend(fontsize=8)
axes[0].set_title("two activations", fontsize=9)
axes[1].plot(line, QuickGELU()(line) - GELU()(line))
axes[1].set_title("QuickGELU − GELU", fontsize=9)
axes[2].imshow(P, cmap="viridis")
axes[2].set_title("causal attention weights (query × key)", fontsize=9)
axes[2].set_xticks(range(L))
axes[2].set_yticks(range(L))
show(fig, "16_quick_gelu_and_causal_mask.png")

# %% [markdown]
# ## What you should take away
#
# * the class token is one learned vector in front of the patches, the same for every image,
#   so its gradient is the sum over the batch; the image is read at it after the blocks;
# * `ln_pre` normalises the stream once before the first block; QuickGELU `x σ(1.702 x)` is
#   within 0.021 of GELU, and released weights need exactly the function they were trained with;
# * the causal mask sets later keys to −∞: a token's output depends only on the tokens up to
#   it, so the end token sees the whole caption because it comes last;
# * the patch embedding is a bias-free convolution of stride = kernel = p, which is patchify
#   + linear; the projections have no bias;
# * ViT-B/32 is these pieces at 151 M parameters, and one table of four conversions renames
#   every released tensor to a miniclip parameter — checked against `transformers` to float32
#   rounding.

# %%
print("lesson 16 passed: class token, ln_pre, QuickGELU, the causal mask, the patch convolution and the name table")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/16_the_real_clip.py`.
#
# 1. *Write the backward before seeing it.* The patch embedding as OpenAI writes it, a
#    bias-free convolution with kernel = stride = p. Derive the gradients of its weight
#    (D, C, p, p) and of its input image from dy (N, D, H/p, W/p) — how many windows does each
#    pixel lie in? — write them as the `backward` of a small `Module`, and check it on two
#    4 × 4 images of 2 channels (p = 2, D = 3) with `miniclip.teaching.gradcheck`. Then compare
#    the weight gradient with that of patchify + linear, through `patches`.
# 2. *Derive, then check.* Count the parameters of ViT-B/16's image tower by hand (patches of
#    16 on 224 × 224 images; everything else as ViT-B/32's), then check with
#    `clip_cost(openai_config("ViT-B/16"), 1).part("image.")`. Is it larger or smaller than
#    ViT-B/32's, and why?
# 3. *Change a number.* Replace QuickGELU's 1.702 by 1 (that is SiLU, $x \sigma(x)$), 1.5 and 2.
#    Predict before running: which of the four lies closest to GELU over [−6, 6], and roughly
#    how far SiLU strays?
