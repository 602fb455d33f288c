"""Data-parallel training: every rank holds the whole model and its slice of each global batch.

A step on W ranks, each with n = N/W pairs of the global batch of N::

    1. encode the own n pairs                                       (no communication)
    2. the sharded contrastive loss: all-gather the embeddings,     (sharded_loss.py)
       this rank's rows and columns of the logits, the gather's backward (a reduce-scatter)
    3. batch norm over the whole batch: per-channel sums all-reduced (layers/batch_norm.py)
    4. the parameters' gradients summed over the ranks: one all-reduce per flat buffer
    5. clipping and AdamW on every rank, on identical gradients     (training/step.py)

After step 4 every rank holds dL/dθ of the global batch — the same numbers one process would
compute on the whole batch, summed in another order. Every rank builds the same weights from
one seed, and step 5 moves them identically, so the ranks never drift apart: no weight is ever
broadcast. :func:`make_data_parallel` turns a model into its rank's part; :func:`own_slice` cuts a
batch.

Lesson 17 derives the sharded loss by hand; ``mpiexec -n W miniclip train`` runs it.
"""

from __future__ import annotations

from typing import Any

from miniclip.distributed.sharded_loss import ShardedContrastiveLoss, ShardedSimilarity, local_targets
from miniclip.layers.batch_norm import BatchNorm2d
from miniclip.model.clip import CLIP
from miniclip.module import named_modules


def make_data_parallel(model: CLIP, world: Any) -> CLIP:
    """Make ``model`` this rank's part of a W-rank run, in place: the sharded head, batch norm over all ranks.

    The similarity and the loss are swapped for their sharded forms, which take and give the same
    arrays in the model's forward and backward; every batch norm sums its statistics over ``world``.
    Parameters, names and checkpoints are unchanged. Only the contrastive model has a head to
    shard: the predictive objective is refused.
    """
    if not isinstance(model, CLIP):
        raise ValueError(f"training on many processes needs the contrastive model, not {type(model).__name__}")
    model.similarity = ShardedSimilarity(world)
    model.loss = ShardedContrastiveLoss(world)
    for _, module in named_modules(model):
        if isinstance(module, BatchNorm2d):
            module.world = world
    return model


def check_data_parallel(batch_size: int, objective: str, dropout: float, ranks: int) -> None:
    """Refuse, in one line and before any work, a run that cannot be split over ``ranks`` processes.

    Dropout is refused: every rank's generator starts from the same seed, so the ranks would draw
    the same masks for their slices, and the run would no longer be one process's run.
    """
    if batch_size % ranks:
        raise ValueError(
            f"--batch-size {batch_size} does not split evenly over {ranks} processes: give a multiple of {ranks}"
        )
    if objective != "contrastive":
        raise ValueError(f"training on many processes needs the contrastive objective, not {objective!r}")
    if dropout:
        raise ValueError(f"training on many processes does not support dropout yet (the model has {dropout})")


def own_slice(world: Any, batch: int) -> slice:
    """This rank's rows of a global batch of ``batch`` pairs: the r-th of W equal runs."""
    if batch % world.size:
        raise ValueError(f"the batch of {batch} pairs does not split evenly over {world.size} ranks")
    n = batch // world.size
    return slice(world.rank * n, world.rank * n + n)


def own_batch(world: Any, token_ids: Any, images: Any, mask: Any, targets: Any) -> tuple[Any, Any, Any, Any]:
    """This rank's pairs of a global batch, and its (2n, N) block of the targets (None stays None: the identity)."""
    own = own_slice(world, token_ids.shape[0])
    if targets is not None:
        targets = local_targets(targets, world.rank, own.stop - own.start)
    return token_ids[own], images[own], mask[own], targets


def traffic_per_step(model: CLIP, embed_dim: int, batch: int, ranks: int) -> dict[str, int]:
    """The bytes one rank receives in a training step, by operation, for a global batch of ``batch`` pairs.

    ``all_gather``: the other ranks' text and image embeddings, 2·(N − n)·d numbers; the gather's
    backward (``reduce_scatter``) as many, their shares of this rank's gradient; ``all_reduce``:
    the P gradients, of which a ring all-reduce receives 2·(W − 1)/W·P; ``batch_norm``: two sums
    per channel forward and two backward, the same way. Lesson 17 does this sum for CLIP's own run.
    """
    parameters = list(model.parameters().values())
    item = parameters[0].data.itemsize
    n = batch // ranks
    ring = 2 * (ranks - 1) / ranks  # the share of a buffer each rank receives in a ring all-reduce
    channels = sum(m.weight.data.size for _, m in named_modules(model) if isinstance(m, BatchNorm2d))
    return {
        "all_gather": 2 * (batch - n) * embed_dim * item,
        "reduce_scatter": 2 * (batch - n) * embed_dim * item,
        "all_reduce": int(ring * sum(p.data.size for p in parameters) * item),
        "batch_norm": int(ring * 4 * channels * item),
    }


def all_reduce_gradients(optimizer: Any, world: Any) -> None:
    """Sum every parameter's gradient over the ranks, in place: one call per flat buffer (optim/flat.py)."""
    for buffer in optimizer.grad_buffers():
        world.all_reduce_in_place(buffer)
