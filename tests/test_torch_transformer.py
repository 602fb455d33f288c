"""The transformer parts against PyTorch autograd, in float64, with the same weights on both sides.

Our ``Linear`` stores W as (D_in, D_out); PyTorch stores (D_out, D_in), so every weight is
transposed on the way across and every weight gradient on the way back. PyTorch's
``key_padding_mask`` is True for *padding*; ours is 1 for a real token.
"""

from __future__ import annotations

import numpy as np
import pytest

from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.layers.gelu import GELU
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.linear import Linear
from miniclip.layers.transformer_block import TransformerBlock

torch = pytest.importorskip("torch")

F64 = np.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}


def _t(a):
    """A float64 leaf tensor that collects its gradient."""
    return torch.tensor(np.asarray(a, dtype=F64), requires_grad=True)


def _randomise(module, rng):
    """Random values in every parameter, so biases and LayerNorm gains are not 0 and 1."""
    for p in module.parameters().values():
        p.data[...] = rng.normal(0.0, 0.5, p.data.shape)
    return module


def _copy_linear(ours: Linear, theirs) -> None:
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data.T))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data))


def _check_linear_grads(ours: Linear, theirs) -> None:
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy().T, **TOL)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), **TOL)


def _copy_layer_norm(ours: LayerNorm, theirs) -> None:
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data))


def _check_layer_norm_grads(ours: LayerNorm, theirs) -> None:
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), **TOL)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), **TOL)


def _torch_attention(ours: MultiHeadSelfAttention):
    dim = ours.out.weight.data.shape[0]
    mha = torch.nn.MultiheadAttention(dim, ours.heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.from_numpy(ours.qkv.weight.data.T))  # (3D, D): rows q, k, v
        mha.in_proj_bias.copy_(torch.from_numpy(ours.qkv.bias.data))
    _copy_linear(ours.out, mha.out_proj)
    return mha


def _check_attention_grads(ours: MultiHeadSelfAttention, mha) -> None:
    np.testing.assert_allclose(ours.qkv.weight.grad, mha.in_proj_weight.grad.numpy().T, **TOL)
    np.testing.assert_allclose(ours.qkv.bias.grad, mha.in_proj_bias.grad.numpy(), **TOL)
    _check_linear_grads(ours.out, mha.out_proj)


def _padding():
    """Partly padded rows (no item fully padded: PyTorch gives NaN there)."""
    return np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])


def test_layer_norm_matches_torch():
    rng = np.random.default_rng(0)
    ours = _randomise(LayerNorm(6, eps=1e-5, dtype=F64), rng)
    theirs = torch.nn.LayerNorm(6, eps=1e-5, dtype=torch.float64)
    _copy_layer_norm(ours, theirs)
    x, g = rng.standard_normal((2, 3, 6)) * 3 + 1, rng.standard_normal((2, 3, 6))
    xt = _t(x)
    yt = theirs(xt)
    (yt * torch.from_numpy(g)).sum().backward()
    y = ours(x)
    dx = ours.backward(g)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    _check_layer_norm_grads(ours, theirs)


def test_gelu_matches_torch_tanh():
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((4, 7)) * 3, rng.standard_normal((4, 7))
    xt = _t(x)
    yt = torch.nn.GELU(approximate="tanh")(xt)
    (yt * torch.from_numpy(g)).sum().backward()
    gelu = GELU()
    np.testing.assert_allclose(gelu(x), yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(gelu.backward(g), xt.grad.numpy(), **TOL)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_torch(masked):
    rng = np.random.default_rng(2)
    ours = _randomise(MultiHeadSelfAttention(8, 2, rng=rng, dtype=F64), rng)
    mha = _torch_attention(ours)
    x, g = rng.standard_normal((3, 5, 8)), rng.standard_normal((3, 5, 8))
    mask = _padding() if masked else None

    xt = _t(x)
    torch_mask = None if mask is None else torch.from_numpy(mask == 0)  # True = padding
    yt, wt = mha(xt, xt, xt, key_padding_mask=torch_mask, need_weights=True, average_attn_weights=False)
    (yt * torch.from_numpy(g)).sum().backward()

    y = ours(x, key_padding_mask=mask)
    dx = ours.backward(g)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(ours.attention_weights, wt.detach().numpy(), **TOL)  # (N, H, L, L)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    _check_attention_grads(ours, mha)


def _torch_block(ours: TransformerBlock):
    """The same pre-norm block composed from PyTorch parts, with our weights copied in."""
    dim = ours.ln1.weight.data.shape[0]
    hidden = ours.mlp.fc1.weight.data.shape[1]
    parts = torch.nn.ModuleDict(
        {
            "ln1": torch.nn.LayerNorm(dim, dtype=torch.float64),
            "attn": _torch_attention(ours.attn),
            "ln2": torch.nn.LayerNorm(dim, dtype=torch.float64),
            "fc1": torch.nn.Linear(dim, hidden, dtype=torch.float64),
            "fc2": torch.nn.Linear(hidden, dim, dtype=torch.float64),
        }
    )
    _copy_layer_norm(ours.ln1, parts["ln1"])
    _copy_layer_norm(ours.ln2, parts["ln2"])
    _copy_linear(ours.mlp.fc1, parts["fc1"])
    _copy_linear(ours.mlp.fc2, parts["fc2"])

    def forward(x, key_padding_mask=None):
        a = parts["ln1"](x)
        h = x + parts["attn"](a, a, a, key_padding_mask=key_padding_mask, need_weights=False)[0]
        m = parts["fc2"](torch.nn.functional.gelu(parts["fc1"](parts["ln2"](h)), approximate="tanh"))
        return h + m

    return parts, forward


@pytest.mark.parametrize("masked", [False, True])
def test_transformer_block_matches_torch(masked):
    rng = np.random.default_rng(3)
    ours = _randomise(TransformerBlock(8, 2, mlp_ratio=4, rng=rng, dtype=F64), rng)
    parts, forward = _torch_block(ours)
    x, g = rng.standard_normal((3, 5, 8)), rng.standard_normal((3, 5, 8))
    mask = _padding() if masked else None

    xt = _t(x)
    yt = forward(xt, None if mask is None else torch.from_numpy(mask == 0))
    (yt * torch.from_numpy(g)).sum().backward()

    y = ours(x, key_padding_mask=mask)
    dx = ours.backward(g)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    _check_layer_norm_grads(ours.ln1, parts["ln1"])
    _check_attention_grads(ours.attn, parts["attn"])
    _check_layer_norm_grads(ours.ln2, parts["ln2"])
    _check_linear_grads(ours.mlp.fc1, parts["fc1"])
    _check_linear_grads(ours.mlp.fc2, parts["fc2"])
    assert len(ours.parameters()) == 12  # 6 layers × (weight, bias): all compared above
