"""Parameters and modules: the bookkeeping shared by every layer.

A :class:`Parameter` is an array (``.data``) with its gradient (``.grad``) beside it. A
:class:`Module` finds its parameters by walking its attributes, so an optimiser, the
gradient checker and a checkpoint can all reach every weight by a dotted name such as
``"text.encode.weight"``.

The contract every layer follows:

* ``forward(...)`` computes the output and caches exactly what ``backward`` needs;
* ``backward(grad_out)`` *adds* the parameter gradients into ``p.grad`` (so call
  :meth:`Module.zero_grad` before each step) and returns the gradient of each
  floating-point positional input of ``forward`` (one array, a tuple, or ``None``);
* a layer (or encoder) that can be first may take ``input_grad=False`` and then skips its input's
  gradient and returns None: the images a model starts from are data, and need none;
* ``backward`` before any ``forward`` raises ``RuntimeError`` saying so (``_require_forward``).

Lesson 03 follows this contract down the walkthrough model, one layer at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from miniclip.backend import get_array_module, to_device, to_host


class Parameter:
    """A trainable array and its gradient, on the same device and with the same dtype."""

    __slots__ = ("data", "grad")

    def __init__(self, data: Any) -> None:
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)

    @classmethod
    def from_host(cls, host: np.ndarray, dtype: Any) -> Parameter:
        """Cast a NumPy array drawn on the host and move it to the current device."""
        return cls(to_device(np.asarray(host, dtype=dtype)))

    def __repr__(self) -> str:
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: parameter walking, gradient zeroing, train/eval mode, state in and out."""

    training: bool = True
    BUFFERS: tuple[str, ...] = ()  # names of arrays saved with the model but never trained (running statistics)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _require_forward(self, *cached: Any) -> None:
        """Raise ``RuntimeError`` if ``backward`` runs before ``forward``: its cache is still None (or a flag False)."""
        if any(value is None or value is False for value in cached):
            raise RuntimeError(f"{type(self).__name__}.backward() was called before forward(): run forward first")

    def children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules by attribute name (lists of modules as ``name.0``, ``name.1``, ...)."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def parameters(self, prefix: str = "") -> dict[str, Parameter]:
        """Every parameter of this module and its children, by dotted name, in definition order."""
        found: dict[str, Parameter] = {}
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                found[prefix + name] = value
        for name, child in self.children():
            found.update(child.parameters(prefix + name + "."))
        return found

    def buffers(self, prefix: str = "") -> dict[str, Any]:
        """Every buffer (see ``BUFFERS``) of this module and its children, by dotted name: the live arrays."""
        found = {prefix + name: getattr(self, name) for name in self.BUFFERS}
        for name, child in self.children():
            found.update(child.buffers(prefix + name + "."))
        return found

    def zero_grad(self) -> None:
        """Set every gradient to zero (backward adds into them)."""
        for p in self.parameters().values():
            p.grad[...] = 0

    def train(self, mode: bool = True) -> Module:
        """Switch this module and all children to training (or, with ``False``, evaluation) mode."""
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode (dropout off, running statistics in batch norm)."""
        return self.train(False)

    def arrays(self) -> dict[str, Any]:
        """Parameters' data and buffers together, by name, on the device: everything a checkpoint holds.

        The arrays themselves, not copies: what a training step changes in place. Under AdamW the
        parameters' arrays are views of its flat buffers (:mod:`miniclip.optim.flat`), which is what
        the trainer's roll-back copies before each step (:mod:`miniclip.training.rollback`).
        """
        return {name: p.data for name, p in self.parameters().items()} | self.buffers()

    def state(self) -> dict[str, np.ndarray]:
        """A host (NumPy) copy of every parameter and buffer, by name: what a checkpoint stores."""
        return {name: to_host(a).copy() for name, a in self.arrays().items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters and buffers of the same names; shapes must match exactly.

        Everything is checked before anything is copied, so a mismatch leaves the model untouched.
        """
        arrays = self.arrays()
        missing = sorted(set(arrays) - set(state))
        unknown = sorted(set(state) - set(arrays))
        if missing or unknown:
            raise ValueError(f"state does not match the model: missing {missing}, unexpected {unknown}")
        for name, a in arrays.items():
            if np.shape(state[name]) != a.shape:
                raise ValueError(f"{name}: expected shape {tuple(a.shape)}, got {np.shape(state[name])}")
        for name, a in arrays.items():
            a[...] = to_device(np.asarray(state[name]), dtype=a.dtype)  # in place: others hold references


def named_modules(module: Module, prefix: str = "") -> Iterator[tuple[str, Module]]:
    """``module`` and every sub-module, by dotted path (the root as ``prefix`` without its dot)."""
    yield prefix.rstrip("."), module
    for name, child in module.children():
        yield from named_modules(child, prefix + name + ".")
