"""The memory estimate of a training step (miniclip.training.memory) against what the step really allocates.

On the host every NumPy allocation is traced (tracemalloc), so a step's true peak is measured
from before the model is built: weights, optimiser, roll-back copies, workspace, activations.
The estimate must come within 15 % of it and grow with the batch as it says. The GPU test checks
it against CuPy's memory pool after one step of the real ``gpu`` configuration.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from miniclip import backend
from miniclip.layers import conv2d, im2col
from miniclip.measure.bench import bench_model_config
from miniclip.model.config import build_model
from miniclip.optim import AdamW
from miniclip.training.configs import named_config
from miniclip.training.memory import Line, MemoryEstimate, estimate_step_memory, probe_batch, refuse_unless_it_fits
from miniclip.training.rollback import StepSnapshot
from miniclip.training.step import train_step


def _measured_peak(config: str, batch: int) -> int:
    """The traced peak of building the model, its optimiser and roll-back copies, and two steps at ``batch``."""
    mc = bench_model_config(named_config(config))
    arrays = probe_batch(mc, batch, seed=1)
    im2col._workspaces.clear()  # the shared workspace is made inside the trace, as in a fresh process
    tracemalloc.start()
    try:
        model = build_model(mc, rng=np.random.default_rng(1))
        optimizer = AdamW(model.parameters())
        snapshot = StepSnapshot(model, optimizer, np.random.default_rng(0))
        for _ in range(2):  # the second step runs with the first one's activations still in the layers
            snapshot.take()
            train_step(model, optimizer, *arrays, grad_clip=1.0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("config", "batch"), [("cpu", 16), ("cpu", 32), ("gpu", 16)])
def test_the_estimate_is_within_15_percent_of_the_traced_peak(config: str, batch: int) -> None:
    estimate = estimate_step_memory(bench_model_config(named_config(config)), batch, on_gpu=False)
    measured = _measured_peak(config, batch)
    assert estimate.total == pytest.approx(measured, rel=0.15), (estimate, measured)


def test_the_estimate_grows_with_the_batch_as_it_says() -> None:
    mc = bench_model_config(named_config("cpu"))
    small, large = (estimate_step_memory(mc, n, on_gpu=False) for n in (16, 32))
    assert small.weights == large.weights > 0
    assert small.gradients.per_image == pytest.approx(large.gradients.per_image, rel=0.05)
    per_image = max(large.gradients.per_image, large.update.per_image)
    conv_arrays = (large.workspace + large.kept_cols) - (small.workspace + small.kept_cols)
    assert large.total - small.total == pytest.approx(16 * per_image, rel=0.05, abs=conv_arrays)
    measured = _measured_peak("cpu", 32) - _measured_peak("cpu", 16)
    assert large.total - small.total == pytest.approx(measured, rel=0.3)


def test_the_gpu_workspace_stops_growing_at_its_chunk_budget() -> None:
    mc = bench_model_config(named_config("gpu"))
    estimates = [estimate_step_memory(mc, n, on_gpu=True) for n in (16, 512, 4096)]
    assert all(e.kept_cols == 0 for e in estimates)  # a GPU keeps no cols
    assert estimates[0].workspace < estimates[1].workspace
    assert estimates[2].workspace == pytest.approx(estimates[1].workspace, rel=0.01)  # chunks round a little
    # four buffers of about one chunk each, whatever the batch
    assert estimates[2].workspace <= 4 * im2col.CHUNK_BYTES["gpu"]


def test_cols_are_kept_on_the_cpu_up_to_their_budget() -> None:
    """The cpu configuration keeps every layer's cols at batch 32; at a budget below the largest layer's, fewer."""
    mc = bench_model_config(named_config("cpu"))
    every = estimate_step_memory(mc, 32, on_gpu=False)
    assert every.kept_cols > 0
    with im2col.budgets(conv2d.KEEP_BYTES, cpu=every.kept_cols // 20):
        fewer = estimate_step_memory(mc, 32, on_gpu=False)
    assert 0 < fewer.kept_cols < every.kept_cols
    assert fewer.workspace >= every.workspace  # what is not kept is rebuilt in the shared workspace
    assert "kept for the backward" in every.describe("CPU")


def test_largest_batch_inverts_the_estimate() -> None:
    estimate = MemoryEstimate(batch=100, weights=10, gradients=Line(50, 3.0), update=Line(400, 1.0), workspace=20)
    assert estimate.activations == max(50 + 300, 400 + 100) + 20
    fits = estimate.largest_batch(estimate.activations)
    assert fits == 100  # the update's line is the binding one here
    assert estimate.largest_batch(10) == 0
    assert "batch 100" in estimate.describe("gpu") and "GiB" in estimate.describe("gpu")


@pytest.mark.gpu
def test_one_step_of_the_gpu_configuration_fits_its_estimate() -> None:
    """One step of the real ``gpu`` configuration at batch 64 on the device: the pool's bytes within the estimate."""
    mc = bench_model_config(named_config("gpu"))
    batch = 64
    estimate = estimate_step_memory(mc, batch, on_gpu=True)
    with backend.using("gpu"):
        cupy = backend.get_array_module()
        pool = cupy.get_default_memory_pool()
        pool.free_all_blocks()
        before = pool.used_bytes()
        model = build_model(mc, rng=np.random.default_rng(1))
        optimizer = AdamW(model.parameters())
        snapshot = StepSnapshot(model, optimizer, np.random.default_rng(0))
        arrays = [None if a is None else backend.to_device(a) for a in probe_batch(mc, batch, seed=1)]
        for _ in range(2):
            snapshot.take()
            loss = train_step(model, optimizer, *arrays, grad_clip=1.0)
        assert np.isfinite(backend.to_float(loss))
        held = pool.total_bytes() - before  # what the pool holds after the steps: at least their peak
        used = pool.used_bytes() - before  # what is alive between steps: weights, kept activations, workspace
    assert used <= estimate.total
    assert held == pytest.approx(estimate.total, rel=0.3), (estimate, held)


def test_a_batch_that_cannot_fit_is_refused_naming_one_that_does() -> None:
    estimate = MemoryEstimate(
        batch=512, weights=0, gradients=Line(2**20, 2**24), update=Line(0, 2**20), workspace=2**26
    )
    refuse_unless_it_fits(estimate, None)  # the CPU: nothing to check
    refuse_unless_it_fits(estimate, estimate.activations)  # exactly enough
    with pytest.raises(
        ValueError,
        match=r"batch 512 needs about 8\.1 GiB more on the GPU, which has 4\.0 GiB free: "
        r"lower --batch-size to 251$",
    ):
        refuse_unless_it_fits(estimate, 4 * 2**30)
    with pytest.raises(ValueError, match="use a smaller model"):
        refuse_unless_it_fits(estimate, 2**26)
