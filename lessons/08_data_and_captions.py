# %% [markdown]
# # Lesson 08 — The data: images, captions, and captions that repeat
#
# CLIP learns from (image, caption) pairs. miniclip's datasets are *labelled* images, and
# the captions are written from the labels with templates:
#
#     image of class 3 ("cat")  +  "a blurry photo of a {}."  →  "a blurry photo of a cat."
#
# This lesson looks at the two datasets the later lessons train on — the synthetic
# **shapes**, drawn in NumPy in a second, and **CIFAR-10**, read from its official binary
# files — then at the caption templates and the augmentation of a training batch. It ends
# with the one problem that captions made from labels bring with them: in a batch, many
# captions are the same, and CLIP's usual targets then ask for the impossible.
#
# The code: `miniclip/data/` (`shapes.py`, `cifar10.py`, `folder.py`, `captions.py`, `augment.py`) and
# `miniclip/model/targets.py`.

# %%
import numpy as np
from PIL import Image

from miniclip import set_device
from miniclip.data import (
    CLIP_CIFAR10_TEMPLATES,
    SHAPES_TEMPLATES,
    TRAIN_TEMPLATES,
    UNSEEN_TEMPLATES,
    channel_stats,
    horizontal_flip,
    load_dataset,
    load_shapes,
    make_captions,
    normalize,
    prompts,
    random_crop,
)
from miniclip.data.captions import fill
from miniclip.data.cifar10 import RECORD, read_batch, read_class_names
from miniclip.data.shapes import COLOURS, HELDOUT, SHAPES, SIZES
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.model.targets import label_aware_targets
from miniclip.plots import plot_image_grid
from miniclip.teaching.lesson_output import figure_folder, scratch_folder, show

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## The shapes dataset
#
# Every image is one shape of one colour and one size on a noisy grey background. The class
# name says all three, so there are 2 sizes × 6 colours × 4 shapes = 48 classes, numbered
#
# $$
# \mathrm{label} = (\mathrm{size} \cdot 6 + \mathrm{colour}) \cdot 4 + \mathrm{shape}
# $$
#
# "small red triangle" is size 0, colour 0, shape 2: label 2.

# %%
shapes = load_shapes(n_train=400, n_test=96, seed=0)  # 400 training images, 96 test images (2 per class)
print(shapes)
print("sizes:", list(SIZES), " colours:", list(COLOURS), " shapes:", list(SHAPES))
print("the first 8 class names:", shapes.class_names[:8])
label = (list(SIZES).index("small") * len(COLOURS) + list(COLOURS).index("red")) * len(SHAPES) + SHAPES.index(
    "triangle"
)
print(f"'small red triangle' has label {label}: {shapes.class_names[label]!r}")
assert shapes.num_classes == 48 and shapes.class_names[label] == "small red triangle"

# %% [markdown]
# **Held-out combinations.** Four colour–shape pairs (in both sizes: 8 classes) never occur
# in the training split, although every colour and every shape does, in other pairings. The
# test split draws all 48 classes equally often. Lesson 10 asks whether the trained model
# can *compose* "yellow" and "circle" having never seen a yellow circle.

# %%
print("held out:", HELDOUT)
for c in shapes.heldout_classes:
    n_train, n_test = int((shapes.train_labels == c).sum()), int((shapes.test_labels == c).sum())
    print(f"  {c:>2} {shapes.class_names[c]:<22} train images {n_train}   test images {n_test}")
assert len(shapes.heldout_classes) == 8
assert not shapes.heldout_mask(shapes.train_labels).any() and shapes.heldout_mask(shapes.test_labels).sum() == 16

# %% [markdown]
# **An image, as numbers.** Images are stored as uint8 arrays `(N, C, H, W)` — channels
# first, the layout the image encoders read. Here is one, first as a corner of its three
# colour planes (the shape's colour against the grey background), then drawn in characters:
# `#` where the pixel is far from the background's colour (the median pixel of the image).


# %%
def as_text(image: np.ndarray) -> str:
    """A (3, H, W) uint8 image as H lines of characters: '#' on the shape, '.' on the background."""
    pixels = image.astype(np.int64)  # (3, H, W), no uint8 wrap-around when subtracting
    background = np.median(pixels.reshape(3, -1), axis=1)  # (3,) most pixels are background
    on_shape = np.abs(pixels - background[:, None, None]).sum(axis=0) > 90  # (H, W)
    return "\n".join("".join("#" if v else "." for v in row) for row in on_shape)


example = int(np.flatnonzero(shapes.train_labels == shapes.class_names.index("large blue triangle"))[0])
image = shapes.train_images[example]  # (3, 32, 32) uint8
rows, cols = np.nonzero(np.abs(image.astype(int) - np.median(image, axis=(1, 2))[:, None, None]).sum(0) > 90)
r, c = int(rows.mean()), int(cols.mean())  # the middle of the shape
print(f"training image {example}: {shapes.class_names[shapes.train_labels[example]]!r}, {image.dtype} {image.shape}")
print(f"R, G, B planes around the shape's middle (rows {r - 1}..{r + 2}, columns {c - 1}..{c + 2}):")
print(image[:, r - 1 : r + 3, c - 1 : c + 3])
print(as_text(image))
assert image[2, r, c] > image[0, r, c] + 100  # blue: the blue plane is much brighter than the red one

grid_path = plot_image_grid(
    shapes.train_images[:16],
    [shapes.class_names[k] for k in shapes.train_labels[:16]],
    figure_folder() / "08_shapes.png",
)
show(grid_path, "08_shapes.png")  # the first 16 training images, with their class names

# %% [markdown]
# ## CIFAR-10's binary files
#
# CIFAR-10 (60,000 photos of 32×32 pixels, 10 classes) comes as six `.bin` files of
# 10,000 images each. Each image is one **record of 3073 bytes**:
#
#     byte 0            the label, 0..9
#     bytes 1..1024     the red plane: 32 rows of 32 pixels, row after row
#     bytes 1025..2048  the green plane
#     bytes 2049..3072  the blue plane
#
# so reading a whole file as one (N, 3073) uint8 array gives the labels in column 0, and the
# other 3072 columns reshape straight into (N, 3, 32, 32). No pickle, no decoding: that is all
# `miniclip.data.cifar10.read_batch` does. We write a tiny file of three records in a
# scratch folder (removed when the lesson's process ends) and read it back. (The real
# files: `miniclip train` downloads the 170 MB (162 MiB) archive `cifar-10-binary.tar.gz`
# to `./datasets` — or `$MINICLIP_DATA` — checks its MD5 and unpacks it.)

# %%
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
written = np.zeros((3, 3, 32, 32), dtype=np.uint8)  # (N, C, H, W): three pictures we can recognise
written[0, 0, :, :16] = 255  # image 0: red on the left half
written[1, 1, :16, :] = 255  # image 1: green on the top half
written[2, :, 10:20, 10:20] = 255  # image 2: a white square in the middle
written[2, 2, 0, 0] = 7  # and one blue pixel of value 7 in the top-left corner
labels_written = [3, 8, 0]  # cat, ship, airplane

folder = scratch_folder("08_cifar")
batch_file = folder / "tiny_batch.bin"
records = [bytes([lab]) + img.tobytes() for lab, img in zip(labels_written, written, strict=True)]  # R, G, B
batch_file.write_bytes(b"".join(records))
(folder / "batches.meta.txt").write_text("\n".join(CIFAR_NAMES) + "\n")
raw = batch_file.read_bytes()
images, labels = read_batch(batch_file)  # (3, 3, 32, 32) uint8, (3,) int64
names = read_class_names(folder / "batches.meta.txt")
batch_file.write_bytes(raw[:-1])  # one byte short: no longer whole records
try:
    read_batch(batch_file)
except ValueError as error:
    print("a truncated file is refused:", str(error)[:110], "...")

print(f"{len(raw):,} bytes = 3 records of {RECORD}")
print("byte 0 (label of image 0):", raw[0], f"= {names[raw[0]]}")
print("byte 1 (red, row 0, column 0 of image 0):", raw[1], "  byte 17 (red, row 0, column 16):", raw[17])
print("image 2's blue plane starts at byte", 2 * RECORD + 1 + 2 * 1024, "and holds", raw[2 * RECORD + 1 + 2048])
print("read back:", images.shape, images.dtype, "labels", labels.tolist(), [names[k] for k in labels])
assert len(raw) == 3 * RECORD == 9219 and names == CIFAR_NAMES
assert labels.tolist() == labels_written and np.array_equal(images, written)
assert images[2, 2, 0, 0] == raw[2 * RECORD + 1 + 2048] == 7

# %% [markdown]
# ## Your own images: a folder per class
#
# A folder with one sub-folder per class is a dataset too (`miniclip/data/folder.py`): the
# class name is the sub-folder's name with `_` read as a space ("tabby_cat/" is "tabby cat"),
# every file Pillow opens is an image, cut to its central square and resized to 32×32. Each
# class is split on its own — a seeded `test_fraction` of its images for testing — so both
# splits keep the class proportions. `n_train` and `n_test` (`--n-train`, `--n-test`) then
# keep a seeded subset of each split, for any dataset: a quick run on part of CIFAR-10, or a
# fixed test set of your own photos. Here, twelve shapes saved as PNG files in two folders:

# %%
folder = scratch_folder("08_own_images")
drawn = load_shapes(n_train=240, n_test=0, seed=2)  # 6 images of each of the 40 seen classes
for name in ("large red circle", "large blue square"):
    (folder / name.removeprefix("large ").replace(" ", "_")).mkdir(exist_ok=True)
saved = 0
for k, (image, label) in enumerate(zip(drawn.train_images, drawn.train_labels, strict=True)):
    name = drawn.class_names[label]
    if name in ("large red circle", "large blue square"):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / name[6:].replace(" ", "_") / f"{k}.png")
        saved += 1
own = load_dataset(folder, test_fraction=0.25, seed=0)
smaller = load_dataset(folder, test_fraction=0.25, seed=0, n_train=2)
print(f"{saved} files → classes {own.class_names}, {len(own.train_labels)} training, {len(own.test_labels)} test")
print("test images per class:", np.bincount(own.test_labels).tolist(), "| with n_train=2:", len(smaller.train_labels))
assert own.class_names == ["blue square", "red circle"] and len(own.train_labels) + len(own.test_labels) == saved
assert len(smaller.train_labels) == 2 and np.array_equal(smaller.test_labels, own.test_labels)

# %% [markdown]
# The commands: `miniclip train --data my_photos --test-fraction 0.2 --out runs/my_photos`,
# then `miniclip eval runs/my_photos` and `miniclip classify runs/my_photos photo.jpg --labels ...`.
# The README's "Train on your own images" section works one example through.

# %% [markdown]
# ## Caption templates
#
# Three lists of templates, each with one `{}` for the class name:
#
# * `TRAIN_TEMPLATES` (16) — what a CIFAR-10 run writes its captions with; the first seven
#   are also CLIP's;
# * `CLIP_CIFAR10_TEMPLATES` (18) — the prompts the CLIP paper used for zero-shot CIFAR-10;
# * `UNSEEN_TEMPLATES` (8) — never used in training, to see whether zero-shot accuracy
#   survives phrasings the model has never read.
#
# The shapes dataset has its own five short ones.

# %%
shared = [t for t in TRAIN_TEMPLATES if t in CLIP_CIFAR10_TEMPLATES]
print(f"train {len(TRAIN_TEMPLATES)}, CLIP {len(CLIP_CIFAR10_TEMPLATES)}, unseen {len(UNSEEN_TEMPLATES)}")
print("train ∩ CLIP:", shared)
print("unseen:", UNSEEN_TEMPLATES)
print("shapes:", SHAPES_TEMPLATES)
assert len(shared) == 7 and not set(UNSEEN_TEMPLATES) & set(TRAIN_TEMPLATES)
assert not set(UNSEEN_TEMPLATES) & set(SHAPES_TEMPLATES)
print(fill("a blurry photo of a {}.", "cat"))

# %% [markdown]
# **One caption per image, drawn at random.** Every time an image is used, a template is
# drawn for it, so over the epochs the text encoder reads every phrasing of every class. The
# draw comes from a seeded generator: the same state gives the same captions (which is how a
# resumed run repeats them exactly).

# %%
batch_labels = shapes.train_labels[:6]
first = make_captions(batch_labels, shapes.class_names, SHAPES_TEMPLATES, np.random.default_rng(1))
again = shapes.captions(batch_labels, np.random.default_rng(1))  # the dataset's own templates: the same call
later = shapes.captions(batch_labels, np.random.default_rng(2))
for a, b in zip(first, later, strict=True):
    print(f"  {a:<38} {b}")
assert first == again and first != later

# %% [markdown]
# For zero-shot classification it is the other way round: *every* class is written with
# *every* template (`prompts(...)[class][template]`), and lesson 10 averages each class's
# prompts into one class embedding.

# %%
grid = prompts(CIFAR_NAMES[:2], CLIP_CIFAR10_TEMPLATES[:3])
print(grid)
assert grid[1][2] == "a black and white photo of a automobile."

# %% [markdown]
# ## Augmentation: crop, flip, normalise
#
# A CIFAR-10 run shows each image several times; augmentation makes each showing a
# little different. **Random crop**: pad every side with `p` zeros, cut the original size
# back out at a random offset, so the picture moves by up to `p` pixels. On a numbered 4×4
# image with `p = 1`:

# %%
numbered = np.arange(1, 17, dtype=np.uint8).reshape(1, 1, 4, 4)  # (N, C, H, W)
crops = random_crop(np.repeat(numbered, 3, axis=0), 1, np.random.default_rng(3))  # (3, 1, 4, 4): 3 draws
print("original:\n", numbered[0, 0])
for k in range(3):
    print(f"crop {k}:\n", crops[k, 0])
padded = np.pad(numbered[0, 0], 1)  # (6, 6)
windows = [padded[y : y + 4, x : x + 4] for y in range(3) for x in range(3)]  # all 9 possible crops
assert all(any(np.array_equal(crop[0], w) for w in windows) for crop in crops)

# %% [markdown]
# **Horizontal flip**: mirror each image with probability ½ (a cat facing left is still a
# cat; a shape is still the same shape). `p = 1` flips all, and flipping twice gives the
# image back. **Normalise**: uint8 pixels to floats with zero mean and unit variance per
# channel, $x = (\mathrm{pixels} / 255 - \mu_c) / \sigma_c$. CIFAR-10 uses its published channel
# statistics; shapes measures its own with `channel_stats`.

# %%
flipped = horizontal_flip(numbered, 1.0)
print("flipped:\n", flipped[0, 0])
assert np.array_equal(horizontal_flip(flipped, 1.0), numbered)

mean, std = channel_stats(shapes.train_images)
x = normalize(shapes.train_images, mean, std)  # (N, 3, 32, 32) float32
print("shapes channel means", np.round(mean, 3), "stds", np.round(std, 3))
print("after normalising: means", x.mean(axis=(0, 2, 3)), "stds", x.std(axis=(0, 2, 3)), x.dtype)
assert x.dtype == np.float32
assert np.allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-3) and np.allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-3)

# %% [markdown]
# ## The duplicate-caption problem
#
# CLIP's targets are the identity: caption `i` belongs to image `i` and to no other. That
# suits web captions, where no two are alike. Ours are made from ten class names: a batch of
# 256 CIFAR-10 images holds about 25.6 images of each class, and with one template all 25
# of a class have **the same caption**. Identical captions have identical embeddings, so
# their rows of logits are identical — and no model can then say which of the 25 images is
# "the" one for each of them.
#
# `miniclip.model.targets` derives what that costs. A group of `m` identical captions shares one
# softmax row `p`; their loss $\sum_{k} -\log p_k$ over their `m` images, whose probabilities sum
# to at most 1, is at least $m \log m$ (the best is $p_k = 1/m$); the columns likewise. So
#
# $$
# L \ge \frac{1}{N} \sum_{c} n_c \log n_c \ge \log \frac{N}{C}
# $$
#
# (log is the natural logarithm, ln; the second bound is an equality when the classes are balanced).
#
# We draw the labels of one batch of 256 with 10 classes and compute the floor.

# %%
rng = np.random.default_rng(0)
N, C = 256, 10
labels = rng.integers(0, C, N)  # (N,) one batch's classes
n_c = np.bincount(labels, minlength=C)  # (C,) images of each class
floor = float((n_c * np.log(n_c)).sum() / N)
print("images per class:", n_c.tolist())
print(f"floor (1/N) Σ n_c ln n_c = {floor:.4f}   ln(N/C) = ln 25.6 = {np.log(N / C):.4f}", end="   ")
print(f"chance ln N = {np.log(N):.4f}")
assert np.log(N / C) <= floor < np.log(N)

# %% [markdown]
# **The loss cannot go below the floor.** Let a model be as free as it can be while identical
# captions stay identical: every logit `Z[c_i, j]` depends only on caption `i`'s class and on
# the image `j`. We minimise the CLIP loss (`ContrastiveLoss`, identity targets) over all
# `Z` by gradient descent; the gradient of a shared row is the sum of its rows' gradients.
# The "perfect" model — each caption gives a large logit to the images of its class and a
# small one to all others, `logits = a · S` with `S_ij = [c_i = c_j]` — gets there too.

# %%
loss = ContrastiveLoss()
same_class = (labels[:, None] == labels[None, :]).astype(np.float64)  # (N, N) S_ij = [c_i = c_j]
for a in (1.0, 5.0, 20.0, 100.0):
    print(f"logits = {a:>5.0f}·S: loss {float(loss(a * same_class)):.4f}")

Z = 0.01 * rng.standard_normal((C, N))  # (C, N): one row of logits per caption class
history = []
for _ in range(400):
    history.append(float(loss(Z[labels])))  # logits (N, N): row i is Z[c_i]
    dlogits = loss.backward()  # (N, N)
    dZ = np.zeros_like(Z)
    np.add.at(dZ, labels, dlogits)  # identical rows share one gradient: add them up
    Z -= 200.0 * dZ
print("gradient descent on class-tied logits:", " → ".join(f"{history[s]:.4f}" for s in (0, 10, 50, 399)))
print(f"lowest loss reached {min(history):.4f}, floor {floor:.4f}")
assert min(history) >= floor - 1e-9 and history[-1] - floor < 0.01
assert abs(float(loss(100.0 * same_class)) - floor) < 1e-9

# %% [markdown]
# **And the gradient never rests.** At the perfect logits the identity targets still call
# every same-class pair wrong: the gradient `(P − Y)/N` (`Y` the identity) is positive at
# `(i, k)` for every other image `k` of caption `i`'s class (so a step *lowers* those
# similarities) and negative on the diagonal. Here it is for six captions of the batch, three
# of each of two classes.

# %%
loss(100.0 * same_class)
grad_identity = loss.backward()  # (N, N)
off_diagonal = same_class.astype(bool) & ~np.eye(N, dtype=bool)  # same class, other image
six = np.concatenate([np.flatnonzero(labels == labels[0])[:3], np.flatnonzero(labels == labels[1])[:3]])
print("six captions and images:", six.tolist(), "of classes", labels[six].tolist())
print("N · gradient on their logits:\n", N * grad_identity[np.ix_(six, six)])
print(f"same-class, other image: all > 0 (smallest {grad_identity[off_diagonal].min():.2e});", end=" ")
print(f"diagonal: all < 0 (largest {grad_identity.diagonal().max():.2e})")
assert (grad_identity[off_diagonal] > 0).all() and (grad_identity.diagonal() < 0).all()

# %% [markdown]
# What does that push do to the images? When the captions are exactly identical, the pushes
# on their one shared embedding cancel. But our captions are not quite identical: each image
# gets one of several templates, drawn at random, and the text encoder can tell the templates
# apart. Then the identity targets ask every image to move towards *its own* caption's
# template and away from its classmates that happened to draw another one — a distinction
# that is pure noise, redrawn every epoch.
#
# A small experiment with free image embeddings: 10 class directions, 4 templates; caption
# embedding = its class direction + 0.3 × its template's direction, normalised. Every image
# starts exactly on its class direction (a perfect classifier) and follows the gradient of
# the CLIP loss (scale 20) for 100 steps, staying unit length.

# %%
d, n_templates, scale = 32, 4, 20.0
classes = rng.standard_normal((C, d))
classes /= np.linalg.norm(classes, axis=1, keepdims=True)  # (C, d)
wording = rng.standard_normal((n_templates, d))
wording /= np.linalg.norm(wording, axis=1, keepdims=True)  # (T, d)
template = rng.integers(0, n_templates, N)  # (N,) the template drawn for each image
texts = classes[labels] + 0.3 * wording[template]
texts /= np.linalg.norm(texts, axis=1, keepdims=True)  # (N, d) caption embeddings, fixed
label_aware = label_aware_targets(labels, np.float64)  # (N, N)


def follow_the_gradient(targets: np.ndarray | None, steps: int = 100, lr: float = 50.0) -> tuple[np.ndarray, float]:
    """Image embeddings (N, d) after gradient descent from their class directions, and the last loss."""
    images = classes[labels].copy()  # (N, d)
    for _ in range(steps):
        value = float(loss(scale * texts @ images.T, targets))  # logits (N, N): captions × images
        dimages = scale * loss.backward().T @ texts  # (N, d): d loss / d images
        dimages -= (dimages * images).sum(axis=1, keepdims=True) * images  # only along the sphere
        images -= lr * dimages
        images /= np.linalg.norm(images, axis=1, keepdims=True)
    return images, value


def within_class_cosine(images: np.ndarray) -> float:
    """Mean cosine between two different images of the same class (1: all on one point)."""
    return float((images @ images.T)[off_diagonal].mean())


groups = np.bincount(labels * n_templates + template)  # identical captions: one group per (class, template)
group_floor = float((groups * np.log(np.maximum(groups, 1))).sum() / N)
spread, final_loss = {}, {}
for name, targets in (("identity", None), ("label-aware", label_aware)):
    moved, final_loss[name] = follow_the_gradient(targets)
    spread[name] = within_class_cosine(moved)
    print(f"{name:<12} mean cosine of same-class images {spread[name]:.3f}   loss {final_loss[name]:.4f}")
print(f"class floor {floor:.4f}; floor with (class, template) groups {group_floor:.4f}")
assert spread["identity"] < 0.9 and spread["label-aware"] > 0.999  # identity targets split the classes by template
assert group_floor <= final_loss["identity"] < floor

# %% [markdown]
# With identity targets the images of one class spread out, grouped by which template was
# drawn for them; the loss even falls below the class floor, because the templates split each
# class into smaller groups of identical captions (the same bound, with the groups of one
# class *and* one template, is lower). That is the model memorising this batch's coin
# tosses. With label-aware targets the images stay where they were.
#
# ## Label-aware targets
#
# The fix: count every same-class pair as a match, each row normalised,
#
# $$
# Y_{ij} = \frac{[c_i = c_j]}{n_{c_i}}
# $$
#
# Rows and columns of `Y` each sum to 1, so the loss's
# gradient is still `(P − Y)/N` — and at the perfect logits `P` equals `Y`: every caption
# spreads its probability evenly over the images of its class, which is exactly what it is
# asked for. The gradient is zero. (The loss is not zero: its minimum is the entropy of the
# targets, the same `(1/N) Σ n_c ln n_c`. Compare training losses with that, not with 0.)

# %%
print("Y of the same six captions and images, times n_c:\n", label_aware[np.ix_(six, six)] * n_c[labels[six]][:, None])
print("row sums", np.unique(label_aware.sum(axis=1).round(12)), "column sums", np.unique(label_aware.sum(0).round(12)))
aware_loss = float(loss(100.0 * same_class, label_aware))
grad_aware = loss.backward()  # (N, N)
print(f"at the perfect logits: loss {aware_loss:.4f} (the floor {floor:.4f}),", end=" ")
print(f"largest |gradient| {np.abs(grad_aware).max():.1e} (identity targets: {np.abs(grad_identity).max():.1e})")
assert np.allclose(label_aware.sum(axis=0), 1) and np.allclose(label_aware.sum(axis=1), 1)
assert abs(aware_loss - floor) < 1e-9
assert np.abs(grad_aware).max() < 1e-15

# %% [markdown]
# `miniclip train` uses label-aware targets by default (`--targets identity` gives CLIP's own,
# to compare); lesson 09 shows where they enter a training step.
#
# ## What you should take away
#
# * the shapes dataset names every image by size, colour and shape (48 classes), and keeps
#   8 colour–shape combinations out of training to test composition;
# * a CIFAR-10 file is a run of 3073-byte records: a label byte and the R, G, B planes, which
#   reshape straight into (N, 3, 32, 32);
# * captions are templates filled with class names, one drawn per image per step; zero-shot
#   writes every class with every template; augmentation crops, flips and normalises;
# * with captions made from labels, a batch repeats its captions: identity targets then put a
#   floor of `(1/N) Σ n_c ln n_c` (≈ ln 25.6 for CIFAR-10) under the loss and keep pushing
#   same-class images apart; label-aware targets have zero gradient at the perfect answer.
#
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/08_data_and_captions.py`.
#
# 1. **Write the backward first: the loss with soft targets.** With row softmax
#    $P^{r}_{ij} = \exp(Z_{ij}) / \sum_{k} \exp(Z_{ik})$, column softmax $P^{c}$ (the same down each
#    column) and targets Y whose rows and columns sum to 1, CLIP's loss is
#    $L = -\frac{1}{2N} \sum_{i} \sum_{j} Y_{ij} \left( \log P^{r}_{ij} + \log P^{c}_{ij} \right)$.
#    Derive $\partial L / \partial Z$ by hand, write it as a function of Z and Y, and check it
#    against central differences (`miniclip.teaching.gradcheck.numerical_gradient`) and against
#    `ContrastiveLoss.backward`, for random logits and the label-aware targets of a batch of 8.
# 2. **Derive, then check: an unbalanced batch.** Four captions of classes `[0, 0, 0, 1]`: what
#    is the floor $\frac{1}{N} \sum_{c} n_c \log n_c$, and how does it compare with
#    $\log(N / C)$? Check with `ContrastiveLoss` at the logits `100 · S`.
# 3. **Change a number: a bigger batch.** With N = 512 images of CIFAR-10's 10 classes, predict
#    the floor (about what logarithm?), then draw the labels and compute it.
print("lesson 08 passed: shapes and CIFAR-10 read, captions drawn, the duplicate-caption floor and its fix checked")
