"""Gradient clipping by global norm: one scale for all gradients, so their direction is kept.

Over every parameter gradient ``g_k`` together::

    ‖g‖ = √(Σ_k Σ g_k²)                       the global L2 norm
    c   = min(1, max_norm / (‖g‖ + 10⁻⁶))
    g_k ← c · g_k                             for every k

When ``‖g‖ <= max_norm`` (up to the 10⁻⁶ that guards against dividing by zero) the factor
is exactly 1 and the gradients are left as they were; otherwise their global norm becomes
``max_norm``. This is what ``torch.nn.utils.clip_grad_norm_`` does.

The norm and the factor stay 0-d arrays on the device, so clipping never waits for the GPU;
turn the returned norm into a number (``float(...)``) only when you log it. A non-finite
norm (an overflow, a NaN) is returned as it is, and spreads into the gradients: check it
before the optimiser step if you want to skip such steps.

Lesson 09 uses it in the training step it takes by hand.
"""

from __future__ import annotations

from typing import Any

from miniclip.backend import get_array_module
from miniclip.module import Parameter


def clip_grad_norm(params: dict[str, Parameter], max_norm: float) -> Any:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``; return the norm before."""
    max_norm = float(max_norm)
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    grads = [p.grad for p in params.values()]
    if not grads:
        return 0.0
    xp = get_array_module(grads[0])
    total = xp.sqrt(sum((g * g).sum() for g in grads))  # 0-d, in the gradients' dtype
    scale = xp.minimum(max_norm / (total + 1e-6), 1.0).astype(total.dtype)  # 0-d, exactly 1 for small norms
    for g in grads:
        g *= scale
    return total
