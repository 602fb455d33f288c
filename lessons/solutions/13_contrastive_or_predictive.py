# %% [markdown]
# # Solutions to the exercises of lesson 13 — Contrastive or predictive?
#
# Each exercise of `lessons/13_contrastive_or_predictive.py`, solved and checked on the
# lesson's four pairs.

# %%
import math

import numpy as np

from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.layers.logit_scale import INIT
from miniclip.model.predictive import PredictiveLoss, word_count_targets
from miniclip.model.tokenizer import Tokenizer
from miniclip.module import Module, Parameter
from miniclip.teaching.gradcheck import gradcheck

np.set_printoptions(precision=4, suppress=True, linewidth=120)

captions = ["a red cat", "a blue dog", "a red dog", "a green cat"]
N = len(captions)
features = np.array([[0.9, 0.1, 0.8], [0.1, 0.9, 0.2], [0.8, 0.7, 0.1], [0.2, 0.1, 0.9]])  # (4, 3) the lesson's
text_features = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # (4, 3)
tokenizer = Tokenizer.build(captions)
V = tokenizer.vocab_size
ids, mask = tokenizer.encode_batch(captions, 5)
q = word_count_targets(ids, mask, V, dtype=np.float64)  # (4, 10) the lesson's targets
word = tokenizer.ids
W = np.zeros((3, V))
W[0, word["red"]], W[1, word["dog"]], W[2, word["cat"]] = 3.0, 3.0, 3.0
b = np.zeros(V)
b[word["a"]] = 2.0

# %% [markdown]
# ## Exercise 1 — the predictive head's backward
#
# Forward: $z = f W + b$, $p = \mathrm{softmax}(z)$ row by row, $L = -\frac{1}{N} \sum_n \sum_v q_{nv} \log p_{nv}$.
# With $\log p_{nv} = z_{nv} - \log \sum_u e^{z_{nu}}$ and $\sum_v q_{nv} = 1$:
#
# $$\frac{\partial L}{\partial z_{nv}} = \frac{p_{nv} \sum_u q_{nu} - q_{nv}}{N} = \frac{p_{nv} - q_{nv}}{N}$$
#
# and the linear layer carries it on: $\partial L / \partial f = (\partial L / \partial z) W^\top$,
# $\partial L / \partial W = f^\top (\partial L / \partial z)$ and
# $\partial L / \partial b = \sum_n \partial L / \partial z_n$.


# %%
class PredictiveHead(Module):
    """Features (N, F) → word logits f W + b → softmax cross-entropy against fixed targets q (N, V): a 0-d loss."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, targets: np.ndarray) -> None:
        self.weight, self.bias, self.targets = Parameter(weight.copy()), Parameter(bias.copy()), targets

    def forward(self, f: np.ndarray) -> np.ndarray:
        z = f @ self.weight.data + self.bias.data  # (N, V)
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))  # (N, V) log-softmax
        self.f, self.p = f, np.exp(log_p)
        return np.asarray(-(self.targets * log_p).sum() / len(f))

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dz = grad * (self.p - self.targets) / len(self.f)  # (N, V)
        self.weight.grad += self.f.T @ dz  # (F, V)
        self.bias.grad += dz.sum(axis=0)  # (V,)
        return dz @ self.weight.data.T  # (N, F)


head = PredictiveHead(W, b, q)
result = gradcheck(head, features.copy(), label="predictive head")
print(result.report())
assert result.ok
reference = PredictiveLoss()
z = features @ W + b
assert abs(float(reference(z, q)) - float(head(features))) < 1e-12
head.zero_grad()
head(features)
assert np.allclose(head.backward(np.asarray(1.0)), reference.backward() @ W.T)  # the package's (p − q)/N, carried back

# %% [markdown]
# ## Exercise 2 — the floor of "a red red cat"
#
# Four words, "red" twice: $q = (\frac{1}{4}, \frac{1}{2}, \frac{1}{4})$ on "a", "red", "cat". The floor is
#
# $$H(q) = -2 \cdot \frac{1}{4} \ln \frac{1}{4} - \frac{1}{2} \ln \frac{1}{2} = \frac{3}{2} \ln 2 = 1.0397$$
#
# below ln 3 = 1.0986: a target less spread out is cheaper to predict.

# %%
ids2, mask2 = tokenizer.encode_batch(["a red red cat"], 6)
q2 = word_count_targets(ids2, mask2, V, dtype=np.float64)[0]  # (10,)
floor = float(-(q2[q2 > 0] * np.log(q2[q2 > 0])).sum())
print(f"q of 'a red red cat': a {q2[word['a']]}, red {q2[word['red']]}, cat {q2[word['cat']]}; H(q) = {floor:.4f}")
assert math.isclose(floor, 1.5 * math.log(2)) and floor < math.log(3)
best = np.where(q2 > 0, np.log(np.where(q2 > 0, q2, 1)), -40.0)[None]  # logits whose softmax is q
assert abs(float(PredictiveLoss()(best, q2[None])) - floor) < 1e-12

# %% [markdown]
# ## Exercise 3 — the logit scale at its clamp, 100
#
# 100 / 14.3 = 7: every contrastive logit is seven times larger. Every image is already nearest
# its own caption, so the softmax sharpens onto the right pairs and the loss falls from 0.048
# to well under 0.001. The predictive logits scaled by 7 bet still more on the single most
# likely word, while the target wants three words at a third each: its loss stays above ln 3
# (and grows, as the table of section 1 showed for 4 and 16).

# %%
images = features / np.linalg.norm(features, axis=1, keepdims=True)
texts = text_features / np.linalg.norm(text_features, axis=1, keepdims=True)
cosines = texts @ images.T  # (4, 4)
at_init, at_clamp = (float(ContrastiveLoss()(s * cosines)) for s in (math.exp(INIT), 100.0))
factor = 100.0 / math.exp(INIT)
predictive = {k: float(PredictiveLoss()(k * z, q)) for k in (1.0, factor)}
print(f"contrastive: {at_init:.4f} at 14.3, {at_clamp:.2e} at 100")
print(f"predictive:  {predictive[1.0]:.4f} with z, {predictive[factor]:.4f} with 7z (ln 3 = {math.log(3):.4f})")
assert at_clamp < 1e-3 < at_init
assert predictive[factor] > predictive[1.0] > math.log(3)
print("lesson 13 solutions: all checks passed")
