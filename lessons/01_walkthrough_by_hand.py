# %% [markdown]
# # Lesson 01 — CLIP by hand: 3 text–image pairs, every number on paper
#
# CLIP learns two encoders, one for text and one for images, that map a caption and its
# picture to nearby points in one shared space. Training shows it a mini-batch of N pairs
# and asks, for every caption, "which of these N images is yours?" and, for every image,
# "which of these N captions is yours?".
#
# This lesson runs the smallest version of that idea through miniclip's real layers, with
# small integer weights chosen so you can check each number with a pencil:
#
#     caption ─lookup→ 2 word vectors ─linear+ReLU→ mean pool ─projection→ T (a point in 2-D)
#     image   ─patches→ 2 patch vectors ─linear+ReLU→ mean pool ─projection→ I (a point in 2-D)
#     logits = T·Iᵀ → softmax by rows and by columns → compare with the targets Y → backward → SGD
#
# `miniclip walkthrough` prints the same 13 steps in one go; here we take them one at a time.
#
# **Counting.** In the text, pairs are counted from 1: pair 1 is caption 1 ("big table") with
# image 1. Arrays in the code count from 0, as Python does, so image 1 is `images[0]` and its
# logit against caption 1 is `logits[0, 0]`.
#
# The code: `miniclip/teaching/walkthrough.py` and `miniclip/teaching/walkthrough_model.py`, on `miniclip/layers/`;
# the sheet at the end: `miniclip/teaching/walkthrough_sheet.py`.

# %%
import numpy as np

from miniclip import set_device
from miniclip.optim import SGD
from miniclip.teaching.lesson_output import figure_folder, show
from miniclip.teaching.walkthrough import (
    CAPTIONS,
    IMAGES,
    VOCAB,
    build_walkthrough,
    compute_walkthrough,
    diagonal_share,
    format_matrix,
    walkthrough_batch,
    walkthrough_state,
)
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig
from miniclip.teaching.walkthrough_sheet import draw_sheet, write_sheet

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays

# The model of the walkthrough, with its weights replaced by the fixed small integers.
model = WalkthroughCLIP(WalkthroughConfig(base=3), rng=np.random.default_rng(0), dtype=np.float64)
model.load_state(walkthrough_state())
for name, p in model.parameters().items():
    print(f"{name:<22} {tuple(p.data.shape)}")

# %% [markdown]
# ## Step 1 · A mini-batch of 3 pairs
#
# Pair i is caption i with image i. Each caption is 2 words, given as word ids in the
# vocabulary. Each image is 1 channel of 2×4 pixels, which we will cut into two 2×2 patches,
# so a caption is 2 words and an image is 2 patches: the same shape of problem on both sides.

# %%
ids, images = walkthrough_batch()  # (N, L) word ids, (N, 1, 2, 4) pixels
N = len(CAPTIONS)
texts = list(CAPTIONS)
imgs = [f"image {j + 1}" for j in range(N)]
for caption, word_ids, image in zip(CAPTIONS, ids, IMAGES, strict=True):
    print(f"{caption!r:<12} ids {word_ids}   image rows {image[0]} / {image[1]}")

# %% [markdown]
# ## Step 2 · Word vectors (a lookup table, like word2vec)
#
# Every word of the vocabulary owns one row of a learned table of 3-D vectors. Looking up a
# caption gives one vector per word: `words[n, l] = table[ids[n, l]]`.

# %%
words = model.text.lookup(ids)  # (N, L, 3)
word_labels = [f"{c} · {w}" for c in CAPTIONS for w in c.split()]
print(format_matrix("lookup table", model.text.lookup.table.data, list(VOCAB)))
print(format_matrix("Step 2 · word vectors", words, word_labels))

# %% [markdown]
# ## Step 3 · Patches, flattened
#
# A 2×4 image holds two 2×2 patches (left and right). Each patch is read row by row into 4
# numbers, so image 1 `[[0 1 2 2], [2 0 1 0]]` gives `[0 1 2 0]` (its left half) and
# `[2 2 1 0]` (its right half).

# %%
patches = model.image.patchify(images)  # (N, L, 4)
patch_labels = [f"image {j + 1} · patch {k + 1}" for j in range(N) for k in range(2)]
print(format_matrix("Step 3 · patches", patches, patch_labels))
assert patches[0].tolist() == [[0, 1, 2, 0], [2, 2, 1, 0]]  # image 1 is row 0

# %% [markdown]
# ## Step 4 · Text encoder: one linear layer + ReLU (3 → 3)
#
# Each word vector `x` (a row) becomes `ReLU(x·W + b)`. By hand for "small" = `[0 2 0]`: only
# the second row of `W` counts, twice: `2·[−1 0 1] + [1 1 1] = [−1 1 3]`, and the ReLU turns
# the `−1` into `0`. For "dog" = `[2 2 1]`: `2·[1 1 0] + 2·[−1 0 1] + 1·[1 0 0] + [1 1 1]
# = [2 3 3]`, nothing to cut.

# %%
text_pre = model.text.encode(words)  # (N, L, 3)
text_hidden = model.text.relu(text_pre)  # (N, L, 3)
print(format_matrix("W_t", model.text.encode.weight.data))
print(format_matrix("b_t", model.text.encode.bias.data))
print(format_matrix("Step 4 · x·W_t + b_t", text_pre, word_labels))
print(format_matrix("Step 4 · ReLU", text_hidden, word_labels))
assert text_pre[1, 0].tolist() == [-1, 1, 3] and text_hidden[1, 0].tolist() == [0, 1, 3]  # "small"
assert text_hidden[1, 1].tolist() == [2, 3, 3]  # "dog"

# %% [markdown]
# ## Step 5 · Image encoder: one linear layer + ReLU (4 → 4)
#
# The same kind of layer, with its own weights and a different width on purpose: the two
# encoders do not need to agree on anything until the projection.

# %%
image_pre = model.image.encode(patches)  # (N, L, 4)
image_hidden = model.image.relu(image_pre)  # (N, L, 4)
print(format_matrix("W_i", model.image.encode.weight.data))
print(format_matrix("b_i", model.image.encode.bias.data))
print(format_matrix("Step 5 · x·W_i + b_i", image_pre, patch_labels))
print(format_matrix("Step 5 · ReLU", image_hidden, patch_labels))

# %% [markdown]
# ## Step 6 · Mean pooling: 2 vectors → 1 per item
#
# A caption has one vector per word, but we want one vector per caption: average them.
# `(small + dog) / 2 = ([0 1 3] + [2 3 3]) / 2 = [1 2 3]`, a vector neither word had. The
# images likewise: image 1's two patches left the encoder as `[3 1 2 0]` and `[1 1 0 0]`,
# and their mean is `[2 1 1 0]`. Every caption's two words, and every image's two patches,
# differ here, so every pooled vector is a true average.

# %%
text_pooled = model.text.pool(text_hidden)  # (N, 3)
image_pooled = model.image.pool(image_hidden)  # (N, 4)
print(format_matrix("Step 6 · pooled text", text_pooled, texts))
print(format_matrix("Step 6 · pooled images", image_pooled, imgs))
assert text_pooled[1].tolist() == [1, 2, 3] and image_pooled[0].tolist() == [2, 1, 1, 0]
for hidden, pooled in ((text_hidden, text_pooled), (image_hidden, image_pooled)):
    assert np.array_equal(pooled, (hidden[:, 0] + hidden[:, 1]) / 2)
    assert all(not np.array_equal(item[0], item[1]) for item in hidden)  # the two halves always differ

# %% [markdown]
# ## Step 7 · Projection into the shared 2-D space
#
# A linear layer *without bias* on each side maps the 3-D text vectors and the 4-D image
# vectors to the same 2-D space: `T = pooled_t · P_t`, `I = pooled_i · P_i`. Only now can a
# caption and an image be compared.

# %%
T = model.text.project(text_pooled)  # (N, 2)
I = model.image.project(image_pooled)  # (N, 2)
print(format_matrix("Step 7 · T", T, texts))
print(format_matrix("Step 7 · I", I, imgs))

# %% [markdown]
# ## Steps 8 and 9 · Copy T and Iᵀ, then one MatMul
#
# Write `T` on the left and `Iᵀ` (one column per image) on top: every cell of `T·Iᵀ` is one
# caption·image dot product, `logits[i, j] = T[i] · I[j]`. The true pairs sit on the
# diagonal. Look at row 2: "small dog" scores image 3 (3) above its own image 2 (2). And
# column 3: image 3 scores "small dog" (3) above its own caption "red car" (1). That is what
# training must fix.

# %%
print(format_matrix("Step 8 · Iᵀ", I.T, None, imgs))
logits = model.similarity(T, I)  # (N, N)
print(format_matrix("Step 9 · logits = T·Iᵀ", logits, texts, imgs))
assert logits[1, 2] > logits[1, 1] and logits[1, 2] > logits[2, 2]  # row 2 and column 3 are wrong

# %% [markdown]
# ## Steps 10 to 12 · Softmax both ways, with 3^x instead of e^x
#
# A softmax turns scores into probabilities: exponentiate, then divide by the sum. By hand we
# use `3^x` (1/9, 1/3, 1, 3, 9, 27) instead of `e^x`: it behaves the same and fits in your
# head. Row 1 is `[3 1 1/9]`; times 9, `[27 9 1] / 37`.
#
# The two directions, named as everywhere in miniclip by *query→what it ranks*:
#
# * **text→image**: each **row** asks "for this caption, which image?" and is divided by its
#   row sum: `P_rows`, each row sums to 1;
# * **image→text**: each **column** asks "for this image, which caption?": `P_cols`, each
#   column sums to 1.
#
# With $z_{ij}$ the logit of caption $i$ against image $j$ (`logits[i - 1, j - 1]` in the code):
#
# $$
# P_{\mathrm{rows}}[i, j] = \frac{3^{z_{ij}}}{\sum_{k} 3^{z_{ik}}} \qquad
# P_{\mathrm{cols}}[i, j] = \frac{3^{z_{ij}}}{\sum_{k} 3^{z_{kj}}}
# $$
#
# The 3-pair spreadsheet this course mirrors (hand-drawn, coloured matrices: what `miniclip
# walkthrough` prints, step by step, and draws as one sheet at the end of this lesson) labels
# its row sums "image→text" and its column sums "text→image": the same sums, named the other
# way round. CLIP's paper puts the images on the rows, `I·Tᵀ` (`logits_per_image` in OpenAI's
# code), the transpose of our `T·Iᵀ`: its rows are our columns, and the loss is the same.
#
# **The loss, and its base.** Each direction's loss is the cross-entropy `−log P` of the right
# partner, averaged over the 3 pairs; the CLIP loss is the mean of the two directions:
#
# $$
# L = -\frac{1}{2N} \sum_{i} \left( \log_{3} P_{\mathrm{rows}}[i, i] + \log_{3} P_{\mathrm{cols}}[i, i] \right)
# $$
#
# With `3^x` in the softmax, that log is taken in base 3 as well (`log_3` undoes `3^x` as `ln` undoes `e^x`),
# so the 0.7217 printed below is in base 3. The natural log of the same probabilities gives
# 0.7217 · ln 3 ≈ 0.793. (`miniclip walkthrough --base e` puts `e^x` in the softmax itself: other
# probabilities, another loss.)

# %%
power = 3.0**logits  # (N, N): 3^x
row_sums = power.sum(axis=1)  # (N,)
col_sums = power.sum(axis=0)  # (N,)
p_rows = power / row_sums[:, None]  # (N, N): each row sums to 1
p_cols = power / col_sums[None, :]  # (N, N): each column sums to 1
print(format_matrix("Step 10 · 3^x", power, texts, imgs))
print(format_matrix("Step 11 · row sums", row_sums), format_matrix("Step 11 · column sums", col_sums), sep="\n")
print(format_matrix("Step 12 · P_rows (text→image)", p_rows, texts, imgs))
print(format_matrix("Step 12 · P_cols (image→text)", p_cols, texts, imgs))
assert np.allclose(p_rows[0], np.array([27, 9, 1]) / 37)

loss = model.loss(logits)  # the real head: both softmaxes (stably) and both cross-entropies, log base 3
assert np.allclose(model.loss.p_rows, p_rows) and np.allclose(model.loss.p_cols, p_cols)
loss_ln = -(np.log(np.diag(p_rows)).mean() + np.log(np.diag(p_cols)).mean()) / 2  # the same, natural log
print(f"loss = {float(loss):.4f} (log base 3) = {loss_ln:.4f} with the natural log")
assert np.isclose(loss_ln, float(loss) * np.log(3))  # log_3 p = ln p / ln 3

# %% [markdown]
# ## Step 13 · Targets and the gradient of each direction
#
# The targets `Y` are the identity: caption i belongs with image i. For a softmax followed by
# cross-entropy the gradient with respect to the logits is simply **probabilities minus
# targets** (lesson 02 derives it), so each direction's gradient is `P − Y`.

# %%
Y = np.eye(N)  # (N, N): the targets
print(format_matrix("Step 13 · P_rows − Y", p_rows - Y, texts, imgs))
print(format_matrix("Step 13 · P_cols − Y", p_cols - Y, texts, imgs))

# %% [markdown]
# ## Backward: from the logits down to every weight
#
# Each direction's loss is the average over the N pairs and the CLIP loss is the mean of the
# two directions, so
#
# $$
# \frac{\partial L}{\partial z} = \frac{(P_{\mathrm{rows}} - Y) + (P_{\mathrm{cols}} - Y)}{2N}
# $$
#
# (`dlogits` in the code). Then every layer's
# backward, in reverse order: the MatMul hands `dT = d(logits)·I` and `dI = d(logits)ᵀ·T`;
# the projection gives its weight gradient and passes `dT·P_tᵀ` down; mean pooling gives each
# word half; the ReLU lets the gradient through only where its input was positive; the linear
# layer fills `dW` and `db`; the lookup adds each word's gradient into its row of the table.

# %%
model.zero_grad()
dlogits = model.loss.backward()  # (N, N)
assert np.allclose(dlogits, ((p_rows - Y) + (p_cols - Y)) / (2 * N))
dT, dI = model.similarity.backward(dlogits)  # (N, 2), (N, 2)
print(format_matrix("d(logits)", dlogits, texts, imgs))
print(format_matrix("dT", dT, texts))
print(format_matrix("dI", dI, imgs))

# The text side, one layer at a time (this is exactly BagOfWords.backward):
d_pooled = model.text.project.backward(dT)  # (N, 3)
d_hidden = model.text.pool.backward(d_pooled)  # (N, L, 3): each word gets half
d_pre = model.text.relu.backward(d_hidden)  # (N, L, 3): zero where the ReLU cut
d_words = model.text.encode.backward(d_pre)  # (N, L, 3)
model.text.lookup.backward(d_words)
assert np.allclose(d_hidden[:, 0], d_pooled / 2) and np.all(d_pre[text_pre < 0] == 0)
model.image.backward(dI)  # the image side in one call

for name, p in model.parameters().items():
    print(format_matrix(f"d({name})", p.grad, list(VOCAB) if name == "text.lookup.table" else None))

# The same gradients as `model.backward()`, which `miniclip walkthrough` uses.
reference = compute_walkthrough(base=3)
for name, p in model.parameters().items():
    assert np.allclose(p.grad, reference[f"d({name})"]), name

# %% [markdown]
# ## One SGD step, and the check
#
# Move every weight a little against its gradient, $w \leftarrow w - \eta \, \partial L / \partial w$
# with the learning rate $\eta$ = `lr` = 0.1, and run the forward again. The diagonal share of
# probability (how much each caption gives its own image and each image its own caption,
# averaged) should grow: the pairs have been pulled together and the
# wrong matches pushed apart. Here one step is enough to put every row's and every column's
# largest logit on the diagonal: "small dog" now prefers image 2, and image 3 "red car".

# %%
share_before = diagonal_share(p_rows, p_cols)
SGD(model.parameters(), lr=0.1).step()
loss_after = model.forward(ids, images)
print(format_matrix("logits after one step", model.logits, texts, imgs))
share_after = diagonal_share(model.loss.p_rows, model.loss.p_cols)
print(f"loss {float(loss):.4f} → {float(loss_after):.4f}")
print(f"diagonal share {share_before:.3f} → {share_after:.3f}")

assert share_after > share_before, "the diagonal share should grow after one SGD step"
diagonal = np.arange(N)
assert (model.logits.argmax(axis=1) == diagonal).all() and (model.logits.argmax(axis=0) == diagonal).all()

# %% [markdown]
# ## The whole walkthrough on one sheet
#
# The spreadsheet this course mirrors draws all of the above as coloured matrices on one page;
# `miniclip walkthrough --figure sheet.png` (or `.svg`) draws it the same way, from the very
# numbers the printout prints. It reads top to bottom: the text side in blues on the left, the
# image side in oranges on the right, meeting in purples at the similarity matrix; then the
# backward and the SGD update. Each grid is titled with its step as printed, and every number
# sits in its cell. A notebook shows it here; a plain script run saves it as
# `01_walkthrough_sheet.png` when `MINICLIP_LESSON_OUT` names a folder.

# %%
sheet = draw_sheet(build_walkthrough(base=3, lr=0.1))
sheet_png = write_sheet(sheet, figure_folder() / "01_walkthrough_sheet.png")  # what `--figure` writes
show(sheet_png, "01_walkthrough_sheet.png")  # inline in a notebook; kept under MINICLIP_LESSON_OUT when set

print("lesson 01 passed: the diagonal share grew after one SGD step, and the sheet is drawn")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/01_walkthrough_by_hand.py`.
#
# 1. **Derive: caption 2's row and image 3's column.** Row 2 of the step-9 logits is `[−2 2 3]`
#    and column 3 is `[−2 3 1]`. By hand, with `3^x`, write caption 2's row of `P_rows` and
#    image 3's column of `P_cols` as exact fractions (multiply top and bottom by 9 first), and
#    each one's cross-entropy $-\log_{3} p$ of the right partner. Which of the two costs more?
# 2. **Write the backward first: the similarity.** Before reading the backward section again,
#    derive $\partial L / \partial T$ and $\partial L / \partial I$ for `logits = T·Iᵀ` from an
#    upstream gradient `dlogits` (nudge one entry of `T` and see which logits move). Write it as
#    a small `Module` (`forward(T, I)` keeps both; `backward(dlogits)` returns `(dT, dI)`) and
#    check it with `miniclip.teaching.gradcheck.gradcheck` on the walkthrough's `T` and `I` in
#    float64, then against `model.similarity.backward`.
# 3. **Predict, then run: the learning rate.** Change `lr=0.1` in the SGD step to `0.01`, then to
#    `1.0`. For each, say before running: does the loss fall? does the diagonal share grow? does
#    every row's and every column's largest logit land on the diagonal?
