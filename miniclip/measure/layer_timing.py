"""Where a training step's time goes: forward and backward time of every layer, by module path.

Inside ``with timed_layers(model, optimizer, sync) as timer:`` every module of the model has
its own ``forward`` and ``backward``: instance attributes, which Python finds before the
class's methods, each calling the original between two clock readings. On leaving the block
they are deleted again, so the model is exactly what it was. Each layer is charged only its
*own* time — the time it took minus the time spent in the (also timed) sub-modules it called —
so the rows add up to the whole forward and backward, and a container such as
``image.blocks.0.attn`` shows the arithmetic it does itself (here Q Kᵀ, the softmax, weights · V).

The rest of the step is timed the same way: ``clamp_logit_scale`` on the model, the optimiser's
``zero_grad`` and ``step``, and ``clip_grad_norm`` as :func:`miniclip.training.step.train_step`
looks it up. ``sync`` waits for the device (``cupy.cuda.Device().synchronize`` on the GPU, where
work is asynchronous, nothing on the CPU); it runs before and after every timed call, which
costs time of its own, so these figures come from a separate pass and never from the pass that
measures images per second.

Lesson 07 prints its table, through :func:`miniclip.measure.bench.run_bench`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from miniclip.module import Module, named_modules

ROOT = "(clip)"  # the row of the model object itself: its glue between the encoders and the head


@dataclass
class LayerTime:
    """Seconds one layer spent on its own work, summed over the timed steps."""

    name: str
    forward: float = 0.0
    backward: float = 0.0


class LayerTimer:
    """The rows collected so far: layers in the order they first ran, and the work outside the layers."""

    def __init__(self, sync: Callable[[], None]) -> None:
        self.sync = sync
        self.layers: dict[str, LayerTime] = {}
        self.outside: dict[str, float] = {}  # seconds by name: zero_grad, clipping, optimiser, clamp
        self._inner: list[float] = []  # per open call: seconds spent in timed calls made from it

    def timed(
        self, fn: Callable[..., Any], add: Callable[[float], None], enter: Callable[[], None] = lambda: None
    ) -> Callable[..., Any]:
        """``fn`` wrapped so that its own seconds (timed callees excluded) go to ``add``; ``enter`` runs first."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            enter()
            self.sync()
            start = time.perf_counter()
            self._inner.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                seconds = time.perf_counter() - start
                inner = self._inner.pop()
                if self._inner:
                    self._inner[-1] += seconds
                add(seconds - inner)

        return wrapper

    def layer(self, name: str, fn: Callable[..., Any], kind: str) -> Callable[..., Any]:
        """``fn``, the ``kind`` ("forward" or "backward") of layer ``name``, timed into that layer's row."""

        def add(seconds: float) -> None:
            row = self.layers[name]
            setattr(row, kind, getattr(row, kind) + seconds)

        # rows are made as the layers first run, so they come in network order
        return self.timed(fn, add, enter=lambda: self.layers.setdefault(name, LayerTime(name)))

    def other(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, some work of the step outside the layers, timed into ``outside[name]``."""

        def add(seconds: float) -> None:
            self.outside[name] = self.outside.get(name, 0.0) + seconds

        return self.timed(fn, add)


@contextlib.contextmanager
def _instance_attributes(patches: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Set ``obj.name = value`` for each patch; afterwards delete them (or put back what was there)."""
    missing = object()
    saved = [(obj, name, vars(obj).get(name, missing)) for obj, name, _ in patches]
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, before in reversed(saved):
            if before is missing:
                vars(obj).pop(name, None)
            else:
                setattr(obj, name, before)


@contextlib.contextmanager
def timed_layers(model: Module, optimizer: Any, sync: Callable[[], None] = lambda: None) -> Iterator[LayerTimer]:
    """Time every layer of ``model`` and the rest of :func:`miniclip.training.step.train_step` until the block ends."""
    import miniclip.training.step as train_module

    timer = LayerTimer(sync)
    patches = [
        (module, kind, timer.layer(path or ROOT, getattr(module, kind), kind))
        for path, module in named_modules(model)
        for kind in ("forward", "backward")
    ]
    patches += [
        (optimizer, "zero_grad", timer.other("zero gradients", optimizer.zero_grad)),
        (model, "clamp_logit_scale", timer.other("temperature clamp", model.clamp_logit_scale)),
        (optimizer, "step", timer.other(f"optimiser ({type(optimizer).__name__})", optimizer.step)),
        (train_module, "clip_grad_norm", timer.other("gradient clipping", train_module.clip_grad_norm)),
    ]
    with _instance_attributes(patches):
        yield timer
