"""Dropout: in training, zero each entry with probability p and scale the survivors by 1/(1−p).

Forward (training), with a fresh random mask ``m`` of the same shape as ``x``::

    m_k = 1/(1−p) with probability 1−p, else 0
    y   = x ⊙ m

This is *inverted* dropout: the survivors are scaled up during training, so that
``E[y] = (1−p) · x/(1−p) = x`` and evaluation needs no rescaling — in eval mode (and
for p = 0) the layer is the identity. Backward sends the gradient through the same
mask the forward drew (which is why the layer keeps it)::

    dx = dy ⊙ m

The mask is drawn on the current device with the array module's own generator
(``numpy.random`` or ``cupy.random``, both seeded by :func:`miniclip.backend.seed`), so a
GPU run never copies a mask from the host. The uniforms are drawn in the input's dtype when
that is float32 (else float64), so a float32 run never builds a float64 array of the input's
size; float32 uniforms are multiples of 2⁻²⁴, which moves the drop probability by less than
6e-8. ``cupy.random.random`` takes that ``dtype=``; NumPy's legacy ``numpy.random.random``
does not, so on the host the draw goes through a ``numpy.random.Generator`` wrapped around
the legacy functions' own bit generator: the same seeded stream (float64 draws are the legacy
ones, number for number). The same seed gives different masks on CPU and GPU, and in float32
and float64. For gradient checks pass ``seed=``: every forward then draws its mask from a new
generator with that seed, so the layer is a fixed function of its input.
(Srivastava et al., 2014, "Dropout".)

Lesson 06a meets it inside the transformer block, at p = 0.
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module, global_generator
from miniclip.module import Module


class Dropout(Module):
    """Inverted dropout with drop probability ``p`` (0 <= p < 1); identity in eval mode."""

    def __init__(self, p: float, *, seed: int | None = None) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must satisfy 0 <= p < 1, got {p}")
        self.p = p
        self.seed = seed  # None: the device's global generator; an int: the same mask every call
        self._mask: Any = None  # None when the last forward was the identity
        self._ran = False  # so the mask's None can tell "identity" from "no forward yet"

    def forward(self, x: Any) -> Any:
        self._ran = True
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        xp = get_array_module(x)
        # The device's global generator, or a new one with our seed (the same draw on every call).
        generator = global_generator(xp) if self.seed is None else xp.random.default_rng(self.seed)
        dtype = x.dtype if x.dtype == xp.float32 else xp.float64  # the dtypes a generator draws
        uniform = generator.random(x.shape, dtype=dtype)  # U[0, 1), on the device of x
        self._mask = (uniform >= self.p).astype(x.dtype) * (1.0 / (1.0 - self.p))  # 0 or 1/(1−p)
        return x * self._mask

    def backward(self, dy: Any) -> Any:
        self._require_forward(self._ran)
        if self._mask is None:
            return dy
        return dy * self._mask
