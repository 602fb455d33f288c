"""CLIP's contrastive loss over a batch spread across W ranks: all-gather, local loss, the gather's backward.

The global batch has N pairs; rank r holds n = N/W of them, rows ``r·n … r·n + n − 1`` of the
global matrices. With T, I (N, d) the unit-length text and image embeddings and Y the (N, N)
targets, the loss of ``miniclip.layers.contrastive_loss`` is::

    Z = e^s · T Iᵀ                      (N, N), row i: text i against every image
    L = (L_rows + L_cols) / 2,          L_rows = −(1/N) Σ_ij Y_ij log softmax_rows(Z)_ij,  L_cols by columns

A row softmax needs the whole row, a column softmax the whole column — but no rank needs the
whole matrix. Rank r gathers every rank's embeddings (T_all, I_all, all N of each) and builds
only its own **rows** (its texts against all images, T_r I_allᵀ) and its own **columns** (all
texts against its images, T_all I_rᵀ, stored transposed as I_r T_allᵀ so that both are row
softmaxes). Stacked, that is one (2n, N) matrix, 2/W of the full one::

    C_r = [ T_r I_allᵀ ]   (n, N)  rows r·n… of T Iᵀ
          [ I_r T_allᵀ ]   (n, N)  columns r·n… of T Iᵀ, transposed
    Z_r = e^s · C_r        Y_r = [ Y[rows r] ; Y[:, cols r]ᵀ ]
    ℓ_r = −(1/(2N)) Σ Y_r ⊙ log softmax_rows(Z_r)        L = Σ_r ℓ_r

Every row of the global matrix and every column belongs to exactly one rank, so the ranks'
local losses add up to the global loss: nothing is counted twice, nothing left out.

The backward. Each block is a row softmax with its own targets, so dZ_r = (P_r·rowsum(Y_r) −
Y_r) / (2N), and dC_r = e^s · dZ_r (:class:`~miniclip.layers.logit_scale.LogitScale`, unchanged).
Through the two products, with dC_r = [A ; B]::

    dT_r    = A @ I_all        dI_all (rank r's share) = Aᵀ @ T_r
    dI_r    = B @ T_all        dT_all (rank r's share) = Bᵀ @ I_r

``dI_all`` and ``dT_all`` are gradients of the *gathered copies*: every rank holds one and
sends a share of gradient to every other rank's embeddings. The gradient of rank q's own
embeddings is the sum over ranks r of the rows of r's share that came from q — a
reduce-scatter, the adjoint of the all-gather (``world.reduce_scatter``). Leave it out (treat
the gathered embeddings as constants, as a plain ``all_gather`` without gradient does) and each
rank's embeddings get only the gradient of its own rows and columns: lesson 17 shows how far
off that is.

The model's parameters then hold, on each rank, the gradient of ℓ_r (with the cross terms
from the other ranks already added through the reduce-scatter); summed over the ranks
(:func:`~miniclip.distributed.data_parallel.all_reduce_gradients`) that is dL/dθ, the same as
one process on the whole batch. The logit scale's gradient, Σ dZ_r ⊙ Z_r, is summed likewise.

With W = 1 this is the ordinary loss: C = [T Iᵀ ; I Tᵀ], whose second block's rows are the
columns of the first. Lesson 17 derives it by hand on N = 6 pairs and W = 3 simulated ranks.
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module
from miniclip.layers.softmax import softmax_and_log
from miniclip.module import Module


class ShardedSimilarity(Module):
    """This rank's rows and columns of T Iᵀ, stacked as a (2n, N) matrix; the gather's backward in its backward."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self._t: Any = None  # (n, d) this rank's texts
        self._i: Any = None  # (n, d) this rank's images
        self._t_all: Any = None  # (N, d) every rank's texts, in rank order
        self._i_all: Any = None  # (N, d) every rank's images

    def forward(self, t: Any, i: Any) -> Any:
        xp = get_array_module(t)
        self._t, self._i = t, i
        self._t_all, self._i_all = self.world.all_gather(t), self.world.all_gather(i)  # (N, d) each
        return xp.concatenate([t @ self._i_all.T, i @ self._t_all.T])  # (2n, N): rows, then columns transposed

    def backward(self, dc: Any) -> tuple[Any, Any]:
        self._require_forward(self._t)
        n = self._t.shape[0]
        rows, cols = dc[:n], dc[n:]  # A (n, N): d of T_r I_allᵀ;  B (n, N): d of I_r T_allᵀ
        dt = rows @ self._i_all  # (n, d): through T_r directly
        di = cols @ self._t_all  # (n, d): through I_r directly
        di += self.world.reduce_scatter(rows.T @ self._t)  # (N, d) share of d I_all → summed, own rows kept
        dt += self.world.reduce_scatter(cols.T @ self._i)  # (N, d) share of d T_all → likewise
        return dt, di


class ShardedContrastiveLoss(Module):
    """This rank's share ℓ_r of the contrastive loss: row softmaxes of its (2n, N) block, normalised by 2N."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.probs: Any = None  # (2n, N): each row a softmax
        self.targets: Any = None  # (2n, N)
        self.n_global = 0

    def forward(self, logits: Any, targets: Any = None) -> Any:
        """ℓ_r as a 0-d array; ``targets`` (2n, N) default to the identity's rows and columns of this rank."""
        xp = get_array_module(logits)
        two_n, n_global = logits.shape
        n = two_n // 2
        if targets is None:
            targets = local_identity(xp, n, self.world.rank, n_global, logits.dtype)
        self.targets, self.n_global = targets, n_global
        self.probs, log_p = softmax_and_log(logits, axis=1)  # (2n, N) each
        return -(targets * log_p).sum() / (2 * n_global)

    def backward(self, dloss: Any = 1.0) -> Any:
        self._require_forward(self.probs)
        xp = get_array_module(self.probs)
        scale = xp.asarray(dloss, dtype=self.probs.dtype) / (2 * self.n_global)
        y = self.targets
        return (self.probs * y.sum(axis=1, keepdims=True) - y) * scale  # (2n, N): P·rowsum(Y) − Y


def local_identity(xp: Any, n: int, rank: int, n_global: int, dtype: Any) -> Any:
    """The identity's rows and columns of rank ``rank`` as a (2n, N) block: pair k of the rank is global r·n + k."""
    block = xp.zeros((n, n_global), dtype=dtype)
    block[:, rank * n : rank * n + n] = xp.eye(n, dtype=dtype)
    return xp.concatenate([block, block])


def local_targets(targets: Any, rank: int, n: int) -> Any:
    """Rank ``rank``'s (2n, N) block of global (N, N) targets: its rows, then its columns transposed."""
    own = slice(rank * n, rank * n + n)
    return get_array_module(targets).concatenate([targets[own], targets[:, own].T])
