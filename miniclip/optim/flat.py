"""Flat parameters: every weight and every gradient as a view into one buffer per group.

A model keeps one array per parameter (76 of them for the ``gpu`` configuration). An optimiser
that loops over them launches a dozen small GPU kernels per parameter and step — AdamW's update,
zeroing the gradients, clipping them, the trainer's roll-back copy — about 1,650 launches a step,
10–25 ms at ~10 µs each, whatever the size of the arrays. Laid out one after another in a few
contiguous buffers, the same work is a handful of whole-buffer operations on either device; the
gradient buffer is also what a multi-process all-reduce would send, in one call.

The layout, for parameters ``p₁, p₂, ...`` of one group (the grouping rule's answer, e.g.
:func:`miniclip.optim.decays`: AdamW decays one group and not the other)::

    data  [ p₁ ........ | pad | p₂ .... | pad | ... ]     (N,) one buffer per group
    grad  [ ∂p₁ ....... | pad | ∂p₂ ... | pad | ... ]     (N,) laid out alike

Each parameter's values are copied into its slice, and ``p.data`` and ``p.grad`` are then
*rebound* to that slice reshaped: contiguous views with the parameter's own shape and dtype.
Layers read ``self.weight.data`` when they run, so they see the views, and every in-place update
of a view (``p.data -= ...``, ``p.grad += ...``, ``load_state``) lands in the buffer, and the other
way round. Each slice starts on a 256-byte boundary, where a fresh allocation would (BLAS and
cuBLAS pick their fastest kernels for aligned arrays); the padding stays zero in every buffer:
a zero gradient moves nothing and adds nothing to a norm.

The rule that comes with it: **nothing may rebind ``p.data`` or ``p.grad`` afterwards** — an
array put in their place would be cut off from the buffers, and the optimiser would update
weights the model no longer reads. :meth:`FlatParameters.check` says so, naming the parameter
(AdamW asks before every step). Write into the arrays instead (``p.data[...] = values``).

AdamW (:mod:`miniclip.optim.adamw`) builds one; its moments share the layout. SGD stays one
array at a time: lessons 01 and 03 step tiny models with it, where a loop reads more plainly.
No lesson derives this module; lesson 09's training step runs on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Parameter

ALIGN_BYTES = 256  # each slice starts at a multiple of this, as a fresh GPU allocation does (cudaMalloc, CuPy's pool)


@dataclass
class FlatGroup:
    """The parameters the grouping rule put together: their names and their two flat buffers."""

    key: Hashable  # what the rule said for each of them (for AdamW: whether they decay)
    names: list[str] = field(default_factory=list)
    data: Any = None  # (N,) every parameter's values, one after another (padding between them)
    grad: Any = None  # (N,) their gradients, laid out alike


def _where(a: Any) -> tuple[str, str]:
    """Which array library and device hold ``a``: NumPy and the host, or CuPy and one GPU."""
    return get_array_module(a).__name__, str(getattr(a, "device", "cpu"))


class FlatParameters:
    """Parameters regrouped into flat buffers; each ``p.data`` / ``p.grad`` becomes a view of its slice."""

    def __init__(
        self, params: dict[str, Parameter], group: Callable[[str, Parameter], Hashable] = lambda n, p: 0
    ) -> None:
        """Lay ``params`` out flat, one group per distinct answer of ``group(name, p)`` (default: one group)."""
        self.params = params
        self._check_params(params)
        groups: dict[Hashable, FlatGroup] = {}
        self.layout: dict[str, tuple[int, int, tuple[int, ...]]] = {}  # name → (group index, start, shape)
        sizes: list[int] = []  # elements in each group so far
        for name, p in params.items():
            key = group(name, p)
            if key not in groups:
                groups[key] = FlatGroup(key)
                sizes.append(0)
            index = list(groups).index(key)
            align = max(1, ALIGN_BYTES // p.data.itemsize)  # elements per 256 bytes
            start = -(-sizes[index] // align) * align  # rounded up to the next boundary
            groups[key].names.append(name)
            self.layout[name] = (index, start, tuple(p.data.shape))
            sizes[index] = start + p.data.size
        self.groups = list(groups.values())
        for g, size in zip(self.groups, sizes, strict=True):
            first = params[g.names[0]].data
            g.data, g.grad = (get_array_module(first).zeros(size, dtype=first.dtype) for _ in range(2))  # (N,) each
        data_views, grad_views = self.views([g.data for g in self.groups]), self.views([g.grad for g in self.groups])
        for name, p in params.items():  # copy each array into its slice, then read it through the view
            data_views[name][...], grad_views[name][...] = p.data, p.grad
            p.data, p.grad = data_views[name], grad_views[name]
        self._bound = {name: (p.data, p.grad) for name, p in params.items()}

    @staticmethod
    def _check_params(params: dict[str, Parameter]) -> None:
        """One dtype and one device for all; no Parameter (nor array) under two names: tied weights cannot be split."""
        kinds = {(str(p.data.dtype), *_where(p.data)) for p in params.values()}
        if len(kinds) > 1:
            found = ", ".join(f"{dtype} ({lib} on {device})" for dtype, lib, device in sorted(kinds))
            raise ValueError(f"flat parameters need one dtype on one device, got {found}")
        seen: dict[int, str] = {}
        for name, p in params.items():
            for a in (p, p.data, p.grad):
                if id(a) in seen:
                    raise ValueError(
                        f"{name} shares its parameter or array with {seen[id(a)]}: tied weights would be copied "
                        "apart by the flat layout, which cannot hold one array under two names"
                    )
                seen[id(a)] = name

    def views(self, buffers: Sequence[Any]) -> dict[str, Any]:
        """Each parameter's slice of ``buffers`` (one per group, laid out as :attr:`groups`), in its shape: views."""
        views = {}
        for name, (index, start, shape) in self.layout.items():
            views[name] = buffers[index][start : start + math.prod(shape)].reshape(shape)
        return views

    def zeros(self) -> list[Any]:
        """New zero buffers, one per group in this layout (an optimiser's moments): see :meth:`views`."""
        return [get_array_module(g.data).zeros_like(g.data) for g in self.groups]

    def zero_grad(self) -> None:
        """Set every gradient (and the padding) to zero: one fill per group."""
        for g in self.groups:
            g.grad.fill(0)

    def check(self) -> None:
        """Raise ``RuntimeError`` naming a parameter whose ``data`` or ``grad`` was rebound away from its view."""
        for name, p in self.params.items():
            data, grad = self._bound[name]
            if p.data is not data or p.grad is not grad:
                which = "data" if p.data is not data else "grad"
                raise RuntimeError(
                    f"{name}.{which} was replaced by another array after the optimiser laid the parameters out flat: "
                    f"the optimiser would no longer update what the model reads; write into it in place instead "
                    f"({name}.{which}[...] = values)"
                )
