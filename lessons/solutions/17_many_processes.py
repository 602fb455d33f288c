# %% [markdown]
# # Solutions to the exercises of lesson 17 — Many processes
#
# Each exercise of `lessons/17_many_processes.py`, solved and checked on small numbers, in one
# process (no MPI).

# %%
import numpy as np

from miniclip.distributed.sharded_loss import ShardedContrastiveLoss, local_targets
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.layers.logit_scale import LogitScale
from miniclip.layers.similarity import Similarity
from miniclip.measure.cost import clip_cost
from miniclip.model.openai import openai_config
from miniclip.model.targets import label_aware_targets
from miniclip.module import Module
from miniclip.teaching.gradcheck import gradcheck

np.set_printoptions(precision=4, suppress=True, linewidth=120)

# %% [markdown]
# ## Exercise 1 — the reduce-scatter is the all-gather's transpose
#
# Two ranks hold $x_0$ and $x_1$, (n, d) each. Stack them as $u = [x_0; x_1]$ (2n rows). After
# the all-gather each rank holds a copy of u, so the four blocks of n rows that exist afterwards
# are $[x_0; x_1; x_0; x_1]$ — rank 0's copy, then rank 1's — and, acting on rows,
#
# $$G = \begin{bmatrix} 1 & 0 \\ 0 & 1 \\ 1 & 0 \\ 0 & 1 \end{bmatrix} \otimes I_n \qquad
#   G^\top = \begin{bmatrix} 1 & 0 & 1 & 0 \\ 0 & 1 & 0 & 1 \end{bmatrix} \otimes I_n$$
#
# (each 1 an n × n identity block). The backward of a linear map is its transpose: with
# $g = [g^{(0)}; g^{(1)}]$ the gradients of the two copies, (2n, d) each,
# $G^\top g$ gives $dx_0 = g^{(0)}_{\text{rows of 0}} + g^{(1)}_{\text{rows of 0}}$ and
# $dx_1 = g^{(0)}_{\text{rows of 1}} + g^{(1)}_{\text{rows of 1}}$: add the copies' gradients
# (reduce), and each rank keeps its own rows (scatter).


# %%
class AllGatherTwo(Module):
    """The all-gather on W = 2 ranks as one module: (x_0, x_1), (n, d) each → both ranks' copies (4n, d)."""

    def forward(self, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        gathered = np.concatenate([x0, x1])  # (2n, d): what every rank receives
        return np.concatenate([gathered, gathered])  # (4n, d): rank 0's copy, then rank 1's

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        two_n = g.shape[0] // 2
        summed = g[:two_n] + g[two_n:]  # (2n, d): the copies' gradients added — the reduce
        return summed[: two_n // 2], summed[two_n // 2 :]  # each rank its own rows — the scatter


n, d = 2, 3
rng = np.random.default_rng(0)
x0, x1 = rng.standard_normal((n, d)), rng.standard_normal((n, d))
G = np.kron(np.array([[1, 0], [0, 1], [1, 0], [0, 1]]), np.eye(n))  # (4n, 2n)
gather = AllGatherTwo()
assert np.array_equal(gather(x0, x1), G @ np.concatenate([x0, x1]))  # the forward is G
g = rng.standard_normal((4 * n, d))  # the gradients of both copies
dx0, dx1 = gather.backward(g)
print("Gᵀ (n = 2):\n", G.T.astype(int))
assert np.allclose(np.concatenate([dx0, dx1]), G.T @ g, atol=1e-15)  # the backward is Gᵀ
result = gradcheck(gather, x0, x1, label="all-gather on two ranks")
print(result.report())
assert result.ok

# %% [markdown]
# ## Exercise 2 — CLIP's batch on 1024 GPUs
#
# With N = 32,768 and W = 1024, n = 32 pairs per GPU, and the local loss's block is
# 2 · 32 · 32,768 = 2,097,152 logits: at 2 bytes, 4 MiB, a quarter of the 16 MiB at W = 256
# (the memory falls as 1/W). The traffic hardly moves: the all-gather brings $2 (N - n) d$
# numbers, which only creeps up towards $2 N d$ as n shrinks, and the ring all-reduce
# $2 (W - 1)/W \cdot P$, which creeps up towards 2P. More GPUs make the local loss cheaper and
# the communication no cheaper: each GPU still receives every other pair's embeddings and
# (about twice) every gradient.

# %%
N, d_clip, half = 32768, openai_config("ViT-B/32").embed_dim, 2
P = clip_cost(openai_config("ViT-B/32"), batch_size=1).parameters
for W in (256, 1024):
    logits = 2 * (N // W) * N
    gathered = 2 * (N - N // W) * d_clip
    ring = 2 * (W - 1) / W * P
    print(f"W = {W:4d}: local logits {logits:>9,} = {logits * half / 2**20:4.1f} MiB; ", end="")
    print(f"all-gather {gathered:,} numbers, all-reduce {ring:,.0f}")
assert 2 * (N // 1024) * N == 2_097_152 and 2 * (N // 1024) * N * half == 4 * 2**20
growth_gather = (N - N // 1024) / (N - N // 256) - 1
growth_ring = (1023 / 1024) / (255 / 256) - 1
print(f"from 256 to 1024 GPUs: all-gather +{growth_gather:.2%}, all-reduce +{growth_ring:.2%}")
assert growth_gather < 0.01 and growth_ring < 0.01

# %% [markdown]
# ## Exercise 3 — the logit scale's gradient is a sum of the ranks' parts
#
# With $G_{\mathrm{rows}} = P_{\mathrm{rows}} \cdot \mathrm{rowsum}(Y) - Y$ and $G_{\mathrm{cols}}$
# likewise by columns, the global gradient is $dZ = (G_{\mathrm{rows}} + G_{\mathrm{cols}}) / 2N$
# (lesson 02), so
#
# $$ds = \sum_{ij} dZ_{ij} Z_{ij} = \frac{1}{2N} \sum_i \sum_j (G_{\mathrm{rows}})_{ij} Z_{ij}
#      + \frac{1}{2N} \sum_j \sum_i (G_{\mathrm{cols}})_{ij} Z_{ij}$$
#
# Rank r's block holds its rows of the first sum ($dZ_r$'s top half is $G_{\mathrm{rows}}$ on
# its rows, divided by 2N, against those rows of Z) and its columns of the second (the bottom
# half, transposed). Every row i belongs to one rank and every column j to one rank, so adding
# $\sum dZ_r \odot Z_r$ over the ranks gives each term of both double sums exactly once: ds.
# The all-reduce that sums every parameter's gradient sums these too. (The scale is a
# parameter every rank holds, not a gathered embedding: this part of the gradient is right
# with or without the gather's backward.)

# %%
N, W, d = 6, 3, 4
n = N // W
rng = np.random.default_rng(17)
T = rng.standard_normal((N, d))
T /= np.linalg.norm(T, axis=1, keepdims=True)  # (6, 4)
I = rng.standard_normal((N, d))
I /= np.linalg.norm(I, axis=1, keepdims=True)  # (6, 4)


class Rank:
    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size


for name, Y in (("identity", None), ("label-aware", label_aware_targets(np.array([0, 1, 0, 2, 1, 3]), np.float64))):
    whole_scale, whole_loss = LogitScale(dtype=np.float64), ContrastiveLoss()
    whole_loss(whole_scale(Similarity()(T, I)), Y)
    whole_scale.backward(whole_loss.backward())  # accumulates ds = Σ dZ ⊙ Z
    ds = float(whole_scale.log_scale.grad)
    parts = []
    for r in range(W):
        own = slice(r * n, r * n + n)
        c_r = np.concatenate([T[own] @ I.T, I[own] @ T.T])  # (4, 6) rank r's rows, then columns transposed
        scale_r, loss_r = LogitScale(dtype=np.float64), ShardedContrastiveLoss(Rank(r, W))
        loss_r(scale_r(c_r), None if Y is None else local_targets(Y, r, n))
        scale_r.backward(loss_r.backward())  # Σ dZ_r ⊙ Z_r
        parts.append(float(scale_r.log_scale.grad))
    print(f"{name:>11}: ranks {' + '.join(f'{p:.6f}' for p in parts)} = {sum(parts):.12f}; one process {ds:.12f}")
    assert abs(sum(parts) - ds) < 1e-12
print("lesson 17 solutions: all checks passed")
