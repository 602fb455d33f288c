"""The transformer parts: masking, configuration errors, dtypes, dropout, GPU (gradient checks: test_gradcheck.py)."""

from __future__ import annotations

import numpy as np
import pytest

from miniclip import backend
from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.layers.dropout import Dropout
from miniclip.layers.gelu import GELU
from miniclip.layers.layer_norm import LayerNorm
from miniclip.layers.mlp import MLP
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.layers.transformer_block import TransformerBlock

F64 = np.float64


# ---------------------------------------------------------------- attention masking


def _attention(dim=4, heads=2, dtype=F64, seed=0):
    rng = np.random.default_rng(seed)
    attn = MultiHeadSelfAttention(dim, heads, rng=rng, dtype=dtype)
    attn.out.bias.data[...] = rng.normal(size=dim)  # a non-zero bias, to see it in padded rows
    return attn, rng


def test_padded_keys_get_exactly_zero_attention():
    attn, rng = _attention()
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 0]])
    x = rng.standard_normal((2, 4, 4)) * 10  # large scores: padding must still get nothing
    attn(x, key_padding_mask=mask)
    p = attn.attention_weights  # (N, H, L, L)
    assert p.shape == (2, 2, 4, 4)
    assert np.all(p[0, :, :, 2:] == 0.0) and np.all(p[1, :, :, 3] == 0.0)
    assert np.all(p[0, :, :, :2] > 0) and np.all(p[1, :, :, :3] > 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)


def test_padded_key_values_do_not_change_real_outputs():
    attn, rng = _attention()
    mask = np.array([[1, 1, 1, 0, 0]])
    x = rng.standard_normal((1, 5, 4))
    y = attn(x, key_padding_mask=mask)
    x2 = x.copy()
    x2[:, 3:] = rng.standard_normal((1, 2, 4)) * 100  # change only the padded tokens
    y2 = attn(x2, key_padding_mask=mask)
    np.testing.assert_allclose(y2[:, :3], y[:, :3], rtol=1e-12, atol=1e-12)


def test_fully_padded_row_is_zero_attention_and_no_nan():
    attn, rng = _attention()
    mask = np.array([[1, 0, 0], [0, 0, 0]], dtype=bool)  # the second item has no real token
    x = rng.standard_normal((2, 3, 4))
    y = attn(x, key_padding_mask=mask)
    assert np.all(np.isfinite(y))
    assert np.all(attn.attention_weights[1] == 0.0)  # defined as zero attention
    np.testing.assert_allclose(y[1], np.broadcast_to(attn.out.bias.data, (3, 4)), rtol=0, atol=1e-15)
    attn.zero_grad()
    dx = attn.backward(rng.standard_normal(y.shape))
    assert np.all(np.isfinite(dx))
    assert np.all(dx[1] == 0.0)  # nothing of item 1 reaches its output
    for name, p in attn.parameters().items():
        assert np.all(np.isfinite(p.grad)), name


def test_fully_padded_block_has_no_nan():
    block = TransformerBlock(4, 2, rng=np.random.default_rng(0), dtype=F64)
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    y = block(x, key_padding_mask=np.zeros((2, 3)))
    dx = block.backward(np.ones_like(y))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


def test_mask_of_all_ones_equals_no_mask():
    attn, rng = _attention()
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(attn(x, key_padding_mask=np.ones((2, 3))), attn(x))


# ---------------------------------------------------------------- configuration errors


def test_attention_dim_not_divisible_by_heads():
    with pytest.raises(ValueError, match=r"dim=6.*heads=4"):
        MultiHeadSelfAttention(6, 4, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"dim=6.*heads=4"):
        TransformerBlock(6, 4, rng=np.random.default_rng(0))


def test_attention_bad_shapes():
    attn, rng = _attention()
    with pytest.raises(ValueError, match=r"\(N, L, 4\).*\(2, 3, 5\)"):
        attn(rng.standard_normal((2, 3, 5)))
    with pytest.raises(ValueError, match=r"key_padding_mask.*\(2, 3\).*\(2, 4\)"):
        attn(rng.standard_normal((2, 3, 4)), key_padding_mask=np.ones((2, 4)))


def test_positional_embedding_too_long():
    pos = PositionalEmbedding(4, 3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"length 5 exceeds max_len 4"):
        pos(np.zeros((2, 5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, L, 3\)"):
        pos(np.zeros((2, 4, 2), dtype=np.float32))


def test_layer_norm_wrong_width():
    with pytest.raises(ValueError, match=r"\(\.\.\., 5\).*\(2, 4\)"):
        LayerNorm(5)(np.zeros((2, 4), dtype=np.float32))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=f"0 <= p < 1, got {p}"):
        Dropout(p)


# ---------------------------------------------------------------- float32 stays float32


def _float32_cases():
    rng = np.random.default_rng(0)
    f32 = np.float32
    mask = {"key_padding_mask": np.array([[1, 1, 0], [1, 0, 0]])}
    return {
        "LayerNorm": (LayerNorm(4, dtype=f32), {}),
        "GELU": (GELU(), {}),
        "Dropout": (Dropout(0.5, seed=0), {}),
        "PositionalEmbedding": (PositionalEmbedding(5, 4, rng=rng, dtype=f32), {}),
        "MultiHeadSelfAttention": (MultiHeadSelfAttention(4, 2, rng=rng, dtype=f32), mask),
        "MLP": (MLP(4, 8, rng=rng, dtype=f32), {}),
        "TransformerBlock": (TransformerBlock(4, 2, dropout=0.1, rng=rng, dtype=f32), mask),
    }


@pytest.mark.parametrize("name", list(_float32_cases()))
def test_float32_in_float32_out(name):
    module, kwargs = _float32_cases()[name]
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    y = module(x, **kwargs)
    assert y.dtype == np.float32
    dx = module.backward(np.ones_like(y))
    assert dx.dtype == np.float32
    for pname, p in module.parameters().items():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, pname
        assert np.any(p.grad != 0), f"{pname} received no gradient"


# ---------------------------------------------------------------- dropout


def test_dropout_backward_uses_the_forward_mask():
    backend.seed(0)
    drop = Dropout(0.3)
    x = np.ones((50, 40))
    y = drop(x)  # y is the mask itself: 0 or 1/(1−p)
    assert set(np.unique(y)) == {0.0, 1.0 / 0.7}
    g = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_array_equal(drop.backward(g), g * y)
    y2 = drop(x)
    assert not np.array_equal(y, y2)  # without a seed, each forward draws a new mask
    np.testing.assert_array_equal(drop.backward(g), g * y2)


def test_dropout_seed_gives_the_same_mask_every_call():
    x = np.ones((20, 30), dtype=np.float32)
    drop = Dropout(0.5, seed=4)
    np.testing.assert_array_equal(drop(x), drop(x))
    np.testing.assert_array_equal(drop(x), Dropout(0.5, seed=4)(x))
    assert not np.array_equal(drop(x), Dropout(0.5, seed=5)(x))


def test_dropout_p0_and_eval_are_identity():
    x = np.random.default_rng(0).standard_normal((3, 4))
    g = np.random.default_rng(1).standard_normal((3, 4))
    zero = Dropout(0.0)
    assert zero(x) is x and zero.backward(g) is g
    drop = Dropout(0.9)
    drop.eval()
    assert drop(x) is x and drop.backward(g) is g
    drop.train()
    assert np.count_nonzero(drop(x)) < x.size


def test_dropout_preserves_the_expected_value():
    backend.seed(0)
    p, x = 0.25, np.full(200_000, 3.0)
    y = Dropout(p)(x)
    assert abs(np.mean(y == 0) - p) < 0.005  # the fraction dropped is p (std ≈ 0.001)
    assert abs(y.mean() - 3.0) < 0.02  # E[y] = x (std of the mean ≈ 0.004)


def test_block_eval_switches_dropout_off():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    with_dropout = TransformerBlock(4, 2, dropout=0.5, rng=np.random.default_rng(0), dtype=F64)
    without = TransformerBlock(4, 2, dropout=0.0, rng=np.random.default_rng(0), dtype=F64)
    assert not np.allclose(with_dropout(x), without(x))
    with_dropout.eval()
    np.testing.assert_array_equal(with_dropout(x), without(x))


# ---------------------------------------------------------------- the other layers


def test_layer_norm_normalises_each_token():
    x = np.random.default_rng(0).normal(5.0, 3.0, (2, 3, 16))
    y = LayerNorm(16, dtype=F64)(x)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1.0, rtol=1e-5)  # 1 up to ε


def test_gelu_values():
    y = GELU()(np.array([-3.0, 0.0, 1.0, 3.0]))
    np.testing.assert_allclose(y, [-0.0036373920817729943, 0.0, 0.8411919906082768, 2.9963626079182271], rtol=1e-12)


def test_positional_embedding_shorter_sequence():
    pos = PositionalEmbedding(6, 3, rng=np.random.default_rng(0), dtype=F64)
    assert abs(pos.positions.data.std() - 0.02) < 0.015
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    np.testing.assert_array_equal(pos(x), x + pos.positions.data[:2])
    g = np.random.default_rng(2).standard_normal(x.shape)
    assert pos.backward(g) is g
    np.testing.assert_allclose(pos.positions.grad[:2], g.sum(axis=0))
    assert np.all(pos.positions.grad[2:] == 0)


# ---------------------------------------------------------------- GPU (CuPy) against CPU (NumPy)


def _cpu_and_gpu(build, x, mask, g):
    """Run ``build()`` on each device with the same weights; return (y, dx, grads) on the host for each."""
    results = []
    for device in ("cpu", "gpu"):
        with backend.using(device):
            module = build()
            kwargs = {} if mask is None else {"key_padding_mask": backend.to_device(mask)}
            y = module(backend.to_device(x), **kwargs)
            dx = module.backward(backend.to_device(g))
            grads = {n: backend.to_host(p.grad) for n, p in module.parameters().items()}
            results.append((backend.to_host(y), backend.to_host(dx), grads))
    return results


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["attention", "block"])
def test_gpu_matches_cpu(kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 8))
    g = rng.standard_normal((3, 5, 8))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    if kind == "attention":

        def build():
            return MultiHeadSelfAttention(8, 2, rng=np.random.default_rng(1), dtype=F64)
    else:

        def build():
            return TransformerBlock(8, 2, rng=np.random.default_rng(1), dtype=F64)

    (y_c, dx_c, gr_c), (y_g, dx_g, gr_g) = _cpu_and_gpu(build, x, mask, g)
    np.testing.assert_allclose(y_g, y_c, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx_g, dx_c, rtol=1e-10, atol=1e-12)
    assert gr_g.keys() == gr_c.keys()
    for name in gr_c:
        np.testing.assert_allclose(gr_g[name], gr_c[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.gpu
def test_gpu_dropout_mask_on_device():
    with backend.using("gpu"):
        backend.seed(0)
        xp = backend.get_array_module()
        x = xp.full((200_000,), 3.0, dtype=xp.float32)
        drop = Dropout(0.25)
        y = drop(x)
        assert backend.get_array_module(y) is xp and y.dtype == xp.float32
        assert abs(backend.to_float((y == 0).mean()) - 0.25) < 0.005
        assert abs(backend.to_float(y.mean()) - 3.0) < 0.02
        mask = drop.backward(xp.ones_like(x))  # the mask the forward drew: 0 or 1/(1−p)
        assert bool((mask * 3.0 == y).all())
