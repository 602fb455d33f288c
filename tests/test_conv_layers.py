"""The convolutional image encoder and its layers: gradient checks, shapes, behaviour, errors, GPU parity."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from miniclip import backend
from miniclip.backend import to_device, to_host
from miniclip.checks import run_checks
from miniclip.checks.conv import CASES
from miniclip.encoders.cnn import CNNEncoder, ResidualBlock
from miniclip.gradcheck import gradcheck
from miniclip.layers.batch_norm import BatchNorm2d
from miniclip.layers.conv2d import Conv2d
from miniclip.layers.im2col import col2im, conv_output_size, im2col
from miniclip.layers.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d
from miniclip.module import Module

# --- gradient checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("index,name", list(enumerate(CASES)))
def test_gradcheck(index: int, name: str) -> None:
    module, inputs, kwargs = CASES[name](np.random.default_rng([0, index]))
    result = gradcheck(module, *inputs, kwargs=kwargs, label=name, seed=index)
    assert result.ok, result.report()
    assert result.max_error < 1e-6


def test_run_checks_labels_every_case() -> None:
    results = run_checks(["GlobalAvgPool", "Conv2d (1x1, no bias)"])
    assert [r.label for r in results] == ["GlobalAvgPool", "Conv2d (1x1, no bias)"]
    assert all(r.ok for r in results)


def test_gradcheck_catches_a_wrong_backward() -> None:
    """The check must be able to fail: a convolution whose backward returns half the input gradient."""

    class Broken(Conv2d):
        def backward(self, dy: np.ndarray) -> np.ndarray:
            return super().backward(dy) * 0.5

    rng = np.random.default_rng(0)
    conv = Broken(2, 2, 3, stride=1, padding=1, rng=rng, dtype=np.float64)
    assert not gradcheck(conv, rng.standard_normal((1, 2, 4, 4))).ok


# --- im2col / col2im ------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (3, 1, 1), (3, 2, 1), (2, 2, 0), (1, 1, 0), (4, 3, 2)])
def test_col2im_is_the_adjoint_of_im2col(kernel: int, stride: int, padding: int) -> None:
    rng = np.random.default_rng(kernel * 100 + stride * 10 + padding)
    x = rng.standard_normal((2, 3, 7, 6))
    cols = im2col(x, kernel, stride, padding)
    c = rng.standard_normal(cols.shape)
    lhs = float((cols * c).sum())  # ⟨im2col(x), c⟩
    rhs = float((x * col2im(c, x.shape, kernel, stride, padding)).sum())  # ⟨x, col2im(c)⟩
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_im2col_rows_are_windows() -> None:
    """Compare with the definition, written as loops over every output pixel."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6))
    k, s, p = 3, 2, 1
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = conv_output_size(5, k, s, p), conv_output_size(6, k, s, p)
    expected = [
        padded[n, :, i * s : i * s + k, j * s : j * s + k].transpose(1, 2, 0).reshape(-1)  # (k, k, C) flattened
        for n in range(2)
        for i in range(ho)
        for j in range(wo)
    ]
    np.testing.assert_array_equal(im2col(x, k, s, p), np.stack(expected))


def test_col2im_adds_overlapping_windows() -> None:
    """3x3 windows at stride 1 on a 4x4 image: corners lie in 1 window, edges in 2, the interior in 4."""
    x = np.zeros((1, 1, 4, 4))
    counts = col2im(np.ones_like(im2col(x, 3)), x.shape, 3)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


# --- Conv2d ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,kernel,stride,padding,expected",
    [
        ((32, 32), 3, 1, 1, (32, 32)),  # "same" convolution
        ((32, 32), 3, 2, 1, (16, 16)),  # halves the resolution
        ((7, 7), 3, 2, 0, (3, 3)),
        ((5, 6), 1, 1, 0, (5, 6)),
        ((4, 4), 4, 1, 0, (1, 1)),  # kernel as large as the image
        ((3, 5), 3, 1, 2, (5, 7)),  # padding larger than needed
        ((9, 8), 2, 3, 0, (3, 3)),  # stride larger than the kernel skips pixels
    ],
)
def test_conv_output_shapes(
    size: tuple[int, int], kernel: int, stride: int, padding: int, expected: tuple[int, int]
) -> None:
    conv = Conv2d(2, 5, kernel, stride, padding, rng=np.random.default_rng(0), dtype=np.float64)
    y = conv(np.zeros((3, 2, *size)))
    assert y.shape == (3, 5, *expected)
    assert conv.output_size(*size) == expected
    assert conv.backward(np.ones_like(y)).shape == (3, 2, *size)


def test_horizontal_edge_kernel() -> None:
    """A kernel that subtracts the row above from the row below fires only along a horizontal edge."""
    conv = Conv2d(1, 1, 3, rng=np.random.default_rng(0), dtype=np.float64)
    conv.weight.data[0, 0] = [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]
    image = np.zeros((1, 1, 6, 5))
    image[0, 0, 3:] = 1.0  # dark top half, bright bottom half
    np.testing.assert_array_equal(conv(image)[0, 0], [[0, 0, 0], [3, 3, 3], [3, 3, 3], [0, 0, 0]])
    vertical = np.zeros((1, 1, 6, 5))
    vertical[0, 0, :, 2:] = 1.0  # a vertical edge: the kernel does not see it
    np.testing.assert_array_equal(conv(vertical), np.zeros((1, 1, 4, 3)))


def test_conv_weight_layout_and_init() -> None:
    conv = Conv2d(4, 6, 3, rng=np.random.default_rng(0), dtype=np.float64)
    assert conv.weight.data.shape == (6, 4, 3, 3)  # (out_channels, in_channels, k, k), as in PyTorch
    bound = np.sqrt(6 / (4 * 3 * 3))
    assert np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.9 * bound  # uniform over the whole He range
    assert set(conv.parameters()) == {"weight", "bias"}
    assert set(Conv2d(4, 6, 3, bias=False, rng=np.random.default_rng(0)).parameters()) == {"weight"}


# --- BatchNorm2d ----------------------------------------------------------------------------------


def test_batch_norm_train_normalises_each_channel() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 5, 5)) * np.array([1.0, 3.0, 0.2])[None, :, None, None] + 7
    y = BatchNorm2d(3, dtype=np.float64)(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # 1 up to ε / σ²


def test_batch_norm_running_statistics_and_eval() -> None:
    rng = np.random.default_rng(3)
    bn = BatchNorm2d(2, momentum=0.1, dtype=np.float64)
    bn.weight.data[...] = [2.0, 0.5]
    bn.bias.data[...] = [1.0, -1.0]
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(4):
        x = rng.standard_normal((3, 2, 4, 4)) * 2 + 5
        bn(x)
        m = 3 * 4 * 4
        mean = 0.9 * mean + 0.1 * x.mean(axis=(0, 2, 3))
        var = 0.9 * var + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1)  # unbiased
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-12)
    assert set(bn.buffers()) == {"running_mean", "running_var"}
    assert bn.buffers("stem_bn.")["stem_bn.running_var"] is bn.running_var  # the live array
    assert set(bn.parameters()) == {"weight", "bias"}  # buffers are not parameters

    bn.eval()
    x = rng.standard_normal((3, 2, 4, 4))
    y = bn(x)
    expected = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    expected = expected * np.array([2.0, 0.5])[None, :, None, None] + np.array([1.0, -1.0])[None, :, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_allclose(bn(x[:1]), y[:1], rtol=1e-12)  # one image does not depend on the batch
    np.testing.assert_array_equal(bn.running_mean, mean)  # eval leaves the statistics alone


# --- pooling --------------------------------------------------------------------------------------


def test_pool_shapes_and_values() -> None:
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float64).reshape(2, 3, 4, 6)
    np.testing.assert_array_equal(MaxPool2d(2)(x), x[:, :, 1::2, 1::2])  # increasing values: bottom-right wins
    np.testing.assert_allclose(AvgPool2d(2)(x), (x[:, :, ::2, ::2] + x[:, :, 1::2, 1::2]) / 2)
    assert MaxPool2d(3, stride=2)(np.zeros((1, 1, 7, 7))).shape == (1, 1, 3, 3)
    assert AvgPool2d(3, stride=1)(np.zeros((1, 1, 5, 4))).shape == (1, 1, 3, 2)
    np.testing.assert_allclose(GlobalAvgPool()(x), x.mean(axis=(2, 3)))


def test_max_pool_ties_go_to_the_first_element() -> None:
    pool = MaxPool2d(2)
    pool(np.ones((1, 1, 2, 4)))
    dx = pool.backward(np.array([[[[3.0, 5.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[3, 0, 5, 0], [0, 0, 0, 0]])


def test_max_pool_sums_gradients_of_overlapping_windows() -> None:
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the centre wins all four 2x2 windows
    pool = MaxPool2d(2, stride=1)
    pool(x)
    dx = pool.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert dx[0, 0, 1, 1] == 10.0
    assert dx.sum() == 10.0


def test_global_avg_pool_backward_spreads_evenly() -> None:
    pool = GlobalAvgPool()
    pool(np.zeros((2, 3, 4, 5)))
    dx = pool.backward(np.full((2, 3), 20.0))
    np.testing.assert_array_equal(dx, np.ones((2, 3, 4, 5)))


# --- residual blocks and the encoder --------------------------------------------------------------


def test_residual_block_shortcut_only_when_needed() -> None:
    rng = np.random.default_rng(0)
    assert ResidualBlock(4, 4, rng=rng).shortcut_conv is None
    assert ResidualBlock(4, 8, rng=rng).shortcut_conv is not None
    block = ResidualBlock(4, 4, stride=2, rng=rng)
    assert block.shortcut_conv is not None
    assert block(np.zeros((2, 4, 6, 6), dtype=np.float32)).shape == (2, 4, 3, 3)


def test_encoder_shapes_and_stages() -> None:
    rng = np.random.default_rng(0)
    enc = CNNEncoder(channels=(4, 6, 8), blocks_per_stage=2, embed_dim=5, rng=rng, dtype=np.float64)
    assert len(enc.blocks) == 6
    assert [b.conv1.stride for b in enc.blocks] == [1, 1, 2, 1, 2, 1]  # stride 2 where a stage begins
    images = np.random.default_rng(1).standard_normal((3, 3, 12, 8))  # not square
    out = enc(images)
    assert out.shape == (3, 5)
    assert enc.backward(np.ones_like(out)).shape == images.shape


def test_encoder_describe() -> None:
    enc = CNNEncoder(rng=np.random.default_rng(0))
    info = enc.describe((3, 32, 32))
    assert info["parameters"] == sum(p.data.size for p in enc.parameters().values()) == 315_552
    stem = 32 * 32 * 32 * 3 * 9  # output pixels × output channels × (input channels · 3 · 3)
    stage1 = 2 * 32 * 32 * 32 * 32 * 9
    stage2 = 16 * 16 * 64 * (32 * 9 + 64 * 9 + 32)  # conv1, conv2 and the 1x1 shortcut
    stage3 = 8 * 8 * 128 * (64 * 9 + 128 * 9 + 64)
    assert info["multiply_adds"] == stem + stage1 + stage2 + stage3 + 128 * 64 == 49_127_424
    assert info["flops"] == 2 * info["multiply_adds"]
    assert [row["output"] for row in info["layers"]] == [
        (32, 32, 32),
        (32, 32, 32),
        (64, 16, 16),
        (128, 8, 8),
        (128,),
        (64,),
    ]
    assert sum(row["parameters"] for row in info["layers"]) == info["parameters"]
    with pytest.raises(ValueError, match="channels"):
        enc.describe((1, 32, 32))


def test_encoder_trains_and_eval_is_per_image() -> None:
    """A few SGD steps lower a regression loss; in eval mode each image's output ignores the batch."""
    rng = np.random.default_rng(4)
    enc = CNNEncoder(channels=(4, 8), embed_dim=3, rng=rng, dtype=np.float64)
    images = rng.standard_normal((6, 3, 8, 8))
    target = rng.standard_normal((6, 3))
    losses = []
    for _ in range(15):
        out = enc(images)
        losses.append(float(((out - target) ** 2).mean()))
        enc.zero_grad()
        enc.backward(2 * (out - target) / out.size)
        for p in enc.parameters().values():
            p.data -= 0.1 * p.grad
    assert losses[-1] < 0.7 * losses[0]
    enc.eval()
    np.testing.assert_allclose(enc(images[:2])[1], enc(images)[1], rtol=1e-10)


# --- dtypes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda r: Conv2d(3, 4, 3, stride=2, padding=1, rng=r), (2, 3, 6, 6)),
        (lambda r: BatchNorm2d(3), (2, 3, 4, 4)),
        (lambda r: BatchNorm2d(3).eval(), (2, 3, 4, 4)),
        (lambda r: MaxPool2d(2), (2, 3, 4, 4)),
        (lambda r: AvgPool2d(3, stride=2), (2, 3, 5, 5)),
        (lambda r: GlobalAvgPool(), (2, 3, 4, 4)),
        (lambda r: ResidualBlock(3, 4, stride=2, rng=r), (2, 3, 6, 6)),
        (lambda r: CNNEncoder(channels=(4, 8), embed_dim=5, rng=r), (2, 3, 8, 8)),
    ],
)
def test_float32_stays_float32(make: Callable[[np.random.Generator], Module], shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    module = make(rng)
    x = rng.standard_normal(shape).astype(np.float32)
    y = module(x)
    assert y.dtype == np.float32
    assert module.backward(np.ones_like(y)).dtype == np.float32
    for name, p in module.parameters().items():
        assert p.data.dtype == p.grad.dtype == np.float32, name
    if isinstance(module, BatchNorm2d):
        assert all(b.dtype == np.float32 for b in module.buffers().values())


# --- errors ---------------------------------------------------------------------------------------


def test_bad_configs_raise() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="kernel"):
        Conv2d(3, 4, 0, rng=rng)
    with pytest.raises(ValueError, match="stride"):
        Conv2d(3, 4, 3, stride=0, rng=rng)
    with pytest.raises(ValueError, match="padding"):
        Conv2d(3, 4, 3, padding=-1, rng=rng)
    with pytest.raises(ValueError, match="out_channels=0"):
        Conv2d(3, 0, 3, rng=rng)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm2d(3, momentum=1.5)
    with pytest.raises(ValueError, match="kernel"):
        MaxPool2d(0)
    with pytest.raises(ValueError, match="stride"):
        AvgPool2d(2, stride=0)
    with pytest.raises(ValueError, match="channels"):
        CNNEncoder(channels=(), rng=rng)
    with pytest.raises(ValueError, match="blocks_per_stage"):
        CNNEncoder(blocks_per_stage=0, rng=rng)


def test_bad_inputs_raise() -> None:
    rng = np.random.default_rng(0)
    conv = Conv2d(3, 4, 5, rng=rng)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\(3, 8, 8\)"):
        conv(np.zeros((3, 8, 8), dtype=np.float32))  # not 4-D
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\(1, 2, 8, 8\)"):
        conv(np.zeros((1, 2, 8, 8), dtype=np.float32))  # channel mismatch
    with pytest.raises(ValueError, match="larger than the padded input 4x4"):
        conv(np.zeros((1, 3, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        BatchNorm2d(2)(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm2d(2)(np.zeros((1, 2, 1, 1)))
    with pytest.raises(ValueError, match="larger than the input 3x3"):
        MaxPool2d(4)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        AvgPool2d(2)(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        GlobalAvgPool()(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"images \(N, 3, H, W\)"):
        CNNEncoder(channels=(4,), rng=rng)(np.zeros((2, 1, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="expects cols of shape"):
        col2im(np.zeros((5, 9)), (1, 1, 4, 4), 3)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        im2col(np.zeros((4, 4)), 3)


# --- GPU: CuPy gives what NumPy gives (tests/conftest.py skips these without a GPU) ---------------


def _same_on_gpu(make: Callable[[np.random.Generator], Module], x: np.ndarray, rtol: float) -> None:
    """Build the module twice from the same seed, on the CPU and on the GPU, and compare everything."""
    cpu = make(np.random.default_rng(0))
    y_cpu = cpu(x)
    g = np.random.default_rng(1).standard_normal(y_cpu.shape).astype(x.dtype)
    dx_cpu = cpu.backward(g)
    with backend.using("gpu"):
        gpu = make(np.random.default_rng(0))
        y_gpu = gpu(to_device(x))
        dx_gpu = gpu.backward(to_device(g))
    np.testing.assert_allclose(to_host(y_gpu), y_cpu, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(to_host(dx_gpu), dx_cpu, rtol=rtol, atol=rtol)
    for name, p in cpu.parameters().items():
        np.testing.assert_allclose(to_host(gpu.parameters()[name].grad), p.grad, rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_conv_gpu_matches_cpu(dtype: type, rtol: float) -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 9, 8)).astype(dtype)
    _same_on_gpu(lambda r: Conv2d(3, 5, 3, stride=2, padding=1, rng=r, dtype=dtype), x, rtol)


@pytest.mark.gpu
@pytest.mark.parametrize("pool", [MaxPool2d(2), MaxPool2d(3, stride=2), AvgPool2d(3, stride=2), GlobalAvgPool()])
def test_pooling_gpu_matches_cpu(pool: Module) -> None:
    x = np.random.default_rng(3).permutation(2 * 3 * 7 * 7).reshape(2, 3, 7, 7) * 0.01
    _same_on_gpu(lambda r: pool, x, 1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 2e-3)])
def test_encoder_gpu_matches_cpu(dtype: type, rtol: float) -> None:
    x = np.random.default_rng(4).standard_normal((4, 3, 16, 16)).astype(dtype)
    _same_on_gpu(lambda r: CNNEncoder(channels=(8, 16), embed_dim=6, rng=r, dtype=dtype), x, rtol)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["Conv2d (stride 2, padding 1)", "BatchNorm2d (train)", "MaxPool2d (3, stride 2)"])
def test_gradcheck_on_gpu(name: str) -> None:
    with backend.using("gpu"):
        module, inputs, kwargs = CASES[name](np.random.default_rng(0))
        result = gradcheck(module, *inputs, kwargs=kwargs, label=name)
    assert result.ok, result.report()
