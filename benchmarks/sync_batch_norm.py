"""What batch norm over all ranks costs: a training step with synced statistics against per-rank ones.

    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python benchmarks/sync_batch_norm.py

The ``cpu`` configuration at batch 256 (128 pairs a rank), six rounds of five steps each way,
interleaved; rank 0 prints the median ms per step (the first round of each left out). Per-rank
statistics are not what ``miniclip train`` runs (they change the loss itself: lesson 17,
``tests/test_distributed.py``); this only prices the all-reduces that keep them synced.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from miniclip.distributed.data_parallel import make_data_parallel, own_batch
from miniclip.distributed.world import MPIWorld
from miniclip.layers.batch_norm import BatchNorm2d
from miniclip.measure.bench import bench_model_config, make_batch
from miniclip.model.config import build_model
from miniclip.module import named_modules
from miniclip.optim import AdamW
from miniclip.training.configs import named_config
from miniclip.training.step import train_step


def main() -> None:
    world = MPIWorld()
    cfg = named_config("cpu")
    model = build_model(bench_model_config(cfg), rng=np.random.default_rng(0))
    optimizer = AdamW(model.parameters())
    make_data_parallel(model, world)
    batch = make_batch(256, cfg.context_length)
    own = own_batch(world, batch["ids"], batch["images"], batch["mask"], batch["targets"])
    norms = [module for _, module in named_modules(model) if isinstance(module, BatchNorm2d)]
    seconds: dict[str, list[float]] = {"synced": [], "per rank": []}
    for _ in range(6):
        for way, times in seconds.items():
            for norm in norms:
                norm.world = world if way == "synced" else None
            for _ in range(5):
                world.barrier()
                start = time.perf_counter()
                train_step(model, optimizer, *own, grad_clip=1.0, world=world)
                times.append(time.perf_counter() - start)
    if world.rank == 0:
        for way, times in seconds.items():
            print(f"batch norm {way}: median {1000 * statistics.median(times[5:]):.0f} ms a step")


if __name__ == "__main__":
    main()
