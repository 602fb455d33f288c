# %% [markdown]
# # Lesson 03 — Backprop through the encoders
#
# Lesson 02 ended with the gradient of the loss with respect to the logits:
# `dL/dS = ((P_rows − I) + (P_cols − I)) / (2N)`. This lesson carries that gradient all the
# way down the walkthrough model, one layer at a time, and names the rule each layer uses:
#
#     text:   ids (N, L) ─lookup→ (N, L, E) ─linear→ ─ReLU→ (N, L, Ht) ─mean pool→ (N, Ht) ─project→ T (N, d)
#     image:  images (N, C, H, W) ─patchify→ (N, P, C·p·p) ─linear→ ─ReLU→ (N, P, Hi) ─mean pool→ ─project→ I (N, d)
#     head:   S = T Iᵀ (N, N) → softmax both ways → loss
#
# Then it proves the whole chain right with `gradcheck`, and uses it: a few dozen steps of
# gradient descent on three pairs.

# %%
import os
from pathlib import Path

import numpy as np

from miniclip import set_device
from miniclip.gradcheck import gradcheck
from miniclip.layers import Patchify, softmax
from miniclip.optim import SGD
from miniclip.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True)


def show(name: str, array: np.ndarray) -> None:
    """Print a gradient's name and its shape."""
    print(f"{name:<34} {str(tuple(array.shape)):<14}")


# %% [markdown]
# ## The model and a batch of three pairs
#
# The walkthrough's sizes: 6 words of 3 numbers each, a text encoder 3 wide, images of 1×2×4
# pixels cut into two 2×2 patches, an image encoder 4 wide, a 2-D shared space. We build it
# in float64 so that the finite-difference check at the end agrees to about 9 digits.
#
# Unlike lesson 01's hand-picked integers, the weights are random (seeded), and unlike its
# captions these share words on purpose: "red" is in captions 0 and 2, "cat" in 0 and 1.

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

cfg = WalkthroughConfig()
model = WalkthroughCLIP(cfg, rng=np.random.default_rng(1), dtype=np.float64)
N = ids.shape[0]
Y = np.eye(N)  # (N, N): the targets, pair i on the diagonal
print("token ids:\n", ids)
for name, p in model.parameters().items():
    print(f"  {name:<22} {tuple(p.data.shape)}")

# %% [markdown]
# ## Forward, layer by layer
#
# `model(ids, images)` does exactly this; we spell it out so every intermediate has a name.
# Each layer caches what its backward will need (the linear layer its input, ReLU its mask,
# mean pool the share of each position).

# %%
text, image = model.text, model.image
words = text.lookup(ids)  # (N, L, E) = (3, 2, 3)
t_pre = text.encode(words)  # (N, L, Ht) before ReLU
t_hidden = text.relu(t_pre)  # (N, L, Ht)
t_pooled = text.pool(t_hidden)  # (N, Ht)
T = text.project(t_pooled)  # (N, d) = (3, 2)

patches = image.patchify(images)  # (N, P, C·p·p) = (3, 2, 4)
i_pre = image.encode(patches)  # (N, P, Hi) before ReLU
i_hidden = image.relu(i_pre)  # (N, P, Hi)
i_pooled = image.pool(i_hidden)  # (N, Hi)
I = image.project(i_pooled)  # (N, d) = (3, 2)

S = model.similarity(T, I)  # (N, N)
loss = float(model.loss(S))
print("S = T Iᵀ =\n", S)
print(f"loss = {loss:.4f}   (ln 3 = {np.log(3):.4f}: the loss of a model that cannot tell the pairs apart)")

# %% [markdown]
# ## Backward, layer by layer
#
# Every backward takes the gradient of the loss with respect to the layer's *output* and
# returns the gradient with respect to its *input*, adding the gradients of its own
# parameters into `p.grad` on the way. A gradient always has the shape of the thing it is
# the gradient of: that alone tells you the order of every matrix product below.
#
# ### 1. Loss → logits
#
# Derived in lesson 02: probabilities minus targets, both directions, divided by `2N`.

# %%
model.zero_grad()
dS = model.loss.backward(1.0)  # (N, N)
show("dL/dS", dS)
print(dS)
assert np.allclose(dS, ((softmax(S, axis=1) - Y) + (softmax(S, axis=0) - Y)) / (2 * N))

# %% [markdown]
# ### 2. Similarity: a matrix product
#
# `S[i, j] = Σ_k T[i, k] I[j, k]`. Nudging `T[i, k]` moves every logit of row `i`, each by
# `I[j, k]`; summing those effects gives `dT[i, k] = Σ_j dS[i, j] I[j, k]`, i.e.
#
#     dT = dS @ I        (N, N) @ (N, d) → (N, d)
#     dI = dSᵀ @ T       (N, N) @ (N, d) → (N, d)
#
# Note what this says: a caption's gradient is a mix of the *image* embeddings, and vice
# versa. If both sides start near zero, both gradients are small: training starts slowly.

# %%
dT, dI = model.similarity.backward(dS)
show("dL/dT", dT)
show("dL/dI", dI)
assert np.allclose(dT, dS @ I) and np.allclose(dI, dS.T @ T)
assert np.allclose(dT[0], sum(dS[0, j] * I[j] for j in range(N)))  # the same, one row written out

# %% [markdown]
# ### 3. Projections: `y = x W` (no bias)
#
# The same rule as the similarity, with the weight in place of the other side:
#
#     dW = xᵀ @ dy       (H, N) @ (N, d) → (H, d)     the N items' contributions add up
#     dx = dy @ Wᵀ       (N, d) @ (d, H) → (N, H)
#
# One weight matrix serves all N items, so its gradient is the *sum* over the batch; the
# matrix product does that sum for us.

# %%
dt_pooled = text.project.backward(dT)  # (N, Ht)
di_pooled = image.project.backward(dI)  # (N, Hi)
show("dL/d(text pooled)", dt_pooled)
show("dL/d(text.project.weight)", text.project.weight.grad)
show("dL/d(image pooled)", di_pooled)
show("dL/d(image.project.weight)", image.project.weight.grad)
assert np.allclose(text.project.weight.grad, t_pooled.T @ dT)
assert np.allclose(dt_pooled, dT @ text.project.weight.data.T)

# %% [markdown]
# ### 4. Mean pool: equal shares
#
# `y[n] = (x[n, 0] + x[n, 1] + … ) / L`. Each position contributed `1/L` of the mean, so each
# gets `1/L` of the gradient: `dx[n, l] = dy[n] / L`. (With a padding mask, padded
# positions get nothing and the real ones share by their count.)

# %%
dt_hidden = text.pool.backward(dt_pooled)  # (N, L, Ht)
di_hidden = image.pool.backward(di_pooled)  # (N, P, Hi)
show("dL/d(text hidden)", dt_hidden)
show("dL/d(image hidden)", di_hidden)
L, P = ids.shape[1], patches.shape[1]
assert np.allclose(dt_hidden, np.repeat(dt_pooled[:, None, :] / L, L, axis=1))
assert np.allclose(di_hidden, np.repeat(di_pooled[:, None, :] / P, P, axis=1))

# %% [markdown]
# ### 5. ReLU: a gate
#
# `y = max(x, 0)` has slope 1 where `x > 0` and slope 0 elsewhere, so its backward is the
# incoming gradient multiplied by the mask `[x > 0]` it saved in the forward. Where a unit
# was off, nothing flows back: the weights feeding it learn nothing from this example.

# %%
dt_pre = text.relu.backward(dt_hidden)  # (N, L, Ht)
di_pre = image.relu.backward(di_hidden)  # (N, P, Hi)
show("dL/d(text pre-ReLU)", dt_pre)
show("dL/d(image pre-ReLU)", di_pre)
print(f"units switched off: text {(t_pre <= 0).sum()} of {t_pre.size}, image {(i_pre <= 0).sum()} of {i_pre.size}")
assert (dt_pre[t_pre <= 0] == 0).all() and np.allclose(dt_pre[t_pre > 0], dt_hidden[t_pre > 0])
assert (di_pre[i_pre <= 0] == 0).all() and np.allclose(di_pre[i_pre > 0], di_hidden[i_pre > 0])
assert (t_pre <= 0).any() and (i_pre <= 0).any()  # this batch really exercises the gate

# %% [markdown]
# ### 6. Linear + bias: `y = x W + b`, applied to every token (or patch)
#
# The rule of step 3, with the leading axes `(N, L)` flattened into one list of `N·L`
# tokens (every token goes through the same `W`, so all of them add into `dW`), and the
# bias gradient the sum of `dy` over all tokens (`b` is added to each one):
#
#     dW = xᵀ @ dy   over all tokens      db = Σ_tokens dy      dx = dy @ Wᵀ

# %%
dwords = text.encode.backward(dt_pre)  # (N, L, E)
dpatches = image.encode.backward(di_pre)  # (N, P, C·p·p)
show("dL/d(words)", dwords)
show("dL/d(text.encode.weight)", text.encode.weight.grad)
show("dL/d(text.encode.bias)", text.encode.bias.grad)
show("dL/d(patches)", dpatches)
show("dL/d(image.encode.weight)", image.encode.weight.grad)
E = cfg.word_dim
assert np.allclose(text.encode.weight.grad, words.reshape(-1, E).T @ dt_pre.reshape(N * L, -1))
assert np.allclose(text.encode.bias.grad, dt_pre.sum(axis=(0, 1)))

# %% [markdown]
# ### 7a. Lookup: a scatter-add into the table
#
# The forward copies row `ids[n, l]` of the table. So row `v` of the table's gradient is the
# sum of the gradients of every position that copied it: "red" appears twice, so its row
# gets two contributions; "sky" and "sun" appear nowhere and get zero. (A plain
# `grad[ids] += g` would keep only one of the two "red" contributions; `np.add.at` keeps all.)
# Token ids are integers, not differentiable: the chain ends here on the text side.

# %%
text.lookup.backward(dwords)
dtable = text.lookup.table.grad  # (vocab, E)
show("dL/d(text.lookup.table)", dtable)
for v, word in enumerate(vocab):
    expected = dwords[ids == v].sum(axis=0)  # every position holding word v
    print(f"  {word:<5} used {int((ids == v).sum())}×  gradient row {dtable[v]}")
    assert np.allclose(dtable[v], expected)
red = vocab.index("red")
assert np.allclose(dtable[red], dwords[0, 0] + dwords[2, 0])  # both uses of "red" add up

# %% [markdown]
# ### 7b. Patchify: the same numbers, put back
#
# Cutting an image into patches is pure rearrangement: no arithmetic. Its backward is the
# inverse rearrangement: each gradient value goes back to the pixel it came from. We do not
# need this gradient to train (pixels are data, not weights), but `model.backward` returns
# it, and `gradcheck` checks it.

# %%
dimages = image.patchify.backward(dpatches)  # (N, C, H, W)
show("dL/d(images)", dimages)
assert np.array_equal(Patchify(cfg.patch_size).forward(dimages), dpatches)  # patchify undoes it
assert np.array_equal(np.sort(dimages, axis=None), np.sort(dpatches, axis=None))  # same values, moved

# %% [markdown]
# ## The same, in one call
#
# `model.backward()` runs steps 1 to 7 in the order above. It gives the same numbers.

# %%
by_hand = {name: p.grad.copy() for name, p in model.parameters().items()}
model.zero_grad()
model(ids, images)
dimages_model = model.backward()
for name, p in model.parameters().items():
    assert np.allclose(p.grad, by_hand[name]), name
assert np.allclose(dimages_model, dimages)
print("model.backward() agrees with the chain above for all", len(by_hand), "parameters and the images")

# An aside that step 4 explains: mean pooling forgets *where* a patch was. Swap an image's
# two patches and its embedding does not change (so two images that differ only by the
# arrangement of the same patches could never be told apart by this encoder).
swapped = images[..., [2, 3, 0, 1]]  # left and right halves exchanged
assert np.allclose(image(swapped), image(images))

# %% [markdown]
# ## Gradient check of the whole model
#
# Central differences on every parameter and on the pixels (`gradcheck` perturbs one number
# at a time, against a random upstream gradient) compared with one call to `backward`.
# Relative errors around `1e-9`, far below the tolerance of `1e-6`, mean every rule above is right.

# %%
result = gradcheck(model, ids, images, label="WalkthroughCLIP")
print(result.report())
assert result.ok, result.report()

# %% [markdown]
# ## Using the gradient: a few dozen steps of SGD
#
# `w ← w − lr · dL/dw` for every parameter, 60 times, on the three pairs. We watch the loss
# and the *diagonal share*: the probability each caption gives its own image (rows) and
# each image gives its own caption (columns), averaged over the pairs. At the start both
# are near 1/3, chance for three pairs.


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
        f"  pair {n} ({captions[n]}):  |T| = {np.linalg.norm(T[n]):.2f}  |I| = {np.linalg.norm(I[n]):.2f}  "
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
# Optional: set `MINICLIP_LESSON_OUT=some/folder` to save the loss curves as a PNG.

# %%
out = os.environ.get("MINICLIP_LESSON_OUT")
if out:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for label, history in [("walkthrough sizes", small), ("wider", wide_history)]:
        ax.plot([h[0] for h in history], [h[1] for h in history], marker="o", label=label)
    ax.axhline(np.log(3), color="grey", linestyle=":", label="ln 3 (chance)")
    ax.set(xlabel="SGD step", ylabel="loss", title="Lesson 03: three pairs")
    ax.legend()
    Path(out).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(out) / "03_loss.png", dpi=120, bbox_inches="tight")
    print("saved", Path(out) / "03_loss.png")

# %% [markdown]
# ## What you should take away
#
# * every backward is a local rule: matrix product (`dx = dy Wᵀ`, `dW = xᵀ dy`), equal shares
#   (mean pool), a gate (ReLU), a scatter-add (lookup), a rearrangement (patchify);
# * shared weights (and repeated words) *add up* their gradients;
# * `gradcheck` turns "I think the maths is right" into a number.
print("lesson 03 passed: the backward chain matches model.backward, gradcheck and a falling loss")
