# %% [markdown]
# # Lesson 07 — Image encoders: convolutions and the Vision Transformer
#
# The walkthrough's image encoder cut an image into patches and sent each patch through the
# same small linear layer. CLIP comes with two real image encoders, and miniclip has both:
#
# * a **CNN** (a small ResNet): slide small learned filters over the whole image, layer upon
#   layer, each seeing a wider neighbourhood;
# * a **ViT** (Vision Transformer): the walkthrough's patches, embedded and then read by the
#   attention of lesson 06, so every patch can look at every other one.
#
# This lesson starts with one convolution on a real photograph, with filters set by hand,
# shows how `im2col` turns a convolution into a single matrix product (and why the images are
# stored channels-last for it), shows that the input gradient of a stride-1 convolution is
# itself a convolution, with the kernel turned by 180°, and then puts the two encoders side by
# side: parameters, cost per image, output shapes, and time on this CPU.
#
# The code: `miniclip/layers/conv2d.py`, `miniclip/layers/im2col.py`, `miniclip/encoders/cnn.py` and
# `miniclip/encoders/vit.py`; the counts and timings: `miniclip/measure/cost.py` and `miniclip/measure/bench.py`;
# a step's memory: `miniclip/training/memory.py`.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from miniclip import Module, set_device
from miniclip.encoders.cnn import CNNEncoder
from miniclip.encoders.vit import ViT
from miniclip.layers import Linear
from miniclip.layers.conv2d import Conv2d
from miniclip.layers.im2col import col2im, im2col
from miniclip.measure.cost import ModelCost, image_encoder_cost
from miniclip.model.config import ModelConfig, build_image_encoder
from miniclip.teaching.lesson_output import show
from miniclip.training.configs import CONFIGS

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=3, suppress=True, linewidth=120)

# %% [markdown]
# ## A photograph
#
# Matplotlib ships a few sample images; the portrait of Grace Hopper is one. We crop it to a
# square, turn it grey (one channel) and shrink it to 64×64, values in [0, 1]. If this
# matplotlib has no sample photo, a drawn image stands in (the lesson says so).


# %%
def load_photo(size: int = 64) -> tuple[np.ndarray, str]:
    """A grey (size, size) image in [0, 1] from matplotlib's sample data, or a drawn one."""
    import matplotlib.cbook as cbook

    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
        try:
            with cbook.get_sample_data(name) as f:
                picture = Image.open(f)
                picture.load()
        except (OSError, ValueError):
            continue
        grey = picture.convert("L")
        side = min(grey.size)
        left, top = (grey.width - side) // 2, (grey.height - side) // 2
        grey = grey.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(grey, dtype=np.float64) / 255.0, name
    print("no sample photo found in this matplotlib: using a drawn image instead")
    rows, cols = np.mgrid[0:size, 0:size] / size
    drawn = 0.5 + 0.3 * np.sin(12 * rows) * np.cos(5 * cols)  # soft waves
    drawn[size // 4 : size // 2, size // 4 : 3 * size // 4] = 1.0  # a bright bar
    return drawn, "drawn image"


photo, source = load_photo()
print(f"image: {source}, shape {photo.shape}, values from {photo.min():.2f} to {photo.max():.2f}")
assert photo.shape == (64, 64) and photo.min() >= 0.0 and photo.max() <= 1.0

# %% [markdown]
# ## One convolution, filters set by hand
#
# A convolution slides a small filter over the image; at each position it multiplies the
# filter with the 3×3 window under it and adds up
# (with `padding=1`, a border of zeros keeps the output 64×64),
#
# $$
# y_{ij} = \sum_{a} \sum_{b} w_{ab} \, x_{i+a-1, j+b-1}
# $$
#
# The same 9 weights are used
# at every position, which is why a convolution has so few parameters.
#
# Strictly, that sum is a *cross-correlation*: the kernel is laid on the image as it is,
# `w[0, 0]` on the top-left pixel of the window. The mathematician's convolution flips the
# kernel first, `Σ_ab w[a, b] · x[i−a+1, j−b+1]`, so `w[0, 0]` lands on the bottom-right.
# Deep-learning libraries (PyTorch's `Conv2d`, and this one) compute the cross-correlation
# and call it convolution, and so does this lesson. For learned filters the difference is
# immaterial: a network that needed the flipped filter would simply learn it. For the
# hand-set filters below it decides the sign: the top row `[1, 2, 1]` of the first one
# weighs the row *above* each pixel.
#
# Two classic filters (Sobel's): the first subtracts the row below from the row above, so it
# answers where brightness changes from top to bottom, that is, on **horizontal** edges; its
# transpose answers on **vertical** edges. A `Conv2d` with one input channel and two output
# channels holds both: one forward pass gives both response maps.
#
# `Conv2d` takes images **channels-last**, `(N, H, W, C)`: the grey photo goes in as
# `(1, 64, 64, 1)` and the two maps come out as `(1, 64, 64, 2)`, the filter index last (why
# this layout is the one a convolution wants is shown with `im2col` below). The weight keeps
# PyTorch's layout, `(out_channels, in_channels, k, k)`.

# %%
horizontal = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])  # top minus bottom
vertical = horizontal.T  # left minus right
conv = Conv2d(1, 2, kernel=3, padding=1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
conv.weight.data[0, 0] = horizontal  # weight: (out_channels, in_channels, 3, 3)
conv.weight.data[1, 0] = vertical
print("horizontal-edge filter:\n", horizontal)


def edge_strength(image: np.ndarray) -> np.ndarray:
    """Mean |response| of the two filters, (2,), ignoring the one-pixel border the zero padding creates."""
    responses = conv(image[None, :, :, None])  # (1, H, W, 1) in, (1, H, W, 2) out: one channel per filter
    return np.abs(responses[0, 1:-1, 1:-1, :]).mean(axis=(0, 1))


# %% [markdown]
# First a drawn test image whose edges we know: a bright rectangle on a dark ground. Its top
# and bottom sides are horizontal edges, its left and right sides vertical ones.

# %%
box = np.zeros((16, 16))
box[4:12, 3:13] = 1.0  # rows 4..11, columns 3..12
box_response = conv(box[None, :, :, None])[0].transpose(2, 0, 1)  # (16, 16, 2) → (2, 16, 16): one map per filter
print("horizontal filter on the rectangle:\n", box_response[0, 2:14, 1:15])
# The horizontal filter fires along the top and bottom sides and is exactly zero along the
# left and right sides (rows 6..9, away from the corners), and the vertical filter the reverse.
assert np.all(box_response[0, 6:10] == 0.0) and np.abs(box_response[0, 3:5, 4:12]).min() > 0
assert np.all(box_response[1, :, 6:10] == 0.0) and np.abs(box_response[1, 4:12, 2:4]).min() > 0
stripes = np.tile(np.repeat([0.0, 1.0], 4), 4)[:, None] * np.ones((1, 32))  # (32, 32): horizontal bands
stripe_strength = edge_strength(stripes)
print(
    f"horizontal stripes: mean |response| horizontal filter {stripe_strength[0]:.3f}, vertical {stripe_strength[1]:.3f}"
)
assert stripe_strength[0] > 1.0 and stripe_strength[1] == 0.0

# %% [markdown]
# Now the photograph. A portrait has edges in every direction (the outline of the face and
# the cap, the collar, the medals), so the two filters' *averages* over the whole picture come
# out close; what differs is *where* they fire. In the picture below (saved as
# `07_edges.png` when `MINICLIP_LESSON_OUT` names a folder) the horizontal filter picks out
# the glasses, the mouth and the rows of medal ribbons, the vertical one the tie and the
# lapels (both also light up the frame, where the zero padding meets the picture, which is
# why the border is left out of the averages). Turn the photo a quarter turn and the
# horizontal edges become vertical ones: the two numbers swap, which is the whole difference
# between the filters.

# %%
strength = edge_strength(photo)
turned = edge_strength(np.rot90(photo))
print(f"photo:        mean |response| horizontal filter {strength[0]:.4f}, vertical filter {strength[1]:.4f}")
print(f"photo turned: mean |response| horizontal filter {turned[0]:.4f}, vertical filter {turned[1]:.4f}")
assert np.allclose(turned, strength[::-1])

maps = conv(photo[None, :, :, None])[0].transpose(2, 0, 1)  # (2, 64, 64): one map per filter
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, image, title in [
    (axes[0], photo, f"{source}, 64×64 grey"),
    (axes[1], np.abs(maps[0]), "|horizontal-edge filter|"),
    (axes[2], np.abs(maps[1]), "|vertical-edge filter|"),
]:
    ax.imshow(image, cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
show(fig, "07_edges.png")

# %% [markdown]
# ## im2col: a convolution is one matrix product
#
# Looping over every output pixel in Python would be slow. Instead, `im2col` copies each 3×3
# window into one row of a matrix. A 4×4 image (numbered 0..15, one channel: shape
# `(N, H, W, C) = (1, 4, 4, 1)`) has 2×2 = 4 windows without padding, so `cols` is 4 × 9:

# %%
tiny = np.arange(16.0).reshape(1, 4, 4, 1)  # (N, H, W, C)
cols = im2col(tiny, kernel=3)  # (N·Ho·Wo, k·k·C) = (4, 9)
print("image:\n", tiny[0, :, :, 0])
print("cols (one window per row):\n", cols)
assert cols.shape == (4, 9) and np.array_equal(cols[0], [0, 1, 2, 4, 5, 6, 8, 9, 10])

# %% [markdown]
# **Why channels-last.** With C input channels a row of `cols` holds k·k·C numbers: for each
# pixel of the window, its C channel values. The product `cols @ W` wants those C numbers of
# one pixel side by side, and stored `(N, H, W, C)` they already are: memory runs pixel by
# pixel, each pixel's channels together, so `im2col` copies whole runs of C numbers at a time.
# Stored `(N, C, H, W)` (PyTorch's layout, and the one images arrive in), one pixel's channels
# lie H·W numbers apart. Here is a two-channel version of the tiny image (channel 1 is
# channel 0 plus 100):

# %%
two = np.concatenate([tiny, tiny + 100], axis=3)  # (1, 4, 4, 2)
print("channels-last, first 3 pixels in memory:", two.reshape(-1)[:6])  # each pixel's 2 channels together
print("channels-first, first 6 numbers in memory:", two.transpose(0, 3, 1, 2).reshape(-1)[:6])  # all channel 0
two_cols = im2col(two, kernel=3)  # (4, 3·3·2) = (4, 18)
print("first window of the two-channel image:\n", two_cols[0])
assert two_cols.shape == (4, 18) and np.array_equal(two_cols[0, :6], [0, 100, 1, 101, 2, 102])

# %% [markdown]
# With the filters flattened into the columns of a matrix, `cols @ W` gives every output
# pixel of every filter at once: one matrix product, which BLAS (or the GPU) does fast. That
# is all `Conv2d.forward` does, plus reshapes. The rows of `W` must follow the columns of
# `cols` — kernel row, kernel column, channel — so the weight `(O, C, k, k)` is reordered to
# `(k, k, C, O)` and flattened. The product's output, `(N·Ho·Wo, O)`, *is* an `(N, Ho, Wo, O)`
# image, channels-last again and ready for the next layer with no transpose; with
# `(N, C, H, W)` every layer would transpose around its product. So the CNN's layers all work
# channels-last; `CNNEncoder` takes `(N, C, H, W)` images like every image encoder and
# transposes once on the way in (and the gradient once on the way out).
#
# (The numbered image is a ramp that brightens by 4 per row down and 1 per column across, so
# each edge filter sees the same slope in every window: top minus bottom is 4 · (−8) = −32,
# left minus right is 4 · (−2) = −8.)

# %%
weights = conv.weight.data.transpose(2, 3, 1, 0).reshape(9, 2)  # (O, C, k, k) → (k·k·C, O) = (9, 2)
by_gemm = (cols @ weights).reshape(1, 2, 2, 2)  # (N·Ho·Wo, O) → (N, Ho, Wo, O): a reshape, no transpose
tiny_conv = Conv2d(1, 2, kernel=3, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
tiny_conv.weight.data[...] = conv.weight.data
print("cols @ W, one 2×2 map per filter:\n", by_gemm[0].transpose(2, 0, 1))
assert np.allclose(by_gemm, tiny_conv(tiny))
assert np.all(by_gemm[..., 0] == -32) and np.all(by_gemm[..., 1] == -8)

# %% [markdown]
# The backward of `im2col` is `col2im`: every entry of a row is added back to the pixel it
# was copied from. A pixel that sits in several windows gets the sum, so `col2im` of a
# matrix of ones counts how many windows cover each pixel: the corners are in one window,
# the middle four in all four. (This is why `Conv2d.backward` can be the linear layer's
# backward followed by `col2im`: the textbook route, `backward_by="col2im"`.)

# %%
coverage = col2im(np.ones_like(cols), tiny.shape, kernel=3)  # (1, 4, 4, 1)
print("windows covering each pixel:\n", coverage[0, :, :, 0])
assert np.array_equal(coverage[0, :, :, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])

# %% [markdown]
# ## The input gradient of a stride-1 convolution is a convolution
#
# For stride 1 there is a shorter way to the input gradient. Take one channel and padded
# coordinates: `y[i, j] = Σ_ab x[i+a, j+b] · W[a, b]`. A pixel `x[u, v]` meets the weight
# `W[a, b]` through the output `y[u−a, v−b]`, so
#
# $$
# dx_{uv} = \sum_{a} \sum_{b} dy_{u-a, v-b} \, W_{ab} = \sum_{a'} \sum_{b'} dy_{u-(k-1)+a', v-(k-1)+b'} \, W_{k-1-a',
# k-1-b'}
# $$
#
# (with `a' = k−1−a`, `b' = k−1−b`): a plain convolution of `dy`, padded with k−1 zeros
# (k−1−padding when the forward was padded), with the kernel **turned by 180°**. With several
# channels the kernel's in and out channels swap as well: `dy` has O channels, `dx` has C.
# `Conv2d(..., backward_by="flipped")` does this — one `im2col` of `dy` and one matrix
# product, instead of building the k·k-times-larger matrix of window gradients and scattering
# it back with `col2im` — and `"auto"` (the default) picks it wherever the stride is 1. (For
# stride 2, `dy` would first need zeros between its pixels, so `col2im` stays.)
#
# On the tiny image, with the kernel 1..9 (no symmetry, so the flip shows) and an upstream
# gradient that is 1 at the top-left output pixel and 2 at the bottom-right one: each output
# pixel hands its kernel back to its window, scaled by its dy, and where the two windows
# overlap the contributions add. Both routes give that, and so does a *forward* convolution of
# dy with the turned kernel:

# %%
kernel = np.arange(1.0, 10.0).reshape(3, 3)
dy = np.array([[1.0, 0.0], [0.0, 2.0]]).reshape(1, 2, 2, 1)  # (N, Ho, Wo, O)
dx_by = {}
for route in ("col2im", "flipped"):
    layer = Conv2d(1, 1, 3, bias=False, rng=np.random.default_rng(0), dtype=np.float64, backward_by=route)
    layer.weight.data[0, 0] = kernel
    layer(tiny)
    dx_by[route] = layer.backward(dy)  # (1, 4, 4, 1)
    print(f'dx, backward_by="{route}":\n', dx_by[route][0, :, :, 0])
turned_conv = Conv2d(1, 1, 3, padding=2, bias=False, rng=np.random.default_rng(0), dtype=np.float64)  # padding k − 1
turned_conv.weight.data[0, 0] = kernel[::-1, ::-1]  # the kernel turned by 180°
print("dy convolved with the turned kernel:\n", turned_conv(dy)[0, :, :, 0])
assert np.array_equal(dx_by["col2im"], dx_by["flipped"]) and np.array_equal(turned_conv(dy), dx_by["col2im"])
assert dx_by["col2im"][0, 1, 1, 0] == kernel[1, 1] + 2 * kernel[0, 0]  # the overlap: W[1, 1]·1 + W[0, 0]·2

# %% [markdown]
# With several channels, padding and random numbers the two routes agree to rounding, and the
# turned kernel with its in and out channels swapped, `(C, O, k, k)`, reproduces them:

# %%
rng = np.random.default_rng(7)
x_many = rng.standard_normal((2, 5, 6, 2))  # (N, H, W, C = 2)
dy_many = rng.standard_normal((2, 5, 6, 3))  # (N, Ho, Wo, O = 3): stride 1, padding 1 keeps the size
dx_many = {}
for route in ("col2im", "flipped"):
    layer = Conv2d(2, 3, 3, padding=1, rng=np.random.default_rng(1), dtype=np.float64, backward_by=route)
    layer(x_many)
    dx_many[route] = layer.backward(dy_many)
swapped = Conv2d(3, 2, 3, padding=1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)  # k − 1 − 1 = 1
swapped.weight.data[...] = layer.weight.data.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]  # (C, O, k, k), turned
difference = np.abs(dx_many["flipped"] - dx_many["col2im"]).max()
print(f"largest difference between the two routes: {difference:.1e}")
assert difference < 1e-12 and np.allclose(swapped(dy_many), dx_many["col2im"], rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## The two encoders side by side
#
# Both are built from the project's default configuration (`ModelConfig`) for 32×32 colour
# images and the same shared width (`embed_dim` = 128):
#
# * CNN: a 3×3 stem conv with 32 channels, then one residual block per stage at 32, 64 and
#   128 channels (the resolution halves at each new stage: 32 → 16 → 8), global average
#   pooling, projection;
# * ViT: 4×4 patches (64 of them), each embedded to width 128, plus a learned position per
#   patch, 4 transformer blocks of 4 heads, LayerNorm, mean over the patches, projection.

# %%
cnn_cfg = ModelConfig(image_encoder="cnn")
vit_cfg = ModelConfig(image_encoder="vit")
cnn = build_image_encoder(cnn_cfg, rng=np.random.default_rng(0), dtype=np.float32)
vit = build_image_encoder(vit_cfg, rng=np.random.default_rng(0), dtype=np.float32)
assert isinstance(cnn, CNNEncoder) and isinstance(vit, ViT)
image_shape = (cnn_cfg.channels, cnn_cfg.image_size, cnn_cfg.image_size)  # (3, 32, 32)


def count(module: Module) -> int:
    """Trainable numbers in a module."""
    return sum(int(p.data.size) for p in module.parameters().values())


# %% [markdown]
# **Cost of the CNN.** A convolution with an `O × C × k × k` weight, producing an `Ho × Wo`
# map, does one multiply-add per weight per output pixel: `Ho·Wo·O·C·k²`. `miniclip.measure.cost`
# walks the shapes of a configuration (nothing is built or run) and adds this up, one row per
# layer named by its module path; batch norm, ReLU and pooling are cheap by comparison and
# count as zero. (Its shapes are written `(C, H, W)` per image, whatever the memory layout.)

# %%
cnn_cost = ModelCost(image_encoder_cost(cnn_cfg))  # rows image.stem_conv, image.stem_bn, ..., image.project
print(f"{'CNN layer':<28} {'output':<14} {'parameters':>10} {'multiply-adds':>14}")
for row in cnn_cost.layers:
    if row.multiply_adds:  # the convolutions and the projection
        print(f"{row.name:<28} {str(row.output):<14} {row.parameters:>10,} {row.multiply_adds:>14,}")
free = [row for row in cnn_cost.layers if not row.multiply_adds]
print(f"{'the other ' + str(len(free)) + ' (norms, ReLUs, pool)':<43} {sum(r.parameters for r in free):>10,} {0:>14,}")
print(f"{'total':<43} {cnn_cost.parameters:>10,} {cnn_cost.multiply_adds:>14,}")
stages = {"stem": cnn_cost.part("image.stem_").multiply_adds}
stages.update({f"blocks.{i}": cnn_cost.part(f"image.blocks.{i}.").multiply_adds for i in range(len(cnn.blocks))})
print("per stage:", ", ".join(f"{name} {macs:,}" for name, macs in stages.items()))
stem = cnn.stem_conv.weight.data  # (32, 3, 3, 3)
assert cnn_cost.by_name()["image.stem_conv"].multiply_adds == 32 * 32 * stem.size  # every pixel, every weight
assert cnn_cost.parameters == count(cnn)

# %% [markdown]
# **The patchify stem.** The stem above runs a 3×3 convolution at full resolution, 32×32.
# The CNN that `miniclip train` uses on the CPU (the `cpu` configuration, and the shapes
# configurations of lessons 09–14) replaces it with a **p×p convolution of stride p**, p = 2:
# its windows tile the image without overlap, so each output pixel reads exactly one 2×2
# patch. That *is* the walkthrough's patchify followed by a linear layer — cut the image into
# patches of p·p·C numbers, multiply each by the same (p·p·C, O) matrix — written as a
# convolution; `im2col` with kernel = stride = p is the patchify. The image leaves the stem as
# a (H/p)×(W/p) grid, 16×16 here, and the 3×3 stages run on that, so every later layer works
# on a quarter of the pixels. A check on a random 4×4 image with 3 channels:

# %%
rng = np.random.default_rng(5)
patchify_conv = Conv2d(3, 4, kernel=2, stride=2, bias=False, rng=rng, dtype=np.float64)
image4 = rng.standard_normal((1, 4, 4, 3))  # (N, H, W, C)
patches = image4.reshape(1, 2, 2, 2, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(4, 12)  # (2·2 patches, p·p·C)
linear = patchify_conv.weight.data.transpose(2, 3, 1, 0).reshape(12, 4)  # (p·p·C, O), rows as in a patch
print("patches (one 2×2×3 patch per row):", patches.shape, "→ output grid", patchify_conv(image4).shape)
assert np.allclose(patches @ linear, patchify_conv(image4).reshape(4, 4))  # patchify + linear = the convolution
assert np.array_equal(im2col(image4, kernel=2, stride=2), patches)  # kernel = stride: im2col is patchify

# %% [markdown]
# The `cpu` configuration's CNN is the one above with only that change (its channels, blocks
# and width are the same). Its cost, stage by stage, beside the 3×3 stem's:

# %%
cpu_cfg = ModelConfig(**CONFIGS["cpu"].model)  # image_encoder "cnn", cnn_stem_patch 2
patch_cost = ModelCost(image_encoder_cost(cpu_cfg))
patch_stages = {"stem": patch_cost.part("image.stem_").multiply_adds}
patch_stages.update(
    {f"blocks.{i}": patch_cost.part(f"image.blocks.{i}.").multiply_adds for i in range(len(cnn.blocks))}
)
print(f"{'stage':<10} {'3×3 stem, 32×32':>16} {'2×2 patchify stem, 16×16':>25}")
for name in stages:
    print(f"{name:<10} {stages[name]:>16,} {patch_stages[name]:>25,}")
print(f"{'total':<10} {cnn_cost.multiply_adds:>16,} {patch_cost.multiply_adds:>25,}")
assert cpu_cfg.cnn_stem_patch == 2 and cpu_cfg.cnn_channels == cnn_cfg.cnn_channels and cpu_cfg.cnn_blocks == 1
assert patch_cost.by_name()["image.stem_conv"].multiply_adds == 16 * 16 * 32 * (2 * 2 * 3)  # one patch per output pixel
assert 3.5 < cnn_cost.multiply_adds / patch_cost.multiply_adds < 4.5  # about a quarter: a quarter of the pixels
assert patch_stages["blocks.0"] == max(patch_stages.values())  # the first stage still costs the most

# %% [markdown]
# **Cost of the ViT, by hand.** With `P` patches of `C·p²` numbers, width `D`, MLP width
# `r·D`, shared width `d`, per image:
#
#     patch embedding     P · (C·p²) · D
#     per block:  qkv     P · D · 3D           three projections, fused
#                 scores  P · P · D            Q Kᵀ: every query against every key (all heads: H · P² · D/H)
#                 values  P · P · D            P V
#                 output  P · D · D            the output projection
#                 MLP     2 · P · D · rD       widen and narrow back
#     projection          D · d                once, on the pooled vector
#
# (LayerNorm, softmax, GELU and the additions are not counted, as for the CNN.)


# %%
def vit_multiply_adds(cfg: ModelConfig) -> dict[str, int]:
    """Multiply-adds per image of the ViT that ``cfg`` describes, by the table above."""
    P = (cfg.image_size // cfg.patch_size) ** 2  # patches
    D, r, Cp2 = cfg.image_width, cfg.mlp_ratio, cfg.channels * cfg.patch_size**2
    per_block = {
        "qkv": P * D * 3 * D,
        "scores Q Kᵀ": P * P * D,
        "values P V": P * P * D,
        "output proj": P * D * D,
        "MLP": 2 * P * D * r * D,
    }
    return {
        "patch embedding": P * Cp2 * D,
        **{name: cfg.image_depth * macs for name, macs in per_block.items()},  # all blocks together
        "projection": D * cfg.embed_dim,
    }


vit_parts = vit_multiply_adds(vit_cfg)
vit_macs = sum(vit_parts.values())
P = (vit_cfg.image_size // vit_cfg.patch_size) ** 2  # 64 patches
Dv, r, Cp2 = vit_cfg.image_width, vit_cfg.mlp_ratio, vit_cfg.channels * vit_cfg.patch_size**2
print(f"ViT: P = {P} patches of {Cp2} numbers, width {Dv}, {vit_cfg.image_depth} blocks (summed over the blocks)")
for name, macs in vit_parts.items():
    print(f"  {name:<16} {macs:>12,}")
print(f"  {'total':<16} {vit_macs:>12,}")

# %% [markdown]
# A cross-check that does not use the formula: walk the ViT's modules. Every `Linear` inside
# runs once per patch (one multiply-add per weight), except the final projection, which runs
# once per image; add the two P×P attention products of each block.


# %%
def linears(module: Module) -> list[Linear]:
    """Every Linear layer inside ``module``, at any depth."""
    found = []
    for _, child in module.children():
        found += [child] if isinstance(child, Linear) else linears(child)
    return found


walked = sum(int(m.weight.data.size) * (1 if m is vit.project else P) for m in linears(vit))
walked += vit_cfg.image_depth * 2 * P * P * Dv  # Q Kᵀ and P V in every block
print(f"walking the modules: {walked:,} multiply-adds ({len(linears(vit))} Linear layers)")
assert walked == vit_macs
assert ModelCost(image_encoder_cost(vit_cfg)).multiply_adds == vit_macs  # and miniclip.measure.cost agrees

# %% [markdown]
# **Parameters of the ViT, by hand**, as a check on the description (biases included; each
# LayerNorm has a gain and a shift of width D):

# %%
block_params = {
    "2 LayerNorms": 2 * 2 * Dv,  # gain and shift each
    "qkv": Dv * 3 * Dv + 3 * Dv,  # weight and bias
    "output proj": Dv * Dv + Dv,
    "MLP": (Dv * r * Dv + r * Dv) + (r * Dv * Dv + Dv),  # widen, narrow
}
vit_params_by_hand = (
    (Cp2 * Dv + Dv)  # patch embedding, weight and bias
    + P * Dv  # one learned position per patch
    + vit_cfg.image_depth * sum(block_params.values())
    + 2 * Dv  # final LayerNorm
    + Dv * vit_cfg.embed_dim  # projection (no bias)
)
print("per block:", ", ".join(f"{name} {n:,}" for name, n in block_params.items()))
print(f"ViT parameters: by hand {vit_params_by_hand:,}, counted {count(vit):,}")
assert vit_params_by_hand == count(vit)

# %% [markdown]
# ## Output shapes and time for one training step's worth of work
#
# A batch of 16 random 32×32 RGB images through each encoder, forward and backward (the
# backward takes a random upstream gradient, as a loss would supply), in float32. One small
# untimed pass first, so that one-off set-up costs are not counted.

# %%
rng = np.random.default_rng(0)
images = rng.standard_normal((16, *image_shape)).astype(np.float32)  # (N, 3, 32, 32)
timings, shapes = {}, {}
for name, encoder in [("CNN", cnn), ("ViT", vit)]:
    warm = encoder(images[:2])  # untimed: the first call pays for setting things up
    encoder.backward(np.zeros_like(warm))
    start = time.perf_counter()
    embeddings = encoder(images)  # (N, embed_dim)
    encoder.zero_grad()
    d_images = encoder.backward(rng.standard_normal(embeddings.shape).astype(np.float32))  # (N, 3, 32, 32)
    timings[name] = time.perf_counter() - start
    shapes[name] = embeddings.shape
    assert embeddings.dtype == np.float32 and d_images.shape == images.shape

header = f"{'':4} {'parameters':>11} {'multiply-adds/image':>20} {'FLOPs/image':>13} {'output':>10}"
print(header, f"{'fwd+bwd, 16 images':>20}")
for name, params, macs in [("CNN", count(cnn), cnn_cost.multiply_adds), ("ViT", count(vit), vit_macs)]:
    flops = 2 * macs  # a multiply-add is two floating-point operations
    print(f"{name:4} {params:>11,} {macs:>20,} {flops / 1e6:>10.1f} M {str(shapes[name]):>10} {timings[name]:>18.3f} s")

# %% [markdown]
# (Times depend on the machine, and on what else it is doing: on a busy one they can be
# several times larger. The multiply-adds do not change.)
#
# At these sizes the two cost about the same per image (≈ 50 million multiply-adds), but
# they spend it differently. The CNN spends its largest share in its first, full-resolution
# stage, and has fewer parameters because each 3×3 filter is shared by every pixel. The ViT
# spends most of it in the MLPs and the projections (the P×P attention products are small at
# 64 patches), and has more parameters. Halve the patch size and the ViT sees 4× as many
# patches: the per-patch parts cost 4× more, the P×P products 16× more. Attention is what
# makes small patches expensive:

# %%
small_patches = vit_multiply_adds(ModelConfig(image_encoder="vit", patch_size=2))
for name in ("MLP", "scores Q Kᵀ"):
    print(f"{name:<12} patch 4: {vit_parts[name]:>12,}   patch 2: {small_patches[name]:>13,}", end="")
    print(f"   ×{small_patches[name] / vit_parts[name]:.0f}")
assert small_patches["MLP"] == 4 * vit_parts["MLP"] and small_patches["scores Q Kᵀ"] == 16 * vit_parts["scores Q Kᵀ"]
assert shapes["CNN"] == shapes["ViT"] == (16, cnn_cfg.embed_dim)
assert cnn_cost.flops == 2 * cnn_cost.multiply_adds > 0 and vit_macs > 0 and timings["CNN"] > 0 and timings["ViT"] > 0
assert stages["blocks.0"] == max(stages.values())  # the full-resolution stage costs the most
assert vit_parts["MLP"] > vit_parts["scores Q Kᵀ"] + vit_parts["values P V"]
assert 0.5 < vit_macs / cnn_cost.multiply_adds < 2.0  # the same order of cost

# %% [markdown]
# ## Where the time goes in a training step
#
# Counting multiply-adds says what a layer *should* cost; a clock says what it does. `miniclip
# bench` (also a function, `run_bench`) times the very training step `miniclip train` takes
# and then times every layer on its own, forward and backward. Here on a small batch of the
# `cpu` configuration — the patchify-stem CNN just counted, with the walkthrough's
# bag-of-words text encoder — without the PyTorch comparison (run `miniclip bench` for that,
# on an idle machine). The layers are listed by module path, largest first:

# %%
from miniclip.measure.bench import run_bench

bench = run_bench("cpu", batch_size=32, warmup=1, steps=2, compare_torch=False, layer_steps=2, gemm_size=256)
layer_rows = sorted(bench["layers"]["rows"], key=lambda r: -(r["forward_ms"] + r["backward_ms"]))
print(f"{'layer':<26} {'forward ms':>10} {'backward ms':>11} {'share':>6} {'multiply-adds/image':>20}")
patch_by_name = patch_cost.by_name()
for r in layer_rows[:8]:
    macs = f"{patch_by_name[r['name']].multiply_adds:,}" if r["name"] in patch_by_name else "—"
    print(f"{r['name']:<26} {r['forward_ms']:10.2f} {r['backward_ms']:11.2f} {r['share']:6.1%} {macs:>20}")
conv_rows = [r for r in bench["layers"]["rows"] if "conv" in r["name"]]
conv_share = sum(r["share"] for r in conv_rows)
print(f"all convolutions together: {conv_share:.0%} of the step")
stage_ms = {
    name: sum(r["forward_ms"] + r["backward_ms"] for r in bench["layers"]["rows"] if r["name"].startswith(prefix))
    for name, prefix in [("stem", "image.stem_"), *[(f"blocks.{i}", f"image.blocks.{i}.") for i in range(3)]]
}
print("per stage, ms:", ", ".join(f"{name} {ms:.1f}" for name, ms in stage_ms.items()))
print("per stage, multiply-adds:", ", ".join(f"{name} {macs:,}" for name, macs in patch_stages.items()))
faster_backward = [r["name"] for r in conv_rows if r["backward_ms"] < r["forward_ms"]]
print("convolutions whose backward took less time than their forward in this run:", faster_backward or "none")

# %% [markdown]
# Read the table against the patchify-stem column of the cost table above — the same
# network. The convolutions take most of the step. The backward of a convolution makes two
# matrix products (the weight gradient and the input gradient), where the forward makes one,
# so it should take about twice as long, and for the big 3×3 convolutions it does. The
# small ones need not follow the rule, and the last line above names any that broke it in
# this run (a learner's run found the stem's backward faster than its forward). The stem's
# products are thin (a patch is only 2·2·3 = 12 numbers, so its weight is 12 × 32) and so are
# the 1×1 shortcuts'; their time goes mostly into moving data — the stem's forward `im2col`
# reads the batch through the channels-first to channels-last transpose, a strided view that
# gathers slowly — and, with two timed steps, into noise. And the stem's backward has less
# to do than the others': the images are data, so a training step asks the model for no
# gradient of them (`model.backward(image_grad=False)`), and the stem skips its input
# gradient, keeping only the weight gradient — as PyTorch does for inputs that need none.
# (Asked, `CNNEncoder.backward` still returns it: the timing cell above checked its shape.)
# The first stage, at the highest resolution, has the most multiply-adds; compare the two
# per-stage lines to see whether the clock agrees on this machine (on a busy one, with two
# timed steps, it can put another stage first). Batch norm and ReLU do almost no arithmetic,
# but each reads and writes the whole activation, so they are not free either: at these
# sizes a layer's time is as much about how many bytes it moves as how many multiply-adds
# it does.

# %%
assert conv_share > 0.3  # on any machine the convolutions are a large part of the step
assert all(r["forward_ms"] >= 0 and r["backward_ms"] >= 0 for r in bench["layers"]["rows"])

# %% [markdown]
# ## What a training step holds in memory
#
# Time is one budget of a step, memory the other. A 3×3 convolution's `cols` are nine times
# its input, so layers that kept their batch's `cols` for the backward would hold most of the
# step's memory (for the `gpu` configuration at batch 512, 8.7 GiB of them). Building them
# again in the backward costs time instead: one more copy of nine times the input. `Conv2d`
# trades one for the other by device. On the CPU, where memory is plentiful and copying is
# what is slow, a layer keeps its `cols` while they take at most 256 MB (`KEEP_BYTES` in
# `miniclip/layers/conv2d.py`). On a GPU, where memory is the scarce one, it keeps only its
# input: forward and backward walk the batch a few images at a time, and the backward builds
# each chunk's `cols` again for the weight gradient, in one work area shared by every layer —
# recomputing to save memory, the idea large models use for whole blocks ("activation
# checkpointing"). `miniclip/training/memory.py` says what a step needs before it runs: the
# weights seven times over (parameters, gradients, AdamW's two moments, and the trainer's three
# roll-back copies), the activations every layer keeps for its backward — measured by tracing
# one step's allocations on the host at two small batches and drawing the line through them —
# the shared work area and the kept `cols`. `miniclip bench --memory` prints it for any
# configuration, for the CPU and for a GPU.

# %%
from miniclip.measure.bench import bench_model_config
from miniclip.training.configs import named_config
from miniclip.training.memory import estimate_step_memory

estimate = estimate_step_memory(bench_model_config(named_config("cpu")), 256, on_gpu=False)
print(estimate.describe("CPU"))
print(f"per pair of the batch: {estimate.gradients.per_image / 2**20:.2f} MB of activations at the backward's peak")
assert estimate.weights > 0 and estimate.gradients.per_image > 0 and estimate.total > estimate.weights

# %% [markdown]
# ## What you should take away
#
# * a convolution slides one small shared filter over the image; hand-set filters already
#   find edges of one orientation, and a CNN learns its filters instead;
# * `im2col` lays every window out as a row, so a convolution is one matrix product, and its
#   backward (`col2im`) adds overlapping windows' gradients back onto shared pixels;
# * the layers store images channels-last, `(N, H, W, C)`, because the product wants one
#   pixel's channels side by side and then hands back the next layer's input as it is;
# * for stride 1 the input gradient is a convolution of `dy` with the kernel turned by 180°
#   (in and out channels swapped), one matrix product with no `col2im`;
# * the CNN and the ViT both turn an image into one `embed_dim` vector; their parameters and
#   multiply-adds can be counted from the configuration before anything runs;
# * a p×p convolution of stride p is patchify + linear: the `cpu` CNN's 2×2 stem hands the
#   3×3 stages a 16×16 grid, a quarter of the pixels and about a quarter of the cost;
# * `miniclip bench` shows where a training step's time really goes, layer by layer, and
#   `miniclip bench --memory` what it holds: weights, kept activations, a shared work area,
#   and on the CPU each convolution's `cols` (rebuilt in the backward on a GPU, to save memory).
#
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/07_image_encoders.py`.
#
# 1. **Write the backward first: the patchify stem.** Treat the 2×2 stride-2 convolution as
#    patchify + linear, $Y = P W$ with P the (patches, p·p·C) matrix and W the (p·p·C, O)
#    weight. Derive $dW = P^{\top} dY$ and $dP = dY W^{\top}$, and un-patchify dP back to an
#    image (the windows do not overlap, so no pixel receives two contributions). Write it in
#    NumPy, compare with `Conv2d(3, 4, kernel=2, stride=2).backward` (input and weight
#    gradients), and check the layer with `gradcheck`.
# 2. **Predict, then run: a bigger patch.** Predict the stem's multiply-adds per image for a
#    4×4 patchify stem (`cnn_stem_patch=4`) on 32×32 images with 32 channels, and whether it
#    is more or less than the 2×2 stem's 98,304. Then predict the whole CNN's total relative
#    to the 2×2 one. Check with `image_encoder_cost`.
# 3. **Change a number: overlapping windows.** `col2im` of ones counted how many windows cover
#    each pixel for a 3×3 kernel of stride 1 on a 4×4 image. Predict the counts for a 2×2
#    kernel of stride 2, then for a 2×2 kernel of stride 1, and run `col2im` to check.
print("lesson 07 passed: edge filters, channels-last im2col, the flipped-kernel gradient, and the CNN and ViT counted")
