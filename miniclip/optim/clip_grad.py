"""Gradient clipping by global norm: one scale for all gradients, so their direction is kept.

Over every parameter gradient ``g_k`` together::

    ‖g‖ = √(Σ_k Σ g_k²)                       the global L2 norm
    c   = min(1, max_norm / (‖g‖ + 10⁻⁶))
    g_k ← c · g_k                             for every k

When ``‖g‖ <= max_norm`` (up to the 10⁻⁶ that guards against dividing by zero) the factor
is exactly 1 and the gradients are left as they were; otherwise their global norm becomes
``max_norm``. This is what ``torch.nn.utils.clip_grad_norm_`` does.

The gradients come either as a dict of Parameters (their ``.grad``; the lessons clip so) or as
the arrays themselves: AdamW's flat gradient buffers (:meth:`miniclip.optim.AdamW.grad_buffers`),
which the trainer clips with a few whole-buffer operations instead of a few per parameter. The
squares are summed in float64 whatever the gradients' dtype, so that the norm does not depend on
how the gradients are cut into arrays: float32 sums taken in another order differ in their last
bits, float64 sums only far below a float32's last bit, so flat buffers and one array per
parameter give the same float32 norm (bar a sum that lands on a rounding boundary). The norm is
returned in the gradients' dtype.

The norm and the factor stay 0-d arrays on the device, so clipping never waits for the GPU;
turn the returned norm into a number (``float(...)``) only when you log it. A non-finite
norm (an overflow, a NaN) is returned as it is, and spreads into the gradients: check it
before the optimiser step if you want to skip such steps.

Lesson 09 uses it in the training step it takes by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Parameter


def clip_grad_norm(grads: dict[str, Parameter] | Sequence[Any], max_norm: float) -> Any:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``; return the norm before.

    ``grads``: Parameters by name (their ``.grad`` are clipped) or the gradient arrays themselves.
    """
    max_norm = float(max_norm)
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    arrays = [p.grad for p in grads.values()] if isinstance(grads, dict) else list(grads)
    if not arrays:
        return 0.0
    xp = get_array_module(arrays[0])
    squares = sum((g * g).sum(dtype=xp.float64) for g in arrays)  # 0-d float64: Σ_k Σ g_k²
    total = xp.sqrt(squares).astype(arrays[0].dtype)  # 0-d, in the gradients' dtype
    scale = xp.minimum(max_norm / (total + 1e-6), 1.0).astype(total.dtype)  # 0-d, exactly 1 for small norms
    for g in arrays:
        g *= scale
    return total
