"""How much memory a training step needs, said before the first step: weights, activations, workspace.

A step of a model with P parameters on a batch of N pairs holds, at its peak::

    total(N) = weights + fixed + per_image · N + workspace(N) + kept_cols(N)

    weights       7 · P numbers: the parameters, their gradients, AdamW's two moments (4 P), and the
                  roll-back's copies of the parameters and both moments (3 P, training/rollback.py);
                  with the batch norms' running statistics, twice
    per_image     what one more pair adds: the activations every layer keeps for its backward, and
                  the backward's temporaries at their largest
    fixed         what does not grow with the batch: the optimiser's temporaries, the loss's few numbers
    workspace(N)  the convolutions' shared work arrays (layers/im2col.py): one chunk of images at a time,
                  so they grow with N only until a chunk's budget is reached
    kept_cols(N)  the im2col matrices the convolutions keep from forward to backward: on the CPU each
                  layer keeps its own while they take at most 256 MB (layers/conv2d.py), on a GPU none

``weights``, ``workspace`` and ``kept_cols`` are counted from the shapes. ``per_image`` and ``fixed`` are
measured, not guessed: one step of the same model on the host at two small batches, with every
NumPy allocation traced (:mod:`tracemalloc`), gives a straight line through the two peaks.
Every array a layer keeps has the batch as its first axis, so the line holds for large N
too; what it leaves out are the N×N similarity, its two softmaxes and their gradients (a few
N² numbers: 5 MB at N = 512), and, on a GPU, the CUDA context and the memory pool's rounding.
While measuring, each convolution works one image at a time and keeps no cols, so its work
arrays are the same for both batches and drop out of the line.

The estimate is for the model's working dtype (float32 unless a model says otherwise); the
training images already on the device (150 MB for CIFAR-10) come on top. Lesson 07 counts a
step's multiply-adds; this counts its bytes.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from typing import Any

import numpy as np

from miniclip import backend
from miniclip.layers import conv2d, im2col
from miniclip.model.config import ModelConfig, build_model
from miniclip.model.predictive import word_count_targets
from miniclip.module import Module, named_modules
from miniclip.optim import AdamW
from miniclip.training.step import apply_gradients, compute_gradients, train_step

PROBE_BATCHES = (2, 4)  # the two small batches whose traced peaks give the line
ROLLBACK_COPIES = 3  # the roll-back's copies of the parameters and both moments


@dataclass(frozen=True)
class Line:
    """``fixed + per_image · N`` bytes, through two measured points."""

    fixed: float
    per_image: float

    @classmethod
    def through(cls, points: dict[int, int]) -> Line:
        (n1, p1), (n2, p2) = sorted(points.items())
        per_image = max(0.0, (p2 - p1) / (n2 - n1))
        return cls(max(0.0, p1 - per_image * n1), per_image)

    def at(self, n: int) -> float:
        return self.fixed + self.per_image * n

    def largest_batch(self, free: float) -> int:
        """The largest N with ``at(N) <= free`` (0 when not even the fixed part fits; a large number when flat)."""
        if free < self.fixed:
            return 0
        return int((free - self.fixed) // self.per_image) if self.per_image else 2**31


@dataclass(frozen=True)
class MemoryEstimate:
    """The bytes a training step of ``batch`` pairs needs at its peak, in the parts of the module docstring.

    The activations' peak comes in one of the step's two halves: in the backward (``gradients``:
    the kept activations and the backward's temporaries) or in the update (``update``: the kept
    activations, still alive, and the optimiser's temporaries, which grow with the model, not the
    batch) — a small batch of a large model peaks in the update, a large batch in the backward.
    """

    batch: int
    weights: int
    gradients: Line
    update: Line
    workspace: int
    kept_cols: int = 0

    @property
    def activations(self) -> int:
        """What the step adds to what building the model and its optimiser already took: all but ``weights``."""
        peak = max(self.gradients.at(self.batch), self.update.at(self.batch))
        return int(peak + self.workspace + self.kept_cols)

    @property
    def total(self) -> int:
        return self.weights + self.activations

    def largest_batch(self, free: int) -> int:
        """The largest batch whose activations fit in ``free`` bytes (the convolutions' arrays as at this batch)."""
        fixed = self.workspace + self.kept_cols
        return min(line.largest_batch(free - fixed) for line in (self.gradients, self.update))

    def describe(self, device: str) -> str:
        """One line: the total and its parts, in GiB."""
        gib = 2**30
        return (
            f"memory for a training step at batch {self.batch} on the {device}: about {self.total / gib:.2f} GiB "
            f"(weights, gradients, AdamW's moments and the roll-back's copies {self.weights / gib:.2f}, "
            f"activations at their peak {(self.activations - self.workspace - self.kept_cols) / gib:.2f}, "
            f"convolution workspace {self.workspace / gib:.2f}"
            + (f", convolution columns kept for the backward {self.kept_cols / gib:.2f})" if self.kept_cols else ")")
        )


def weight_bytes(model: Module) -> int:
    """The parameters seven times over (parameters, gradients, two moments, three roll-back copies), buffers twice."""
    parameters = sum(int(p.data.nbytes) for p in model.parameters().values())
    buffers = sum(int(a.nbytes) for a in model.buffers().values())
    return (4 + ROLLBACK_COPIES) * parameters + 2 * buffers


def workspace_bytes(model: Module, batch: int, on_gpu: bool) -> tuple[int, int]:
    """The convolutions' work arrays at ``batch`` images: (the shared workspace, the cols layers keep).

    The shared workspace holds each buffer as large as its largest need over the layers; the kept
    cols are each layer's own. Each convolution says what it needs
    (:meth:`~miniclip.layers.conv2d.Conv2d.workspace_bytes`, :meth:`~miniclip.layers.conv2d.Conv2d.kept_bytes`)
    from the shape of its last input: a forward must have run.
    """
    device = "gpu" if on_gpu else "cpu"
    budget, keep = im2col.CHUNK_BYTES[device], conv2d.KEEP_BYTES[device]
    largest: dict[str, int] = {}
    kept = 0
    for _, module in named_modules(model):
        if isinstance(module, conv2d.Conv2d):
            for name, size in module.workspace_bytes(batch, budget, keep).items():
                largest[name] = max(largest.get(name, 0), size)
            kept += module.kept_bytes(batch, keep)
    return sum(largest.values()), kept


def probe_batch(model_cfg: ModelConfig, n: int, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """A random batch of ``n`` pairs of the model's shapes: token ids, images, a full mask, targets (host arrays)."""
    rng = np.random.default_rng(seed)
    size, length = model_cfg.image_size, model_cfg.context_length
    ids = rng.integers(0, model_cfg.vocab_size, (n, length))  # (n, L)
    images = rng.standard_normal((n, model_cfg.channels, size, size)).astype(np.float32)  # (n, C, H, W)
    mask = np.ones((n, length), dtype=np.float32)  # (n, L)
    targets = word_count_targets(ids, mask, model_cfg.vocab_size) if model_cfg.objective == "predictive" else None
    return ids, images, mask, targets


def estimate_step_memory(
    model_cfg: ModelConfig, batch: int, *, on_gpu: bool, dtype: Any = np.float32
) -> MemoryEstimate:
    """The memory a training step of ``batch`` pairs needs, measured on the host at two small batches (see above).

    Builds a copy of the model on the host (random weights: the sizes are what count) and takes
    three steps there; for the small configurations that is well under a second.
    """
    # One image per chunk and no kept cols while measuring: the convolutions' work arrays drop out of
    # the line, and are counted from the shapes at the real batch instead.
    with backend.using("cpu"), im2col.budgets(im2col.CHUNK_BYTES, cpu=1), im2col.budgets(conv2d.KEEP_BYTES, cpu=0):
        model = build_model(model_cfg, rng=np.random.default_rng(0), dtype=dtype)
        optimizer = AdamW(model.parameters())
        batches = {n: probe_batch(model_cfg, n) for n in PROBE_BATCHES}
        warm_up = batches[max(PROBE_BATCHES)]
        train_step(model, optimizer, *warm_up, grad_clip=1.0)  # lazily made arrays and buffers now exist
        gradients, update = {}, {}
        for n, arrays in batches.items():
            tracemalloc.start()
            try:
                compute_gradients(model, optimizer, *arrays)
                gradients[n] = tracemalloc.get_traced_memory()[1]
                tracemalloc.reset_peak()  # the kept activations stay traced: the update's peak stands on them
                apply_gradients(model, optimizer, grad_clip=1.0)
                update[n] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    workspace, kept = workspace_bytes(model, batch, on_gpu)  # at the device's own budgets
    return MemoryEstimate(
        batch=batch,
        weights=weight_bytes(model),
        gradients=Line.through(gradients),
        update=Line.through(update),
        workspace=workspace,
        kept_cols=kept,
    )


def refuse_unless_it_fits(estimate: MemoryEstimate, free: int | None, ranks: int = 1) -> None:
    """A one-line ``ValueError`` saying which batch would fit, when the step's activations exceed ``free`` bytes.

    ``free`` is what the device has left once the model, its optimiser and the data are on it
    (:func:`miniclip.backend.gpu_free_bytes`); None (the CPU) checks nothing. On ``ranks`` GPUs the
    estimate is each GPU's, for its share of the batch, and the advice names the whole batch.
    """
    if free is None or estimate.activations <= free:
        return
    fits = estimate.largest_batch(free) * ranks
    advice = f"lower --batch-size to {fits}" if fits >= 2 * ranks else "use a smaller model or a GPU with more memory"
    each = f" ({estimate.batch} pairs on each of {ranks} GPUs)" if ranks > 1 else ""
    raise ValueError(
        f"a training step at batch {estimate.batch * ranks}{each} needs about {estimate.activations / 2**30:.1f} GiB "
        f"more on the GPU, which has {free / 2**30:.1f} GiB free: {advice}"
    )
