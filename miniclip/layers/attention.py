"""Multi-head self-attention: every token gathers information from the tokens it attends to.

Forward, for ``x`` (N, L, D) split into H heads of width Dh = D/H (Vaswani et al., 2017)::

    [Q, K, V] = x @ W_qkv + b_qkv                      one fused Linear(D, 3D), then split
    Q, K, V  → (N, H, L, Dh)                           head h owns features h·Dh … (h+1)·Dh − 1
    S = Q Kᵀ / √Dh                                     (N, H, L, L)  scores: query i against key j
    P = softmax over j of S                            attention weights, each row sums to 1
    O = P V                                            (N, H, L, Dh)
    y = merge_heads(O) @ W_out + b_out                 (N, L, D)

Key padding mask ``m`` (N, L), 1 for a real token and 0 for padding: the score of every
padded key is set to −∞ before the softmax, so ``exp`` gives it exactly zero weight. A
query whose keys are *all* padding would then divide 0 by 0; we define its attention
weights to be all zero instead, so its ``O`` row is zero and its output is just ``b_out``
(and no gradient flows through its scores). Such rows only occur for items with no real
token at all; PyTorch returns NaN there.

Causal mask (``causal=True``, CLIP's text transformer, as in GPT-2): query ``i`` may only
attend to keys ``j ≤ i``, so the score of every later key is set to −∞ as well. Combined with
the padding mask, a key is kept when it is real *and* not later than the query. A token then
sees only the words before it; the caption's last real token — CLIP's end token — is the only
one that sees them all, which is why CLIP pools there. The backward needs nothing new: a
masked score has weight exactly zero, and ``dS = P ⊙ (…)`` is zero wherever P is.

Backward, with ``dO`` from the output projection::

    dV = Pᵀ dO                     dP = dO Vᵀ
    dS = P ⊙ (dP − Σ_j dP ⊙ P)     the softmax backward, row by row (zero wherever P is zero)
    dQ = dS K / √Dh                dK = dSᵀ Q / √Dh

and ``dQ, dK, dV`` are stacked back into (N, L, 3D) for the fused Linear's backward.

Lesson 06 derives it by hand: one head, then several, then the key padding mask; lesson 16
adds the causal mask.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from miniclip.backend import get_array_module
from miniclip.layers.linear import Linear
from miniclip.module import Module


def check_heads(width: int, heads: int, width_name: str = "width", heads_name: str = "heads") -> None:
    """Raise ``ValueError`` unless ``heads`` (at least 1) divides ``width``: each head takes ``width / heads`` features.

    The one check of this rule: the attention layer, the encoders built on it and their configurations
    all call it, each passing the names its caller knows the two numbers by.
    """
    if heads < 1 or width % heads:
        raise ValueError(
            f"{width_name} {width} is not divisible by {heads_name} {heads} "
            f"(attention splits dim={width} evenly over heads={heads})"
        )


class MultiHeadSelfAttention(Module):
    """Self-attention with ``heads`` heads over inputs (N, L, dim), with an optional key padding mask.

    ``causal=True``: each token attends only to itself and the tokens before it.
    """

    def __init__(
        self, dim: int, heads: int, *, causal: bool = False, rng: np.random.Generator, dtype: Any = np.float32
    ) -> None:
        check_heads(dim, heads, "dim")
        self.heads = heads
        self.causal = causal
        self.qkv = Linear(dim, 3 * dim, rng=rng, dtype=dtype)  # the three projections in one matrix
        self.out = Linear(dim, dim, rng=rng, dtype=dtype)
        self.attention_weights: Any = None  # P (N, H, L, L): kept for backward, and to look at
        self._q: Any = None
        self._k: Any = None
        self._v: Any = None

    def forward(self, x: Any, key_padding_mask: Any = None) -> Any:
        xp = get_array_module(x)
        dim = self.out.weight.data.shape[0]
        if x.ndim != 3 or x.shape[2] != dim:
            raise ValueError(f"MultiHeadSelfAttention expects (N, L, {dim}) inputs, got shape {tuple(x.shape)}")
        n, length, _ = x.shape
        h, dh = self.heads, dim // self.heads
        qkv = self.qkv(x).reshape(n, length, 3, h, dh).transpose(2, 0, 3, 1, 4)  # (3, N, H, L, Dh)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (N, H, L, Dh)
        scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(dh))  # (N, H, L, L)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (n, length):
                raise ValueError(
                    f"key_padding_mask must be (N, L) = {(n, length)} for inputs {tuple(x.shape)}, "
                    f"got shape {tuple(key_padding_mask.shape)}"
                )
            real = (xp.asarray(key_padding_mask) != 0)[:, None, None, :]  # (N, 1, 1, L) keys to keep
            scores = xp.where(real, scores, xp.asarray(-np.inf, dtype=scores.dtype))
        if self.causal:
            earlier = xp.tril(xp.ones((length, length), dtype=bool))  # (L, L): key j ≤ query i
            scores = xp.where(earlier, scores, xp.asarray(-np.inf, dtype=scores.dtype))
        # Softmax over the keys. A row of all −∞ (every key padded) has no finite maximum:
        # shift it by 0 instead, so exp gives zeros and the row's weights stay all zero.
        top = scores.max(axis=-1, keepdims=True)  # (N, H, L, 1)
        top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
        e = xp.exp(scores - top)  # (N, H, L, L), exactly 0 for padded keys
        total = e.sum(axis=-1, keepdims=True)  # (N, H, L, 1)
        p = e / xp.where(total > 0, total, xp.ones_like(total))  # (N, H, L, L)
        o = p @ v  # (N, H, L, Dh)
        self.attention_weights, self._q, self._k, self._v = p, q, k, v
        merged = o.transpose(0, 2, 1, 3).reshape(n, length, dim)  # (N, L, D)
        return self.out(merged)  # (N, L, D)

    def backward(self, dy: Any) -> Any:
        self._require_forward(self.attention_weights)
        xp = get_array_module(dy)
        p, q, k, v = self.attention_weights, self._q, self._k, self._v
        n, h, length, dh = q.shape
        dmerged = self.out.backward(dy)  # (N, L, D)
        do = dmerged.reshape(n, length, h, dh).transpose(0, 2, 1, 3)  # (N, H, L, Dh)
        dv = p.transpose(0, 1, 3, 2) @ do  # (N, H, L, Dh)
        dp = do @ v.transpose(0, 1, 3, 2)  # (N, H, L, L)
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))  # (N, H, L, L)
        ds = ds * (1.0 / math.sqrt(dh))  # through the 1/√Dh scaling
        dq = ds @ k  # (N, H, L, Dh)
        dk = ds.transpose(0, 1, 3, 2) @ q  # (N, H, L, Dh)
        dqkv = xp.stack([dq, dk, dv])  # (3, N, H, L, Dh)
        dqkv = dqkv.transpose(1, 3, 0, 2, 4).reshape(n, length, 3 * h * dh)  # (N, L, 3D)
        return self.qkv.backward(dqkv)  # (N, L, D)
