# %% [markdown]
# # Solutions to the exercises of lesson 08
#
# Each exercise of `lessons/08_data_and_captions.py`, solved and checked by asserts.

# %%
import math

import numpy as np

from miniclip import set_device
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.model.targets import label_aware_targets
from miniclip.teaching.gradcheck import numerical_gradient

set_device("cpu")
np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## 1. The loss with soft targets, and its gradient
#
# For one row, $\ell_i = -\sum_{j} Y_{ij} \log P^{r}_{ij}$ with
# $\log P^{r}_{ij} = Z_{ij} - \log \sum_{k} \exp(Z_{ik})$, so
# $\partial \ell_i / \partial Z_{ij} = -Y_{ij} + P^{r}_{ij} \sum_{k} Y_{ik} = P^{r}_{ij} - Y_{ij}$, since the row
# of Y sums to 1. The columns likewise, with the column sums. With the 1/2N in front:
#
# $$
# \frac{\partial L}{\partial Z} = \frac{(P^{r} - Y) + (P^{c} - Y)}{2N}
# $$


# %%
def soft_loss_and_grad(Z: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """CLIP's two-way loss with soft targets Y, and its gradient with respect to the logits Z."""
    N = len(Z)
    log_rows = Z - np.log(np.exp(Z - Z.max(1, keepdims=True)).sum(1, keepdims=True)) - Z.max(1, keepdims=True)
    log_cols = Z - np.log(np.exp(Z - Z.max(0, keepdims=True)).sum(0, keepdims=True)) - Z.max(0, keepdims=True)
    loss = -float((Y * (log_rows + log_cols)).sum()) / (2 * N)
    return loss, ((np.exp(log_rows) - Y) + (np.exp(log_cols) - Y)) / (2 * N)


rng = np.random.default_rng(0)
labels = np.array([0, 1, 0, 2, 1, 0, 3, 2])
Y = label_aware_targets(labels, np.float64)  # (8, 8)
Z = 3.0 * rng.standard_normal((8, 8))
value, grad = soft_loss_and_grad(Z, Y)
numeric = numerical_gradient(lambda: soft_loss_and_grad(Z, Y)[0], Z)
loss = ContrastiveLoss()
reference = float(loss(Z, Y))
reference_grad = loss.backward()
print(f"loss {value:.6f}, ContrastiveLoss {reference:.6f}; largest gradient differences", end=" ")
print(f"{np.abs(grad - numeric).max():.1e} (central differences), {np.abs(grad - reference_grad).max():.1e} (layer)")
assert math.isclose(value, reference, rel_tol=1e-10)
assert np.allclose(grad, numeric, atol=1e-8) and np.allclose(grad, reference_grad, atol=1e-12)

# %% [markdown]
# ## 2. An unbalanced batch
#
# n = (3, 1): the floor is (3 ln 3 + 1 ln 1) / 4 = 0.824, above ln(4/2) = ln 2 = 0.693: the
# bound $\log(N/C)$ is reached only when the classes are balanced.

# %%
labels = np.array([0, 0, 0, 1])
same_class = (labels[:, None] == labels[None, :]).astype(np.float64)
floor = 3 * math.log(3) / 4
at_perfect = float(ContrastiveLoss()(100.0 * same_class))
print(f"floor {floor:.4f}, ln 2 = {math.log(2):.4f}, loss at 100·S {at_perfect:.4f}")
assert math.isclose(at_perfect, floor, abs_tol=1e-9) and floor > math.log(2)

# %% [markdown]
# ## 3. A bigger batch
#
# About 51.2 images a class, so the floor is close to ln 51.2 = 3.936 (a little above it, as
# the draw is never perfectly balanced), and far above 0.

# %%
labels = np.random.default_rng(1).integers(0, 10, 512)
n_c = np.bincount(labels, minlength=10)
floor = float((n_c * np.log(n_c)).sum() / 512)
print(f"floor {floor:.4f}, ln 51.2 = {math.log(51.2):.4f}")
assert math.log(51.2) <= floor < math.log(51.2) + 0.02
print("lesson 08's exercises solved")
