"""The logit scale, the learned inverse temperature: logits = e^s · cosine similarities.

CLIP learns how sharp its softmax is. A softmax at temperature τ divides the cosines by τ;
CLIP multiplies them by the *logit scale* ``e^s = 1/τ`` and learns ``s = log(1/τ)`` (the
parameter ``log_scale``) rather than ``τ`` itself, so the scale stays positive whatever the
optimiser does::

    logits = e^s · C  =  C / τ               C (N, N) cosine similarities

Backward, with ``dZ = dL/dlogits``::

    dC = e^s · dZ
    ds = Σ_ij dZ_ij · e^s · C_ij  =  Σ_ij dZ_ij · logits_ij

``s`` starts at log(1/0.07) ≈ 2.659 (scale ≈ 14.3), as in the CLIP paper, and after every
optimiser step :meth:`LogitScale.clamp` keeps it in [0, ln 100], as OpenCLIP does, so the
scale never exceeds 100.

Lesson 04 derives it, the clamp included.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from miniclip.backend import get_array_module
from miniclip.module import Module, Parameter

INIT = math.log(1 / 0.07)  # ≈ 2.659
MAX = math.log(100.0)  # ≈ 4.605


class LogitScale(Module):
    """Multiply cosine similarities by the learned scale ``e^s = 1/τ`` (parameter ``log_scale``: s)."""

    def __init__(self, init: float = INIT, *, dtype: Any = np.float32) -> None:
        self.log_scale = Parameter.from_host(np.array(init), dtype)  # 0-d: s
        self._logits: Any = None

    @property
    def scale(self) -> Any:
        """``e^s`` as a 0-d array (the inverse temperature 1/τ)."""
        return get_array_module(self.log_scale.data).exp(self.log_scale.data)

    def forward(self, cosines: Any) -> Any:
        self._logits = cosines * self.scale  # (N, N)
        return self._logits

    def backward(self, dlogits: Any) -> Any:
        self._require_forward(self._logits)
        self.log_scale.grad += (dlogits * self._logits).sum()  # ds = Σ dZ ⊙ logits
        return dlogits * self.scale  # dC

    def clamp(self) -> None:
        """Keep ``s`` in [0, ln 100] (call after each optimiser step), in place."""
        xp = get_array_module(self.log_scale.data)
        xp.clip(self.log_scale.data, 0.0, MAX, out=self.log_scale.data)
