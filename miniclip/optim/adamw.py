"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as CLIP was trained.

For each parameter ``w`` with gradient ``g``, at step ``t = 1, 2, ...``::

    w ← w − lr · λ · w                     decoupled weight decay (only where decays() says so)
    m ← β₁ m + (1 − β₁) g                  running mean of the gradient         (first moment)
    v ← β₂ v + (1 − β₂) g²                 running mean of its square           (second moment)
    m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)   undo the pull towards the zeros m and v start from
    w ← w − lr · m̂ / (√v̂ + ε)

Each weight thus moves by about ``lr`` per step whatever the scale of its gradient. The decay
shrinks weights directly instead of being added to ``g`` (which Adam would then rescale), in
the same order as PyTorch's ``torch.optim.AdamW``.

Weight decay is for the matrices that mix features; biases, normalisation gains and shifts,
token tables, positional embeddings and the logit scale are left alone. :func:`decays` is
that rule, by parameter name.

The parameters, their gradients and both moments live in flat buffers, one per group (decayed
or not: :class:`~miniclip.optim.flat.FlatParameters`), so a step is the lines above once per
group on whole buffers, not once per parameter; ``m`` and ``v`` stay reachable by parameter
name (views), and :meth:`AdamW.state` keeps one entry per name.

Lesson 06b works its first steps by hand.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from miniclip.backend import get_array_module, to_host
from miniclip.module import Parameter
from miniclip.optim.flat import FlatParameters
from miniclip.optim.sgd import check_lr


def decays(name: str, p: Parameter) -> bool:
    """True when weight decay applies: the last part of the name is ``weight`` and ``p`` has ndim >= 2.

    ``"text.encode.weight"`` (a matrix) decays; ``"text.encode.bias"``, a LayerNorm's 1-D
    ``"norm.weight"``, ``"lookup.table"``, ``"positions"`` and ``"logit_scale.log_scale"`` do not.
    """
    return name.rsplit(".", 1)[-1] == "weight" and p.data.ndim >= 2


class AdamW:
    """Adam with decoupled weight decay; parameters, gradients and moments ``m``, ``v`` in flat buffers per group.

    Building it lays ``params`` out flat: each ``p.data`` and ``p.grad`` becomes a view of a
    buffer (see :mod:`miniclip.optim.flat`), so build it before anything keeps a reference to them.
    """

    def __init__(
        self,
        params: dict[str, Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        if not float(lr) > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        if len(betas) != 2 or not all(0.0 <= float(b) < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        if not float(eps) > 0:
            raise ValueError(f"eps must be positive, got {eps}")
        if not float(weight_decay) >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.params = params
        self.lr = check_lr(lr)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.decay_names = [name for name, p in params.items() if decays(name, p)]
        self.t = 0  # steps taken
        self.flat = FlatParameters(params, decays)  # groups keyed True (decays) and False
        self.m_flat, self.v_flat = self.flat.zeros(), self.flat.zeros()  # (N,) per group, the layout of flat
        self.m: dict[str, Any] = self.flat.views(self.m_flat)  # by parameter name: views of m_flat
        self.v: dict[str, Any] = self.flat.views(self.v_flat)

    def set_lr(self, lr: float) -> None:
        """Set the learning rate for the next steps (a schedule may set 0)."""
        self.lr = check_lr(lr)

    def step(self) -> None:
        """One update of every parameter: the module docstring's lines, on each group's whole buffers."""
        self.flat.check()  # a rebound p.data would silently stop training: refuse it
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        correction1 = 1.0 - b1**self.t  # Python floats: no float64 leaks into float32 arrays
        correction2 = math.sqrt(1.0 - b2**self.t)
        for group, m, v in zip(self.flat.groups, self.m_flat, self.v_flat, strict=True):
            w, g = group.data, group.grad  # (N,) each, like m and v
            xp = get_array_module(w)
            if group.key and self.weight_decay:
                w *= 1.0 - self.lr * self.weight_decay  # w ← w − lr λ w
            m *= b1
            m += (1.0 - b1) * g  # m ← β₁ m + (1 − β₁) g
            v *= b2
            v += (1.0 - b2) * (g * g)  # v ← β₂ v + (1 − β₂) g²
            denom = xp.sqrt(v) / correction2 + self.eps  # √v̂ + ε
            w -= (self.lr / correction1) * m / denom  # w ← w − lr m̂ / (√v̂ + ε)

    def zero_grad(self) -> None:
        """Set every gradient to zero: one fill per group."""
        self.flat.zero_grad()

    def grad_buffers(self) -> list[Any]:
        """The flat gradient buffers, one per group: what :func:`~miniclip.optim.clip_grad_norm` clips in one go."""
        return [group.grad for group in self.flat.groups]

    def buffers(self) -> dict[str, Any]:
        """Every flat buffer a step changes, by name (``data/0``, ``m/0``, ``v/0``, ... per group): the live arrays.

        What the trainer's roll-back copies (:mod:`miniclip.training.rollback`): the weights and
        both moments in a few whole-buffer copies.
        """
        kinds = {"data": [group.data for group in self.flat.groups], "m": self.m_flat, "v": self.v_flat}
        return {f"{kind}/{i}": buffer for kind, buffers in kinds.items() for i, buffer in enumerate(buffers)}

    def moments(self) -> dict[str, Any]:
        """Every moment array by its state key, ``m.<name>`` and ``v.<name>``: the arrays, on the device."""
        return {f"m.{name}": self.m[name] for name in self.params} | {f"v.{name}": self.v[name] for name in self.params}

    def state(self) -> dict[str, np.ndarray]:
        """Host (NumPy) copies of the step count and both moments: ``step``, ``m.<name>``, ``v.<name>``."""
        return {"step": np.array(self.t, dtype=np.int64)} | {k: to_host(a).copy() for k, a in self.moments().items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned; keys and shapes must match these parameters exactly."""
        moments = self.moments()
        missing = sorted(({"step"} | set(moments)) - set(state))
        unknown = sorted(set(state) - set(moments) - {"step"})
        if missing or unknown:
            raise ValueError(f"optimiser state does not match the parameters: missing {missing}, unexpected {unknown}")
        step = np.asarray(state["step"])
        if step.shape != () or not np.issubdtype(step.dtype, np.integer) or int(step) < 0:
            raise ValueError(f"optimiser state 'step' must be a non-negative integer, got {state['step']!r}")
        for key, target in moments.items():
            if np.shape(state[key]) != tuple(target.shape):
                raise ValueError(f"{key}: expected shape {tuple(target.shape)}, got {np.shape(state[key])}")
        for key, target in moments.items():  # all checked: now copy, in place, onto the moments' device
            target[...] = get_array_module(target).asarray(state[key], dtype=target.dtype)
        self.t = int(step)
