# %% [markdown]
# # Solutions to the exercises of lesson 16 — The real CLIP
#
# Each exercise of `lessons/16_the_real_clip.py`, solved and checked on small numbers.

# %%
import numpy as np

from miniclip.encoders.vit import ViT
from miniclip.layers import GELU
from miniclip.measure.cost import clip_cost
from miniclip.model.openai import openai_config
from miniclip.module import Module, Parameter
from miniclip.pretrained.names import patches
from miniclip.teaching.gradcheck import gradcheck

np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## Exercise 1 — the patch convolution's backward
#
# Forward: $\mathrm{out}[n, d, i, j] = \sum_{c,u,v} w[d, c, u, v] \, x[n, c, p i + u, p j + v]$. Every
# output reads its own window, and with stride = kernel no two windows share a pixel, so
#
# $$\frac{\partial L}{\partial w[d, c, u, v]} = \sum_{n,i,j} dy[n, d, i, j] \, x[n, c, p i + u, p j + v]$$
#
# $$\frac{\partial L}{\partial x[n, c, p i + u, p j + v]} = \sum_d dy[n, d, i, j] \, w[d, c, u, v]$$
#
# (no sum over windows for the input: each pixel lies in exactly one). Cutting the image into
# its windows with a reshape, `(N, C, H/p, p, W/p, p)`, makes both one `einsum`.


# %%
class PatchConv(Module):
    """A bias-free convolution with kernel = stride = p: (N, C, H, W) → (N, D, H/p, W/p), weight (D, C, p, p)."""

    def __init__(self, weight: np.ndarray) -> None:
        self.weight = Parameter(weight.copy())

    def windows(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        p = self.weight.data.shape[-1]
        return x.reshape(n, c, h // p, p, w // p, p)  # (N, C, i, u, j, v)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape, self.cut = x.shape, self.windows(x)
        return np.einsum("dcuv,nciujv->ndij", self.weight.data, self.cut)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        self.weight.grad += np.einsum("ndij,nciujv->dcuv", grad, self.cut)
        return np.einsum("ndij,dcuv->nciujv", grad, self.weight.data).reshape(self.shape)


p, C, D = 2, 2, 3
image = np.random.default_rng(0).standard_normal((2, C, 4, 4))  # (N, C, H, W)
w = np.random.default_rng(1).standard_normal((D, C, p, p))  # (D, C, p, p)
conv = PatchConv(w)
loop = np.zeros((2, D, 2, 2))
for n in range(2):
    for d in range(D):
        for i in range(2):
            for j in range(2):
                loop[n, d, i, j] = (w[d] * image[n, :, p * i : p * i + p, p * j : p * j + p]).sum()
assert np.allclose(conv(image), loop)  # the lesson's loop
result = gradcheck(conv, image.copy(), label="patch convolution")
print(result.report())
assert result.ok

# %% [markdown]
# The same gradient, seen as patchify + linear: the linear layer's weight gradient is the
# convolution's, flattened the way the name table's `patches` flattens the weight.

# %%
embed = ViT(
    image_size=4,
    patch_size=p,
    channels=C,
    width=D,
    depth=0,
    heads=1,
    patch_bias=False,
    rng=np.random.default_rng(3),
    dtype=np.float64,
)
embed.patch_embed.weight.data[...] = patches(w)  # (C·p·p, D)
dy = np.random.default_rng(2).standard_normal((2, D, 2, 2))
embed.zero_grad()
embed.patch_embed(embed.patchify(image))
embed.patch_embed.backward(dy.reshape(2, D, 4).transpose(0, 2, 1))  # (N, P, D): patch (i, j) is row 2i + j
conv.zero_grad()
conv(image)
conv.backward(dy)
assert np.allclose(embed.patch_embed.weight.grad, patches(conv.weight.grad))

# %% [markdown]
# ## Exercise 2 — ViT-B/16's image tower, by hand
#
# Patches of 16: $(224 / 16)^2 = 196$ of them, so 197 positions with the class token; the patch
# weight is $3 \cdot 16 \cdot 16 \cdot 768$. Everything else is as for ViT-B/32:
#
# 3·16·16·768 + 768 + 197·768 + 2·768 + 12 (12·768² + 13·768) + 2·768 + 768·512 = 86,192,640,
#
# 1,656,576 fewer than ViT-B/32's 87,849,216: smaller patches mean a smaller patch weight and
# more positions, and the blocks do not depend on the number of patches at all (their cost
# does: four times the tokens).

# %%
blocks = 12 * (12 * 768**2 + 13 * 768)
by_hand = 3 * 16 * 16 * 768 + 768 + 197 * 768 + 2 * 768 + blocks + 2 * 768 + 768 * 512
counted = clip_cost(openai_config("ViT-B/16"), 1).part("image.").parameters
print(f"ViT-B/16 image tower: {by_hand:,} by hand, {counted:,} by clip_cost")
assert by_hand == counted == 86_192_640

# %% [markdown]
# ## Exercise 3 — the stretch 1.702
#
# With a = 1 the sigmoid $\sigma(x)$ is far flatter than Φ (its slope at 0 is 1/4, Φ's is
# $1/\sqrt{2\pi} = 0.399$), so $x \sigma(x)$ (SiLU) lies well away from GELU: about 0.19 at worst.
# The stretch that matches the slopes at 0 is $4 / \sqrt{2 \pi} = 1.596$; 1.702 makes the worst
# gap over the whole line smallest among the values tried, 0.021.

# %%
line = np.linspace(-6.0, 6.0, 12001)
gelu = GELU()(line)
gaps = {a: float(np.abs(line / (1 + np.exp(-a * line)) - gelu).max()) for a in (1.0, 1.5, 1.702, 2.0)}
print("largest |x·σ(a x) − GELU(x)|:", {a: round(g, 4) for a, g in gaps.items()})
assert 0.18 < gaps[1.0] < 0.2 and min(gaps, key=gaps.get) == 1.702
print("lesson 16 solutions: all checks passed")
