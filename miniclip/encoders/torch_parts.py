"""The PyTorch pieces the encoders' twins are written with (``miniclip bench`` compares against them).

Each encoder's ``torch_twin`` (its :class:`~miniclip.encoders.registry.EncoderSpec`) builds the
same encoder in PyTorch from these, with miniclip's parameter names, so that
:mod:`miniclip.measure.torch_twin` can copy the weights across and check that both give the same
loss. PyTorch is imported inside the functions: this module imports anywhere, and PyTorch is
never needed to use miniclip.

No lesson builds these; ``miniclip bench`` uses them when PyTorch imports (lesson 07 runs the bench without).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from miniclip.model.config import ModelConfig


def transformer_blocks(mc: ModelConfig, width: int, depth: int, heads: int, causal: bool = False) -> Any:
    """``depth`` pre-norm transformer blocks, named as in miniclip (ln1, attn.qkv, attn.out, ln2, mlp.fc1, mlp.fc2).

    Each block's forward takes ``(x, keep)``: ``keep`` (N, 1, 1, L) is True on real tokens, or None.
    ``causal``: each token also keeps only the keys up to its own position. The MLP's activation is
    ``mc.activation``: the tanh GELU, or CLIP's QuickGELU ``x · σ(1.702 x)``.
    """
    import torch

    nn, F = torch.nn, torch.nn.functional

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)

        def forward(self, x: Any, keep: Any) -> Any:
            n, length, dim = x.shape
            q, k, v = self.qkv(x).view(n, length, 3, heads, -1).permute(2, 0, 3, 1, 4)  # each (N, H, L, Dh)
            if causal:
                earlier = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()  # key j ≤ query i
                keep = earlier if keep is None else keep & earlier
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # keep: (N, 1, 1, L) True on real tokens
            return self.out(o.transpose(1, 2).reshape(n, length, dim))

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(width, mc.mlp_ratio * width), nn.Linear(mc.mlp_ratio * width, width)

        def forward(self, x: Any) -> Any:
            h = self.fc1(x)
            h = h * torch.sigmoid(1.702 * h) if mc.activation == "quick_gelu" else F.gelu(h, approximate="tanh")
            return self.fc2(h)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.attn, self.ln2, self.mlp = nn.LayerNorm(width), Attention(), nn.LayerNorm(width), MLP()

        def forward(self, x: Any, keep: Any = None) -> Any:
            h = x + self.attn(self.ln1(x), keep)
            return h + self.mlp(self.ln2(h))

    return nn.ModuleList(Block() for _ in range(depth))


def positions(length: int, width: int) -> Any:
    """miniclip's PositionalEmbedding: a module with one parameter, ``positions`` (length, width), added by its user."""
    import torch

    module = torch.nn.Module()
    module.positions = torch.nn.Parameter(torch.zeros(length, width))  # a Parameter set on a Module is registered
    return module


def patchify(images: Any, p: int) -> Any:
    """As :mod:`miniclip.layers.patchify`: (N, C, H, W) → (N, P, C·p·p), patches row by row, (C, p, p) inside."""
    n, c, h, w = images.shape
    x = images.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(n, (h // p) * (w // p), c * p * p)


def masked_mean(x: Any, mask: Any) -> Any:
    """The mean of ``x`` (N, L, D) over the real tokens of ``mask`` (N, L); an empty caption pools to zero."""
    return (x * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)
