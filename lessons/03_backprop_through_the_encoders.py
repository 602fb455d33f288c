# %% [markdown]
# # Lesson 03 — Backprop through the encoders
#
# Lesson 02 ended with the gradient of the loss with respect to the logits,
# $\frac{\partial L}{\partial S} = \frac{(P_{\mathrm{rows}} - Y) + (P_{\mathrm{cols}} - Y)}{2N}$.
# This lesson carries that gradient all the way down the walkthrough model, one layer at a time,
# and names the rule each layer uses:
#
#     text:   ids (N, L) ─lookup→ (N, L, E) ─linear→ ─ReLU→ (N, L, Ht) ─mean pool→ (N, Ht) ─project→ T (N, d)
#     image:  images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear→ ─ReLU→ (N, P, Hi) ─mean pool→ ─project→ I (N, d)
#     head:   S = T Iᵀ (N, N) → softmax both ways → loss
#
# First on lesson 01's own example — its integer weights, base 3, every gradient printed and
# checked against a rule you can apply with a pencil — then, with nothing changed but the
# numbers, on random weights in base e, where the same rules are checked on a model no one
# chose by hand. It ends by proving the whole chain right with `gradcheck` and using it: a few
# dozen steps of gradient descent on three pairs.
#
# As in lessons 01 and 02, pairs are counted from 1 in the text and from 0 in the code.
#
# The code: the `backward` of each layer in `miniclip/layers/` that `miniclip/teaching/walkthrough_model.py` stacks.

# %%
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np

from miniclip import set_device
from miniclip.layers import Patchify, softmax
from miniclip.optim import SGD
from miniclip.teaching.gradcheck import gradcheck
from miniclip.teaching.lesson_output import show
from miniclip.teaching.walkthrough import (
    CAPTIONS,
    VOCAB,
    compute_walkthrough,
    format_matrix,
    walkthrough_batch,
    walkthrough_state,
)
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True)


def print_shape(name: str, array: np.ndarray) -> None:
    """Print a gradient's name and its shape."""
    print(f"{name:<34} {str(tuple(array.shape)):<14}")


# %% [markdown]
# ## Lesson 01's model, forward again
#
# The walkthrough's sizes — 6 words of 3 numbers, a text encoder 3 wide, images of 1×2×4
# pixels cut into two 2×2 patches, an image encoder 4 wide, a 2-D shared space — with its
# small integer weights, softmax base 3, in float64. Every layer caches what its backward
# will need (the linear layer its input, ReLU its mask, mean pool the share of each position).

# %%
model = WalkthroughCLIP(WalkthroughConfig(base=3), rng=np.random.default_rng(0), dtype=np.float64)
model.load_state(walkthrough_state())
ids, images = walkthrough_batch()  # (N, L) word ids, (N, 1, 2, 4) pixels
N, L = ids.shape
Y = np.eye(N)  # (N, N): the targets
texts = list(CAPTIONS)
imgs = [f"image {j + 1}" for j in range(N)]
words_of = [f"{c} · {w}" for c in CAPTIONS for w in c.split()]
patches_of = [f"image {j + 1} · patch {k + 1}" for j in range(N) for k in range(2)]

text, image = model.text, model.image
words = text.lookup(ids)  # (N, L, 3)
t_pre = text.encode(words)  # (N, L, 3) before ReLU
t_hidden = text.relu(t_pre)  # (N, L, 3)
t_pooled = text.pool(t_hidden)  # (N, 3)
T = text.project(t_pooled)  # (N, 2)
patches = image.patchify(images)  # (N, 2, 4)
i_pre = image.encode(patches)  # (N, 2, 4) before ReLU
i_hidden = image.relu(i_pre)  # (N, 2, 4)
i_pooled = image.pool(i_hidden)  # (N, 4)
I = image.project(i_pooled)  # (N, 2)
S = model.similarity(T, I)  # (N, N)
loss = float(model.loss(S))
print(format_matrix("T", T, texts), format_matrix("I", I, imgs), format_matrix("S = T·Iᵀ", S, texts, imgs), sep="\n")
print(f"loss = {loss:.4f}")

# %% [markdown]
# ## Backward, layer by layer, on the walkthrough's numbers
#
# Every backward takes the gradient of the loss with respect to the layer's *output* and
# returns the gradient with respect to its *input*, adding the gradients of its own
# parameters into `p.grad` on the way. A gradient always has the shape of the thing it is
# the gradient of: that alone tells you the order of every matrix product below.
#
# ### 1. Loss → logits
#
# Derived in lesson 02: probabilities minus targets, both directions, divided by `2N = 6`.
# One entry by hand, as exact fractions: "small dog" against image 3 (`S[1, 2] = 3`) has
# `P_rows = 243/325` (lesson 02's row 2) and `P_cols = 243/271` (its column 3), both targets 0:
#
# $$
# \frac{\partial L}{\partial S_{23}} = \frac{1}{6} \left( \frac{243}{325} + \frac{243}{271} \right) \approx 0.274
# $$
#
# (`dS[1, 2]` in the code), the largest push of all — down, since gradient descent moves against it.

# %%
model.zero_grad()
dS = model.loss.backward(1.0)  # (N, N)
print(format_matrix("dL/dS", dS, texts, imgs))
assert np.allclose(dS, ((model.loss.p_rows - Y) + (model.loss.p_cols - Y)) / (2 * N))
assert np.isclose(dS[1, 2], float((Fraction(243, 325) + Fraction(243, 271)) / 6))

# %% [markdown]
# ### 2. Similarity: a matrix product
#
# $S_{ij} = \sum_{k} T_{ik} I_{jk}$. Nudging $T_{ik}$ moves every logit of row $i$, each by
# $I_{jk}$; summing those effects gives
# $\frac{\partial L}{\partial T_{ik}} = \sum_{j} \frac{\partial L}{\partial S_{ij}} I_{jk}$, i.e.
#
#     dT = dS @ I        (N, N) @ (N, d) → (N, d)
#     dI = dSᵀ @ T       (N, N) @ (N, d) → (N, d)
#
# A caption's gradient is a mix of the *image* embeddings, weighted by its row of `dS`, and
# vice versa: if both sides start near zero, both gradients are small and training starts
# slowly (the random model at the end shows it). By hand for "big table", row 1 of `dS`
# against `I = [1 0], [0 −2], [−2 1]`: `dT[0] = dS[0, 0]·[1 0] + dS[0, 1]·[0 −2] + dS[0, 2]·[−2 1]`.

# %%
dT, dI = model.similarity.backward(dS)  # (N, 2) each
print(format_matrix("dT = dS·I", dT, texts), format_matrix("dI = dSᵀ·T", dI, imgs), sep="\n")
assert np.allclose(dT, dS @ I) and np.allclose(dI, dS.T @ T)
assert np.allclose(dT[0], dS[0, 0] * np.array([1, 0]) + dS[0, 1] * np.array([0, -2]) + dS[0, 2] * np.array([-2, 1]))

# %% [markdown]
# ### 3. Projections: `y = x W` (no bias)
#
# The same rule as the similarity, with the weight in place of the other side:
#
#     dW = xᵀ @ dy       (H, N) @ (N, d) → (H, d)     the N items' contributions add up
#     dx = dy @ Wᵀ       (N, d) @ (d, H) → (N, H)
#
# One weight matrix serves all N items, so its gradient is the *sum* over the batch; the
# matrix product does that sum for us. By hand, `dx = dy @ Wᵀ` reads the weights row by row:
# the text projection `P_t` has rows `[1 0]`, `[0 1]`, `[−1 −1]`, so hidden unit 1 receives
# `dT[:, 0]`, unit 2 `dT[:, 1]`, and unit 3, which feeds both coordinates with weight −1, minus
# their sum.

# %%
dt_pooled = text.project.backward(dT)  # (N, 3)
di_pooled = image.project.backward(dI)  # (N, 4)
print(format_matrix("d(text pooled) = dT·P_tᵀ", dt_pooled, texts))
print(format_matrix("d(text.project.weight) = pooled_tᵀ·dT", text.project.weight.grad))
print(format_matrix("d(image pooled) = dI·P_iᵀ", di_pooled, imgs))
print(format_matrix("d(image.project.weight) = pooled_iᵀ·dI", image.project.weight.grad))
assert np.allclose(dt_pooled, np.stack([dT[:, 0], dT[:, 1], -dT[:, 0] - dT[:, 1]], axis=1))
assert np.allclose(text.project.weight.grad, t_pooled.T @ dT)
assert np.allclose(image.project.weight.grad, i_pooled.T @ dI)

# %% [markdown]
# ### 4. Mean pool: equal shares
#
# $y_n = \frac{1}{2} \left( x_{n1} + x_{n2} \right)$. Each position contributed half of the mean, so
# each gets half of the gradient: $\frac{\partial L}{\partial x_{nl}} = \frac{1}{2} \frac{\partial L}{\partial y_n}$.
# (With $L$ positions, $\frac{1}{L}$ each; with a padding mask, padded positions get nothing and
# the real ones share by their count.)

# %%
dt_hidden = text.pool.backward(dt_pooled)  # (N, L, 3)
di_hidden = image.pool.backward(di_pooled)  # (N, 2, 4)
print(format_matrix("d(text hidden): half of d(text pooled) each", dt_hidden, words_of))
assert np.allclose(dt_hidden[:, 0], dt_pooled / 2) and np.allclose(dt_hidden[:, 1], dt_pooled / 2)
assert np.allclose(di_hidden[:, 0], di_pooled / 2) and np.allclose(di_hidden[:, 1], di_pooled / 2)

# %% [markdown]
# ### 5. ReLU: a gate
#
# $y = \max(x, 0)$ has slope 1 where $x > 0$ and slope 0 elsewhere, so its backward is the
# incoming gradient multiplied by the mask `[x > 0]` it saved in the forward. Where a unit
# was off, nothing flows back: the weights feeding it learn nothing from this example. In
# the walkthrough the ReLU cut one text unit ("small", unit 1: `x·W_t + b_t = [−1 1 3]`) and
# eleven of the 24 image units: those entries, and only those, are zero below.

# %%
dt_pre = text.relu.backward(dt_hidden)  # (N, L, 3)
di_pre = image.relu.backward(di_hidden)  # (N, 2, 4)
print(format_matrix("x·W_t + b_t (the forward, for the mask)", t_pre, words_of))
print(format_matrix("d(text pre-ReLU): zero where that was < 0", dt_pre, words_of))
print(format_matrix("x·W_i + b_i (the forward, for the mask)", i_pre, patches_of))
print(format_matrix("d(image pre-ReLU): zero where that was < 0", di_pre, patches_of))
assert (dt_pre[t_pre < 0] == 0).all() and np.array_equal(dt_pre[t_pre > 0], dt_hidden[t_pre > 0])
assert (di_pre[i_pre < 0] == 0).all() and np.array_equal(di_pre[i_pre > 0], di_hidden[i_pre > 0])
assert int((t_pre < 0).sum()) == 1 and t_pre[1, 0, 0] == -1 and int((i_pre < 0).sum()) == 11

# %% [markdown]
# ### 6. Linear + bias: `y = x W + b`, applied to every word (or patch)
#
# The rule of step 3, with the leading axes `(N, L)` flattened into one list of `N·L = 6`
# words (every word goes through the same `W`, so all of them add into `dW`), and the bias
# gradient the sum of `dy` over all words (`b` is added to each one):
#
#     dW = xᵀ @ dy   over all words      db = Σ_words dy      dx = dy @ Wᵀ
#
# Look at the two words of "big table": the ReLU cut neither, so the mean pool handed them the
# same half and the same `W_t` turns it into the same gradient (so with "red" and "car").
# "small" and "dog" differ: the ReLU stopped unit 1 of "small". Mean pooling cannot tell a
# caption's words apart; the layers before it can.

# %%
dwords = text.encode.backward(dt_pre)  # (N, L, 3)
dpatches = image.encode.backward(di_pre)  # (N, 2, 4)
print(format_matrix("d(words) = d(pre)·W_tᵀ", dwords, words_of))
print(format_matrix("d(text.encode.weight) = Σ xᵀ·d(pre)", text.encode.weight.grad))
print(format_matrix("d(text.encode.bias) = Σ d(pre)", text.encode.bias.grad))
print(format_matrix("d(image.encode.weight)", image.encode.weight.grad))
print(format_matrix("d(image.encode.bias)", image.encode.bias.grad))
assert np.allclose(text.encode.weight.grad, words.reshape(-1, 3).T @ dt_pre.reshape(-1, 3))
assert np.allclose(text.encode.bias.grad, dt_pre.sum(axis=(0, 1)))
assert np.allclose(dwords[0, 0], dwords[0, 1]) and not np.allclose(dwords[1, 0], dwords[1, 1])

# %% [markdown]
# ### 7a. Lookup: a scatter-add into the table
#
# The forward copies row `ids[n, l]` of the table, so row v of the table's gradient is the sum
# of the gradients of every position that copied it. In the walkthrough every word is used
# exactly once, so the sum has one term: the table's gradient is `d(words)`, row for row.
# (The random batch below repeats a word, and there the sum has two.) Token ids are integers,
# not differentiable: the chain ends here on the text side.

# %%
text.lookup.backward(dwords)
dtable = text.lookup.table.grad  # (6, 3)
print(format_matrix("d(text.lookup.table)", dtable, list(VOCAB)))
assert np.allclose(dtable[ids.reshape(-1)], dwords.reshape(-1, 3))

# %% [markdown]
# ### 7b. Patchify: the same numbers, put back
#
# Cutting an image into patches is pure rearrangement: no arithmetic. Its backward is the
# inverse rearrangement: each gradient value goes back to the pixel it came from. We do not
# need this gradient to train (pixels are data, not weights), but `model.backward` returns
# it, and `gradcheck` checks it.

# %%
dimages = image.patchify.backward(dpatches)  # (N, 1, 2, 4)
print(format_matrix("d(image 1's pixels), 2 rows × 4 columns", dimages[0, 0]))
assert np.array_equal(Patchify(2).forward(dimages), dpatches)  # patchify undoes it
assert np.array_equal(np.sort(dimages, axis=None), np.sort(dpatches, axis=None))  # same values, moved

# %% [markdown]
# ## The same, in one call, and in the printout
#
# `model.backward()` runs steps 1 to 7 in the order above and gives the same numbers, and so
# does `miniclip walkthrough` (its backward section prints exactly these gradients).
# `gradcheck` then compares every one with central differences (it perturbs one number at a
# time, against a random upstream gradient): relative errors around `1e-9`, far below the
# tolerance of `1e-6`, mean every rule above is right.

# %%
by_hand = {name: p.grad.copy() for name, p in model.parameters().items()}
model.zero_grad()
model(ids, images)
assert np.allclose(model.backward(), dimages)
printed = compute_walkthrough(base=3)
for name, p in model.parameters().items():
    assert np.allclose(p.grad, by_hand[name]) and np.allclose(p.grad, printed[f"d({name})"]), name
assert np.allclose(printed["dT"], dT) and np.allclose(printed["dI"], dI)
print("model.backward() and `miniclip walkthrough` agree with the chain above for all", len(by_hand), "parameters")
result = gradcheck(model, ids, images, label="WalkthroughCLIP (lesson 01's numbers, base 3)")
print(result.report())
assert result.ok, result.report()

# %% [markdown]
# ## Generalising: random weights, base e, shared words
#
# Nothing above needed the integers or base 3; they only made the numbers checkable by hand.
# **From here on the lesson switches** to what training really starts from: weights drawn at
# random (seeded), the natural base e of every real CLIP, and captions that *share* words —
# "red" is in captions 1 and 3, "cat" in 1 and 2 — so that the lookup's scatter-add has two
# terms to add. The numbers are no longer worth checking by hand, so we print shapes, and the
# same rules are checked as identities that hold for any weights.

# %%
vocab = ["red", "blue", "cat", "dog", "sky", "sun"]
captions = ["red cat", "blue cat", "red dog"]
ids = np.array([[vocab.index(w) for w in c.split()] for c in captions])  # (N, L) = (3, 2)
images = np.array(
    [
        [[[1, 0, 1, 0], [1, 0, 1, 0]]],  # stripes: both patches the same
        [[[1, 1, 1, 1], [0, 0, 0, 0]]],  # a bar along the top
        [[[1, 0, 0, 1], [0, 1, 1, 0]]],  # a checkerboard: two different patches
    ],
    dtype=np.float64,
)  # (N, C, H, W) = (3, 1, 2, 4)

cfg = WalkthroughConfig()  # base e
model = WalkthroughCLIP(cfg, rng=np.random.default_rng(1), dtype=np.float64)
text, image = model.text, model.image
words = text.lookup(ids)  # (N, L, E)
t_pre = text.encode(words)  # (N, L, Ht)
t_pooled = text.pool(text.relu(t_pre))  # (N, Ht)
T = text.project(t_pooled)  # (N, d)
patches = image.patchify(images)  # (N, P, C·p·p)
i_pre = image.encode(patches)  # (N, P, Hi)
I = image.project(image.pool(image.relu(i_pre)))  # (N, d)
S = model.similarity(T, I)  # (N, N)
loss = float(model.loss(S))
print(f"loss = {loss:.4f}   (ln 3 = {np.log(3):.4f}: the loss of a model that cannot tell the pairs apart)")

model.zero_grad()
dS = model.loss.backward(1.0)  # 1. loss → logits
dT, dI = model.similarity.backward(dS)  # 2. similarity
dt_pooled = text.project.backward(dT)  # 3. projection
dt_hidden = text.pool.backward(dt_pooled)  # 4. mean pool
dt_pre = text.relu.backward(dt_hidden)  # 5. ReLU
dwords = text.encode.backward(dt_pre)  # 6. linear
text.lookup.backward(dwords)  # 7a. lookup
image.backward(dI)  # the image side in one call (ending in 7b., patchify)
for name, array in [("dL/dS", dS), ("dL/dT", dT), ("dL/d(text pooled)", dt_pooled), ("dL/d(words)", dwords)]:
    print_shape(name, array)
for name, p in model.parameters().items():
    print_shape(f"dL/d({name})", p.grad)

Ht = cfg.text_hidden
assert np.allclose(dS, ((softmax(S, axis=1) - Y) + (softmax(S, axis=0) - Y)) / (2 * N))  # 1, base e
assert np.allclose(dT, dS @ I) and np.allclose(dI, dS.T @ T)  # 2
assert np.allclose(text.project.weight.grad, t_pooled.T @ dT)  # 3
assert np.allclose(dt_pooled, dT @ text.project.weight.data.T)
assert np.allclose(dt_hidden, np.repeat(dt_pooled[:, None, :] / L, L, axis=1))  # 4
assert (dt_pre[t_pre <= 0] == 0).all() and np.allclose(dt_pre[t_pre > 0], dt_hidden[t_pre > 0])  # 5
assert np.allclose(text.encode.weight.grad, words.reshape(-1, cfg.word_dim).T @ dt_pre.reshape(-1, Ht))  # 6
assert np.allclose(text.encode.bias.grad, dt_pre.sum(axis=(0, 1)))

# %% [markdown]
# ### The lookup's scatter-add, now with repeated words
#
# "red" appears twice, so its row of the table's gradient gets two contributions; "sky" and
# "sun" appear nowhere and get zero. (A plain `grad[ids] += g` would keep only one of the two
# "red" contributions; miniclip's scatter-add keeps all.)

# %%
dtable = text.lookup.table.grad  # (vocab, E)
for v, word in enumerate(vocab):
    expected = dwords[ids == v].sum(axis=0)  # every position holding word v
    print(f"  {word:<5} used {int((ids == v).sum())}×  gradient row {dtable[v]}")
    assert np.allclose(dtable[v], expected)
red = vocab.index("red")
assert np.allclose(dtable[red], dwords[0, 0] + dwords[2, 0])  # both uses of "red" add up

# An aside that step 4 explains: mean pooling forgets *where* a patch was. Swap an image's
# two patches and its embedding does not change (so two images that differ only by the
# arrangement of the same patches could never be told apart by this encoder).
swapped = images[..., [2, 3, 0, 1]]  # left and right halves exchanged
assert np.allclose(image(swapped), image(images))

# %% [markdown]
# ## Gradient check of the random model
#
# The same check as for lesson 01's numbers, on weights no one chose.

# %%
result = gradcheck(model, ids, images, label="WalkthroughCLIP (random weights, base e)")
print(result.report())
assert result.ok, result.report()

# %% [markdown]
# ## Using the gradient: a few dozen steps of SGD
#
# $w \leftarrow w - \eta \, \frac{\partial L}{\partial w}$ for every parameter ($\eta$ = `lr` = 0.5),
# 60 times, on the three pairs. We watch the loss and the *diagonal share*: the probability
# each caption gives its own image (rows) and each image gives its own caption (columns),
# averaged over the pairs. At the start both are near 1/3, chance for three pairs.


# %%
def train(model: WalkthroughCLIP, steps: int, lr: float) -> list[tuple[int, float, float, float]]:
    """Plain SGD on the lesson's batch; returns (step, loss, row share, column share) every 10 steps."""
    opt = SGD(model.parameters(), lr=lr)
    history = []
    for step in range(steps + 1):
        opt.zero_grad()
        loss = float(model(ids, images))
        if step % 10 == 0:
            rows = float(np.diag(softmax(model.logits, axis=1)).mean())
            cols = float(np.diag(softmax(model.logits, axis=0)).mean())
            history.append((step, loss, rows, cols))
            print(f"  step {step:3d}   loss {loss:.4f}   diagonal share: rows {rows:.3f}  columns {cols:.3f}")
        if step < steps:
            model.backward()
            opt.step()
    return history


print("walkthrough model (hidden 3 and 4, shared space 2-D):")
small = train(model, steps=60, lr=0.5)
assert small[-1][1] < 0.5 * small[0][1]  # the loss fell by more than half
assert small[-1][2] > small[0][2] + 0.3 and small[-1][3] > small[0][3] + 0.3  # the diagonal share rose

# %% [markdown]
# The loss first sits near `ln 3` for some 30 steps (step 2 said why: with both embeddings
# near zero, `dT = dS @ I` is small too), then falls fast. But one pair is still at chance:
# its caption and image embeddings are both still near zero, so each gets only a tiny
# gradient from the other, and with 3 and 4 hidden units (several of them switched off by
# their ReLU) and a 2-D space there is little room to move.

# %%
T, I = model.text(ids), model.image(images)  # (N, d) each, after training
share = np.diag(softmax(model.logits, axis=1))  # (N,): each caption's probability on its own image
for n in range(N):
    print(
        f"  pair {n + 1} ({captions[n]}):  |T| = {np.linalg.norm(T[n]):.2f}  |I| = {np.linalg.norm(I[n]):.2f}  "
        f"share {share[n]:.2f}"
    )
lagging = int(share.argmin())
assert share[lagging] < 0.5 and np.linalg.norm(T[lagging]) < 0.5 and np.linalg.norm(I[lagging]) < 0.5

# %% [markdown]
# The same code with wider layers has more units that stay on and learns all three pairs
# in the same 60 steps:

# %%
wide_cfg = WalkthroughConfig(text_hidden=16, image_hidden=16, embed_dim=8)
wide = WalkthroughCLIP(wide_cfg, rng=np.random.default_rng(0), dtype=np.float64)
print("wider model (hidden 16 and 16, shared space 8-D):")
wide_history = train(wide, steps=60, lr=0.5)
assert wide_history[-1][1] < 0.1 * wide_history[0][1]
assert min(np.diag(softmax(wide.logits, axis=1)).min(), np.diag(softmax(wide.logits, axis=0)).min()) > 0.9

# %% [markdown]
# The two loss curves side by side (a notebook shows the figure here; a plain script run keeps
# it as `03_loss.png` when `MINICLIP_LESSON_OUT` names a folder).

# %%
fig, ax = plt.subplots(figsize=(5, 3))
for label, history in [("walkthrough sizes", small), ("wider", wide_history)]:
    ax.plot([h[0] for h in history], [h[1] for h in history], marker="o", label=label)
ax.axhline(np.log(3), color="grey", linestyle=":", label="ln 3 (chance)")
ax.set(xlabel="SGD step", ylabel="loss", title="Lesson 03: three pairs")
ax.legend()
show(fig, "03_loss.png")

# %% [markdown]
# ## What you should take away
#
# * every backward is a local rule: matrix product (`dx = dy Wᵀ`, `dW = xᵀ dy`), equal shares
#   (mean pool), a gate (ReLU), a scatter-add (lookup), a rearrangement (patchify);
# * shared weights (and repeated words) *add up* their gradients;
# * mean pooling hands each position the same share: two words the ReLU treats alike get the
#   same gradient ("big" and "table"), and only the layers before the pool can tell them apart;
# * the rules do not care about the numbers: lesson 01's integers in base 3 and random weights
#   in base e obey them alike;
# * `gradcheck` turns "I think the maths is right" into a number.

# %%
print("lesson 03 passed: the backward chain, on lesson 01's numbers and on random ones, matches model.backward,")
print("  the walkthrough printout and gradcheck, and the loss falls")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/03_backprop_through_the_encoders.py`.
#
# 1. **Derive: the diagonal entry of pair 1.** As for `dS[1, 2]` in step 1, compute
#    $\partial L / \partial S_{11}$ ("big table" against image 1) as an exact fraction from row 1
#    `[1 0 −2]` and column 1 `[1 −2 0]` in base 3. Is it the smallest of the three diagonal
#    pulls, and why would you expect that?
# 2. **Write the backward first: mean pooling with a padding mask.** With a mask $m$ (1 for a
#    real position, 0 for padding), $y_n = \sum_{l} m_{nl} x_{nl} / \sum_{l} m_{nl}$. Derive
#    $\partial L / \partial x_{nl}$, write a `Module` whose `forward(x, mask)` keeps each
#    position's share, and check it with `gradcheck` (pass the mask as `kwargs={"mask": mask}`:
#    it is not differentiated) and against `miniclip.layers.MeanPool`.
# 3. **Predict, then run: zero projections.** In the random model of the second half, set both
#    projection weights to zero (`model.text.project.weight.data[...] = 0`, the same for the
#    image). Predict the loss, `dS`, `dT`, and every parameter's gradient, then run a few SGD
#    steps. Why can training not start from there?
