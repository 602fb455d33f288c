# %% [markdown]
# # Solutions to the exercises of lesson 10
#
# Each exercise of `lessons/10_zero_shot_and_retrieval.py`, solved and checked by asserts.

# %%
import numpy as np

from miniclip import set_device
from miniclip.evaluation.retrieval import recall_at_k
from miniclip.layers.softmax import softmax
from miniclip.teaching.gradcheck import numerical_gradient

set_device("cpu")
np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## 1. Zero-shot's cross-entropy, backward
#
# With logits $z = e^{s} W i$ and $\ell = -\log p_y$, lesson 02 gives
# $\partial \ell / \partial z = p - \mathrm{onehot}(y)$; through the product,
# $\partial z_c / \partial i = e^{s} w_c$, so
#
# $$
# \frac{\partial \ell}{\partial i} = e^{s} \, W^{\top} (p - \mathrm{onehot}(y))
# $$

# %%
rng = np.random.default_rng(0)
K, d, scale, y = 6, 5, 14.3, 2
W = rng.standard_normal((K, d))
W /= np.linalg.norm(W, axis=1, keepdims=True)  # (K, d) class embeddings
i = rng.standard_normal(d)
i /= np.linalg.norm(i)  # (d,) one image embedding


def loss_of(image: np.ndarray) -> float:
    return float(-np.log(softmax(scale * W @ image)[y]))


p = softmax(scale * W @ i)  # (K,)
di = scale * W.T @ (p - np.eye(K)[y])  # (d,)
di_numeric = numerical_gradient(lambda: loss_of(i), i)
print("by hand:", di, "\ncentral differences:", di_numeric)
assert np.allclose(di, di_numeric, atol=1e-8)

# %% [markdown]
# ## 2. The scale's two ends
#
# At scale 0 every logit is 0: the softmax is uniform, top probability exactly 1/K = 1/6.
# As the scale grows the largest cosine wins outright: the top probability tends to 1 (unless
# two cosines tie), and the ranking never changes.

# %%
cosines = W @ i
flat, sharp = softmax(0.0 * cosines), softmax(1e4 * cosines)
print(f"scale 0: top {flat.max():.4f} (1/6 = {1 / 6:.4f}); scale 10⁴: top {sharp.max():.6f}")
assert np.allclose(flat, 1 / K) and sharp.max() > 1 - 1e-9
assert np.argmax(sharp) == np.argmax(cosines)

# %% [markdown]
# ## 3. More images per class
#
# 20 identical captions per class: at most one of the 20 text→image queries of a class can
# find its own image first, so plain recall@1 ≤ 48 / 960 = 5 %, however good the model.

# %%
classes, per_class = 48, 20
labels = np.repeat(np.arange(classes), per_class)  # (960,)
class_vectors = rng.standard_normal((classes, 64))
class_vectors /= np.linalg.norm(class_vectors, axis=1, keepdims=True)
images = class_vectors[labels]  # (960, 64): every image exactly on its class's caption
texts = class_vectors[labels]
recall = recall_at_k(images, texts, ks=(1,), labels=labels)
print({direction: f"{values['R@1']:.1%}" for direction, values in recall.items()})
assert recall["text_to_image"]["R@1"] <= classes / len(labels) + 1e-9
assert recall["text_to_image_class"]["R@1"] == 1.0
print("lesson 10's exercises solved")
