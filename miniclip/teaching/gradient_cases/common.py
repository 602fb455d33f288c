"""Small helpers shared by the gradient-check lists: float64 inputs, random weights, masks.

A *case* builds one float64 module with random weights and random inputs from the
generator it is given, and returns ``(module, positional inputs, keyword inputs)`` for
:func:`miniclip.teaching.gradcheck.gradcheck`. Masks, token ids and targets are keyword inputs (or
integer arrays): passed along but not differentiated. A list of cases that follows the encoder
registry is a :class:`Cases`, made afresh each time it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from miniclip.backend import to_device
from miniclip.module import Module

F64 = np.float64
Case = tuple[Any, tuple[Any, ...], dict[str, Any]]  # (module, positional inputs, keyword inputs)
CaseBuilder = Callable[[np.random.Generator], Case]


def normal(rng: np.random.Generator, *shape: int) -> Any:
    """Standard normal float64 values of the given shape, on the current device."""
    return to_device(rng.standard_normal(shape))


def randomise(module: Module, rng: np.random.Generator) -> Module:
    """Replace every parameter by random values, so that biases are not 0 and gains not 1.

    Norm gains (1-D ``weight``) are drawn in [0.5, 1.5]: a gain near 0 or negative could
    switch off every ReLU behind it, and an all-zero gradient checks nothing.
    """
    for name, p in module.parameters().items():
        if name.rsplit(".", 1)[-1] == "weight" and p.data.ndim == 1:
            p.data[...] = to_device(rng.uniform(0.5, 1.5, p.data.shape))
        else:
            p.data[...] = to_device(rng.normal(0.0, 0.5, p.data.shape))
    return module


def padding_mask(lengths: list[int], length: int) -> Any:
    """1 on the first ``lengths[n]`` positions of row n, 0 on the padding after them."""
    return to_device((np.arange(length)[None, :] < np.array(lengths)[:, None]).astype(F64))


class Cases(Mapping[str, CaseBuilder]):
    """A read-only dict of cases that ``make`` builds afresh on every read.

    The CLIP checks pair every registered image encoder with every registered text encoder, so
    an encoder registered after this module was imported (a test's toy) is among them at once.
    """

    def __init__(self, make: Callable[[], dict[str, CaseBuilder]]) -> None:
        self._make = make

    def __getitem__(self, name: str) -> CaseBuilder:
        return self._make()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._make())

    def __len__(self) -> int:
        return len(self._make())
