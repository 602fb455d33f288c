"""Layers, the contrastive head and the walkthrough model: shapes, known numbers, dtypes,
parameter bookkeeping, SGD, and one clear ValueError for each bad input (their gradient
checks, listed in ``miniclip.teaching.gradient_cases.foundation``, run in test_gradcheck.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.layers import ContrastiveLoss, Embedding, Linear, MeanPool, Patchify, ReLU, Similarity, projection
from miniclip.layers.dropout import Dropout
from miniclip.optim import SGD
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

F64 = np.float64


def _batch(rng: np.random.Generator, cfg: WalkthroughConfig, n: int = 3, length: int = 4, size: int = 4):
    """Random token ids, images and a padding mask (every caption keeps at least one real token)."""
    ids = rng.integers(0, cfg.vocab_size, size=(n, length))
    images = rng.standard_normal((n, cfg.channels, size, size))
    lengths = rng.integers(1, length + 1, size=n)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(F64)
    return ids, images, mask


# --- shapes --------------------------------------------------------------------------------------------------------


def test_linear_shapes_and_bias():
    rng = np.random.default_rng(0)
    layer = Linear(5, 4, rng=rng, dtype=F64)
    x = rng.standard_normal((3, 2, 5))
    y = layer(x)
    assert y.shape == (3, 2, 4)
    assert layer.backward(np.ones_like(y)).shape == x.shape
    assert layer.weight.data.shape == (5, 4) and layer.bias.data.shape == (4,)
    np.testing.assert_allclose(y, x @ layer.weight.data + layer.bias.data)
    proj = projection(5, 3, rng=rng, dtype=F64)
    assert proj.bias is None and list(proj.parameters()) == ["weight"]


def test_relu_shape_and_mask():
    x = np.array([[-1.0, 0.0, 2.0]])
    relu = ReLU()
    np.testing.assert_array_equal(relu(x), [[0.0, 0.0, 2.0]])
    np.testing.assert_array_equal(relu.backward(np.array([[5.0, 6.0, 7.0]])), [[0.0, 0.0, 7.0]])


def test_patchify_shapes():
    images = np.zeros((2, 3, 4, 6))
    patches = Patchify(2)(images)
    assert patches.shape == (2, (4 // 2) * (6 // 2), 3 * 2 * 2)


def test_embedding_mean_pool_similarity_loss_shapes():
    rng = np.random.default_rng(1)
    lookup = Embedding(7, 3, rng=rng, dtype=F64)
    assert lookup(np.array([[0, 6], [2, 2], [1, 5]])).shape == (3, 2, 3)
    assert lookup.backward(np.ones((3, 2, 3))) is None  # ids are not differentiable
    assert MeanPool()(rng.standard_normal((3, 4, 5))).shape == (3, 5)
    sim = Similarity()
    t, i = rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    s = sim(t, i)
    assert s.shape == (3, 4)
    dt, di = sim.backward(np.ones_like(s))
    assert dt.shape == t.shape and di.shape == i.shape
    assert ContrastiveLoss()(rng.standard_normal((4, 4))).shape == ()


def test_walkthrough_model_shapes():
    rng = np.random.default_rng(2)
    cfg = WalkthroughConfig(channels=2)
    model = WalkthroughCLIP(cfg, rng=rng, dtype=F64)
    ids, images, mask = _batch(rng, cfg, n=3, size=6)
    assert model.text(ids, mask).shape == (3, cfg.embed_dim)
    assert model.image(images).shape == (3, cfg.embed_dim)
    loss = model(ids, images, mask)
    assert loss.shape == ()
    assert model.logits.shape == (3, 3)
    assert model.backward().shape == images.shape


# --- Patchify: ordering and exact inverse ----------------------------------------------------------------------------


def test_patchify_orders_patches_row_by_row():
    image = np.arange(16.0).reshape(1, 1, 4, 4)
    patches = Patchify(2)(image)
    expected = [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    np.testing.assert_array_equal(patches[0], expected)


def test_patchify_orders_channel_then_row_then_column_inside_a_patch():
    image = np.arange(32.0).reshape(1, 2, 4, 4)
    patches = Patchify(2)(image)
    np.testing.assert_array_equal(patches[0, 0], [0, 1, 4, 5, 16, 17, 20, 21])
    np.testing.assert_array_equal(patches[0, 3], [10, 11, 14, 15, 26, 27, 30, 31])


def test_patchify_backward_is_the_exact_inverse():
    images = np.random.default_rng(3).standard_normal((2, 3, 4, 6))
    layer = Patchify(2)
    back = layer.backward(layer(images))
    assert back.shape == images.shape
    np.testing.assert_array_equal(back, images)  # exact: no arithmetic, only rearrangement


# --- Embedding: repeated ids accumulate --------------------------------------------------------------------------


def test_embedding_repeated_id_accumulates_both_gradients():
    lookup = Embedding(3, 2, rng=np.random.default_rng(4), dtype=F64)
    ids = np.array([[1, 1, 2]])
    vectors = lookup(ids)
    np.testing.assert_array_equal(vectors[0, 0], lookup.table.data[1])
    lookup.backward(np.array([[[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]]]))
    expected = np.array([[0.0, 0.0], [11.0, 22.0], [100.0, 200.0]])  # row 1 gets 1+10 and 2+20
    np.testing.assert_array_equal(lookup.table.grad, expected)


# --- MeanPool with a padding mask --------------------------------------------------------------------------------


def test_mean_pool_mask_averages_real_tokens_only():
    x = np.array([[[1.0, 2.0], [3.0, 6.0], [100.0, 100.0]]])  # (1, 3, 2), the last token is padding
    mask = np.array([[1.0, 1.0, 0.0]])
    pool = MeanPool()
    np.testing.assert_array_equal(pool(x, mask), [[2.0, 4.0]])
    dx = pool.backward(np.array([[4.0, 8.0]]))
    np.testing.assert_array_equal(dx, [[[2.0, 4.0], [2.0, 4.0], [0.0, 0.0]]])  # padding gets zero gradient
    x[0, 2] = -7.0  # what sits in the padding does not matter
    np.testing.assert_array_equal(pool(x, mask), [[2.0, 4.0]])


def test_mean_pool_without_mask_is_the_plain_mean():
    x = np.random.default_rng(5).standard_normal((2, 3, 4))
    np.testing.assert_allclose(MeanPool()(x), x.mean(axis=1))


def test_mean_pool_all_padding_gives_zero():
    pool = MeanPool()
    y = pool(np.ones((1, 2, 3)), np.zeros((1, 2)))
    np.testing.assert_array_equal(y, np.zeros((1, 3)))


# --- the contrastive head ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5])
def test_uniform_logits_give_log_n(n):
    logits = np.full((n, n), 0.7)
    assert float(ContrastiveLoss()(logits)) == pytest.approx(math.log(n), rel=1e-12)
    assert float(ContrastiveLoss(base=3)(logits)) == pytest.approx(math.log(n, 3), rel=1e-12)


def test_soft_targets_loss_and_gradient():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((3, 3))
    targets = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])  # captions 0 and 1 are duplicates
    head = ContrastiveLoss()
    loss = head(logits, targets=targets)
    p_rows = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p_cols = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)
    expected = -(targets * np.log(p_rows)).sum() / 3 / 2 - (targets * np.log(p_cols)).sum() / 3 / 2
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(head.backward(), ((p_rows - targets) + (p_cols - targets)) / 6, atol=1e-15)
    # hard targets given explicitly are the same as the default identity
    assert float(head(logits, targets=np.eye(3))) == pytest.approx(float(ContrastiveLoss()(logits)), rel=1e-14)


def test_base_3_gradient_is_exactly_p_minus_i_over_n():
    logits = np.random.default_rng(7).standard_normal((4, 4))
    head = ContrastiveLoss(base=3)
    head(logits)
    powers = 3.0**logits
    p_rows = powers / powers.sum(axis=1, keepdims=True)
    p_cols = powers / powers.sum(axis=0, keepdims=True)
    eye = np.eye(4)
    expected = ((p_rows - eye) / 4 + (p_cols - eye) / 4) / 2  # no ln 3 factor anywhere
    np.testing.assert_allclose(head.backward(), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(head.backward(2.0), 2 * expected, rtol=1e-12, atol=1e-15)


def test_contrastive_loss_rejects_base_at_most_one():
    with pytest.raises(ValueError, match="greater than 1, got 1"):
        ContrastiveLoss(base=1)


def test_contrastive_loss_rejects_wrong_target_shape():
    with pytest.raises(ValueError, match=r"targets must have shape \(3, 3\), got \(3, 2\)"):
        ContrastiveLoss()(np.zeros((3, 3)), targets=np.zeros((3, 2)))


# --- dtypes: float32 stays float32 -------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [math.e, 3.0])
def test_float32_model_never_upcasts(base):
    rng = np.random.default_rng(8)
    cfg = WalkthroughConfig(base=base)
    model = WalkthroughCLIP(cfg, rng=rng, dtype=np.float32)
    ids, images, mask = _batch(rng, cfg)
    images = images.astype(np.float32)
    loss = model(ids, images, mask)  # the mask arrives as float64 on purpose
    assert loss.dtype == np.float32
    assert model.logits.dtype == np.float32
    dimages = model.backward()
    assert dimages.dtype == np.float32
    for name, p in model.parameters().items():
        assert p.data.dtype == np.float32, name
        assert p.grad.dtype == np.float32, name
    SGD(model.parameters(), lr=0.1).step()
    assert all(p.data.dtype == np.float32 for p in model.parameters().values())


# --- Module bookkeeping -------------------------------------------------------------------------------------------


def test_walkthrough_parameter_names_order_and_shapes():
    model = WalkthroughCLIP(rng=np.random.default_rng(9))
    shapes = {name: p.data.shape for name, p in model.parameters().items()}
    assert list(shapes) == [
        "text.lookup.table",
        "text.encode.weight",
        "text.encode.bias",
        "text.project.weight",
        "image.encode.weight",
        "image.encode.bias",
        "image.project.weight",
    ]
    assert shapes == {
        "text.lookup.table": (6, 3),
        "text.encode.weight": (3, 3),
        "text.encode.bias": (3,),
        "text.project.weight": (3, 2),
        "image.encode.weight": (4, 4),
        "image.encode.bias": (4,),
        "image.project.weight": (4, 2),
    }


def test_zero_grad_and_train_eval():
    rng = np.random.default_rng(10)
    cfg = WalkthroughConfig()
    model = WalkthroughCLIP(cfg, rng=rng, dtype=F64)
    ids, images, mask = _batch(rng, cfg)
    model(ids, images, mask)
    model.backward()
    assert any(np.abs(p.grad).sum() > 0 for p in model.parameters().values())
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters().values())
    model.eval()
    assert not model.training and not model.text.encode.training
    model.train()
    assert model.training and model.image.pool.training


def test_state_round_trip():
    a = WalkthroughCLIP(rng=np.random.default_rng(11), dtype=F64)
    b = WalkthroughCLIP(rng=np.random.default_rng(12), dtype=F64)
    state = a.state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    b.load_state(state)
    for name, p in b.parameters().items():
        np.testing.assert_array_equal(p.data, a.parameters()[name].data)
    state["text.encode.bias"][...] = 99.0  # the state is a copy, not a view of the model
    assert not (a.text.encode.bias.data == 99.0).any()


def test_load_state_keeps_the_model_dtype():
    model = WalkthroughCLIP(rng=np.random.default_rng(13), dtype=np.float32)
    model.load_state({k: v.astype(F64) for k, v in model.state().items()})
    assert all(p.data.dtype == np.float32 for p in model.parameters().values())


def test_load_state_missing_name():
    model = WalkthroughCLIP(rng=np.random.default_rng(14))
    state = model.state()
    del state["image.encode.bias"]
    with pytest.raises(ValueError, match=r"missing \['image.encode.bias'\]"):
        model.load_state(state)


def test_load_state_unknown_name():
    model = WalkthroughCLIP(rng=np.random.default_rng(15))
    state = model.state()
    state["image.extra"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"unexpected \['image.extra'\]"):
        model.load_state(state)


def test_load_state_wrong_shape():
    model = WalkthroughCLIP(rng=np.random.default_rng(16))
    state = model.state()
    state["text.encode.weight"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"text.encode.weight: expected shape \(3, 3\), got \(2, 3\)"):
        model.load_state(state)


# --- Dropout's mask ----------------------------------------------------------------------------------------------


def _dropped_fraction_is_p(mask, p: float, n: int) -> None:
    """Each entry is 0 or 1/(1−p), and the fraction of zeros is p within 5 standard deviations."""
    scale = mask.dtype.type(1.0 / (1.0 - p))  # a NumPy scalar: CuPy compares with it too
    assert bool(((mask == 0) | (mask == scale)).all())
    assert abs(float((mask == 0).mean()) - p) < 5 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("seed", [None, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_has_the_input_dtype_and_drops_p(dtype, seed):
    backend.seed(0)
    p, x = 0.3, np.ones((400, 500), dtype=dtype)
    drop = Dropout(p, seed=seed)
    y = drop(x)  # y is the mask itself
    assert y.dtype == dtype and drop.backward(np.ones_like(x)).dtype == dtype
    _dropped_fraction_is_p(y, p, x.size)


def test_dropout_global_draws_are_the_seeded_legacy_stream():
    """Without ``seed=``, the masks follow miniclip.backend.seed: float64 ones are numpy.random.random's draws."""
    p, x = 0.4, np.ones((30, 40))
    backend.seed(7)
    first, second = Dropout(p)(x), Dropout(p)(x)
    np.random.seed(7)
    np.testing.assert_array_equal(first, (np.random.random(x.shape) >= p) / (1 - p))
    np.testing.assert_array_equal(second, (np.random.random(x.shape) >= p) / (1 - p))
    x32 = x.astype(np.float32)
    backend.seed(7)
    again = Dropout(p)(x32)
    backend.seed(7)
    np.testing.assert_array_equal(Dropout(p)(x32), again)  # float32 masks follow the seed too
    assert not np.array_equal(Dropout(p)(x32), again)  # and the next draw moves on
    assert not np.array_equal(again == 0, first == 0)  # drawn as float32 uniforms, not as the float64 ones


@pytest.mark.gpu
def test_dropout_mask_on_the_gpu_has_the_input_dtype_and_drops_p():
    p = 0.3
    with backend.using("gpu"):
        backend.seed(5)
        x = backend.to_device(np.ones((400, 500)), dtype=np.float32)
        y = Dropout(p)(x)
        assert y.dtype == np.float32 and backend.get_array_module(y) is not np
        _dropped_fraction_is_p(y, p, x.size)
        backend.seed(5)
        np.testing.assert_array_equal(backend.to_host(Dropout(p)(x)), backend.to_host(y))


# --- SGD ---------------------------------------------------------------------------------------------------------


def test_sgd_step_moves_against_the_gradient():
    rng = np.random.default_rng(17)
    cfg = WalkthroughConfig()
    model = WalkthroughCLIP(cfg, rng=rng, dtype=F64)
    ids, images, mask = _batch(rng, cfg)
    before_loss = float(model(ids, images, mask))
    model.backward()
    before = {name: (p.data.copy(), p.grad.copy()) for name, p in model.parameters().items()}
    optimiser = SGD(model.parameters(), lr=0.01)
    optimiser.step()
    for name, p in model.parameters().items():
        w, g = before[name]
        np.testing.assert_allclose(p.data, w - 0.01 * g, rtol=0, atol=1e-15)
    assert float(model(ids, images, mask)) < before_loss  # a small step downhill lowers the loss
    optimiser.zero_grad()
    assert all(not p.grad.any() for p in model.parameters().values())


@pytest.mark.parametrize("lr", [0.0, -0.1])
def test_sgd_rejects_non_positive_learning_rate(lr):
    model = WalkthroughCLIP(rng=np.random.default_rng(18))
    with pytest.raises(ValueError, match=f"learning rate must be positive, got {lr}"):
        SGD(model.parameters(), lr=lr)


# --- bad input: a ValueError that names the shapes or values -----------------------------------------------------


def _model() -> WalkthroughCLIP:
    return WalkthroughCLIP(rng=np.random.default_rng(19), dtype=F64)


def test_model_rejects_mismatched_batch_sizes():
    ids = np.zeros((3, 2), dtype=np.int64)
    images = np.zeros((2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"batch sizes differ: 3 texts .*\(3, 2\).* but 2 images .*\(2, 1, 4, 4\)"):
        _model()(ids, images)


def test_model_rejects_images_that_are_not_4d():
    with pytest.raises(ValueError, match=r"images must be \(N, C, H, W\), got shape \(3, 4, 4\)"):
        _model()(np.zeros((3, 2), dtype=np.int64), np.zeros((3, 4, 4)))


def test_model_rejects_token_ids_that_are_not_2d():
    with pytest.raises(ValueError, match=r"token_ids must be \(N, L\) integers, got shape \(3,\)"):
        _model()(np.zeros(3, dtype=np.int64), np.zeros((3, 1, 4, 4)))


def test_patchify_rejects_images_that_are_not_4d():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got shape \(4, 4\)"):
        Patchify(2)(np.zeros((4, 4)))


def test_patchify_rejects_a_patch_size_that_does_not_divide_the_image():
    with pytest.raises(ValueError, match=r"patch size 3 does not divide the image size 4x6"):
        Patchify(3)(np.zeros((1, 1, 4, 6)))


def test_model_rejects_a_patch_size_that_does_not_divide_the_image():
    with pytest.raises(ValueError, match=r"patch size 2 does not divide the image size 5x5"):
        _model()(np.zeros((2, 2), dtype=np.int64), np.zeros((2, 1, 5, 5)))


def test_patchify_rejects_non_positive_patch_size():
    with pytest.raises(ValueError, match="positive integer, got 0"):
        Patchify(0)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [(6, r"from 0 to 6"), (-1, r"from -1 to 5")],
    ids=["too large", "negative"],
)
def test_embedding_rejects_ids_outside_the_table(bad, shown):
    lookup = Embedding(6, 3, rng=np.random.default_rng(20), dtype=F64)
    ids = np.array([[0, 5], [bad, 2]])
    # NumPy would raise IndexError for 6 and silently wrap -1 to the last row: a ValueError
    # proves the ids were checked before the lookup.
    with pytest.raises(ValueError, match=rf"\[0, 5\] for a table of 6 rows; got values {shown}"):
        lookup(ids)


def test_model_rejects_ids_outside_the_table():
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 5\]"):
        _model()(np.array([[0, 6], [1, 2]]), np.zeros((2, 1, 4, 4)))


def test_embedding_rejects_non_integer_ids():
    lookup = Embedding(6, 3, rng=np.random.default_rng(21), dtype=F64)
    with pytest.raises(ValueError, match="token ids must be integers, got dtype float64"):
        lookup(np.array([[0.0, 1.0]]))


def test_contrastive_loss_rejects_non_square_logits():
    with pytest.raises(ValueError, match=r"square \(N, N\) logits matrix.*got \(3, 4\)"):
        ContrastiveLoss()(np.zeros((3, 4)))


def test_similarity_rejects_mismatched_widths():
    with pytest.raises(ValueError, match=r"one width d, got \(3, 2\) and \(3, 4\)"):
        Similarity()(np.zeros((3, 2)), np.zeros((3, 4)))


def test_linear_rejects_wrong_input_width():
    layer = Linear(5, 4, rng=np.random.default_rng(22), dtype=F64)
    with pytest.raises(ValueError, match=r"Linear expects inputs \(\.\.\., 5\), got shape \(2, 3\)"):
        layer(np.zeros((2, 3)))


def test_mean_pool_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, L, D\) inputs, got shape \(3, 4\)"):
        MeanPool()(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"mask shape \(3, 2\) does not match inputs \(3, 4, 5\)"):
        MeanPool()(np.zeros((3, 4, 5)), np.ones((3, 2)))
