# %% [markdown]
# # Lesson 12 — Robustness and shape
#
# Lesson 10 measured a trained model on the images it was tested with. This one asks how the
# embedding space *moves* when the images change, and answers with three tools that each fit
# on a page:
#
# * **a Gaussian blur**, written as a convolution: blur every test image by σ pixels and watch
#   zero-shot accuracy fall, class by class;
# * **principal angles** between subspaces: where a class's embeddings spread, and how far
#   that moves (first on two planes in R³ you can picture);
# * **persistence diagrams** and the **Wasserstein distance** between them: the shape of a
#   class's cloud of points — its clusters and its loops — and how far blurring moves it
#   (first on eight points on a circle you can draw).
#
# Everything here is in `miniclip.probe`; `miniclip probe RUN` runs all of it on a trained run
# and writes the figures. The lesson writes each piece by hand on small numbers, checks it
# against the package, and then uses the package on the tiny shapes model of lessons 09 and 10.
#
# The code: `miniclip/probe/robustness.py` and `miniclip/probe/topology.py`.

# %%
import itertools
import math

import numpy as np

from miniclip import set_device
from miniclip.evaluation.trained_run import load_run
from miniclip.evaluation.zeroshot import zero_shot
from miniclip.plots import plot_image_grid
from miniclip.probe import figures
from miniclip.probe.embeddings import embed_blurred, embed_run
from miniclip.probe.report import FIGURES
from miniclip.probe.robustness import (
    angle_matrix,
    blur_float,
    blur_radius,
    class_bases,
    clean_vs_blurred_angles,
    fragile_classes,
    gaussian_blur,
    gaussian_kernel,
    mean_cosine_per_class,
    per_class_accuracy,
    principal_angles,
    principal_directions,
)
from miniclip.probe.topology import (
    cosine_distances,
    h0_diagram,
    h1_diagram,
    hungarian,
    persistence_diagrams,
    wasserstein,
    wasserstein_matching,
)
from miniclip.teaching.lesson_output import figure_folder, show
from miniclip.teaching.lesson_runs import tiny_run  # trained once, reused by 11–14

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True, linewidth=120)


# %% [markdown]
# ## 1. Blur as a convolution
#
# A blur replaces every pixel by a weighted mean of its neighbours. The Gaussian blur's weights
# are a Gaussian of standard deviation σ, sampled at the whole-pixel offsets j = −r … r and
# scaled to sum to 1:
#
# $$g[j] = \frac{\exp(-j^2 / 2\sigma^2)}{\sum_{i=-r}^{r} \exp(-i^2 / 2\sigma^2)}$$
#
# with r = ⌈3σ⌉ (99.7 % of a Gaussian's mass lies within 3σ). For σ = 1 that is seven taps:

# %%
sigma = 1.0
r = blur_radius(sigma)
offsets = np.arange(-r, r + 1)  # (7,)
weights = np.exp(-(offsets**2) / (2 * sigma**2))  # (7,)
g = weights / weights.sum()  # (7,)
print(f"σ = {sigma:g}: radius r = ⌈3σ⌉ = {r}, {2 * r + 1} taps at offsets {offsets.tolist()}")
print("  g =", g, " sum", g.sum())
assert r == 3 and np.allclose(g, gaussian_kernel(sigma), rtol=0, atol=1e-15)
assert np.allclose(g, g[::-1]) and abs(g.sum() - 1) < 1e-12  # symmetric, and a weighted *mean*

# %% [markdown]
# In two dimensions the weight of offset (i, j) is $\exp(-(i^2 + j^2)/2\sigma^2)$, which factors into
# $\exp(-i^2/2\sigma^2) \cdot \exp(-j^2/2\sigma^2)$: the 2-D kernel is the **outer product**
# $G = g g^\top$, a 7 × 7 matrix of rank 1.
#
# The blur itself is a convolution (strictly a cross-correlation, as in lesson 07; the kernel
# is symmetric, so the two are the same), with i, j = 0 … 2r:
#
# $$y[h, w] = \sum_{i, j} G[i, j] \, x_{\mathrm{pad}}[h + i, w + j]$$
#
# Near the border the window leaves the image, so the image is first **padded** by r on every
# side with its own mirror image (d c b a | a b c d | d c b a — `np.pad(mode="symmetric")`,
# which `scipy.ndimage` calls `mode="reflect"`). Here it is, written directly, on a 7 × 7 image
# that is black except for one bright pixel:

# %%
G = np.outer(g, g)  # (7, 7)
print("the 2-D kernel G = g gᵀ (×1000):\n", (1000 * G).round(1))
assert np.linalg.matrix_rank(G) == 1 and abs(G.sum() - 1) < 1e-12


def convolve_2d(image: np.ndarray, kernel: np.ndarray, mode: str = "symmetric") -> np.ndarray:
    """Every output pixel as the weighted sum of its (2r+1)² neighbours: the direct 2-D convolution."""
    k = (kernel.shape[0] - 1) // 2
    padded = np.pad(image, k, mode=mode)  # (H + 2r, W + 2r)
    result = np.zeros_like(image)
    for h in range(image.shape[0]):
        for w in range(image.shape[1]):
            result[h, w] = (kernel * padded[h : h + 2 * k + 1, w : w + 2 * k + 1]).sum()  # (2r+1)² multiply-adds
    return result


dot = np.zeros((7, 7))
dot[3, 3] = 1.0  # one bright pixel in the middle
blurred_dot = convolve_2d(dot, G)  # (7, 7)
print("a bright pixel in the middle, blurred by hand: the kernel itself comes out")
assert np.allclose(blurred_dot, G) and np.allclose(blurred_dot, blur_float(dot, sigma))

# %% [markdown]
# The blur of a single bright pixel is the kernel itself (the *impulse response*). Move the
# pixel into the corner and the mirror matters: the part of the kernel that would fall off the
# image is folded back onto it, so no brightness is lost. Padding with zeros instead loses
# everything that falls outside and darkens the border:

# %%
corner = np.zeros((7, 7))
corner[0, 0] = 1.0
mirrored = convolve_2d(corner, G)  # (7, 7)
zeros = convolve_2d(corner, G, mode="constant")  # (7, 7)
print("a bright pixel in the corner, blurred with mirror padding (×1000):\n", (1000 * mirrored).round(1))
print(f"total brightness: 1 before, {mirrored.sum():.4f} with mirror padding, {zeros.sum():.4f} with zero padding")
assert np.allclose(mirrored, blur_float(corner, sigma))
assert abs(mirrored.sum() - 1) < 1e-12
assert abs(zeros.sum() - g[r:].sum() ** 2) < 1e-12  # only the kernel's quarter G[3:, 3:] is left
rng = np.random.default_rng(0)
noise = rng.random((7, 7))
assert np.allclose(convolve_2d(noise, G), blur_float(noise, sigma))  # any image, not only dots

# %% [markdown]
# **Two 1-D passes.** Because $G = g g^\top$, the double sum splits:
#
# $$\sum_i \sum_j g[i] \, g[j] \, x[h+i, w+j] = \sum_i g[i] \left( \sum_j g[j] \, x[h+i, w+j] \right)$$
#
# The inner sum is a 1-D blur along each row; the outer one a 1-D blur of that result along
# each column. That is what `blur_float` does: 2(2r + 1) multiply-adds per pixel instead of
# (2r + 1)². For σ = 1 that is 14 against 49; for σ = 3 (r = 9), 38 against 361.

# %%
rows_first = np.stack([np.convolve(np.pad(row, r, mode="symmetric"), g, mode="valid") for row in noise])  # (7, 7)
both = np.stack([np.convolve(np.pad(col, r, mode="symmetric"), g, mode="valid") for col in rows_first.T]).T  # (7, 7)
assert np.allclose(both, blur_float(noise, sigma))
for s in (1.0, 2.0, 3.0):
    taps = 2 * blur_radius(s) + 1
    print(f"σ = {s:g}: {taps:2d} taps; per pixel {taps**2:3d} multiply-adds in 2-D, {2 * taps:2d} in two passes")
try:  # a second, independent check where SciPy is installed (the lesson does not need it)
    from scipy import ndimage

    assert np.allclose(ndimage.gaussian_filter(noise, sigma, mode="reflect", truncate=3.0), blur_float(noise, sigma))
    print("scipy.ndimage.gaussian_filter(mode='reflect', truncate=3) agrees")  # SciPy's default truncate is 4
except ImportError:
    pass

# %% [markdown]
# ## 2. Accuracy against σ
#
# **A trained model.** The tiny shapes model of lessons 09 and 10 (the named configuration
# `tiny`: 48 classes, four epochs, 10 test images per class), trained here in a few seconds
# (or found where lesson 11, or an earlier run of this cell, left it: `tiny_run` above) and read
# back with `load_run`, as `miniclip eval` and `miniclip probe` read any run: the checkpoint, the
# normalisation its images were trained with, and its dataset rebuilt from the run's seed.

# %%
run_dir = tiny_run()
run = load_run(run_dir)  # the checkpoint, its model in evaluation mode, and the normalisation
metrics = run.checkpoint.metrics  # one dict per epoch, as training logged them
dataset = run.dataset()  # the same shapes, rebuilt from the run's seed
test_uint8 = dataset.test_images  # (480, 3, 32, 32) uint8
print(f"trained {len(metrics)} epochs, loss {metrics[0]['train_loss']:.3f} → {metrics[-1]['train_loss']:.3f}")

# %% [markdown]
# `gaussian_blur` blurs a batch of uint8 images (N, C, H, W), each colour channel on its own,
# in float32, and rounds back to whole levels. One test image, the middle row of its red
# channel: the noise of the background (a few levels up and down) is smoothed first, then the
# shape's edges spread over more and more pixels. The mean brightness stays where it was: the
# mirror loses nothing.

# %%
picture = test_uint8[:1]  # (1, 3, 32, 32)
print(f"test image 0, a {dataset.class_names[dataset.test_labels[0]]}: red channel, row 16, columns 4 … 27")
for s in (0.0, 1.0, 2.0, 3.0):
    shown = picture if s == 0 else gaussian_blur(picture, s)  # (1, 3, 32, 32) uint8
    print(f"  σ = {s:g}: {shown[0, 0, 16, 4:28]}  mean {shown.mean():.2f}")
    if s:
        by_hand = np.clip(np.rint(blur_float(picture.astype(np.float32), s)), 0, 255).astype(np.uint8)
        assert shown.dtype == np.uint8 and np.array_equal(shown, by_hand)
        assert abs(float(shown.mean()) - float(picture.mean())) < 0.5  # only the rounding moves it

# %% [markdown]
# Five test images, clean and at σ = 1, 2 and 3:

# %%
shown_names = [
    "small red square",
    "small green cross",
    "small blue triangle",
    "large yellow circle",
    "large white cross",
]
firsts = [int(np.flatnonzero(dataset.test_labels == dataset.class_names.index(c))[0]) for c in shown_names]
grid = np.concatenate(
    [[test_uint8[i], *(gaussian_blur(test_uint8[i : i + 1], s)[0] for s in (1, 2, 3))] for i in firsts]
)
titles = [t for i in firsts for t in (dataset.class_names[dataset.test_labels[i]], "σ = 1", "σ = 2", "σ = 3")]
show(plot_image_grid(grid, titles, figure_folder() / "12_blur_examples.png", ncols=4), "12_blur_examples.png")

# %% [markdown]
# **Accuracy.** `embed_run` encodes the test images and the classes' prompt ensemble (lesson
# 10); `embed_blurred` encodes the same images blurred with σ — blurred as uint8, then
# normalised as in training. Zero-shot classify both ways, at σ = 0 (the clean images), 1, 2
# and 3:

# %%
emb = embed_run(run, dataset)  # images (480, 32), ensemble (48, 32), labels (480,)
names, labels = emb.class_names, emb.labels
K = len(names)
sigmas = [1.0, 2.0, 3.0]
images = {0.0: emb.images} | {s: embed_blurred(run, test_uint8, s) for s in sigmas}  # σ → (480, 32)
result = {s: zero_shot(x, labels, emb.ensemble) for s, x in images.items()}
accuracy = {s: per_class_accuracy(result[s]["predictions"], labels, K) for s in images}  # σ → (48,)
cosine = {s: mean_cosine_per_class(emb.images, images[s], labels, K) for s in sigmas}  # σ → (48,)
print(f"{'σ':>4} {'top-1':>7} {'mean cosine clean·blurred':>26} {'lowest class':>13}")
for s in images:
    c = f"{cosine[s].mean():26.4f} {cosine[s].min():13.4f}" if s else f"{'1':>26} {'1':>13}"
    print(f"{s:4g} {result[s]['top1']:7.1%} {c}")
print(f"chance: {1 / K:.1%}")
for s in images:
    assert np.allclose(accuracy[s], result[s]["per_class"])  # the same numbers, counted two ways
    assert abs(accuracy[s].mean() - result[s]["top1"]) < 1e-12  # 10 images per class: mean of classes = top-1
assert result[3.0]["top1"] < result[0.0]["top1"]
assert all((cosine[s] <= 1 + 1e-6).all() for s in sigmas)
assert cosine[1.0].mean() > cosine[2.0].mean() > cosine[3.0].mean()

# %% [markdown]
# A light blur (σ = 1) costs nothing — in this run it even helps a little: it mostly smooths
# the background noise, which carries no class. By σ = 3 the corners of a square and the arms
# of a cross are smeared and top-1 has fallen. The mean cosine between an image's clean and
# blurred embedding falls steadily with σ: the blur moves every embedding, some classes much
# further than others. `mean_cosine_per_class` is one line of arithmetic — here for one class:

# %%
mine = labels == 0
by_hand = float((emb.images[mine] * images[3.0][mine]).sum(axis=1).mean())  # both already unit length
print(f"{names[0]}: mean cosine clean·(σ = 3) = {by_hand:.4f}")
assert abs(by_hand - cosine[3.0][0]) < 1e-6

# %% [markdown]
# **Which classes are fragile?** `fragile_classes` ranks the classes by their drop in accuracy
# from clean to the largest σ. With ten images a class, every step is 10 points.

# %%
fragile = fragile_classes(accuracy, names, n=3)
for key in ("most", "least"):
    print(f"{key} fragile: " + ", ".join(f"{name} ({-100 * drop:+.0f} points)" for name, drop in fragile[key]))
drops = accuracy[0.0] - accuracy[3.0]  # (48,)
assert math.isclose(fragile["most"][0][1], drops.max()) and math.isclose(fragile["least"][0][1], drops.min())

# %% [markdown]
# Some classes get *better* with blur. That is not robustness. Count how many of the 480
# blurred images are given to each class: a few classes become attractors that swallow the
# blurred images of many others, and a class that catches every blurry image also catches its
# own — its accuracy (the share of *its* images classified right, the recall) goes up while
# most of what it is given is wrong (its precision collapses).

# %%
given = {s: np.bincount(result[s]["predictions"], minlength=K) for s in images}  # σ → (48,) images per class
print(f"{'class':<22} {'given, clean':>12} {'given, σ = 3':>12} {'accuracy clean → σ = 3':>23} {'precision':>10}")
for c in np.argsort(-given[3.0], kind="stable")[:4]:
    right = int(((result[3.0]["predictions"] == c) & (labels == c)).sum())
    print(
        f"{names[c]:<22} {given[0.0][c]:12d} {given[3.0][c]:12d} "
        f"{accuracy[0.0][c]:11.0%} → {accuracy[3.0][c]:<9.0%} {right / given[3.0][c]:10.0%}"
    )
least = [names.index(name) for name, _ in fragile["least"]]
print("the least fragile classes are given", [int(given[3.0][c]) for c in least], "images at σ = 3 (10 are theirs)")
attractor = int(np.argmax(given[3.0]))
attractor_right = int(((result[3.0]["predictions"] == attractor) & (labels == attractor)).sum())
assert given[3.0][attractor] > 2 * np.bincount(labels)[attractor] and given[3.0].max() > given[0.0].max()
assert attractor_right / given[3.0][attractor] < accuracy[3.0][attractor]  # precision below recall

# %% [markdown]
# So read a per-class robustness table beside the count of predictions: `miniclip probe`'s
# summary reports "where the blurred images go" for exactly this reason.
#
# ## 3. Subspace angles, on planes you can picture
#
# A class's embeddings are a cloud of points; the directions along which it spreads most (its
# principal directions, lesson 11's PCA: the first rows of Vᵀ in the SVD of the centred points)
# span a subspace. How different are two such subspaces? Take orthonormal bases Q_a, Q_b (as
# columns). The **principal angles**: θ₁ is the smallest angle between any direction of one and
# any direction of the other; θ₂ the smallest between directions at right angles to that first
# pair; and so on. Their cosines are the singular values of Q_aᵀ Q_b (Björck & Golub 1973).
#
# In R³: the xy-plane, and the plane through the x-axis tilted by 30° (spanned by the x-axis and
# (0, cos 30°, sin 30°)). They share a line — the x-axis — so the first angle is 0°; in each
# plane the direction at right angles to that line makes 30° with the other's: the second is
# 30°. Sample 20 points on each plane and let `principal_directions` find the planes again:

# %%
tilt = math.radians(30)
flat_axes = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # (2, 3) spans the xy-plane
tilted_axes = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(tilt), math.sin(tilt)]])  # (2, 3)
flat_points = rng.normal(size=(20, 2)) @ flat_axes  # (20, 3), every z = 0
tilted_points = rng.normal(size=(20, 2)) @ tilted_axes  # (20, 3)
qa = principal_directions(flat_points, k=2)  # (3, 2) orthonormal columns
qb = principal_directions(tilted_points, variance=0.999)  # the same, with k chosen: a plane explains it all
cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)  # (2,) descending
print("cosines of the principal angles:", cosines, "→ angles", np.degrees(np.arccos(np.clip(cosines, 0, 1))))
angles = principal_angles(qa, qb)  # (2,) degrees, ascending
print("principal_angles:", angles)
assert qb.shape == (3, 2) and np.allclose(qa.T @ qa, np.eye(2))
assert np.allclose(angles, [0.0, 30.0], atol=1e-4)

# %% [markdown]
# The pairs of directions come out of the same SVD, Q_aᵀ Q_b = U Σ Vᵀ: the columns of Q_a U and
# Q_b V, side by side. The first pair is the shared x-axis (up to sign). A line (the z-axis)
# against the xy-plane has one angle, 90°: no direction of the plane has any part along z.

# %%
u, _, vt = np.linalg.svd(qa.T @ qb)
print("closest pair:        ", (qa @ u)[:, 0], (qb @ vt.T)[:, 0])
print("second pair (30° apart):", (qa @ u)[:, 1], (qb @ vt.T)[:, 1])
z_axis = np.array([[0.0], [0.0], [1.0]])  # (3, 1)
assert np.allclose(np.abs((qa @ u)[:, 0]), [1, 0, 0], atol=1e-6)
assert np.allclose(principal_angles(qa, z_axis), [90.0])
try:
    from scipy.linalg import subspace_angles

    assert np.allclose(np.sort(np.degrees(subspace_angles(qa, qb))), angles, atol=1e-4)
    print("scipy.linalg.subspace_angles agrees")
except ImportError:
    pass

# %% [markdown]
# **The class subspaces of the run.** Each class has only 10 test images, so only 9 directions
# can have any spread after centring; take k = 2, each class's plane of largest spread in the
# 32-dimensional embedding space. `angle_matrix` gives one angle per pair of classes — the
# largest principal angle, 0° only when one plane lies inside the other. For scale: two
# *random* planes in 32 dimensions are nearly at right angles. (`miniclip probe`'s heatmap shows
# the mean principal angle instead, `reduce="mean"`.)

# %%
bases = class_bases(emb.images, labels, k=2, class_names=names)  # 48 × (32, 2)
few_names = ["small red circle", "small red square", "large red circle", "small blue circle", "large green cross"]
few = [names.index(name) for name in few_names]
print("largest principal angle between the class planes (degrees):")
print(" " * 18 + "".join(f"{name:>19}" for name in few_names))
for name, row in zip(few_names, angle_matrix([bases[c] for c in few]), strict=True):
    print(f"{name:>18}" + "".join(f"{v:19.1f}" for v in row))
between = angle_matrix(bases)  # (48, 48)
off_diagonal = between[~np.eye(K, dtype=bool)]
random_planes = [
    principal_angles(np.linalg.qr(rng.normal(size=(32, 2)))[0], np.linalg.qr(rng.normal(size=(32, 2)))[0]).max()
    for _ in range(200)
]
print(f"all pairs of classes, mean {off_diagonal.mean():.1f}°; random planes in R³²: {np.mean(random_planes):.1f}°")
assert np.allclose(between, between.T) and np.all(np.diag(between) == 0) and off_diagonal.max() <= 90 + 1e-6

# %% [markdown]
# Ten points per class are few, so these planes are rough. Still, the same question asked of
# one class clean and blurred says how far the blur turns the plane it spreads in —
# `clean_vs_blurred_angles`, per class and σ. At σ = 1 each class's plane turns much less than
# the planes of two different classes differ; it turns further as σ grows.

# %%
blur_sigmas, turned = clean_vs_blurred_angles(emb.images, {s: images[s] for s in sigmas}, labels, k=2)  # (48, 3)
for s, column in zip(blur_sigmas, turned.T, strict=True):
    print(f"σ = {s:g}: clean plane ↔ blurred plane, largest angle, mean over classes {column.mean():5.1f}°")
assert blur_sigmas == sigmas and turned[:, 0].mean() < off_diagonal.mean()
assert turned[:, 0].mean() < turned[:, -1].mean()

# %% [markdown]
# ## 4. Persistence of eight points you can draw
#
# Angles see only the directions a cloud spreads in. **Persistence** sees its shape: grow a
# ball of radius ε around every point and connect two points once they are within ε (the
# *Vietoris–Rips* complex: an edge enters at its length; a triangle enters when its longest
# edge does, and fills in what it spans). As ε grows,
#
# * separate pieces join — each piece but one **dies** at the length of the edge that joins it
#   to another (H0, single linkage: the edges of the minimum spanning tree);
# * loops appear when an edge closes one (a hole is **born**) and vanish when triangles fill
#   them (it **dies**) — H1.
#
# Each hole is a bar (birth, death); the bars make the **persistence diagram**. Eight points on
# the unit circle, a regular octagon. Its distances are chords: k steps around apart,
# 2 sin(kπ/8) — the side s₁ = 0.765, then s₂ = 1.414, s₃ = 1.848 and the diameter 2.

# %%
angle = np.arange(8) * 2 * np.pi / 8
octagon = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (8, 2)
euclidean = np.linalg.norm(octagon[:, None] - octagon[None], axis=-1)  # (8, 8)
chord = [2 * math.sin(k * math.pi / 8) for k in range(5)]  # k steps apart
print("chords k = 1 … 4:", np.array(chord[1:]))
h0, h1 = persistence_diagrams(euclidean)
print("H0 bars (birth, death):\n", h0)
print("H1 bars:", h1)
assert np.allclose(h0[:7], [[0, chord[1]]] * 7) and np.array_equal(h0[7], [0, np.inf])
assert np.allclose(h1, [[chord[1], chord[3]]])

# %% [markdown]
# **H0**: at ε = s₁ all eight sides enter at once. The first seven (in the order Kruskal's
# algorithm takes them) each join two pieces — seven pieces die at s₁ — and one piece lives for
# ever, the bar (0, ∞).
#
# **H1**: the eighth side joins nothing new; it closes the octagon. One loop is born at s₁.
# When does it die? At s₂ the edges two steps apart enter, and with them the triangles
# {i, i+1, i+2} — but each of those lies within a quarter of the circle, and they only make the
# ring wider. A triangle can fill the hole only if it covers the circle's centre, and that
# needs its three corners not all on one half of the circle: the gaps between them, in steps
# around the octagon, must each be below 4 (half of 8) and sum to 8 — so (3, 3, 2), like
# {0, 3, 6}. Such a triangle has edges three steps long: it enters at s₃ = 1.848, and the loop
# dies there. (The theorem behind this, for n points on a circle, is Adamaszek & Adams 2017.)
#
# The run's clouds are measured with the cosine distance 1 − cos θ instead. On the unit circle
# that is $\|a - b\|^2 / 2$, a function of the Euclidean distance that keeps every order, so the
# same edges do the same things at new values: the bars are the old ones, squared and halved.

# %%
cosine_h1 = h1_diagram(cosine_distances(octagon))
print("H1 with the cosine distance:", cosine_h1, "= 1 − cos 45°, 1 − cos 135°")
assert np.allclose(cosine_h1, h1**2 / 2)
assert np.allclose(cosine_h1, [[1 - math.cos(math.pi / 4), 1 - math.cos(3 * math.pi / 4)]])

# %% [markdown]
# **Pinch the ring.** Pull two opposite points, 0 and 4, halfway to the centre. Their sides to
# their neighbours shorten (to √((cos 45° − ½)² + sin² 45°) = 0.737), so four pieces now die
# earlier. The ring is still born at s₁ (the last unchanged side closes it), but at ε = 1 the
# edge between the two pinched points, now one apart, cuts it across into a figure eight: a
# *second* loop is born. Both die at √(½² + 1) = 1.118, when each pinched point reaches the
# points a quarter-turn away from it (2 and 6) and the triangles fill both halves. (Under the
# cosine distance the pinch changes nothing at all: it sees only directions, never lengths —
# which is why it suits unit-length embeddings.)

# %%
pinched = octagon.copy()
pinched[[0, 4]] *= 0.5  # (8, 2)
pinched_distances = np.linalg.norm(pinched[:, None] - pinched[None], axis=-1)  # (8, 8)
pinched_dgms = [h0_diagram(pinched_distances), h1_diagram(pinched_distances)]  # what persistence_diagrams returns
side = math.hypot(math.cos(math.pi / 4) - 0.5, math.sin(math.pi / 4))
print(f"pinched H0 deaths: {pinched_dgms[0][:, 1]}  (0.737 = {side:.4f})")
print("pinched H1 bars:", pinched_dgms[1].tolist())
assert np.allclose(pinched_dgms[0][:4, 1], side) and np.allclose(pinched_dgms[0][4:7, 1], chord[1])
assert np.allclose(pinched_dgms[1], [[chord[1], math.hypot(0.5, 1)], [1.0, math.hypot(0.5, 1)]])
assert np.allclose(cosine_distances(pinched), cosine_distances(octagon))  # the cosine sees directions only

# %% [markdown]
# **Shake it.** Move every point by at most δ = 0.05 in a random direction. Every distance
# changes by at most 2δ, so the bars move by at most 2δ — the *stability* of
# persistence (Cohen-Steiner, Edelsbrunner & Harer 2007): small noise, small change; a long
# bar cannot vanish, a short one can.

# %%
shake = 0.05
direction = rng.normal(size=(8, 2))
moved = octagon + shake * rng.random((8, 1)) * direction / np.linalg.norm(direction, axis=1, keepdims=True)  # (8, 2)
shaken_dgms = persistence_diagrams(np.linalg.norm(moved[:, None] - moved[None], axis=-1))
print("shaken H0 deaths:", shaken_dgms[0][:, 1])
print("shaken H1 bars:  ", shaken_dgms[1], "against", h1)
longest = shaken_dgms[1][np.argmax(shaken_dgms[1][:, 1] - shaken_dgms[1][:, 0])]
assert np.abs(longest - h1[0]).max() <= 2 * shake
assert np.abs(shaken_dgms[0][:7, 1] - chord[1]).max() <= 2 * shake

# %% [markdown]
# The three diagrams side by side, all in Euclidean distances. The bar that never dies, H0's
# (0, ∞), sits on the dashed line marked ∞:

# %%
panels = [("the octagon", [h0, h1]), ("two points pinched", pinched_dgms), ("shaken by 0.05", shaken_dgms)]
path = figures.plot_diagrams(panels, figure_folder() / "12_octagon_persistence.png", distance="Euclidean distance")
show(path, "12_octagon_persistence.png")

# %% [markdown]
# ## 5. The Wasserstein matching
#
# How far apart are two diagrams? Match their bars one to one and add up how far each bar had
# to move; a bar may also be matched to the **diagonal** (death = birth, a bar of no length,
# of which every diagram has as many as needed) at the cost of its distance to it,
# $(\mathrm{death} - \mathrm{birth}) / \sqrt{2}$. The cheapest matching's cost is the Wasserstein-1
# distance W1.
#
# Two small diagrams: A with three bars a₀, a₁, a₂ and B with two, b₀, b₁ (counted from 0, as
# the code counts). Every way to match them, by hand: choose which bars of A are paired with
# which of B — no pair (1 way), one pair (3 · 2 = 6 ways) or two (3 · 2 = 6 ways) — and send
# everything left over to the diagonal. Thirteen matchings:

# %%
A = np.array([[0.0, 4.0], [1.0, 3.0], [2.0, 2.5]])  # (3, 2) bars (birth, death)
B = np.array([[0.0, 4.5], [3.0, 3.6]])  # (2, 2)


def to_diagonal(bar: np.ndarray) -> float:
    return float(bar[1] - bar[0]) / math.sqrt(2)  # distance from (b, d) to the nearest (m, m)


options = []
for pairs in range(3):  # 0, 1 or 2 pairs of bars
    for from_a in itertools.permutations(range(3), pairs):
        for from_b in itertools.combinations(range(2), pairs):
            matched = list(zip(from_a, from_b, strict=True))
            cost = sum(float(np.linalg.norm(A[i] - B[j])) for i, j in matched)
            cost += sum(to_diagonal(A[i]) for i in range(3) if i not in from_a)
            cost += sum(to_diagonal(B[j]) for j in range(2) if j not in from_b)
            options.append((cost, matched))
options.sort(key=lambda option: option[0])
print(f"{len(options)} matchings; the five cheapest (pairs a_i–b_j, everything else to the diagonal):")
for cost, matched in options[:5]:
    print(f"  {cost:.4f}  " + (", ".join(f"a{i}–b{j}" for i, j in matched) or "no pairs"))
best_cost, best_pairs = options[0]
distance, matching = wasserstein_matching(A, B)
print("wasserstein_matching:", round(distance, 4), matching, "(−1: the diagonal)")
assert len(options) == 1 + 3 * 2 + 3 * 2 and abs(distance - best_cost) < 1e-12
assert abs(wasserstein(A, B) - best_cost) < 1e-12
assert {(i, j) for i, j in matching if i >= 0 and j >= 0} == set(best_pairs)

# %% [markdown]
# The cheapest pairs only the two long bars, a₀ and b₀; a₁ = (1, 3) and b₁ = (3, 3.6) are each
# sent to the diagonal (1.414 + 0.424), cheaper than moving one onto the other (2.088), and the
# short a₂ goes too. `wasserstein_matching` finds it without trying every matching: it writes
# the choices as a square assignment problem — rows A and one diagonal slot per bar of B,
# columns B and one diagonal slot per bar of A (diagonal to diagonal costs 0) — and solves it
# with the Hungarian algorithm, O(n³) instead of n!. Checked against all 5! assignments:

# %%
m, n = len(A), len(B)
cost = np.zeros((m + n, n + m))  # (5, 5)
cost[:m, :n] = np.linalg.norm(A[:, None] - B[None], axis=-1)  # bar to bar
cost[:m, n:] = np.array([to_diagonal(a) for a in A])[:, None]  # a_i to the diagonal
cost[m:, :n] = np.array([to_diagonal(b) for b in B])[None, :]  # the diagonal to b_j
columns = hungarian(cost)  # (5,) the column of each row
brute = min(sum(cost[i, p[i]] for i in range(m + n)) for p in itertools.permutations(range(m + n)))
print("cost matrix:\n", cost)
print("hungarian:", columns, f"total {cost[np.arange(m + n), columns].sum():.4f}, best of 120: {brute:.4f}")
assert abs(cost[np.arange(m + n), columns].sum() - brute) < 1e-12 and abs(brute - best_cost) < 1e-12

# %% [markdown]
# **Per class, in the run.** Each class's 10 test embeddings, with the cosine distance: its
# H0 and H1 diagrams clean and blurred, and W1 between them — how far the blur moved the shape
# of the class's cloud. The octagon's stability says W1 is small when every embedding moves
# little; the larger σ, the further the embeddings move and, on the whole, the larger W1.

# %%
dgms = {s: [persistence_diagrams(cosine_distances(images[s][labels == c])) for c in range(K)] for s in images}
w1 = {s: np.array([[wasserstein(dgms[0.0][c][h], dgms[s][c][h]) for h in (0, 1)] for c in range(K)]) for s in sigmas}
print(f"{'σ':>4} {'W1 of H0, mean':>15} {'largest':>8} {'W1 of H1, mean':>15}   (cosine distances; 48 classes)")
for s in sigmas:
    print(f"{s:4g} {w1[s][:, 0].mean():15.4f} {w1[s][:, 0].max():8.4f} {w1[s][:, 1].mean():15.4f}")
c = int(np.argmax(w1[3.0][:, 0]))
print(f"moved most at σ = 3: {names[c]}; its H0 deaths clean {dgms[0.0][c][0][:-1, 1]}")
print(f"{'':>{len(names[c]) + 30}}σ = 3 {dgms[3.0][c][0][:-1, 1]}")
h1_bars = np.concatenate([d[1] for d in dgms[0.0]])  # (B, 2) every class's loops
print(f"H1 bars of the clean classes: {len(h1_bars)} in all 48, the longest {np.ptp(h1_bars, axis=1).max():.4f}")
assert all(wasserstein(d[0], d[0]) == 0 and wasserstein(d[1], d[1]) == 0 for d in dgms[0.0])
assert w1[3.0][:, 0].mean() > w1[1.0][:, 0].mean()

# %% [markdown]
# Ten points make rough diagrams: the H0 bars are the nine edges of a class's minimum spanning
# tree (how tight the class is), and H1 holds a few short loops that come and go — so W1 of H1
# is small and noisy, and the H0 distance carries the signal. The class that moved most in this
# run shows what that signal is: blurred, its ten images look alike, and every edge of its
# spanning tree shrank. CIFAR-10 has a thousand test images per class; `miniclip probe` takes
# up to 100 of them (`--points`), and the diagrams are fuller.
#
# The curves of this section, with the most and least fragile classes and the mean of all:

# %%
levels = [0.0, *sigmas]
highlight = [names.index(name) for group in fragile.values() for name, _ in group]
panels = [
    (100 * np.stack([accuracy[s] for s in levels], axis=1), "zero-shot top-1 (%)", "accuracy against blur"),
    (np.stack([np.ones(K), *(cosine[s] for s in sigmas)], axis=1), "mean cosine", "clean · blurred embedding"),
    (np.stack([np.zeros(K), *(w1[s][:, 0] for s in sigmas)], axis=1), "W1 distance", "H0: clean ↔ blurred"),
]
file = figures.plot_against_sigma(
    levels, panels, names, figure_folder() / "12_accuracy_against_sigma.png", highlight=highlight
)
show(file, "12_accuracy_against_sigma.png")

# %% [markdown]
# ## 6. All of it for a run: `miniclip probe`
#
# `miniclip probe RUN --blur 1 2 3 4 5` does this whole lesson to a trained run's test split
# (and adds t-SNE and PCA maps and the similarity matrices): the blur at each σ, accuracy and
# the clean·blurred cosine per class and where the blurred images go; the principal angles
# between every pair of class subspaces (rank `--rank`, default 5) and between each class's
# clean and blurred subspaces; the H0 and H1 diagrams of up to `--points` (100) images per
# class and their W1 distances, clean against each σ. It writes, into `--out` (default
# `probe/` in the run folder), `summary.json`, `summary.md` (a table row per class) and these
# figures:

# %%
print("  " + "\n  ".join(FIGURES))
assert "blur_accuracy.png" in FIGURES and "persistence_distance.png" in FIGURES

# %% [markdown]
# For the run of this lesson (kept under `MINICLIP_LESSON_OUT`):
# `miniclip probe $MINICLIP_LESSON_OUT/tiny_shapes_run --blur 1 2 3` (ten images a class, so
# `--points` is at most 10 and `--rank` at most 9). For a real run, after lesson 09's
# `miniclip train`: `miniclip probe runs/cifar10-cpu --blur 1 2 3 4 5`.
#
# ## What you should take away
#
# * a Gaussian blur is a convolution with a kernel g gᵀ of rank 1, so it is two 1-D passes;
#   mirror padding keeps the border's brightness;
# * blur lowers zero-shot accuracy and moves every embedding (the clean·blurred cosine falls
#   with σ); a class that "improves" under blur is often an attractor that blurred images of
#   other classes fall into — count the predictions;
# * principal angles compare subspaces: the cosines are the singular values of Q_aᵀQ_b (0° for
#   a shared direction, 90° for one orthogonal to the other);
# * persistence reads a cloud's pieces (H0) and loops (H1) from its distances alone; small
#   moves of the points move the bars a little (stability), and the Wasserstein distance —
#   an assignment problem with the diagonal as a free destination — measures how far.

# %%
print("lesson 12 passed: blur by hand = blur_float, angles 0° and 30°, the octagon's bars, W1 by hand = wasserstein")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/12_robustness_and_shape.py`.
#
# 1. *Write the backward before seeing it.* Write the backward of the blur of section 1 as it
#    is computed — mirror padding by r, then a valid cross-correlation with g, along the rows
#    and then along the columns — as the `backward` of a small `Module`, and check it on a
#    7 × 7 image with `miniclip.teaching.gradcheck`. (Hint: what is the gradient of a padding
#    that *copies* pixels?) Then predict, before comparing: is `backward(dy)` the same as
#    `blur_float(dy, σ)`, even at the border? And with `np.pad(mode="reflect")` instead?
# 2. *Predict, then run.* Twelve points on the unit circle instead of eight. Before running
#    `persistence_diagrams`: when is the H1 loop born, and which triangle kills it, at what
#    length? (The answer of section 4's argument, with 12 for 8.)
# 3. *Change a number.* In section 5, move b₁ from (3, 3.6) to (1.2, 3.1). Predict which bars
#    are paired now and the new W1, then check with `wasserstein_matching`.
