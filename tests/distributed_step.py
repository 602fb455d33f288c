"""One training step of a float64 model on one global batch, on this rank's slice: run under ``mpiexec``.

    mpiexec -n W python tests/distributed_step.py CONFIG IMAGE_ENCODER TARGETS OUT.npz [VARIANT [DEVICE]]

Every rank builds the same model from one seed and the same global batch, takes its slice,
steps (sharded loss, synced batch norm, gradients summed), and rank 0 writes the summed loss,
every parameter's gradient and every parameter after the AdamW step to OUT.npz.
``tests/test_distributed.py`` compares them with one process on the whole batch
(:func:`reference_step`, imported from here so both sides build alike).

VARIANT ``exact`` (the default) is the real thing. The two others are the mistakes the tests
must catch: ``detached`` gives the gathered embeddings no backward (each rank keeps only its
own share of their gradient, as an all-gather without gradient does), ``local_bn`` takes batch
norm's statistics over each rank's slice alone.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from miniclip.backend import set_device, to_device, to_host
from miniclip.measure.bench import bench_model_config
from miniclip.model.config import build_model
from miniclip.model.targets import label_aware_targets
from miniclip.optim import AdamW
from miniclip.training.configs import named_config
from miniclip.training.memory import probe_batch
from miniclip.training.step import train_step

BATCH = 12  # divisible by 2 and 3


def setup(config: str, image_encoder: str, targets: str) -> tuple[Any, AdamW, tuple[Any, ...]]:
    """The float64 model, its AdamW and one global batch (label-aware targets from random labels when asked)."""
    mc = bench_model_config(named_config(config, model={"image_encoder": image_encoder}))
    model = build_model(mc, rng=np.random.default_rng(0), dtype=np.float64)
    optimizer = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    ids, images, mask, _ = probe_batch(mc, BATCH, seed=3)
    labels = np.random.default_rng(4).integers(0, 4, BATCH)
    y = label_aware_targets(labels, np.float64) if targets == "label_aware" else None
    return model, optimizer, (ids, images.astype(np.float64), mask.astype(np.float64), y)


def results(model: Any, loss: float) -> dict[str, np.ndarray]:
    out = {"loss": np.array(loss)}
    for name, p in model.parameters().items():
        out[f"grad/{name}"] = to_host(p.grad)
        out[f"data/{name}"] = to_host(p.data)
    for name, a in model.buffers().items():
        out[f"buffer/{name}"] = to_host(a)
    return out


def reference_step(config: str, image_encoder: str, targets: str) -> dict[str, np.ndarray]:
    """The same step in one process on the whole batch."""
    model, optimizer, batch = setup(config, image_encoder, targets)
    loss = train_step(model, optimizer, *batch, grad_clip=0.0)
    return results(model, float(loss))


def main(config: str, image_encoder: str, targets: str, out: str, variant: str = "exact", device: str = "cpu") -> None:
    from miniclip.distributed.data_parallel import make_data_parallel, own_batch, own_slice
    from miniclip.distributed.world import launched_world
    from miniclip.layers.batch_norm import BatchNorm2d
    from miniclip.module import named_modules

    set_device(device)
    world = launched_world()  # on the GPU: NCCL with a GPU per rank, else through the host
    model, optimizer, batch = setup(config, image_encoder, targets)
    batch = tuple(None if a is None else to_device(a) for a in batch)
    make_data_parallel(model, world)
    if variant == "detached":  # the gathered copies' gradient: this rank's own share, not the sum over ranks
        model.similarity.world = Detached(world, own_slice(world, BATCH))
    elif variant == "local_bn":
        for _, module in named_modules(model):
            if isinstance(module, BatchNorm2d):
                module.world = None
    loss = train_step(model, optimizer, *own_batch(world, *batch), grad_clip=0.0, world=world)
    total = float(world.all_reduce(to_host(loss)))  # on the GPU a CuPy 0-d array: to the host first
    if world.rank == 0:
        np.savez(out, world=np.array(type(world).__name__), **results(model, total))


class Detached:
    """``world`` with a reduce-scatter that sums nothing: each rank keeps its own rows of its own share."""

    def __init__(self, world: Any, own: slice) -> None:
        self.world, self.own = world, own
        self.rank, self.size = world.rank, world.size

    def all_gather(self, x: Any) -> Any:
        return self.world.all_gather(x)

    def reduce_scatter(self, x: Any) -> Any:
        return x[self.own]


if __name__ == "__main__":
    main(*sys.argv[1:])
