# %% [markdown]
# # Solutions to the exercises of lesson 07
#
# Each exercise of `lessons/07_image_encoders.py`, solved and checked by asserts.

# %%
import numpy as np

from miniclip import set_device
from miniclip.layers.conv2d import Conv2d
from miniclip.layers.im2col import col2im, im2col
from miniclip.measure.cost import ModelCost, image_encoder_cost
from miniclip.model.config import ModelConfig
from miniclip.teaching.gradcheck import gradcheck

set_device("cpu")
np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## 1. The patchify stem's backward
#
# $Y = P W$, so $dW = P^{\top} dY$ (each weight met every patch) and $dP = dY W^{\top}$ (each
# patch met every weight); un-patchify is patchify run backwards, a reshape and a transpose,
# since each pixel sits in exactly one patch.

# %%
rng = np.random.default_rng(0)
p, C, O = 2, 3, 4
image = rng.standard_normal((2, 4, 6, C))  # (N, H, W, C)
n, h, w, _ = image.shape


def patchify(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → (N·H/p·W/p, p·p·C): one patch per row, its pixels row by row, channels last."""
    return x.reshape(n, h // p, p, w // p, p, C).transpose(0, 1, 3, 2, 4, 5).reshape(-1, p * p * C)


def unpatchify(rows: np.ndarray) -> np.ndarray:
    """The inverse of patchify: (N·H/p·W/p, p·p·C) → (N, H, W, C)."""
    return rows.reshape(n, h // p, w // p, p, p, C).transpose(0, 1, 3, 2, 4, 5).reshape(n, h, w, C)


conv = Conv2d(C, O, kernel=p, stride=p, bias=False, rng=rng, dtype=np.float64)
W = conv.weight.data.transpose(2, 3, 1, 0).reshape(p * p * C, O)  # (p·p·C, O)
P = patchify(image)
dY = rng.standard_normal((P.shape[0], O))  # (patches, O)
dW = P.T @ dY  # (p·p·C, O)
dimage = unpatchify(dY @ W.T)  # (N, H, W, C)

y = conv(image)
conv.zero_grad()
dimage_layer = conv.backward(dY.reshape(y.shape))
dW_layer = conv.weight.grad.transpose(2, 3, 1, 0).reshape(p * p * C, O)
print("largest differences from Conv2d.backward:", np.abs(dimage - dimage_layer).max(), np.abs(dW - dW_layer).max())
assert np.allclose(P @ W, y.reshape(-1, O))
assert np.allclose(dimage, dimage_layer) and np.allclose(dW, dW_layer)
result = gradcheck(conv, image.copy(), label="Conv2d 2×2 stride 2")
print(result.report())
assert result.ok

# %% [markdown]
# ## 2. A bigger patch
#
# A p×p stem makes (32/p)² output pixels, each a product of p·p·3 numbers with 32 filters:
# (32/p)² · 32 · 3p² = 32 · 32 · 32 · 3 = 98,304 for every p — the stem reads each pixel once
# whatever the patch. The stages behind it run on a 8×8 grid instead of 16×16: a quarter of
# the pixels, so the total falls to about a quarter of the 2×2 stem's.

# %%
cost = {q: ModelCost(image_encoder_cost(ModelConfig(image_encoder="cnn", cnn_stem_patch=q))) for q in (2, 4)}
stem = {q: c.by_name()["image.stem_conv"].multiply_adds for q, c in cost.items()}
print("stem multiply-adds:", stem, " totals:", {q: c.multiply_adds for q, c in cost.items()})
assert stem[2] == stem[4] == 98_304
assert 3.5 < cost[2].multiply_adds / cost[4].multiply_adds < 4.5

# %% [markdown]
# ## 3. Overlapping windows
#
# A 2×2 kernel of stride 2 tiles the 4×4 image: every pixel is in exactly one window. With
# stride 1 there are 3×3 windows; a corner pixel is in 1, an edge pixel in 2, an inner pixel
# in 4.

# %%
tiny = np.zeros((1, 4, 4, 1))
for stride, expected in (
    (2, np.ones((4, 4))),
    (1, np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])),
):
    cols = im2col(tiny, kernel=2, stride=stride)
    coverage = col2im(np.ones_like(cols), tiny.shape, kernel=2, stride=stride)[0, :, :, 0]
    print(f"2×2 kernel, stride {stride}:\n", coverage)
    assert np.array_equal(coverage, expected)
print("lesson 07's exercises solved")
