"""The pieces of OpenAI's CLIP against PyTorch, in float64: forward, input gradient and weight gradients.

QuickGELU against ``x * torch.sigmoid(1.702 * x)``; the class token against ``torch.cat``; the
causal mask (with and without a padding mask) against ``torch.nn.MultiheadAttention`` given a
causal ``attn_mask``; the bias-free patch embedding (patchify + linear) against the strided
``torch.nn.functional.conv2d`` that CLIP uses. The whole architecture is matched against
``transformers.CLIPModel`` in ``test_pretrained.py``, and bench's PyTorch twin of it here.
"""

from __future__ import annotations

import numpy as np
import pytest

from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.layers.class_token import ClassToken, ClassTokenPool
from miniclip.layers.linear import Linear
from miniclip.layers.patchify import Patchify
from miniclip.layers.quick_gelu import QuickGELU

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

F64 = np.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}


def _t(a):
    return torch.tensor(np.asarray(a, dtype=F64), requires_grad=True)


def test_quick_gelu_matches_torch():
    rng = np.random.default_rng(0)
    x, g = rng.normal(0, 3, (4, 7)), rng.standard_normal((4, 7))
    xt = _t(x)
    yt = xt * torch.sigmoid(1.702 * xt)
    (yt * torch.from_numpy(g)).sum().backward()
    layer = QuickGELU()
    np.testing.assert_allclose(layer(x), yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), **TOL)
    assert np.isfinite(layer(np.array([-1e4, 1e4]))).all()  # no overflow far out on either side


def test_class_token_and_its_pool_match_torch():
    rng = np.random.default_rng(1)
    prepend, pool = ClassToken(5, rng=rng, dtype=F64), ClassTokenPool()
    x, g = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5))
    xt, tokt = _t(x), _t(prepend.token.data)
    yt = torch.cat([tokt.expand(3, 1, 5), xt], dim=1)[:, 0] * 2 + torch.cat([tokt.expand(3, 1, 5), xt], dim=1)[:, 1]
    (yt * torch.from_numpy(g)).sum().backward()
    seq = prepend(x)  # (3, 5, 5)
    assert seq.shape == (3, 5, 5)
    y = pool(seq) * 2 + seq[:, 1]
    dseq = pool.backward(2 * g)
    dseq[:, 1] += g
    dx = prepend.backward(dseq)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(prepend.token.grad, tokt.grad.numpy(), **TOL)


@pytest.mark.parametrize("padded", [False, True])
def test_causal_attention_matches_torch(padded):
    rng = np.random.default_rng(2)
    ours = MultiHeadSelfAttention(8, 2, causal=True, rng=rng, dtype=F64)
    for p in ours.parameters().values():
        p.data[...] = rng.normal(0.0, 0.5, p.data.shape)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.from_numpy(ours.qkv.weight.data.T))
        mha.in_proj_bias.copy_(torch.from_numpy(ours.qkv.bias.data))
        mha.out_proj.weight.copy_(torch.from_numpy(ours.out.weight.data.T))
        mha.out_proj.bias.copy_(torch.from_numpy(ours.out.bias.data))
    x, g = rng.standard_normal((3, 5, 8)), rng.standard_normal((3, 5, 8))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]) if padded else None
    later = torch.ones(5, 5, dtype=torch.bool).triu(1)  # PyTorch: True = not allowed
    xt = _t(x)
    padding = None if mask is None else torch.from_numpy(mask == 0)
    yt, wt = mha(xt, xt, xt, attn_mask=later, key_padding_mask=padding, average_attn_weights=False)
    (yt * torch.from_numpy(g)).sum().backward()
    y = ours(x, key_padding_mask=mask)
    dx = ours.backward(g)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(ours.attention_weights, wt.detach().numpy(), **TOL)
    assert np.all(np.triu(ours.attention_weights, 1) == 0)  # no query attends to a later key
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(ours.qkv.weight.grad, mha.in_proj_weight.grad.numpy().T, **TOL)


def test_bias_free_patch_embedding_is_clips_strided_convolution():
    rng = np.random.default_rng(3)
    p, width = 4, 6
    patchify, embed = Patchify(p), Linear(3 * p * p, width, bias=False, rng=rng, dtype=F64)
    images, g = rng.standard_normal((2, 3, 8, 12)), rng.standard_normal((2, 6, width))
    conv_weight = _t(embed.weight.data.T.reshape(width, 3, p, p))  # (D, C, p, p), as CLIP stores it
    xt = _t(images)
    yt = torch.nn.functional.conv2d(xt, conv_weight, stride=p)  # (N, D, H/p, W/p)
    yt = yt.flatten(2).transpose(1, 2)  # (N, P, D), patches row by row
    (yt * torch.from_numpy(g)).sum().backward()
    y = embed(patchify(images))
    dx = patchify.backward(embed.backward(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(embed.weight.grad, conv_weight.grad.numpy().reshape(width, -1).T, **TOL)


def test_bench_twin_of_openai_architecture_gives_the_same_loss():
    """``miniclip bench`` times CLIP's architecture against its PyTorch twin: the twin must be that architecture."""
    from miniclip.measure.torch_twin import copy_weights, torch_clip
    from miniclip.model.config import build_clip
    from miniclip.model.openai import CLIP_CHOICES
    from miniclip.teaching.gradient_cases.clip import tiny_config

    cfg = tiny_config(**CLIP_CHOICES, image_depth=2, text_depth=2)
    rng = np.random.default_rng(4)
    model = build_clip(cfg, rng=rng, dtype=F64)
    for p in model.parameters().values():
        p.data[...] = rng.normal(0.0, 0.3, p.data.shape)
    twin = torch_clip(cfg).double()
    copy_weights(model, twin)
    ids = rng.integers(1, cfg.vocab_size, size=(4, cfg.context_length))
    mask = (np.arange(cfg.context_length)[None] < np.array([5, 2, 1, 3])[:, None]).astype(F64)
    images = rng.standard_normal((4, cfg.channels, cfg.image_size, cfg.image_size))
    loss = float(model(ids, images, mask))
    with torch.no_grad():
        eye = torch.eye(4, dtype=torch.float64)
        theirs = twin(torch.from_numpy(ids), torch.from_numpy(images), torch.from_numpy(mask), eye)
    assert loss == pytest.approx(float(theirs), rel=1e-10)
