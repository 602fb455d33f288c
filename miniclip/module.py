"""Parameters and modules: the bookkeeping shared by every layer.

A :class:`Parameter` is an array (``.data``) with its gradient (``.grad``) beside it. A
:class:`Module` finds its parameters by walking its attributes, so an optimiser, the
gradient checker and a checkpoint can all reach every weight by a dotted name such as
``"text.encode.weight"``.

The contract every layer follows:

* ``forward(...)`` computes the output and caches exactly what ``backward`` needs;
* ``backward(grad_out)`` *adds* the parameter gradients into ``p.grad`` (so call
  :meth:`Module.zero_grad` before each step) and returns the gradient of each
  floating-point positional input of ``forward`` (one array, a tuple, or ``None``).
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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

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

    def state(self) -> dict[str, np.ndarray]:
        """A host (NumPy) copy of every parameter, by name: what a checkpoint stores."""
        return {name: to_host(p.data).copy() for name, p in self.parameters().items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters of the same names; shapes must match exactly."""
        params = self.parameters()
        missing = sorted(set(params) - set(state))
        unknown = sorted(set(state) - set(params))
        if missing or unknown:
            raise ValueError(f"state does not match the model: missing {missing}, unexpected {unknown}")
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.data.shape:
                raise ValueError(f"{name}: expected shape {tuple(p.data.shape)}, got {value.shape}")
            p.data[...] = to_device(value, dtype=p.data.dtype)
