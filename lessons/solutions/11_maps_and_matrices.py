# %% [markdown]
# # Solutions to the exercises of lesson 11 — Maps and matrices
#
# Each exercise of `lessons/11_maps_and_matrices.py`, solved and checked. The data are the
# lesson's: the six points near a tilted plane and the dozen points in three clusters.

# %%
import numpy as np

from miniclip.module import Module
from miniclip.probe.maps import conditional_affinities, fit_pca, joint_affinities, squared_distances
from miniclip.teaching.gradcheck import gradcheck

np.set_printoptions(precision=4, suppress=True, linewidth=120)

xy = np.array([[-2.0, -1.0], [-1.0, 1.0], [0.0, -2.0], [0.0, 2.0], [1.0, -1.0], [2.0, 1.0]])  # (6, 2)
wobble = np.array([0.1, -0.1, 0.05, -0.05, -0.1, 0.1])  # (6,)
cloud = np.column_stack([xy, 0.5 * xy[:, 0] + wobble])  # (6, 3) the lesson's six points
rng = np.random.default_rng(0)
dozen = np.repeat(3.0 * np.eye(3, 5), 4, axis=0) + 0.3 * rng.normal(size=(12, 5))  # (12, 5) the lesson's dozen
cluster = np.repeat(np.arange(3), 4)  # (12,)

# %% [markdown]
# ## Exercise 1 — PCA's variances are the covariance matrix's eigenvalues
#
# With the thin SVD $\tilde{X} = U S V^\top$ and $U^\top U = I$, the covariance matrix is
#
# $$\frac{\tilde{X}^\top \tilde{X}}{N - 1} = \frac{V S U^\top U S V^\top}{N - 1} = V \frac{S^2}{N - 1} V^\top$$
#
# an eigendecomposition: the eigenvectors are the columns of V (the rows of $V^\top$, the
# principal directions) and the eigenvalues are $S_k^2 / (N - 1)$, the variances along them.
# `eigh` returns the eigenvalues in ascending order and each eigenvector up to sign.

# %%
centred = cloud - cloud.mean(axis=0)  # (6, 3)
covariance = centred.T @ centred / (len(cloud) - 1)  # (3, 3)
values, vectors = np.linalg.eigh(covariance)  # ascending
pca = fit_pca(cloud)
print("eigenvalues, largest first:", values[::-1], " PCA's variances:", pca.explained_variance)
assert np.allclose(values[::-1], pca.explained_variance)
assert np.allclose(np.abs(vectors[:, ::-1].T @ pca.components.T), np.eye(3), atol=1e-10)  # same directions, up to sign
assert np.allclose(covariance, np.cov(cloud, rowvar=False))

# %% [markdown]
# ## Exercise 2 — the backward of symmetric SNE (a Gaussian map kernel)
#
# With $w_{ij} = \exp(-\|y_i - y_j\|^2)$ in place of the Student-t kernel,
# $\partial w_{ij} / \partial y_i = -2 w_{ij} (y_i - y_j)$, so
# $\partial \log w_{ij} / \partial y_i = -2 (y_i - y_j)$ with no $w_{ij}$ left. The lesson's two
# steps (the middle sum counts each pair twice; $\log Z$ gives $q_{ij}$) then give
#
# $$\frac{\partial C}{\partial y_i} = 4 \sum_j (p_{ij} - q_{ij}) (y_i - y_j)$$
#
# the lesson's springs without the factor $w_{ij}$: their pull grows with the distance, where the
# Student-t's $w_{ij}$ weakens it far away.
# As a module (forward: the KL as a 0-d array; backward: the upstream gradient times that
# gradient), checked by `gradcheck` against central differences:


# %%
class GaussianMapKL(Module):
    """KL(P ‖ Q) of a 2-D map y (M, 2) whose similarities use a Gaussian kernel: symmetric SNE's cost."""

    def __init__(self, p: np.ndarray) -> None:
        self.p = p  # (M, M) the data's joint affinities, zero diagonal

    def forward(self, y: np.ndarray) -> np.ndarray:
        w = np.exp(-squared_distances(y))  # (M, M)
        np.fill_diagonal(w, 0.0)
        self.q, self.y = w / w.sum(), y  # (M, M)
        off = ~np.eye(len(y), dtype=bool)
        return np.asarray((self.p[off] * np.log(self.p[off] / self.q[off])).sum())

    def backward(self, grad: np.ndarray) -> np.ndarray:
        spring = self.p - self.q  # (M, M)
        return grad * 4 * (spring.sum(axis=1)[:, None] * self.y - spring @ self.y)  # Σ_j s_ij (y_i − y_j)


p = joint_affinities(dozen, 3.0)  # (12, 12)
y = np.random.default_rng(1).normal(size=(12, 2))  # (12, 2) the lesson's random map
result = gradcheck(GaussianMapKL(p), y, label="symmetric SNE")
print(result.report())
assert result.ok

# %% [markdown]
# ## Exercise 3 — perplexity 8 instead of 3
#
# Prediction: a larger perplexity asks each row for more effective neighbours, so the binary
# search must *lower* β (a wider Gaussian). Each point has only three cluster-mates, so eight
# effective neighbours cannot all be inside the cluster: the mass of P inside the clusters,
# above 0.99 at perplexity 3, must fall well below it — about two thirds, as it turns out.

# %%
d2 = squared_distances(dozen)
same = cluster[:, None] == cluster[None, :]
found = {}
for target in (3.0, 8.0):
    _, betas, perplexities = conditional_affinities(d2, target)
    inside = float(joint_affinities(dozen, target)[same].sum())
    found[target] = (betas[0], inside)
    print(f"perplexity {target:g}: β of row 0 = {betas[0]:.4f}, mass of P inside the clusters {inside:.4f}")
    assert np.allclose(perplexities, target, atol=1e-4)
assert found[8.0][0] < found[3.0][0]  # wider
assert found[3.0][1] > 0.99 and found[8.0][1] < 0.7
print("lesson 11 solutions: all checks passed")
