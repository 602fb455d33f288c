"""A pre-norm transformer block: attention then MLP, each on a normalised copy, each added back.

Forward, for ``x`` (N, L, D) and an optional key padding mask (N, L)::

    h = x + Dropout(Attention(LayerNorm₁(x), mask))
    y = h + Dropout(MLP(LayerNorm₂(h)))

"Pre-norm" (as in GPT-2 and CLIP) normalises the input of each branch, not the sum, so the
residual path ``x → h → y`` is a plain chain of additions from the block's input to its output.

Backward. A residual ``h = x + f(x)`` uses ``x`` twice: once directly and once through ``f``.
The gradient of a value used twice is the sum of the gradients along both uses, so::

    dh = dy + LayerNorm₂ᵀ(MLPᵀ(Dropoutᵀ(dy)))          the skip path + the MLP path
    dx = dh + LayerNorm₁ᵀ(Attentionᵀ(Dropoutᵀ(dh)))    the skip path + the attention path

(``Fᵀ(g)`` is F's backward applied to g.) The skip path carries ``dy`` to ``x`` untouched,
which is why deep stacks of such blocks still train.

Lesson 06a builds it from its parts and checks it whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.layers.dropout import Dropout
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.mlp import MLP
from miniclip.module import Module


class TransformerBlock(Module):
    """Pre-norm block: ``x + attn(ln1(x))``, then ``+ mlp(ln2(·))``; MLP width ``mlp_ratio · dim``.

    ``activation`` names the MLP's (``"gelu"`` or CLIP's ``"quick_gelu"``); ``causal`` masks later tokens.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        *,
        activation: str = "gelu",
        causal: bool = False,
        rng: np.random.Generator,
        dtype: Any = np.float32,
    ) -> None:
        self.ln1 = LayerNorm(dim, dtype=dtype)
        self.attn = MultiHeadSelfAttention(dim, heads, causal=causal, rng=rng, dtype=dtype)
        self.drop1 = Dropout(dropout)
        self.ln2 = LayerNorm(dim, dtype=dtype)
        self.mlp = MLP(dim, mlp_ratio * dim, activation=activation, rng=rng, dtype=dtype)
        self.drop2 = Dropout(dropout)

    def forward(self, x: Any, key_padding_mask: Any = None) -> Any:
        h = x + self.drop1(self.attn(self.ln1(x), key_padding_mask=key_padding_mask))  # (N, L, D)
        return h + self.drop2(self.mlp(self.ln2(h)))  # (N, L, D)

    def backward(self, dy: Any) -> Any:
        dh = dy + self.ln2.backward(self.mlp.backward(self.drop2.backward(dy)))  # skip + MLP path
        return dh + self.ln1.backward(self.attn.backward(self.drop1.backward(dh)))  # skip + attention path
