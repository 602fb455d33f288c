# %% [markdown]
# # Lesson 04 — Cosine similarity and the learned temperature
#
# The walkthrough's head scored caption `i` against image `j` with a raw dot product
# `T[i] · I[j]`. Real CLIP changes two things before the softmax: L2 normalisation (dot products
# become cosines) and a learned scale ($s$ is a parameter, stored as a log):
#
# $$
# T_i \leftarrow \frac{T_i}{\lVert T_i \rVert}, \quad I_j \leftarrow \frac{I_j}{\lVert I_j \rVert}, \qquad
# \mathrm{logits} = e^{s} \, T I^{\top}
# $$
#
# This lesson shows why each is there: what goes wrong with raw dot products, what the
# normalisation buys, what the scale does to the softmax and the loss, why `s` is kept as a
# logarithm and clamped, and it checks both layers' backward passes with `gradcheck`.
#
# As in lessons 01 to 03, captions, images and pairs are counted from 1 in the text and from 0
# in the code: caption 2's row of the cosines is `C[1]`.
#
# The code: `miniclip/layers/l2_normalize.py` and `miniclip/layers/logit_scale.py`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from miniclip import set_device
from miniclip.layers import ContrastiveLoss, softmax
from miniclip.layers.l2_normalize import L2Normalize
from miniclip.layers.logit_scale import INIT, MAX, LogitScale
from miniclip.teaching.gradcheck import gradcheck
from miniclip.teaching.lesson_output import show

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Raw dot products reward length
#
# $a \cdot b = \lVert a \rVert \, \lVert b \rVert \cos \theta$: the score mixes *direction* (how
# well the two agree) with *length* (how loud each one is). Take a caption embedding for "a cat" and two images. The
# cat photo points almost the same way as the caption but is short; the dog photo points
# elsewhere but is five times longer. The dot product picks the dog.

# %%
caption = np.array([1.0, 0.2])  # "a cat"
cat_image = np.array([0.9, 0.3])  # the right image: nearly the same direction, length ≈ 0.95
dog_image = 5 * np.array([0.4, 0.9])  # the wrong image: another direction, but length ≈ 4.9

for name, image in [("cat image (right)", cat_image), ("dog image (wrong)", dog_image)]:
    dot = caption @ image
    cos = dot / (np.linalg.norm(caption) * np.linalg.norm(image))
    print(f"{name}:  length {np.linalg.norm(image):5.2f}   dot {dot:5.2f}   cosine {cos:+.3f}")

assert caption @ dog_image > caption @ cat_image  # the raw score prefers the long, wrong vector
norm = L2Normalize()
unit_caption, unit_cat, unit_dog = norm(np.stack([caption, cat_image, dog_image]))  # (3, 2): rows of length 1
assert unit_caption @ unit_cat > unit_caption @ unit_dog  # the cosine prefers the right one

# %% [markdown]
# Length is also a way for an encoder to *cheat*: an image encoder that simply doubles every
# output doubles every logit, which sharpens every softmax without learning anything about
# the pictures. After normalisation a vector's length is gone, so only its direction counts.

# %%
images = np.stack([cat_image, dog_image])  # (2, 2)
print("dot products:      ", caption @ images.T, " → after doubling the images:", caption @ (2 * images).T)
print("cosines:           ", norm(caption[None])[0] @ norm(images).T, " → after doubling:", end=" ")
print(norm(caption[None])[0] @ norm(2 * images).T)
assert np.allclose(caption @ (2 * images).T, 2 * (caption @ images.T))
assert np.allclose(norm(2 * images), norm(images))

# %% [markdown]
# ## L2 normalisation turns dot products into cosines
#
# `L2Normalize` divides each row by its length: $y = x / \lVert x \rVert$. For unit vectors
# $a \cdot b = \cos \theta$, which lies in [−1, 1] (Cauchy–Schwarz), equals 1 only for the same
# direction and −1 for opposite ones. Eight random 5-D text and image embeddings:

# %%
rng = np.random.default_rng(0)
T = rng.normal(0.0, 3.0, (8, 5))  # (N, d): raw text embeddings, lengths around 6
I = rng.normal(0.0, 0.5, (8, 5))  # (N, d): raw image embeddings, lengths around 1
raw = T @ I.T  # (N, N)
cos = L2Normalize()(T) @ L2Normalize()(I).T  # (N, N)
print(f"raw dot products: from {raw.min():+.2f} to {raw.max():+.2f}")
print(f"cosines:          from {cos.min():+.2f} to {cos.max():+.2f}")
assert np.allclose(np.linalg.norm(L2Normalize()(T), axis=1), 1.0)
assert np.all(np.abs(cos) <= 1.0)
assert np.abs(raw).max() > 1.0  # the raw scores are not bounded at all

# %% [markdown]
# ## The temperature: how sharp is the softmax?
#
# Cosines live in [−1, 1]. Fed straight into a softmax over N = 4 images, even a perfect
# match (cosine 1 against −1 everywhere else) gets at most $\frac{e}{e + 3/e} \approx 0.71$: the loss
# could never go near zero. So CLIP multiplies the cosines $C$ (an $N \times N$ matrix) by a
# scale before the softmax:
#
# $$
# \mathrm{logits} = e^{s} \, C, \qquad e^{s} = \frac{1}{\tau}
# $$
#
# where $\tau$ is the "temperature". This scale, the inverse temperature, is the *logit scale*
# (`LogitScale`; in a CLIP it is `model.logit_scale`). It is *learned*, like any weight. CLIP stores `s = log(1/τ)` (the
# parameter `log_scale`) rather than the scale itself: whatever value an optimiser step
# gives `s`, `e^s` is positive, so the scale can never flip the sign of the logits or reach
# zero. It starts at `s = log(1/0.07) ≈ 2.659`, that is a scale of 14.29, the value of the
# CLIP paper.

# %%
print(f"INIT = log(1/0.07) = {INIT:.4f}   scale e^INIT = {math.exp(INIT):.3f}")
head = LogitScale(dtype=np.float64)
print("LogitScale parameters:", head.parameters(), "  s =", head.log_scale.data, "  e^s =", head.scale)
assert math.isclose(INIT, 2.659, abs_tol=1e-3) and math.isclose(float(head.scale), 1 / 0.07)
for s in (-5.0, 0.0, 3.0):
    assert math.exp(s) > 0  # any s at all gives a positive scale
best_at_scale_1 = math.e / (math.e + 3 / math.e)
print(f"best row probability with scale 1 and N = 4: {best_at_scale_1:.3f}")

# %% [markdown]
# Now fix one matrix of cosines, the kind a partly trained model produces: each caption is
# closest to its own image (the diagonal is the largest entry of its row and its column),
# but only by a little, as cosines between real embeddings usually are. Then vary the scale
# and watch the row softmax (for caption `i`, which image?) and the CLIP loss.

# %%
C = np.array(
    [
        [0.32, 0.12, 0.05, 0.18],
        [0.10, 0.28, 0.15, 0.02],
        [0.08, 0.20, 0.30, 0.11],
        [0.15, 0.03, 0.09, 0.25],
    ]
)  # (N, N): cosines, caption i against image j
N = C.shape[0]
scales = [1.0, 5.0, math.exp(INIT), 50.0, 100.0]
diagonals, losses = [], []
print(f"{'scale':<9}{'diagonal of P, pairs 1-4':<29}{'caption 1: row 0 of P':<32}loss")
for scale in scales:
    head.log_scale.data[...] = math.log(scale)  # s = ln(scale)
    logits = head(C)  # (N, N) = scale · C
    P = softmax(logits, axis=1)  # (N, N): each row sums to 1
    loss = float(ContrastiveLoss()(logits))
    diagonals.append(np.diag(P))
    losses.append(loss)
    print(f"{scale:6.2f}   " + "  ".join(f"{p:.3f}" for p in np.diag(P)) + f"   {P[0]}   {loss:.4f}")

# %% [markdown]
# With scale 1 the four probabilities of a row are almost equal (≈ 1/N = 0.25): the model
# *knows* the right answer but cannot say so. At 14.3 the right image gets 0.72–0.82. At 100
# the softmax is nearly a hard maximum and the loss nearly zero.
#
# Why it must sharpen: write $p_j \propto e^{a c_j}$ with $a$ the scale. Then
#
# $$
# \frac{\partial p_i}{\partial a} = p_i \left( c_i - \sum_{j} p_j c_j \right)
# $$
#
# and when $c_i$ is the largest cosine of its row it is larger than any average of the row, so
# $p_i$ can only grow with the scale.

# %%
diagonals = np.array(diagonals)  # (scales, N)
assert np.all(np.diff(diagonals, axis=0) > 0)  # every diagonal probability grows with the scale
assert np.all(np.diff(losses) < 0)  # so the loss falls
assert np.allclose(diagonals[0], 0.25, atol=0.05)  # scale 1: barely better than chance
assert diagonals[-1].min() > 0.99  # scale 100: nearly certain

# %% [markdown]
# ## A large scale also punishes mistakes harder
#
# If the loss always fell with the scale, training would push `s` up without end. It does so
# only while every pair is already right. Change one cosine so caption 2 now (slightly)
# prefers image 3 over its own image 2: a large scale turns that small mistake into a confident one,
# and the loss rises again.

# %%
C_mistake = C.copy()
C_mistake[1, 2] = 0.31  # caption 2 (row 1): 0.31 for image 3 beats 0.28 for its own image 2
mistake_losses = [float(ContrastiveLoss()(scale * C_mistake)) for scale in scales]
for scale, a, b in zip(scales, losses, mistake_losses, strict=True):
    print(f"scale {scale:6.2f}:  loss all right {a:.4f}   loss with one mistake {b:.4f}")
assert mistake_losses[-1] > min(mistake_losses)  # past some scale the mistake costs more than sharpness gains

# %% [markdown]
# ## Learning the scale, and the clamp
#
# The backward of $Z = e^{s} C$ (see `miniclip/layers/logit_scale.py`), with
# $\frac{\partial L}{\partial Z}$ the gradient from the loss:
#
# $$
# \frac{\partial L}{\partial C} = e^{s} \frac{\partial L}{\partial Z} \qquad
# \frac{\partial L}{\partial s} = \sum_{ij} \frac{\partial L}{\partial Z_{ij}} e^{s} C_{ij}
# = \sum_{ij} \frac{\partial L}{\partial Z_{ij}} Z_{ij}
# $$
#
# Gradient descent on `s` alone, the cosines held fixed, finds the balance for the matrix
# with a mistake. For the matrix without one the loss keeps falling as `s` grows, so `s` would
# grow for ever and the logits with it; CLIP stops it by clamping `s` to [0, ln 100] after
# every step (`LogitScale.clamp`), so the scale stays between 1 and 100.


# %%
def learn_scale(cosines: np.ndarray, steps: int = 300, lr: float = 2.0) -> float:
    """Gradient descent on s only (cosines fixed), clamping after every step; returns the final scale."""
    logit_scale, loss_fn = LogitScale(dtype=np.float64), ContrastiveLoss()
    for _ in range(steps):
        logit_scale.zero_grad()
        loss_fn(logit_scale(cosines))
        logit_scale.backward(loss_fn.backward(1.0))
        logit_scale.log_scale.data -= lr * logit_scale.log_scale.grad
        logit_scale.clamp()
    return float(logit_scale.scale)


print(f"MAX = ln 100 = {MAX:.4f}")
clamped = LogitScale(dtype=np.float64)
for s in (7.0, -3.0, 3.5):
    clamped.log_scale.data[...] = s
    clamped.clamp()
    print(f"s = {s:+.1f} → clamped to {float(clamped.log_scale.data):.4f} (scale {float(clamped.scale):7.3f})")
assert float(clamped.log_scale.data) == 3.5  # inside [0, ln 100]: untouched

scale_right, scale_mistake = learn_scale(C), learn_scale(C_mistake)
print(f"learned scale, all pairs right: {scale_right:.2f}   with one mistake: {scale_mistake:.2f}")
assert math.isclose(scale_right, 100.0)  # pushed up to the clamp
assert 14.3 < scale_mistake < 100.0  # an interior balance

# %% [markdown]
# The diagonal probabilities and the loss against the scale, on a fine grid (a notebook shows
# the figure here; a plain script run keeps it as `04_temperature.png` when
# `MINICLIP_LESSON_OUT` names a folder).

# %%
grid = np.geomspace(1.0, 100.0, 200)
fig, (ax_p, ax_l) = plt.subplots(1, 2, figsize=(9, 3.2))
diag_curves = np.array([np.diag(softmax(a * C, axis=1)) for a in grid])  # (200, N)
for i in range(N):
    ax_p.plot(grid, diag_curves[:, i], label=f"pair {i + 1}")
ax_l.plot(grid, [float(ContrastiveLoss()(a * C)) for a in grid], label="all pairs right")
ax_l.plot(grid, [float(ContrastiveLoss()(a * C_mistake)) for a in grid], label="one mistake")
for ax in (ax_p, ax_l):
    ax.axvline(math.exp(INIT), color="grey", linestyle=":", label="initial scale 14.3")
    ax.set_xscale("log")
    ax.set_xlabel("scale e^s")
    ax.legend(fontsize=7)
ax_p.set(ylabel="diagonal row probability", title="the softmax sharpens")
ax_l.set(ylabel="CLIP loss", title="the loss")
show(fig, "04_temperature.png")

# %% [markdown]
# ## Gradient checks
#
# Both layers' backward passes against central differences, in float64. For `L2Normalize`
# the backward $dx = \frac{dy - y \, (y \cdot dy)}{\lVert x \rVert}$ removes the part of $dy$ along $y$ (moving
# along `y` only changes the length, which is thrown away). One consequence is checked too:
# the gradient is orthogonal to the input.

# %%
x = rng.standard_normal((4, 5))  # (N, d)
results = [
    gradcheck(L2Normalize(), x.copy(), label="L2Normalize"),
    gradcheck(LogitScale(dtype=np.float64), C.copy(), label="LogitScale"),
]
for result in results:
    print(result.report())
    assert result.ok

layer = L2Normalize()
layer(x)
dx = layer.backward(rng.standard_normal(x.shape))  # (N, d)
assert np.allclose((dx * x).sum(axis=1), 0.0)  # no gradient along the input: length does not matter

# %% [markdown]
# ## What you should take away
#
# * a raw dot product grows with the vectors' lengths, so a long wrong vector can beat a short
#   right one; dividing by the lengths leaves the cosine, in [−1, 1], which sees only direction;
# * cosines alone make a softmax too flat to be confident, so CLIP multiplies them by a learned
#   scale `e^s` (kept positive by storing `s`), starting at 1/0.07 ≈ 14.3;
# * a larger scale sharpens the softmax, which lowers the loss while the pairs are right and
#   raises it for mistakes; the clamp to [0, ln 100] stops `s` growing without end.

# %%
print("lesson 04 passed: cosines are bounded, the scale sharpens the softmax, both backwards check out")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/04_cosine_similarity_and_temperature.py`.
#
# 1. **Write the backward first: the whole head.** Write one `Module` that computes the logits
#    $Z_{ij} = e^{s} \, \frac{T_i \cdot I_j}{\lVert T_i \rVert \, \lVert I_j \rVert}$ with $s$ a
#    `Parameter`, and derive its backward before looking at `L2Normalize` and `LogitScale`:
#    $\partial L / \partial s$, then the cosines' gradient, then $\partial L / \partial T$ and
#    $\partial L / \partial I$ through the normalisation. Check all three with `gradcheck` on
#    random float64 `T` and `I`.
# 2. **Derive: how large must the scale be?** A perfect match among N = 4 images has cosine 1
#    against −1 for the other three. Derive its row probability at scale $a$ and the scale at
#    which it reaches 0.99; check with `softmax`. How close to 1 is it at the initial 14.29?
# 3. **Predict, then run: a smaller mistake.** Set `C_mistake[1, 2] = 0.27` instead of 0.31.
#    Before running `learn_scale(C_mistake)`, say whether the learned scale stays inside
#    [1, 100] or runs to the clamp, and why.
