# %% [markdown]
# # Lesson 11 — Maps and matrices: looking at the embedding space
#
# A trained CLIP puts every image and every caption on the unit sphere in d dimensions (32
# here, 512 in the paper's). Accuracy says how often the nearest caption is right; it says
# nothing about the *shape* of the two clouds. This lesson looks at them four ways, each
# written out by hand first and then checked against `miniclip.probe.maps`:
#
# * **PCA** — the directions of largest variance, from one SVD (six points in 3-D first);
# * **t-SNE** — a 2-D map that keeps each point's neighbours, on a dozen points whose every
#   number can be read: the affinities, the binary search behind them, the Student-t
#   similarities of the map, the KL divergence and its gradient;
# * **cosine matrices** of a trained model — class-mean images against class captions (the
#   zero-shot matrix), images against images, captions against captions — and what their
#   blocks say about colour, size and shape;
# * **the gap** between the image cloud and the caption cloud (Liang et al. 2022, "Mind the
#   Gap"): measured by hand, watched from initialisation to the end of training, and closed
#   by hand to see what the loss thinks of it.
#
# `miniclip probe RUN` computes all of this (and lesson 12's blur, subspaces and persistence)
# for any trained run and writes the figures.
#
# The code: `miniclip/probe/maps.py` and `miniclip/probe/embeddings.py`; `miniclip/probe/report.py`
# and `miniclip/probe/figures.py` for the command.

# %%

import matplotlib.pyplot as plt
import numpy as np

from miniclip import set_device
from miniclip.data.shapes import COLOURS, SHAPES, SIZES
from miniclip.evaluation.trained_run import load_run
from miniclip.evaluation.zeroshot import caption_embeddings, encode_images, prompt_ensemble, zero_shot
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.model.targets import label_aware_targets
from miniclip.probe.embeddings import embed_run
from miniclip.probe.figures import plot_map
from miniclip.probe.maps import (
    choose_k,
    conditional_affinities,
    fit_pca,
    joint_affinities,
    kl_divergence,
    kl_gradient,
    modality_gap,
    neighbour_agreement,
    squared_distances,
    student_t_similarities,
    tsne,
)
from miniclip.teaching.lesson_output import figure_folder, scratch_folder, show
from miniclip.teaching.lesson_runs import tiny_run  # trained once, reused by 11–14
from miniclip.training.configs import named_config
from miniclip.training.loop import Trainer

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=3, suppress=True, linewidth=120)


# %% [markdown]
# ## 1. PCA by hand: six points near a tilted plane
#
# Six points whose (x, y) are spread out and whose height is z ≈ x/2, give or take 0.1: a
# sheet of paper tilted up along x, with the points lying almost on it. PCA should find two
# directions inside the sheet that carry nearly all the variance, and a third — the sheet's
# normal, ∝ (−1/2, 0, 1) — that carries almost none. Centre the points (PCA describes the
# spread, not the position), $\tilde{X} = X - \mathrm{mean}(X)$, and take the thin SVD
# $\tilde{X} = U S V^\top$: the rows of $V^\top$ are the principal directions, and the variance
# of the points' coordinates along direction k, and its share of the whole, are
#
# $$\mathrm{variance}_k = \frac{S_k^2}{N - 1}$$
#
# $$\mathrm{ratio}_k = \frac{\mathrm{variance}_k}{\sum_j \mathrm{variance}_j}$$

# %%
xy = np.array([[-2.0, -1.0], [-1.0, 1.0], [0.0, -2.0], [0.0, 2.0], [1.0, -1.0], [2.0, 1.0]])  # (6, 2)
wobble = np.array([0.1, -0.1, 0.05, -0.05, -0.1, 0.1])  # (6,) off the sheet
cloud = np.column_stack([xy, 0.5 * xy[:, 0] + wobble])  # (6, 3)
print("the six points (x, y, z):\n", cloud)
centred = cloud - cloud.mean(axis=0)  # (6, 3)
u, s, vt = np.linalg.svd(centred, full_matrices=False)  # u (6, 3), s (3,), vt (3, 3)
variance = s**2 / (len(cloud) - 1)  # (3,)
ratio = variance / variance.sum()  # (3,)
print("singular values:", s, " variance S²/(N−1):", variance, " ratio:", ratio)
print("directions (rows):\n", vt)
normal = np.array([-0.5, 0.0, 1.0]) / np.linalg.norm([-0.5, 0.0, 1.0])
print(f"|cos| of the third direction with the sheet's normal: {abs(vt[2] @ normal):.4f}")
assert np.allclose(variance, centred.var(axis=0, ddof=1).sum() * ratio)  # the shares split the total variance
assert np.allclose((centred @ vt.T).var(axis=0, ddof=1), variance)  # variance_k is the variance along k
assert abs(vt[2] @ normal) > 0.99

# %% [markdown]
# **Signs.** An SVD fixes each direction only up to sign: u_k s_k v_kᵀ = (−u_k) s_k (−v_k)ᵀ,
# so NumPy, another LAPACK or CuPy may hand back v_k or −v_k, and a map drawn from it would
# come out mirrored from one machine to the next. `fit_pca` picks one: each direction is
# flipped so that its largest-magnitude entry is positive. Both sign choices are equally good
# SVDs; the rule sends either to the same directions, and those are the package's exactly.

# %%
pca = fit_pca(cloud)
assert np.allclose(np.abs(pca.components @ vt.T), np.eye(3), atol=1e-12)  # the same directions, up to sign


def fix_signs(directions: np.ndarray) -> np.ndarray:
    """Each row (k, d) flipped, if need be, so that its largest-magnitude entry is positive."""
    largest = np.argmax(np.abs(directions), axis=1)  # (k,) where each direction is biggest
    return directions * np.sign(directions[np.arange(len(directions)), largest])[:, None]


flipped = -vt  # the other SVD: (−U) S (−Vᵀ) is the same matrix
assert np.allclose((-u * s) @ flipped, centred) and np.allclose((u * s) @ vt, centred)
print("largest entry of each direction, before the rule:", vt[np.arange(3), np.argmax(np.abs(vt), axis=1)])
assert np.allclose(fix_signs(vt), fix_signs(flipped)) and np.allclose(pca.components, fix_signs(vt))
assert np.allclose(pca.mean, cloud.mean(axis=0))
assert np.allclose(pca.explained_variance, variance) and np.allclose(pca.explained_variance_ratio, ratio)

# %% [markdown]
# Keeping k directions: `transform` gives the coordinates along them, `(X − mean) Vᵀ[:k]ᵀ`,
# and what is lost is exactly the variance of the directions dropped. `choose_k(ratio, f)` is
# the fewest directions whose shares add up to at least f: one direction holds more than half
# the variance, two hold 99.9 % of it.

# %%
flat = fit_pca(cloud, k=2)
on_sheet = flat.transform(cloud)  # (6, 2) the points' coordinates on the sheet
rebuilt = flat.mean + on_sheet @ flat.components  # (6, 3) back in 3-D, on the sheet
lost = ((cloud - rebuilt) ** 2).sum() / (len(cloud) - 1)
print("coordinates on the sheet:\n", on_sheet)
print(f"variance lost by keeping 2: {lost:.5f}  (variance_3 = {variance[2]:.5f})")
print(
    "cumulative ratio:", np.cumsum(ratio), " choose_k for 0.5, 0.9, 1.0:", [choose_k(ratio, f) for f in (0.5, 0.9, 1.0)]
)
assert np.isclose(lost, variance[2])
assert [choose_k(ratio, f) for f in (0.5, 0.9, 0.99, 1.0)] == [1, 2, 2, 3]

# %% [markdown]
# ## 2. t-SNE by hand, on a dozen points
#
# PCA keeps the directions of largest spread; its picture is only as good as two directions
# can be. t-SNE (van der Maaten & Hinton 2008) keeps *neighbourhoods* instead: it turns the
# distances into probabilities "i would pick j as its neighbour", then places points on a
# plane so that the plane's probabilities match. Twelve points in 5-D: three clusters of
# four, around 3·e₁, 3·e₂ and 3·e₃, each point jittered by N(0, 0.3²) in every coordinate.
# Squared distances are below 1 inside a cluster and about 18 between clusters.

# %%
rng = np.random.default_rng(0)
dozen = np.repeat(3.0 * np.eye(3, 5), 4, axis=0) + 0.3 * rng.normal(size=(12, 5))  # (12, 5)
cluster = np.repeat(np.arange(3), 4)  # (12,) 0 0 0 0 1 1 1 1 2 2 2 2
d2 = ((dozen[:, None, :] - dozen[None, :, :]) ** 2).sum(axis=2)  # (12, 12) by the definition
assert np.allclose(d2, squared_distances(dozen))  # the package uses ‖a‖² + ‖b‖² − 2a·b
print("squared distances from point 0:", d2[0])

# %% [markdown]
# **One row's affinities.** Point i weighs every other point j by a Gaussian of the distance,
#
# $$p_{j|i} = \frac{\exp(-\beta_i D_{ij})}{\sum_{k \neq i} \exp(-\beta_i D_{ik})}$$
#
# The precision $\beta_i = 1 / 2\sigma_i^2$ is not
# chosen by hand: it is set so that the row's *perplexity* 2^H, with H its entropy in bits,
# equals a target — "the effective number of neighbours". Large β: only the nearest counts,
# perplexity near 1; β → 0: all eleven count equally, perplexity 11. The perplexity falls as
# β grows, so a binary search finds it: while the perplexity is too high, raise β (double it
# until the target is bracketed), while too low, lower it; once bracketed, bisect. Target 3:
# each point's three cluster-mates. Row 0, from β = 1:

# %%
target = 3.0
d = np.delete(d2[0], 0)  # (11,) distances to the eleven others
beta, lo, hi = 1.0, 0.0, np.inf  # the search keeps β inside [lo, hi]
for step in range(100):
    w = np.exp(-beta * d)  # (11,)
    p_row = w / w.sum()
    entropy = -(p_row * np.log2(p_row)).sum()  # bits
    print(f"  step {step:2d}: β = {beta:.6f}  H = {entropy:.6f} bits  perplexity 2^H = {2**entropy:.6f}")
    if abs(2**entropy - target) < 1e-5:
        break
    if 2**entropy > target:  # too many neighbours: sharpen
        lo = beta
    else:
        hi = beta
    beta = 2 * beta if np.isinf(hi) else (lo + hi) / 2
p_cond, betas, perplexities = conditional_affinities(d2, target)  # all twelve rows at once
print("p_j|0:", p_row, " β of every row:", betas)
assert np.allclose(np.delete(p_cond[0], 0), p_row, atol=1e-4) and np.isclose(betas[0], beta, rtol=1e-3)
assert np.allclose(perplexities, target, atol=1e-4)
assert p_row[:3].sum() > 0.99  # nearly all of row 0 is on its three cluster-mates

# %% [markdown]
# The package searches all rows at once and first subtracts each row's smallest distance
# (it cancels in the normalisation) so that no row can underflow to all zeros; the answer
# is the same to the search's tolerance.
#
# **Symmetric P.** p_j|i and p_i|j differ (an outlier's row spreads wide; its neighbours'
# rows barely notice it), so t-SNE averages them into one distribution over *pairs*,
#
# $$p_{ij} = \frac{p_{j|i} + p_{i|j}}{2N}$$
#
# which sums to 1 over all i ≠ j and gives every point at least 1/2N of the mass.

# %%
p = (p_cond + p_cond.T) / (2 * len(dozen))  # (12, 12) symmetric, sums to 1
assert np.allclose(p, joint_affinities(dozen, target), atol=1e-6)  # (it floors at 1e-12 and renormalises)
assert np.allclose(p, p.T) and np.isclose(p.sum(), 1.0) and (p.sum(axis=1) >= 1 / (2 * len(dozen))).all()
same = cluster[:, None] == cluster[None, :]
print(f"mass of P inside the clusters: {p[same].sum():.4f}")

# %% [markdown]
# **The map's similarities Q.** A map y (12, 2) gets similarities from a Student-t kernel
# with one degree of freedom, normalised over all pairs:
#
# $$w_{ij} = \frac{1}{1 + \|y_i - y_j\|^2}, \quad q_{ij} = \frac{w_{ij}}{\sum_{k \neq l} w_{kl}}$$
#
# Its heavy tail is the "t" of t-SNE: a moderate distance in 5-D may become a large one in the
# plane at little cost, so clusters have room to separate. The map is fitted by minimising
#
# $$C = \mathrm{KL}(P \| Q) = \sum_{i \neq j} p_{ij} \log \frac{p_{ij}}{q_{ij}}$$
#
# A random map first:

# %%
y = np.random.default_rng(1).normal(size=(12, 2))  # (12, 2) a random map, float64
kernel = 1.0 / (1.0 + ((y[:, None, :] - y[None, :, :]) ** 2).sum(axis=2))  # (12, 12)
np.fill_diagonal(kernel, 0.0)  # q_ii = 0
q = kernel / kernel.sum()  # (12, 12)
off = ~np.eye(12, dtype=bool)
kl = float((p[off] * np.log(p[off] / q[off])).sum())
print(f"KL(P‖Q) of a random map: {kl:.4f}")
q_package, kernel_package = student_t_similarities(y)
assert np.allclose(q, q_package) and np.allclose(kernel, kernel_package)
assert np.isclose(kl, kl_divergence(p, y))

# %% [markdown]
# **The gradient.** Write C = Σ p_kl log p_kl − Σ p_kl log w_kl + log Z with Z = Σ_k≠l w_kl
# (Σ p_kl = 1 carries the log Z out). For the point i, with ∂w_ij/∂y_i = −2 w_ij² (y_i − y_j):
#
# * the middle sum has two terms in each pair (k, l) = (i, j) and (j, i): it gives
#   −2 Σ_j p_ij ∂log w_ij/∂y_i = 4 Σ_j p_ij w_ij (y_i − y_j);
# * log Z gives (1/Z) · 2 Σ_j ∂w_ij/∂y_i = −4 Σ_j q_ij w_ij (y_i − y_j), as q_ij = w_ij/Z;
#
# so
#
# $$\frac{\partial C}{\partial y_i} = 4 \sum_j (p_{ij} - q_{ij}) \, w_{ij} \, (y_i - y_j)$$
#
# Read as springs: where the data
# want i and j closer than the map has them (p > q) the term pulls y_i towards y_j, where
# less close it pushes them apart. Point 0, with a loop over j, against `kl_gradient` (all
# points at once, by two matrix products) and against central differences of the KL:

# %%
i = 0
grad_i = np.zeros(2)
for j in range(12):
    if j != i:
        grad_i += 4 * (p[i, j] - q[i, j]) * kernel[i, j] * (y[i] - y[j])
grad = kl_gradient(p, y)  # (12, 2)
eps = 1e-6
numeric = np.zeros_like(y)  # (12, 2)
for k in range(12):
    for c in range(2):
        up, down = y.copy(), y.copy()
        up[k, c] += eps
        down[k, c] -= eps
        numeric[k, c] = (kl_divergence(p, up) - kl_divergence(p, down)) / (2 * eps)
print("∂C/∂y_0 by the loop:", grad_i, " kl_gradient:", grad[0], " central differences:", numeric[0])
relative = np.abs(grad - numeric).max() / np.abs(numeric).max()
print(f"largest relative error of kl_gradient against central differences, all 24 entries: {relative:.1e}")
assert np.allclose(grad_i, grad[0]) and relative < 1e-6

# %% [markdown]
# **The whole fit.** `tsne` starts from a tiny random map and descends the gradient, with the
# tricks of the paper: for the first 250 of its 1000 steps P is multiplied by 12 ("early
# exaggeration": the clusters gather while the map is still small, then spread), with
# momentum and per-coordinate gains. The KL of the true P along the way — it *rises* during
# the exaggeration, when the map is fitted to 12·P and the clusters huddle tighter than P
# asks, and falls once the true P takes over — and the final map's points, cluster by cluster:

# %%
for steps in (1, 250, 1000):
    print(f"  after {steps:4d} steps: KL(P‖Q) = {kl_divergence(p, tsne(dozen, perplexity=target, n_iter=steps)):.4f}")
plane = tsne(dozen, perplexity=target)  # (12, 2)
for c in range(3):
    print(f"  cluster {c}:", plane[cluster == c].round(1).tolist())
kept = neighbour_agreement(plane, cluster, k=3)  # (12,) share of each point's 3 map-neighbours in its cluster
print("neighbour agreement in the map (k = 3):", kept)
assert kl_divergence(p, plane) < kl_divergence(p, y) / 2
assert (kept == 1.0).all() and (neighbour_agreement(dozen, cluster, k=3) == 1.0).all()

# %% [markdown]
# Every point's three nearest neighbours in the plane are its own cluster-mates, as in 5-D.
# What a t-SNE map does *not* keep: distances between clusters, and cluster sizes — the
# Student-t tail lets them come out however the optimisation settles (here the clusters end
# a couple of hundred units apart, against about 4 in 5-D). Read a t-SNE map for
# who sits with whom, never for how far.
#
# ## 3. A trained model: the cosine matrices
#
# The tiny shapes model of lessons 09 and 10 (a few seconds to train; `tiny_run` above trains
# it once and keeps it, so running this cell again, or lessons 12–14 after this one with
# `MINICLIP_LESSON_OUT` set, reuse it). First one look at the untrained model's embeddings,
# kept for section 4: a `Trainer` built from the same seed draws the same starting weights,
# and is never run. Then `load_run` reads the trained checkpoint back and `embed_run` encodes
# what every probe looks at: the 480 test images (N, d), every class written with every
# template (K, T, d) and the prompt ensemble (K, d), all unit vectors.

# %%
cfg = named_config("tiny", out_dir=str(scratch_folder("untrained")))
fresh = Trainer(cfg, show_progress=False)  # the run's starting point, drawn from its seed; never trained
ds = fresh.dataset
untrained_images = encode_images(fresh.model, ds.test_images, fresh.normalize_fn)  # (N, d), eval mode
untrained_captions = caption_embeddings(
    fresh.model, fresh.tokenizer, ds.class_names, ds.train_templates, cfg.context_length
)
run_dir = tiny_run()
run = load_run(run_dir)
metrics = run.checkpoint.metrics
print(f"trained {len(metrics)} epochs, loss {metrics[0]['train_loss']:.3f} → {metrics[-1]['train_loss']:.3f}")
emb = embed_run(run, run.dataset())
images, labels, captions, ensemble = emb.images, emb.labels, emb.captions, emb.ensemble
K, T, dim = captions.shape
print(f"images {images.shape}, captions {captions.shape}, ensemble {ensemble.shape}; templates {emb.templates}")
mean = captions.mean(axis=1)  # (K, d)
assert np.allclose(ensemble, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-6)
assert np.allclose(ensemble, prompt_ensemble(captions)) and (emb.counts == 10).all()

# %% [markdown]
# Each class is summarised by the mean of its ten image embeddings, normalised again (the
# class-mean image, a point on the sphere like the captions). Three K × K cosine matrices:
#
# * **zero-shot**: class-mean image (rows) · class caption ensemble (columns) — the cosines
#   zero-shot classification takes its argmax over, averaged over each class's images (up to
#   one positive factor per row, the renormalisation);
# * class-mean image · class-mean image — how alike the image encoder finds two classes;
# * caption ensemble · caption ensemble — how alike the text encoder finds two class names.
#
# Four classes that each differ from the first in one word: the shape, the colour, the size.

# %%
class_mean = np.stack([images[labels == c].mean(axis=0) for c in range(K)])  # (K, d)
class_mean /= np.linalg.norm(class_mean, axis=1, keepdims=True)
matrices = {
    "zero-shot (image · caption)": class_mean @ ensemble.T,  # (K, K)
    "image · image": class_mean @ class_mean.T,
    "caption · caption": ensemble @ ensemble.T,
}
four_names = ["small red circle", "small red square", "small green circle", "large red circle"]
four = [emb.class_names.index(name) for name in four_names]
for name, matrix in matrices.items():
    print(f"{name}, rows and columns {four_names}:\n", matrix[np.ix_(four, four)])

# %% [markdown]
# The classes are numbered size-major, `c = 24·size + 4·colour + shape` (2 sizes, 6 colours,
# 4 shapes), so in the 48 × 48 heatmap the four shapes of one size and colour form a 4 × 4
# block on the diagonal and the two sizes two 24 × 24 quarters. The mean cosine of the pairs
# of classes sorted by which words differ says what each block means:

# %%
size, colour, shape = np.unravel_index(np.arange(K), (len(SIZES), len(COLOURS), len(SHAPES)))  # (K,) each
words = [f"{a} {b} {c}" for a in SIZES for b in COLOURS for c in SHAPES]
assert emb.class_names == words and words[24 * 1 + 4 * 2 + 1] == "large blue square"
differ = {"size": size[:, None] != size, "colour": colour[:, None] != colour, "shape": shape[:, None] != shape}
patterns = [(), ("shape",), ("colour",), ("size",), ("colour", "shape"), ("size", "shape"), ("size", "colour")]
patterns.append(("size", "colour", "shape"))
by_pattern = {}
print(f"{'words that differ':<22}" + "".join(f"{name:>30}" for name in matrices))
for pattern in patterns:
    chosen = np.ones((K, K), dtype=bool)
    for word, mask in differ.items():
        chosen &= mask if word in pattern else ~mask
    by_pattern[pattern] = [float(m[chosen].mean()) for m in matrices.values()]
    print(f"{' + '.join(pattern) or 'none (the diagonal)':<22}" + "".join(f"{v:30.3f}" for v in by_pattern[pattern]))
zs = matrices["zero-shot (image · caption)"]
own_rank = np.array([int((zs[c] > zs[c, c]).sum()) for c in range(K)])  # (K,) 0 = the own caption wins
in_block = (size[zs.argmax(axis=1)] == size) & (colour[zs.argmax(axis=1)] == colour)  # (K,)
print(f"rows whose own caption is 1st, 2nd, 3rd, 4th: {np.bincount(own_rank, minlength=4)[:4]} of {K}")
print(f"rows whose best caption has the right size and colour: {int(in_block.sum())} of {K}")
for m in range(3):
    assert by_pattern[()][m] > by_pattern[("shape",)][m] > max(by_pattern[("colour",)][m], by_pattern[("size",)][m])
assert np.diag(zs).mean() > zs[~np.eye(K, dtype=bool)].mean()
assert in_block.mean() >= 0.9 and (own_rank < 4).mean() >= 0.9
assert by_pattern[()][0] < min(by_pattern[("shape",)][1], by_pattern[("shape",)][2])

# %% [markdown]
# In all three matrices changing the shape moves a class least, the colour or the size much
# more: both encoders have learnt colour and size as the big axes of the space and shape as a
# small one. That is lesson 10's finding (the errors are shapes) seen from inside: the
# best caption of a class-mean image is almost always of the right size and colour, and then
# often of a neighbouring shape — in this run the own caption wins in under half the rows,
# but is nearly always among the four of its block. And the zero-shot diagonal, the closest a
# class's images come to a caption, is lower than two classes that differ in shape are to
# each other inside either encoder: images sit nearer images, captions nearer captions.
# That is the gap.
#
# The whole zero-shot matrix, drawn: 48 names a side would need a print too small to read, so
# each 4 × 4 block is labelled once with its size and colour (its four rows and columns are the
# four shapes, in the order of `SHAPES`), and the two sizes are split by white lines.

# %%
fig, ax = plt.subplots(figsize=(9, 8))
shade = ax.imshow(zs, cmap="viridis")
fig.colorbar(shade, ax=ax, fraction=0.046, pad=0.04, label="cosine")
groups = [f"{a} {b}" for a in SIZES for b in COLOURS]  # (12,) one per 4 × 4 block, in class order
centres = np.arange(len(groups)) * len(SHAPES) + (len(SHAPES) - 1) / 2
ax.set_xticks(centres, labels=groups, rotation=45, ha="right", fontsize=9)
ax.set_yticks(centres, labels=groups, fontsize=9)
for edge in np.arange(1, len(groups)) * len(SHAPES) - 0.5:  # block borders, thicker between the sizes
    wide = edge == len(COLOURS) * len(SHAPES) - 0.5
    ax.axhline(edge, color="white", linewidth=1.5 if wide else 0.3)
    ax.axvline(edge, color="white", linewidth=1.5 if wide else 0.3)
ax.set_xlabel(f"class caption ensemble (within a block: {', '.join(SHAPES)})")
ax.set_ylabel("class-mean image")
ax.set_title("zero-shot matrix: class-mean image (rows) · class captions (columns)", fontsize=10)
show(fig, "11_zero_shot_matrix.png")

# %% [markdown]
# ## 4. The gap between the image and the caption clouds
#
# The mean of unit vectors points where the cloud is; normalised, it is the cloud's centre
# on the sphere. The gap is the angle between the two centres, $\arccos(\hat{c}_I \cdot \hat{c}_T)$,
# over all 480 images and all K·T = 240 captions. `modality_gap` computes the same angle as
# $2 \, \mathrm{atan2}(\|\hat{c}_I - \hat{c}_T\|, \|\hat{c}_I + \hat{c}_T\|)$, which stays accurate
# when the angle is small.

# %%
all_captions = captions.reshape(-1, dim)  # (K·T, d) class-major


def gap_by_hand(image_cloud: np.ndarray, caption_cloud: np.ndarray) -> float:
    """Degrees between the normalised centroids of two clouds (N, d) and (M, d)."""
    ci, ct = image_cloud.mean(axis=0).astype(np.float64), caption_cloud.mean(axis=0).astype(np.float64)
    return float(np.degrees(np.arccos(ci @ ct / (np.linalg.norm(ci) * np.linalg.norm(ct)))))


gap = modality_gap(images, all_captions)
untrained_gap = modality_gap(untrained_images, untrained_captions.reshape(-1, dim))
centroid_i, centroid_t = images.mean(axis=0), all_captions.mean(axis=0)  # (d,) each
lengths = np.linalg.norm(centroid_i), np.linalg.norm(centroid_t)
print(f"trained:   gap {gap_by_hand(images, all_captions):.2f}° by hand, {gap.angle_degrees:.2f}° by modality_gap")
print(f"           centroid distance {gap.distance:.3f}; centroid lengths {lengths[0]:.3f} (images), {lengths[1]:.3f}")
print(f"untrained: gap {untrained_gap.angle_degrees:.2f}°")
clouds = {"images": (untrained_images, images), "captions": (untrained_captions.reshape(-1, dim), all_captions)}
for name, (then, now) in clouds.items():
    print(f"mean cosine between two {name:<8}: untrained {float((then @ then.T).mean()):.3f}, ", end="")
    print(f"trained {float((now @ now.T).mean()):.3f}")
own = float((images * ensemble[labels]).sum(axis=1).mean())
print(f"mean cosine of an image with its own class's caption: {own:.3f}")
assert abs(gap_by_hand(images, all_captions) - gap.angle_degrees) < 1e-3
assert np.isclose(gap.distance, np.linalg.norm(centroid_i - centroid_t), rtol=1e-5)
assert abs(gap_by_hand(untrained_images, untrained_captions.reshape(-1, dim)) - untrained_gap.angle_degrees) < 1e-3
assert 0 < gap.angle_degrees < untrained_gap.angle_degrees

# %% [markdown]
# **Why there is a gap** (Liang, Zhang, Kwon, Yeung & Zou, "Mind the Gap: Understanding the
# Modality Gap in Multi-modal Contrastive Representation Learning", NeurIPS 2022):
#
# 1. *It is there from the start* — the cone effect. A randomly initialised encoder maps
#    every input into a narrow cone: above, two untrained image embeddings have a mean
#    cosine above 0.9, two untrained captions higher still. The two encoders are
#    independent networks, so their two cones point in unrelated directions: the
#    untrained gap is nearly a right angle.
# 2. *The loss barely sees it.* The image→text softmax of image j compares the logits
#    s·t_k·i_j over the captions k. Move every caption by the same vector v and each of
#    those logits grows by the same s·v·i_j, which a softmax does not see: that half of the
#    loss is blind to where the caption cloud sits as a whole. (The other half, text→image,
#    and the renormalisation onto the sphere do see it, a little.) The loss rewards ranking
#    the right partner first, which a common offset hardly changes; training narrows the gap
#    — the cones open as the classes spread apart — but nothing pulls the clouds together.
#
# The blind half exactly, on the test images and their class captions with the label-aware
# targets of training: shift every caption by v, keep the images, and the image→text
# probabilities (the columns of the text × image softmax) do not move.

# %%
scale = float(run.checkpoint.model.logit_scale.scale)
texts = captions[labels, np.arange(len(labels)) % T]  # (N, d): image n with its class in template n mod T
targets = label_aware_targets(labels, np.float64)
loss = ContrastiveLoss()
loss(scale * texts.astype(np.float64) @ images.T, targets)
p_cols_before = loss.p_cols.copy()  # (N, N) each column: one image's distribution over the captions
v = np.random.default_rng(2).normal(size=dim)  # any common offset
loss(scale * (texts + v).astype(np.float64) @ images.T, targets)
assert np.allclose(loss.p_cols, p_cols_before, atol=1e-9)

# %% [markdown]
# Now close the gap by hand, as the paper does: move every image by −λΔ/2 and every
# caption by +λΔ/2, with Δ = c_I − c_T the difference of the centroids, and renormalise.
# λ = 1 brings the centres together. The loss (at the learned scale e^s) and the zero-shot
# accuracy hardly notice:

# %%
delta = centroid_i - centroid_t  # (d,)
closed = {}
for lam in (0.0, 0.5, 1.0):
    moved_images = images - lam * delta / 2
    moved_images /= np.linalg.norm(moved_images, axis=1, keepdims=True)
    moved_captions = captions + lam * delta / 2  # (K, T, d)
    moved_captions /= np.linalg.norm(moved_captions, axis=2, keepdims=True)
    moved_texts = moved_captions[labels, np.arange(len(labels)) % T]  # (N, d)
    value = float(loss(scale * moved_texts.astype(np.float64) @ moved_images.T, targets))
    accuracy = zero_shot(moved_images, labels, prompt_ensemble(moved_captions))["top1"]
    closed[lam] = (modality_gap(moved_images, moved_captions.reshape(-1, dim)).angle_degrees, value, accuracy)
    print(f"  λ = {lam:.1f}: gap {closed[lam][0]:5.2f}°, loss {value:.4f}, zero-shot top-1 {accuracy:.1%}")
assert closed[1.0][0] < 1.0  # the centres meet
assert abs(closed[1.0][1] - closed[0.0][1]) < 0.01 * closed[0.0][1] and abs(closed[1.0][2] - closed[0.0][2]) < 0.05

# %% [markdown]
# The loss changes in its third decimal: to the contrastive loss a gap of twenty degrees and
# none are nearly the same. (Liang et al. shift CLIP's own embeddings the same way and find
# that at its low temperature the trained gap even sits at a minimum of the loss; closing it
# moves zero-shot accuracy a little, up on some datasets and down on others.)
#
# **Seeing it.** PCA of all 480 images and 240 captions together, with every direction kept
# (32; their variances add up to the total). For the first six directions: their share of
# the variance; how much of the variance *along* each lies between the means of the 12
# size-and-colour groups, and between those of the 4 shapes (the rest is spread inside the
# groups); the two centroids' coordinates; and how well each direction lines up with Δ:

# %%
both = np.concatenate([images, all_captions])  # (N + K·T, d)
map_pca = fit_pca(both)
coords = map_pca.transform(both)  # (N + K·T, 32)
n = len(images)
point_class = np.concatenate([labels, np.repeat(np.arange(K), T)])  # (N + K·T,) every point's class


def between_groups(values: np.ndarray, groups: np.ndarray) -> float:
    """The share of the variance of ``values`` (M,) that lies between the means of ``groups`` (M,)."""
    fitted = np.zeros_like(values)  # (M,) each point replaced by its group's mean
    for g in np.unique(groups):
        fitted[groups == g] = values[groups == g].mean()
    return float(fitted.var() / values.var())


by_size_colour = np.array(
    [between_groups(coords[:, k], size[point_class] * len(COLOURS) + colour[point_class]) for k in range(6)]
)
by_shape = np.array([between_groups(coords[:, k], shape[point_class]) for k in range(6)])
gap_direction = delta / np.linalg.norm(delta)
alignment = map_pca.components @ gap_direction  # (32,) cosine of each principal direction with Δ
print("share of the variance:     ", map_pca.explained_variance_ratio[:6])
print("  ... between size+colour: ", by_size_colour)
print("  ... between shapes:      ", by_shape)
print("images' centroid:          ", coords[:n].mean(axis=0)[:6])
print("captions' centroid:        ", coords[n:].mean(axis=0)[:6])
print("cos(direction, Δ):         ", alignment[:6])
best = int(np.argmax(np.abs(alignment)))
share = map_pca.explained_variance_ratio[best]
print(f"direction most along Δ: number {best + 1} of 32, |cos| {abs(alignment[best]):.3f}, {share:.1%} of the variance")
between = (coords[:n].mean(axis=0) - coords[n:].mean(axis=0)) ** 2  # (32,) squared centroid gap per direction
assert np.isclose(np.sqrt(between.sum()), gap.distance, rtol=1e-4)  # all 32 directions: the whole distance
assert abs(alignment[best]) > 0.5 and choose_k(map_pca.explained_variance_ratio, 0.9) <= 4
assert (by_size_colour[:3] > 0.8).all() and (by_shape[:3] < 0.1).all()

# %% [markdown]
# The first three directions carry nine tenths of the variance, and nearly all of theirs is
# size and colour, almost none shape: they are the big axes of section 3. Along them the two
# centroids nearly coincide. The gap lies almost entirely along one later direction that
# holds a small share of the variance — the clouds are far apart in angle, but each is
# spread much more widely still. A PCA drawn on its first two directions (as `miniclip
# probe`'s PCA figure is) hides the gap here; drawn on the first and the one along Δ, it
# shows the two clouds side by side (the first figure below).
#
# **t-SNE on the trained model.** The 48 class-mean images and the 48 caption ensembles,
# 96 points, perplexity 10. In the map every point's three nearest neighbours share its size
# and colour, and most are of its own kind (image or caption): twelve islands, one per size
# and colour, each split into an image half and a caption half. In both figures a class is
# drawn in its own colour, the small classes in the bright shade, the large ones darker (a
# white class has a grey edge; the large white ones are grey).

# %%
points = np.concatenate([class_mean, ensemble]).astype(np.float64)  # (2K, d)
island = np.tile(size * len(COLOURS) + colour, 2)  # (2K,) which size-and-colour
kind = np.repeat([0, 1], K)  # (2K,) 0 image, 1 caption
tsne_map = tsne(points, perplexity=10.0)  # (2K, 2)
by_island = float(neighbour_agreement(tsne_map, island, k=3).mean())
by_kind = float(neighbour_agreement(tsne_map, kind, k=3).mean())
print(f"share of each point's 3 map-neighbours with its size and colour: {by_island:.1%}; of its kind: {by_kind:.1%}")
assert by_island >= 0.9 and by_kind > 0.6


def shade_of(size_index: int, colour_name: str) -> tuple[float, ...]:
    """The RGB of a colour word in [0, 1]: as the shapes draw it when small, darker when large."""
    rgb = np.array(COLOURS[colour_name]) / 255
    return tuple(rgb if size_index == 0 else 0.6 * rgb)


class_colours = [shade_of(a, b) for a in range(len(SIZES)) for b in COLOURS for _ in SHAPES]  # (K,) by class
pair = coords[:, [0, best]]  # (N + K·T, 2) the first direction and the one along the gap
caption_labels = np.repeat(np.arange(K), T)  # (K·T,)
title = f"PCA, directions 1 and {best + 1}: the gap is {gap.angle_degrees:.1f}°"
path = plot_map(
    pair[:n],
    labels,
    emb.class_names,
    figure_folder() / "11_pca_gap.png",
    title=title,
    captions=pair[n:],
    caption_labels=caption_labels,
    caption_note="caption (one per class and template)",
    colours=class_colours,
)
show(path, "11_pca_gap.png")
island_names = [f"{a} {b}" for a in SIZES for b in COLOURS]  # (12,) group 6·size + colour
path = plot_map(
    tsne_map[:K],
    island[:K],
    island_names,
    figure_folder() / "11_tsne_class_means.png",
    title="t-SNE of class-mean images (dots) and caption ensembles (★)",
    captions=tsne_map[K:],
    caption_labels=island[K:],
    caption_note="caption ensembles",
    colours=[shade_of(a, b) for a in range(len(SIZES)) for b in COLOURS],
)
show(path, "11_tsne_class_means.png")

# %% [markdown]
# ## What you should take away
#
# * PCA is one SVD of the centred points: the rows of Vᵀ are the directions, S²/(N − 1) the
#   variance along each; signs are a convention (`fit_pca` makes the largest entry positive);
# * t-SNE matches neighbourhood probabilities: each row's β is found by binary search to a
#   target perplexity, P is symmetrised, the map's Q uses a Student-t kernel, and the KL
#   gradient 4 Σ_j (p_ij − q_ij) w_ij (y_i − y_j) is a set of springs; it keeps who is near
#   whom, not distances between clusters;
# * the cosine matrices of the shapes model have blocks: colour and size move a class far,
#   shape little, in both encoders — which is why the zero-shot errors are shapes;
# * the image and caption clouds sit apart (the modality gap): the cone effect opens it at
#   initialisation and the contrastive loss, which only ranks, barely feels it.
#
# `miniclip probe RUN` measures all of this for any trained run (`miniclip probe
# runs/cifar10-cpu`, or `miniclip probe $MINICLIP_LESSON_OUT/tiny_shapes_run` for this
# lesson's) and writes into `RUN/probe/` (or `--out`): t-SNE maps of the test images alone
# and with the captions, the PCA map with the gap, the three similarity heatmaps,
# `summary.json` and `summary.md` (the gap's angle and distance, the t-SNE neighbour
# agreement, ...), and the figures of lesson 12 — blurring the images and measuring what
# moves: accuracy per class, the angles between class subspaces, and the persistence of each
# class's cloud.

# %%
print("lesson 11 passed: PCA, t-SNE's affinities and gradient match the package; the gap is measured and closed")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/11_maps_and_matrices.py`.
#
# 1. *Derive, then check.* Show from the SVD $\tilde{X} = U S V^\top$ that the covariance matrix
#    $\tilde{X}^\top \tilde{X} / (N - 1)$ has the principal directions as its eigenvectors and
#    $S_k^2 / (N - 1)$ as its eigenvalues. Check it on the six points of section 1 with
#    `np.linalg.eigh` against `fit_pca` (mind the order and the signs).
# 2. *Write the backward before seeing it.* Symmetric SNE is t-SNE with a Gaussian kernel in the
#    map, $w_{ij} = \exp(-\|y_i - y_j\|^2)$. Derive $\partial C / \partial y_i$ the way section 2 does
#    (what happens to the factor $w_{ij}$?), write it as the `backward` of a small `Module` whose
#    `forward` returns the KL for a map y, and check it on the dozen points' P (perplexity 3)
#    and the lesson's random map with `miniclip.teaching.gradcheck`.
# 3. *Predict, then run.* Set the target perplexity to 8 instead of 3. Before running: does the
#    β of row 0 go up or down, and does the mass of P inside the three clusters stay above 0.99?
#    Then run `conditional_affinities` and `joint_affinities` with 8 and compare.
