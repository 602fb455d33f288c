# %% [markdown]
# # Lesson 17 — Many processes
#
# [Lesson 14](14_batch_size_prompts_and_ensembles.py) swept the batch size. The contrastive loss
# scores every image against every caption of its batch, so an image's negatives are the
# captions of the *whole* batch: the bigger the batch, the more of them. That is why CLIP wanted
# N = 32,768 pairs in one batch — more than one GPU holds next to a model of some 151 million
# parameters (lesson 16) — and why it split each batch over many GPUs (256 for its largest
# Vision Transformer). The paper adds, in one sentence, the trick this lesson is about: "the
# calculation of embedding similarities was also sharded with individual GPUs computing only
# the subset of the pairwise similarities necessary for their local batch of embeddings."
#
# *Data parallelism*: W processes (*ranks*), each with a whole copy of the model and n = N/W
# pairs of the global batch. A step on rank r:
#
#     1. encode its own n texts and n images                          no communication
#     2. all-gather the embeddings: every rank gets all N of each     the sharded loss
#        build its own rows and columns of the logits, its loss ℓ_r
#        backward, with the all-gather's own backward: a reduce-scatter
#     3. batch norm: its per-channel sums summed over the ranks       layers/batch_norm.py
#     4. every parameter's gradient summed over the ranks: all-reduce
#     5. clip and AdamW, on identical gradients, so identical weights training/step.py
#
# This lesson simulates W = 3 ranks inside one process — no MPI — on N = 6 pairs, so that every
# block can be printed: the sharded matrix and why the local losses add up to the loss
# (section 1), the gather's backward and how wrong the gradient is without it (section 2), what
# the local loss saves at CLIP's scale and what the step sends (section 3), why the ranks' weights
# never drift apart and why batch norm must pool its statistics (section 4). Section 5 runs the
# real thing, two processes under `mpiexec`, where `mpi4py` is installed.
#
# The code: `miniclip/distributed/world.py` (the three collective operations),
# `miniclip/distributed/sharded_loss.py` (its docstring is the derivation below),
# `miniclip/distributed/data_parallel.py`, the `world` of `miniclip/layers/batch_norm.py`, and
# `miniclip/training/step.py`.

# %%
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import miniclip
from miniclip import Parameter, set_device
from miniclip.distributed.data_parallel import own_slice, traffic_per_step
from miniclip.distributed.sharded_loss import ShardedContrastiveLoss, local_identity, local_targets
from miniclip.layers import BatchNorm2d
from miniclip.layers.contrastive_loss import ContrastiveLoss
from miniclip.layers.logit_scale import LogitScale
from miniclip.layers.similarity import Similarity
from miniclip.measure.cost import clip_cost
from miniclip.model.openai import openai_config
from miniclip.model.targets import label_aware_targets
from miniclip.module import named_modules
from miniclip.optim import AdamW, clip_grad_norm
from miniclip.teaching.lesson_output import scratch_folder
from miniclip.training.configs import named_config
from miniclip.training.loop import Trainer

set_device("cpu")  # lessons run on NumPy
np.set_printoptions(precision=3, suppress=True, linewidth=120)


# %% [markdown]
# ## 1. The sharded similarity matrix, by hand
#
# Six pairs on three ranks: rank r holds pairs 2r and 2r + 1, rows `r·n … r·n + n − 1` of the
# global T and I (`own_slice` cuts them). T and I are unit-length text and image embeddings of
# width d = 4, and the logits are the model's: $Z = e^s \, T I^\top$, row i text i against every
# image, at the logit scale's starting value $e^s = 1/0.07$ (lesson 04).
#
# The sharded loss asks its *world* two things: which rank it is, and how many there are. A
# stand-in object with those two numbers is world enough for this section.


# %%
class Rank:
    """A stand-in for one of W processes: the rank and the world's size, all the sharded loss asks of its world."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size


N, W, d = 6, 3, 4  # pairs in the global batch, ranks, embedding width
n = N // W  # pairs per rank
rng = np.random.default_rng(17)
T = rng.standard_normal((N, d))
T /= np.linalg.norm(T, axis=1, keepdims=True)  # (6, 4) text k of pair k, unit length
I = rng.standard_normal((N, d))
I /= np.linalg.norm(I, axis=1, keepdims=True)  # (6, 4) image k of pair k
logit_scale = LogitScale(dtype=np.float64)  # s = log(1/0.07), as a new model starts
scale = float(logit_scale.scale)
ranks = [Rank(r, W) for r in range(W)]
own = [own_slice(rank, N) for rank in ranks]  # rank r's pairs: slice(2r, 2r + 2)
Z = scale * (T @ I.T)  # (6, 6) the whole matrix, which no rank will build
print(f"e^s = {scale:.3f}; pairs of each rank: {[list(range(N))[s] for s in own]}")
print("the full logits Z (row: text, column: image):\n", Z)

# %% [markdown]
# A row softmax (text → image) needs a whole row of Z, a column softmax (image → text) a whole
# column — but nobody needs the whole matrix. Rank r gathers every rank's embeddings
# ($T_{\mathrm{all}}$, $I_{\mathrm{all}}$: all N of each, in rank order) and builds only
#
# * its **rows**: its texts against every image, $T_r I_{\mathrm{all}}^\top$, (n, N);
# * its **columns**: every text against its images, stored transposed as
#   $I_r T_{\mathrm{all}}^\top$, (n, N), so that they too are row softmaxes;
#
# stacked into one (2n, N) block, $C_r$, and $Z_r = e^s C_r$. Here that is (4, 6) per rank:

# %%
Z_blocks = []
for r in range(W):
    t_r, i_r = T[own[r]], I[own[r]]  # (2, 4) each: what rank r encoded itself
    c_r = np.concatenate([t_r @ I.T, i_r @ T.T])  # (4, 6): its rows of T Iᵀ, then its columns transposed
    Z_blocks.append(scale * c_r)  # (4, 6)
    print(f"rank {r}: rows {own[r].start}–{own[r].stop - 1} of Z, then columns {own[r].start}–{own[r].stop - 1}ᵀ")
    print(Z_blocks[r])
    assert np.allclose(Z_blocks[r][:n], Z[own[r]], rtol=0, atol=1e-12)
    assert np.allclose(Z_blocks[r][n:], Z[:, own[r]].T, rtol=0, atol=1e-12)

# %% [markdown]
# Each entry $z_{ij}$ takes part in two softmaxes: text i's row and image j's column. The row
# is on the rank that holds pair i, the column on the rank that holds pair j. Counting, over
# the three blocks, how often each entry turns up in a row softmax and how often in a column
# softmax: exactly once each. Below, entry (i, j) is written "row rank, column rank":

# %%
in_rows = np.zeros((N, N), dtype=int)  # how many ranks put z_ij in a row softmax
in_cols = np.zeros((N, N), dtype=int)  # ... and in a column softmax
row_rank = np.zeros((N, N), dtype=int)
col_rank = np.zeros((N, N), dtype=int)
for r in range(W):
    in_rows[own[r]] += 1
    in_cols[:, own[r]] += 1
    row_rank[own[r]] = r
    col_rank[:, own[r]] = r
for i in range(N):
    print(f"  text {i}: " + "  ".join(f"{row_rank[i, j]},{col_rank[i, j]}" for j in range(N)))
assert (in_rows == 1).all() and (in_cols == 1).all()  # nothing counted twice, nothing left out
print(
    f"logits per rank {2 * n * N}; over the {W} ranks {2 * n * N * W} = 2 × {N * N}: every entry twice, row and column"
)

# %% [markdown]
# So the loss splits by rank. The global loss of lesson 02 is the mean of N row cross-entropies
# and N column cross-entropies, halved — 2N terms, each divided by 2N. Rank r holds 2n of them,
# one per row of its block: with $Y_r$ its rows and columns of the targets, stacked the same way,
#
# $$\ell_r = -\frac{1}{2N} \sum Y_r \odot \log \mathrm{softmax}_{\mathrm{rows}}(Z_r) \qquad L = \sum_r \ell_r$$
#
# Note the 2N, not 2n: each rank's share is a part of the *global* mean. `local_identity` gives
# a rank's block of the identity targets (its pair k is global pair r·n + k, in both halves);
# `local_targets` cuts it from any (N, N) targets. The shares by hand, with
# `ShardedContrastiveLoss`, and their sum against `ContrastiveLoss` on the whole Z:


# %%
def log_softmax_rows(z: np.ndarray) -> np.ndarray:
    """log softmax along each row, the largest entry subtracted first (lesson 02): (R, N) → (R, N)."""
    top = z.max(axis=1, keepdims=True)  # (R, 1)
    return z - top - np.log(np.exp(z - top).sum(axis=1, keepdims=True))


sharded_losses = [ShardedContrastiveLoss(rank) for rank in ranks]  # one per rank, kept for section 2
shares = []
for r in range(W):
    y_r = local_identity(np, n, r, N, np.float64)  # (4, 6)
    assert np.array_equal(y_r, local_targets(np.eye(N), r, n))
    by_hand = float(-(y_r * log_softmax_rows(Z_blocks[r])).sum() / (2 * N))
    shares.append(float(sharded_losses[r](Z_blocks[r])))
    print(f"rank {r}: targets\n{y_r}\n  ℓ_{r} by hand {by_hand:.6f}, ShardedContrastiveLoss {shares[r]:.6f}")
    assert abs(by_hand - shares[r]) < 1e-12
whole = float(ContrastiveLoss()(Z))
print(f"Σ ℓ_r = {' + '.join(f'{s:.6f}' for s in shares)} = {sum(shares):.12f}")
print(f"ContrastiveLoss on the whole Z         = {whole:.12f}")
assert abs(sum(shares) - whole) < 1e-12

labels = np.array([0, 1, 0, 2, 1, 3])  # classes repeat: label-aware targets (lesson 08), not the identity
Y = label_aware_targets(labels, np.float64)  # (6, 6)
aware = sum(float(ShardedContrastiveLoss(rank)(Z_blocks[rank.rank], local_targets(Y, rank.rank, n))) for rank in ranks)
print(f"with label-aware targets: Σ ℓ_r = {aware:.12f}, whole matrix {float(ContrastiveLoss()(Z, Y)):.12f}")
assert abs(aware - float(ContrastiveLoss()(Z, Y))) < 1e-12

# %% [markdown]
# ## 2. Why the all-gather needs a backward
#
# Each block is a row softmax with its own targets, so its gradient is the one of lesson 02,
# row by row: $dZ_r = (P_r \cdot \mathrm{rowsum}(Y_r) - Y_r) / 2N$ (`ShardedContrastiveLoss.backward`),
# and through the logit scale $dC_r = e^s \, dZ_r$. Split $dC_r$ into its two halves, A (n, N)
# for the rows $T_r I_{\mathrm{all}}^\top$ and B (n, N) for the columns $I_r T_{\mathrm{all}}^\top$.
# Each half is a matrix product with two inputs (lesson 03), and so has two gradients:
#
#     dT_r                   = A @ I_all     (n, d)   through rank r's own texts
#     dI_r                   = B @ T_all     (n, d)   through rank r's own images
#     d(rank r's I_all copy) = Aᵀ @ T_r      (N, d)   through the gathered images
#     d(rank r's T_all copy) = Bᵀ @ I_r      (N, d)   through the gathered texts
#
# The last two are gradients of the *gathered copies*: rank r's gradient for every rank's
# embeddings, its share. Image k of rank q appears in q's own block (its column, as
# $I_q$) and in every rank's rows (as a column of $I_{\mathrm{all}}$), so its whole gradient is
# its direct part plus the rows that came from q in every rank's share:
#
# $$dI_q = B_q T_{\mathrm{all}} + \Big[ \sum_r A_r^\top T_r \Big]_{\text{rows of } q}$$
#
# Summing the ranks' (N, d) shares and handing each rank its own n rows is a
# **reduce-scatter**, the all-gather's backward (its adjoint: exercise 1). By hand, on the three
# ranks, against one process computing the full loss's gradient with `Similarity`, `LogitScale`
# and `ContrastiveLoss`, as the model chains them:

# %%
direct_T, direct_I, share_T, share_I = [], [], [], []
for r in range(W):
    dc = scale * sharded_losses[r].backward()  # (4, 6) e^s · dZ_r, LogitScale's backward
    a, b = dc[:n], dc[n:]  # (2, 6) each: d(T_r I_allᵀ) and d(I_r T_allᵀ)
    direct_T.append(a @ I)  # (2, 4)
    direct_I.append(b @ T)  # (2, 4)
    share_I.append(a.T @ T[own[r]])  # (6, 4) rank r's gradient for every rank's images
    share_T.append(b.T @ I[own[r]])  # (6, 4) ... and for every rank's texts

summed_T, summed_I = sum(share_T), sum(share_I)  # (6, 4) each: the reduce ...
dT_sharded = np.concatenate([direct_T[r] + summed_T[own[r]] for r in range(W)])  # ... and the scatter: own rows
dI_sharded = np.concatenate([direct_I[r] + summed_I[own[r]] for r in range(W)])  # (6, 4)

similarity, loss_fn = Similarity(), ContrastiveLoss()
whole_loss = loss_fn(logit_scale(similarity(T, I)))  # one process, the whole batch
dT, dI = similarity.backward(logit_scale.backward(loss_fn.backward()))  # (6, 4) each
assert abs(float(whole_loss) - whole) < 1e-12
print("dT, one process:\n", dT)
print("dT, three ranks (direct part + their rows of the summed shares):\n", dT_sharded)
assert np.abs(dT_sharded - dT).max() < 1e-12 and np.abs(dI_sharded - dI).max() < 1e-12

# %% [markdown]
# How much of each rank's gradient comes from the other ranks? The size (Frobenius norm) of the
# rows of rank r's shares that belong to rank q — row r, column q; everything off the diagonal
# travels in the reduce-scatter:

# %%
crossing = np.array(
    [
        [math.hypot(np.linalg.norm(share_T[r][own[q]]), np.linalg.norm(share_I[r][own[q]])) for q in range(W)]
        for r in range(W)
    ]
)
print("‖rank r's share of rank q's gradient‖ (rows r, columns q):\n", crossing)
assert (crossing > 0).all()

# %% [markdown]
# **Drop the gather's backward** — treat the gathered embeddings as constants, as an all-gather
# without gradient does — and each rank keeps only its own rows of its *own* share: the other
# ranks' contributions to its embeddings never arrive. The loss is exactly the same (the forward
# has not changed); the gradient is not:

# %%
dT_detached = np.concatenate([direct_T[r] + share_T[r][own[r]] for r in range(W)])  # (6, 4)
dI_detached = np.concatenate([direct_I[r] + share_I[r][own[r]] for r in range(W)])  # (6, 4)
wrong_T = float(np.linalg.norm(dT_detached - dT) / np.linalg.norm(dT))
wrong_I = float(np.linalg.norm(dI_detached - dI) / np.linalg.norm(dI))
right, wrong = np.concatenate([dT, dI]).ravel(), np.concatenate([dT_detached, dI_detached]).ravel()
cosine = float(right @ wrong / (np.linalg.norm(right) * np.linalg.norm(wrong)))
print(f"without the gather's backward: dT off by {wrong_T:.1%}, dI off by {wrong_I:.1%} (relative, Frobenius)")
print(f"cosine between the wrong and the right gradient of (T, I): {cosine:.3f}")
assert wrong_T > 0.1 and wrong_I > 0.1

# %% [markdown]
# The missing part is the whole off-diagonal of the table above: each rank's embeddings take
# part in the blocks of W − 1 other ranks, and those ranks' gradients for them never arrive.
# The more ranks, the larger the part that goes missing. Nothing fails, either: the loss is
# right, the run trains, only worse — which is why `tests/test_distributed.py` checks that its
# comparison catches exactly this mistake.
#
# Building the *whole* matrix on every rank from the gathered embeddings would not need the
# gather's backward: every term of the loss that contains a rank's own embeddings is then in
# that rank's own loss, so the gradient of its own rows is right even with the other ranks'
# copies held constant (OpenCLIP's `ClipLoss(local_loss=False)`). The local loss, each rank
# with only its own rows and columns, must send the shares back (`local_loss=True` needs
# `gather_with_grad=True`). What the local loss buys for that is memory.
#
# ## 3. The local loss against the full matrix on every rank
#
# Per rank, the local loss holds $2 \cdot (N/W) \cdot N$ logits — and as many probabilities,
# kept for the backward — against $N^2$ for the whole matrix: W/2 times fewer. What each rank
# receives in a step, in numbers:
#
# * the all-gather: the other ranks' texts and images, $2 (N - n) d$;
# * its backward, the reduce-scatter: as many, the other ranks' shares of its own gradient;
# * the gradients' all-reduce: P numbers summed over W ranks. A ring all-reduce (a
#   reduce-scatter of the buffer followed by an all-gather of the sums) has each rank receive
#   $2 (W - 1) / W \cdot P$ of them: nearly 2P, whatever W.
#
# For this lesson's six pairs, and for CLIP's batch on 256 GPUs with ViT-B/32's sizes (d = 512,
# P counted by `clip_cost` as in lesson 16), at 2 bytes a number (float16, as in mixed-precision
# training):


# %%
def local_logits(pairs: int, ranks: int) -> int:
    """Entries of the (2n, N) block one rank builds for the local loss."""
    return 2 * (pairs // ranks) * pairs


def received(pairs: int, ranks: int, width: int, parameters: int) -> dict[str, float]:
    """Numbers one rank receives in a step, by operation (batch norm's few sums aside)."""
    others = pairs - pairs // ranks
    return {
        "all-gather": 2 * others * width,  # the other ranks' texts and images
        "reduce-scatter": 2 * others * width,  # their shares of this rank's gradient
        "all-reduce": 2 * (ranks - 1) / ranks * parameters,  # the gradients, in a ring
    }


print(f"N = {N}, W = {W}: {local_logits(N, W)} logits per rank for the local loss, {N * N} for the whole matrix")

vit_b32 = openai_config("ViT-B/32")
P = clip_cost(vit_b32, batch_size=1).parameters  # as lesson 16 counts them
N_clip, W_clip, d_clip, half = 32768, 256, vit_b32.embed_dim, 2  # pairs, GPUs, width, bytes per number
full_bytes = N_clip**2 * half
local_bytes = local_logits(N_clip, W_clip) * half
print(f"CLIP: N = {N_clip:,} pairs on W = {W_clip} GPUs, n = {N_clip // W_clip} each, d = {d_clip}, P = {P:,}")
print(f"  logits per GPU: the whole matrix {N_clip**2:,} = {full_bytes / 2**30:.2f} GiB in float16")
print(f"                  the local loss  {local_logits(N_clip, W_clip):,} = {local_bytes / 2**20:.1f} MiB")
print(f"  {full_bytes / local_bytes:.0f} times less (W/2)")
traffic = received(N_clip, W_clip, d_clip, P)
for what, count in traffic.items():
    print(f"  received per step, {what:<14} {count:15,.0f} numbers = {count * half / 1e6:8.1f} MB")
ratio = traffic["all-reduce"] / traffic["all-gather"]
print(f"  the gradients' all-reduce is {ratio:.1f} times the gathered embeddings")
assert vit_b32.embed_dim == 512 and P == 151_277_313
assert full_bytes == (W_clip // 2) * local_bytes
assert traffic["all-reduce"] > traffic["all-gather"] + traffic["reduce-scatter"]

# %% [markdown]
# At CLIP's scale the whole matrix would take gigabytes on *every* GPU (and as much again for its
# probabilities), next to a model whose weights are a fraction of that; the local loss takes
# megabytes. The price is the all-gather and its backward: about 2·N·d numbers each, against
# the 2P or so of the all-reduce that every data-parallel run pays for its gradients anyway
# (the ratio printed above). The memory saved grows with W; the traffic added does not.
#
# ## 4. Summed gradients keep every rank's AdamW identical
#
# After the backward, rank r's parameters hold the gradient of its share, $\partial \ell_r / \partial \theta$
# (with the other ranks' contributions to its embeddings already added by the reduce-scatter).
# Since $L = \sum_r \ell_r$, the all-reduce **sums** them into $\partial L / \partial \theta$ —
# the same numbers one process computes on the whole batch, added in another order. Frameworks
# that *average* the ranks' gradients (PyTorch's `DistributedDataParallel`) do the same thing
# for losses that are each a mean over the rank's own n pairs; here each share is already
# divided by the global 2N, so the sum is the mean gradient.
#
# The all-reduce hands every rank the same numbers. Clipping and AdamW are deterministic
# functions of the gradient and the optimiser's state, so the same gradient gives the same step
# on every rank, and since every rank started from the same seed, the weights stay identical:
# nothing needs to be broadcast after the first step. Two ranks' AdamW on two copies of a small
# parameter, for three steps, against the same two ranks each stepping on its own gradient:

# %%
rng4 = np.random.default_rng(4)
start = rng4.standard_normal((3, 4))  # (3, 4) the same initial weights on both ranks (one seed)


def optimiser() -> AdamW:
    return AdamW({"proj.weight": Parameter(start.copy())}, lr=0.01, weight_decay=0.1)


summed_ranks = [optimiser(), optimiser()]  # fed the all-reduced gradient
alone_ranks = [optimiser(), optimiser()]  # each fed only its own gradient: no all-reduce
for _ in range(3):
    local = [rng4.standard_normal((3, 4)) for _rank in range(2)]  # (3, 4) each: stand-ins for ∂ℓ_r/∂θ
    summed = local[0] + local[1]  # what the all-reduce gives every rank
    for opt, g in [*((o, summed) for o in summed_ranks), *zip(alone_ranks, local, strict=True)]:
        opt.params["proj.weight"].grad[...] = g
        clip_grad_norm(opt.grad_buffers(), 2.0)  # as apply_gradients does
        opt.step()
w_summed = [opt.params["proj.weight"].data for opt in summed_ranks]
w_alone = [opt.params["proj.weight"].data for opt in alone_ranks]
print(f"after 3 steps, summed gradients: the two ranks' weights differ by {np.abs(w_summed[0] - w_summed[1]).max()}")
print(f"               own gradients:    by up to {np.abs(w_alone[0] - w_alone[1]).max():.4f}")
assert np.array_equal(w_summed[0], w_summed[1]) and not np.allclose(w_alone[0], w_alone[1])

# %% [markdown]
# **Batch norm must pool its statistics.** The CNN's batch norm (lesson 06b) normalises each
# channel with the mean and variance of the *batch*. A rank's slice is not the batch: its
# statistics are other numbers, so per-rank batch norm computes a different function — not a
# different gradient of the same loss, a different loss (the `local_bn` variant of
# `tests/distributed_step.py`, which the tests catch by its loss). Summing the per-channel sums
# over the ranks before dividing gives the whole batch's statistics exactly; the variance needs
# the global mean first, so the forward takes two all-reduces (Σ x, then Σ (x − μ)²) and the
# backward one (Σ dy and Σ dy·x̂ together). `make_data_parallel` sets `BatchNorm2d.world` on
# every batch norm, and `_over_ranks` does those sums. Six images of 2 × 2 pixels and three
# channels, two images a rank:

# %%
x = rng4.standard_normal((N, 2, 2, 3)) + 2 * rng4.standard_normal((N, 1, 1, 3))  # (6, 2, 2, 3) images differ
m = x[own[0]].reshape(-1, 3).shape[0]  # values per channel on one rank: 2 images × 4 pixels
batch_mean, batch_var = x.reshape(-1, 3).mean(axis=0), x.reshape(-1, 3).var(axis=0)  # (3,) each
pooled_mean = sum(x[s].reshape(-1, 3).sum(axis=0) for s in own) / (W * m)  # all-reduce of Σ x, over W·M
pooled_var = sum(((x[s].reshape(-1, 3) - pooled_mean) ** 2).sum(axis=0) for s in own) / (W * m)  # of Σ (x − μ)²
for r in range(W):
    print(f"rank {r}'s own mean per channel {x[own[r]].reshape(-1, 3).mean(axis=0)}")
print(f"the batch's mean {batch_mean}, pooled from the ranks' sums {pooled_mean}")
assert np.allclose(pooled_mean, batch_mean, atol=1e-12) and np.allclose(pooled_var, batch_var, atol=1e-12)
y_batch = BatchNorm2d(3, dtype=np.float64)(x)  # (6, 2, 2, 3) one process, the whole batch
y_ranks = np.concatenate([BatchNorm2d(3, dtype=np.float64)(x[s]) for s in own])  # each rank alone
print(f"batch norm per rank against over the batch: outputs differ by up to {np.abs(y_ranks - y_batch).max():.3f}")
assert np.abs(y_ranks - y_batch).max() > 0.1

# %% [markdown]
# ## 5. The real command
#
# `mpiexec` starts W copies of the same program; each asks MPI for its rank, and
# `launched_world()` gives `miniclip train` an `MPIWorld` instead of the one-process world:
#
#     OPENBLAS_NUM_THREADS=1 mpiexec -n 2 miniclip train --data shapes
#
# (One BLAS thread each: W processes with a thread per core apiece would fight over the cores.)
# Rank 0 speaks for all. Besides the lines of a one-process run it says how the batch is split
# and what each rank receives in a step, section 3's sums for this model:
#
#     miniclip train: 2 processes, 64 pairs of each batch apiece; each receives per step all-gather … kB,
#     reduce-scatter … kB, all-reduce … kB, batch-norm … kB
#
# The numbers, by hand for the `shapes` configuration (its trainer built, never run, as each
# rank builds it), against `traffic_per_step`, which prints them:

# %%
cfg = named_config("shapes", out_dir=str(scratch_folder("17_shapes")))
trainer = Trainer(cfg, show_progress=False)  # float32 weights from the seed: the same on every rank
parameters = sum(p.data.size for p in trainer.model.parameters().values())
channels = sum(mod.weight.data.size for _, mod in named_modules(trainer.model) if isinstance(mod, BatchNorm2d))
item, ring = 4, 2 * (2 - 1) / 2  # bytes per float32; the share of a buffer a ring all-reduce brings, W = 2
numbers = received(cfg.batch_size, 2, trainer.model_config.embed_dim, parameters)
by_hand = {
    "all_gather": int(numbers["all-gather"]) * item,
    "reduce_scatter": int(numbers["reduce-scatter"]) * item,
    "all_reduce": int(numbers["all-reduce"] * item),
    "batch_norm": int(ring * 4 * channels * item),  # Σ x and Σ (x − μ)² forward, Σ dy and Σ dy·x̂ backward
}
sent = traffic_per_step(trainer.model, trainer.model_config.embed_dim, cfg.batch_size, 2)
print(
    f"batch {cfg.batch_size}, d = {trainer.model_config.embed_dim}, P = {parameters:,}, {channels} batch-norm channels"
)
print(
    f"miniclip train: 2 processes, {cfg.batch_size // 2} pairs of each batch apiece; each receives per step "
    + ", ".join(f"{k.replace('_', '-')} {v / 1e3:,.1f} kB" for k, v in sent.items())
)
assert by_hand == sent

# %% [markdown]
# The check that matters is the one `tests/test_distributed.py` makes: one step of a float64
# model on two processes against one process on the same global batch — the loss, every
# parameter's gradient, batch norm's statistics. `tests/distributed_step.py` is the program each
# rank runs (rank 0 writes what it got), and its `reference_step` the one process. Where `mpi4py`
# and `mpiexec` are installed, the next cell runs it (a second or two); elsewhere it says how to
# install them.


# %%
def repository_root() -> Path | None:
    """The checkout with ``tests/distributed_step.py``: above this file, else the current folder or its parent (a
    notebook opened in lessons/), else where ``miniclip`` was imported from."""
    here = [Path(__file__).resolve().parents[1]] if "__file__" in globals() else []  # a notebook has no __file__
    for root in [*here, Path.cwd(), Path.cwd().parent, Path(miniclip.__file__).resolve().parents[1]]:
        if (root / "tests" / "distributed_step.py").is_file():
            return root
    return None


root = repository_root()
mpiexec = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
if importlib.util.find_spec("mpi4py") is None or mpiexec is None or root is None:
    print('skipped: the two-process step needs mpi4py and mpiexec (pip install -e ".[distributed]")', end="")
    print("" if root is not None else " and the repository's tests/ folder")
else:
    sys.path.insert(0, str(root / "tests"))
    from distributed_step import reference_step

    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    script = [sys.executable, str(root / "tests" / "distributed_step.py"), "tiny", "cnn", "identity"]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rank0.npz"
        subprocess.run(
            [mpiexec, "-n", "2", *script, str(out)], check=True, timeout=180, env=env, cwd=folder, capture_output=True
        )
        with np.load(out) as saved:
            two = dict(saved)
    one = reference_step("tiny", "cnn", "identity")
    gradients = [k for k in one if k.startswith("grad/")]
    largest = max(np.abs(one[k]).max() for k in gradients)
    worst = max(np.abs(two[k] - one[k]).max() / largest for k in gradients)
    print(f"loss: two processes {float(two['loss']):.15f}, one process {float(one['loss']):.15f}")
    print(f"{len(gradients)} gradients; largest difference, relative to the largest gradient: {worst:.1e}")
    assert abs(float(two["loss"]) - float(one["loss"])) < 1e-12 and worst < 1e-10

# %% [markdown]
# The same global batch, the same weights, split over two processes: the same loss and the same
# gradients to float64 rounding. On CIFAR-10 it is the same command with `--data cifar10` (or
# none: it is the default), `-n` as many processes as the batch splits into evenly.
#
# ## What you should take away
#
# * data parallelism gives every rank the whole model and N/W pairs; the contrastive loss
#   still needs every pair's embeddings, so the ranks all-gather them;
# * each rank builds only its own rows and its own columns of the logits, a (2n, N) block; every
#   row and every column belongs to exactly one rank, so the local losses, each divided by the
#   global 2N, add up to the loss;
# * the all-gather needs a backward: each rank computes a share of the gradient of every rank's
#   embeddings, and a reduce-scatter — the adjoint of the all-gather — sums them and returns
#   each rank its rows. Without it the loss is right and the gradient quietly wrong;
# * the local loss needs 2N²/W logits per rank instead of N²; the embeddings it gathers are
#   small next to the gradients every data-parallel step all-reduces;
# * the gradients are summed over the ranks, so every rank takes the same clipping and AdamW
#   step and the weights never drift apart; batch norm sums its statistics over the ranks, or it
#   would compute another loss.

# %%
print("lesson 17 passed: the sharded loss by hand, the gather's backward, identical ranks")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/17_many_processes.py`.
#
# 1. *Write the backward before seeing it.* Take W = 2 ranks, each holding $x_r$ (n, d). The
#    all-gather gives each rank a copy of $[x_0; x_1]$, so it is a linear map from the stacked
#    inputs $[x_0; x_1]$ (2n rows) to the stacked copies (4n rows): write it as a (4n, 2n)
#    matrix G of zeros and identity blocks. The backward of a linear map is its transpose:
#    write down $G^\top$ and read off what it does to the two copies' gradients — that is the
#    reduce-scatter. Write it as the `backward` of a small `Module` whose forward is the
#    all-gather on two ranks, check it against $G^\top$ and with `miniclip.teaching.gradcheck`
#    (central differences) for n = 2, d = 3.
# 2. *Predict, then compute.* CLIP's batch of 32,768 on W = 1024 GPUs instead of 256: how many
#    float16 logits, and how many MiB, does each GPU hold for the local loss? By how much does
#    each GPU's traffic for the all-gather change, and for the gradients' all-reduce? What
#    happens to the local loss's memory as W grows, and to the communication?
# 3. *Derive, then check.* The logit scale's gradient is $ds = \sum dZ \odot Z$ over the whole
#    matrix (lesson 04). On W ranks each `LogitScale` sees only its block and computes
#    $\sum dZ_r \odot Z_r$. Show that these add up over the ranks to ds — the trainer's
#    all-reduce sums them like any other gradient — and check it on this lesson's six pairs,
#    with identity and with label-aware targets.
