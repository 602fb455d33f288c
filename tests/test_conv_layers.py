"""The convolutional image encoder and its layers: shapes, behaviour, errors, GPU parity, and a gradient check
that fails on a wrong backward (the conv checks of ``miniclip.teaching.gradient_cases`` run in test_gradcheck.py).

Every layer here works on channels-last images, (N, H, W, C); only ``CNNEncoder`` takes (N, C, H, W)
images (and returns their gradient in that layout), like every image encoder.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import miniclip.layers.conv2d as conv2d_module
import miniclip.layers.im2col as im2col_module
from miniclip import backend
from miniclip.backend import column_dots, to_device, to_host
from miniclip.encoders.cnn import CNNEncoder, ResidualBlock, cnn_cost
from miniclip.layers.batch_norm import BatchNorm2d, column_sums
from miniclip.layers.conv2d import Conv2d
from miniclip.layers.im2col import col2im, conv_output_size, im2col, windows
from miniclip.layers.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d
from miniclip.measure.cost import ModelCost
from miniclip.module import Module
from miniclip.teaching.gradcheck import gradcheck

# --- the gradient check can fail (tests/test_gradcheck.py runs the conv cases of miniclip.teaching.gradient_cases) ---


@pytest.mark.parametrize("backward_by", ["flipped", "col2im"])
def test_gradcheck_catches_a_wrong_backward(backward_by: str) -> None:
    """The check must be able to fail: a convolution whose backward returns half the input gradient."""

    class Broken(Conv2d):
        def backward(self, dy: np.ndarray) -> np.ndarray:
            return super().backward(dy) * 0.5

    rng = np.random.default_rng(0)
    conv = Broken(2, 2, 3, stride=1, padding=1, rng=rng, dtype=np.float64, backward_by=backward_by)
    assert not gradcheck(conv, rng.standard_normal((1, 4, 4, 2))).ok


# --- im2col / col2im ------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (3, 1, 1), (3, 2, 1), (2, 2, 0), (1, 1, 0), (4, 3, 2)])
def test_col2im_is_the_adjoint_of_im2col(kernel: int, stride: int, padding: int) -> None:
    rng = np.random.default_rng(kernel * 100 + stride * 10 + padding)
    x = rng.standard_normal((2, 7, 6, 3))  # (N, H, W, C)
    cols = im2col(x, kernel, stride, padding)
    c = rng.standard_normal(cols.shape)
    lhs = float((cols * c).sum())  # ⟨im2col(x), c⟩
    rhs = float((x * col2im(c, x.shape, kernel, stride, padding)).sum())  # ⟨x, col2im(c)⟩
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_im2col_rows_are_windows() -> None:
    """Compare with the definition, written as loops over every output pixel."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6, 3))  # (N, H, W, C)
    k, s, p = 3, 2, 1
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    ho, wo = conv_output_size(5, k, s, p), conv_output_size(6, k, s, p)
    expected = [
        padded[n, i * s : i * s + k, j * s : j * s + k, :].reshape(-1)  # (k, k, C) flattened
        for n in range(2)
        for i in range(ho)
        for j in range(wo)
    ]
    np.testing.assert_array_equal(im2col(x, k, s, p), np.stack(expected))


def test_im2col_keeps_the_channels_of_a_pixel_side_by_side() -> None:
    """Columns run kernel row, kernel column, channel: one pixel's C values are neighbours in a row."""
    x = np.arange(2 * 3 * 3 * 2, dtype=np.float64).reshape(2, 3, 3, 2)  # (N, H, W, C)
    cols = im2col(x, kernel=2)  # (2·2·2, 2·2·2)
    np.testing.assert_array_equal(cols[0], [0, 1, 2, 3, 6, 7, 8, 9])  # pixels (0,0), (0,1), (1,0), (1,1)
    np.testing.assert_array_equal(cols.reshape(-1, 2, 2, 2)[:, 0, 0, :], x[:, :2, :2].reshape(-1, 2))


def test_windows_is_a_view_of_every_window() -> None:
    rng = np.random.default_rng(11)
    padded = rng.standard_normal((2, 7, 8, 3))
    k, s = 3, 2
    ho, wo = conv_output_size(7, k, s, 0), conv_output_size(8, k, s, 0)
    view = windows(padded, k, s, ho, wo)
    assert view.shape == (2, ho, wo, k, k, 3)
    assert np.shares_memory(view, padded)  # nothing copied
    for n, i, j in itertools.product(range(2), range(ho), range(wo)):
        np.testing.assert_array_equal(view[n, i, j], padded[n, s * i : s * i + k, s * j : s * j + k, :])


def test_im2col_of_a_transposed_view_equals_that_of_a_copy() -> None:
    """CNNEncoder hands its stem a transposed view of the (N, C, H, W) images: strides must not matter."""
    images = np.random.default_rng(12).standard_normal((2, 3, 8, 6))  # (N, C, H, W)
    view = images.transpose(0, 2, 3, 1)  # (N, H, W, C), not contiguous
    assert not view.flags.c_contiguous
    for k, s, p in [(2, 2, 0), (3, 1, 1), (3, 2, 0)]:
        np.testing.assert_array_equal(im2col(view, k, s, p), im2col(np.ascontiguousarray(view), k, s, p))


def test_col2im_adds_overlapping_windows() -> None:
    """3x3 windows at stride 1 on a 4x4 image: corners lie in 1 window, edges in 2, the interior in 4."""
    x = np.zeros((1, 4, 4, 1))
    counts = col2im(np.ones_like(im2col(x, 3)), x.shape, 3)
    np.testing.assert_array_equal(counts[0, :, :, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


# --- the old (N, C, H, W) convolution, by loops: an independent reference -------------------------


def im2col_nchw_by_loops(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """The old layout: x (N, C, H, W) → (N·Ho·Wo, C·k·k), columns ordered channel, kernel row, kernel column."""
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
    return np.stack(
        [
            padded[b, :, i * s : i * s + k, j * s : j * s + k].reshape(-1)
            for b, i, j in itertools.product(range(n), range(ho), range(wo))
        ]
    )


def conv_nchw_by_loops(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, s: int, p: int, dy: np.ndarray
) -> tuple[np.ndarray, ...]:
    """y, dx, dW, db of a convolution in (N, C, H, W), one output pixel at a time, from the definition."""
    n, _, h, w = x.shape
    o, _, k, _ = weight.shape
    ho, wo = conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    y, dpadded, dw = np.zeros((n, o, ho, wo)), np.zeros_like(padded), np.zeros_like(weight)
    for i, j in itertools.product(range(ho), range(wo)):
        rows, cols = slice(i * s, i * s + k), slice(j * s, j * s + k)
        window = padded[:, :, rows, cols]  # (N, C, k, k)
        y[:, :, i, j] = np.einsum("nckl,ockl->no", window, weight)
        dw += np.einsum("no,nckl->ockl", dy[:, :, i, j], window)
        dpadded[:, :, rows, cols] += np.einsum("no,ockl->nckl", dy[:, :, i, j], weight)
    if bias is not None:
        y += bias[None, :, None, None]
    db = dy.sum(axis=(0, 2, 3))
    return y, dpadded[:, :, p : p + h, p : p + w], dw, db


NCHW_CASES = [(3, 1, 1), (3, 2, 1), (3, 1, 0), (1, 1, 0), (2, 3, 2), (5, 1, 2), (4, 2, 0)]


@pytest.mark.parametrize("kernel,stride,padding", NCHW_CASES)
def test_channels_last_im2col_is_the_nchw_one_with_columns_reordered(kernel: int, stride: int, padding: int) -> None:
    x = np.random.default_rng([kernel, stride, padding]).standard_normal((2, 3, 7, 6))  # (N, C, H, W)
    old = im2col_nchw_by_loops(x, kernel, stride, padding)  # columns (c, ki, kj)
    new = im2col(x.transpose(0, 2, 3, 1), kernel, stride, padding)  # columns (ki, kj, c)
    reordered = new.reshape(-1, kernel, kernel, 3).transpose(0, 3, 1, 2).reshape(new.shape)
    np.testing.assert_array_equal(reordered, old)


@pytest.mark.parametrize("backward_by", ["auto", "col2im"])
@pytest.mark.parametrize("kernel,stride,padding", NCHW_CASES)
def test_conv_equals_the_nchw_convolution_after_transposing(
    kernel: int, stride: int, padding: int, backward_by: str
) -> None:
    rng = np.random.default_rng([kernel, stride, padding, 7])
    conv = Conv2d(3, 4, kernel, stride, padding, rng=rng, dtype=np.float64, backward_by=backward_by)
    conv.bias.data[...] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 7, 6))  # (N, C, H, W): the old layout
    ho, wo = conv.output_size(7, 6)
    dy = rng.standard_normal((2, 4, ho, wo))  # (N, O, Ho, Wo)
    y_ref, dx_ref, dw_ref, db_ref = conv_nchw_by_loops(x, conv.weight.data, conv.bias.data, stride, padding, dy)

    # the old im2col convolution: cols (N·Ho·Wo, C·k·k) @ W (C·k·k, O)
    old = (im2col_nchw_by_loops(x, kernel, stride, padding) @ conv.weight.data.reshape(4, -1).T).reshape(2, ho, wo, 4)
    np.testing.assert_allclose(old.transpose(0, 3, 1, 2) + conv.bias.data[None, :, None, None], y_ref, rtol=1e-12)

    y = conv(x.transpose(0, 2, 3, 1))  # (N, Ho, Wo, O)
    dx = conv.backward(dy.transpose(0, 2, 3, 1))  # (N, H, W, C)
    np.testing.assert_allclose(y.transpose(0, 3, 1, 2), y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx.transpose(0, 3, 1, 2), dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, db_ref, rtol=1e-12, atol=1e-12)


# --- Conv2d ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backward_by", ["auto", "col2im"])
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
    size: tuple[int, int], kernel: int, stride: int, padding: int, expected: tuple[int, int], backward_by: str
) -> None:
    rng = np.random.default_rng(0)
    conv = Conv2d(2, 5, kernel, stride, padding, rng=rng, dtype=np.float64, backward_by=backward_by)
    y = conv(np.zeros((3, *size, 2)))
    assert y.shape == (3, *expected, 5)
    assert conv.output_size(*size) == expected
    assert conv.backward(np.ones_like(y)).shape == (3, *size, 2)


def test_horizontal_edge_kernel() -> None:
    """A kernel that subtracts the row above from the row below fires only along a horizontal edge."""
    conv = Conv2d(1, 1, 3, rng=np.random.default_rng(0), dtype=np.float64)
    conv.weight.data[0, 0] = [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]
    image = np.zeros((1, 6, 5, 1))
    image[0, 3:, :, 0] = 1.0  # dark top half, bright bottom half
    np.testing.assert_array_equal(conv(image)[0, :, :, 0], [[0, 0, 0], [3, 3, 3], [3, 3, 3], [0, 0, 0]])
    vertical = np.zeros((1, 6, 5, 1))
    vertical[0, :, 2:, 0] = 1.0  # a vertical edge: the kernel does not see it
    np.testing.assert_array_equal(conv(vertical), np.zeros((1, 4, 3, 1)))


def test_conv_weight_layout_and_init() -> None:
    conv = Conv2d(4, 6, 3, rng=np.random.default_rng(0), dtype=np.float64)
    assert conv.weight.data.shape == (6, 4, 3, 3)  # (out_channels, in_channels, k, k), as in PyTorch
    bound = np.sqrt(6 / (4 * 3 * 3))
    assert np.abs(conv.weight.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.9 * bound  # uniform over the whole He range
    assert set(conv.parameters()) == {"weight", "bias"}
    assert set(Conv2d(4, 6, 3, bias=False, rng=np.random.default_rng(0)).parameters()) == {"weight"}


def test_backward_by_validation() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"flipped-kernel backward needs stride 1.*stride 2"):
        Conv2d(3, 4, 3, stride=2, padding=1, rng=rng, backward_by="flipped")
    with pytest.raises(ValueError, match=r"flipped-kernel backward needs .*padding <= kernel - 1.*padding 3"):
        Conv2d(3, 4, 3, stride=1, padding=3, rng=rng, backward_by="flipped")
    with pytest.raises(ValueError, match=r"backward_by must be one of \(.*'col2im', 'flipped'\), got 'transpose'"):
        Conv2d(3, 4, 3, rng=rng, backward_by="transpose")
    assert Conv2d(3, 4, 3, padding=1, rng=rng, backward_by="flipped").flipped
    assert Conv2d(3, 4, 3, padding=1, rng=rng).flipped  # "auto" takes the short route where it can
    assert not Conv2d(3, 4, 3, padding=1, rng=rng, backward_by="col2im").flipped
    assert not Conv2d(3, 4, 3, stride=2, padding=1, rng=rng).flipped  # stride 2: "auto" falls back to col2im
    assert not Conv2d(3, 4, 1, padding=1, rng=rng).flipped  # padding > kernel - 1: likewise


def _conv_pair(
    cin: int, cout: int, k: int, s: int, p: int, bias: bool, dtype: Any, weight: np.ndarray, b: np.ndarray
) -> dict[str, Conv2d]:
    """The same convolution twice, one per backward route."""
    convs = {}
    for route in ("auto", "col2im"):
        conv = Conv2d(cin, cout, k, s, p, bias=bias, rng=np.random.default_rng(0), dtype=dtype, backward_by=route)
        conv.weight.data[...] = weight
        if bias:
            conv.bias.data[...] = b
        convs[route] = conv
    return convs


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kernel,stride,padding", list(itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 2))))
def test_fast_backward_equals_the_col2im_reference(kernel: int, stride: int, padding: int, bias: bool) -> None:
    """``backward_by="auto"`` (the flipped kernel where it applies) gives what col2im gives, in float64 and float32."""
    rng = np.random.default_rng([kernel, stride, padding, int(bias)])
    cin, cout, n = (int(v) for v in rng.integers(1, 5, size=3))
    h, w = (int(v) for v in rng.integers(max(1, kernel - 2 * padding), kernel + 7, size=2))
    weight, b = rng.standard_normal((cout, cin, kernel, kernel)), rng.standard_normal(cout)
    x = rng.standard_normal((n, h, w, cin))  # (N, H, W, C)
    ho, wo = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
    dy = rng.standard_normal((n, ho, wo, cout))  # (N, Ho, Wo, O)
    for dtype, rtol in [(np.float64, 1e-12), (np.float32, 1e-5)]:
        convs = _conv_pair(cin, cout, kernel, stride, padding, bias, dtype, weight, b)
        assert convs["auto"].flipped == (stride == 1 and padding <= kernel - 1)
        assert not convs["col2im"].flipped
        results = {}
        for route, conv in convs.items():
            y = conv(x.astype(dtype))
            dx = conv.backward(dy.astype(dtype))
            grads = [conv.weight.grad] + ([conv.bias.grad] if bias else [])
            results[route] = [y, dx, *grads]
        for what, fast, reference in zip(["y", "dx", "dW", "db"], results["auto"], results["col2im"], strict=False):
            assert fast.dtype == reference.dtype == dtype, what
            scale = float(np.abs(reference).max())  # rounding is relative to the magnitudes summed
            message = f"{dtype.__name__} {what}"
            np.testing.assert_allclose(fast, reference, rtol=rtol, atol=rtol * scale, err_msg=message)


# --- Workspace and chunks: work arrays reused from call to call, the batch a few images at a time ----


def test_workspace_hands_back_views_of_buffers_that_only_grow() -> None:
    work = im2col_module.Workspace(np, np.float64)
    a = work.get("a", (2, 3))
    assert a.dtype == np.float64 and a.shape == (2, 3)
    a[...] = 7.0
    b = work.get("a", (3, 2))  # the same size: the same memory, another shape
    assert np.shares_memory(a, b) and np.all(b == 7.0)
    c = work.get("a", (1, 4))  # smaller: still the same buffer
    assert np.shares_memory(a, c)
    d = work.get("a", (4, 4))  # larger: a new buffer
    assert not np.shares_memory(a, d) and work.nbytes() == 16 * 8
    assert not np.shares_memory(work.get("other", (2, 3)), d)  # names are separate buffers


def test_one_workspace_per_dtype_and_device() -> None:
    x64, x32 = np.zeros(1), np.zeros(1, dtype=np.float32)
    assert im2col_module.workspace(x64) is im2col_module.workspace(np.ones(3))
    assert im2col_module.workspace(x64) is not im2col_module.workspace(x32)
    assert im2col_module.workspace(x32).get("a", (2,)).dtype == np.float32


@pytest.mark.parametrize("n,image_bytes,sizes", [(10, 2**20, [4, 4, 2]), (3, 1, [3]), (5, 2**30, [1] * 5)])
def test_image_chunks_cover_the_batch_once(
    n: int, image_bytes: int, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(im2col_module.CHUNK_BYTES, "cpu", 4 * 2**20)
    chunks = im2col_module.image_chunks(n, image_bytes, np.zeros(1))
    assert [c.stop - c.start for c in chunks] == sizes
    assert chunks[0].start == 0 and chunks[-1].stop == n
    assert all(a.stop == b.start for a, b in itertools.pairwise(chunks))


def test_im2col_in_a_workspace_equals_im2col_without() -> None:
    """One Workspace through calls of changing batch size, size and padding: every result as if fresh."""
    rng = np.random.default_rng(13)
    for dtype in (np.float32, np.float64):
        work = im2col_module.Workspace(np, dtype)
        calls = [
            ((2, 5, 6, 3), 3, 1, 1),
            ((4, 5, 6, 3), 3, 1, 1),  # a larger batch
            ((1, 5, 6, 3), 3, 1, 1),  # a smaller one: a view of the first numbers of the buffers
            ((1, 3, 4, 3), 3, 1, 2),  # a wider zero border in a buffer that held pixels before
            ((1, 5, 6, 3), 3, 2, 0),  # no padding: read from x itself
            ((2, 5, 6, 3), 3, 1, 1),  # back to the first request
        ]
        for shape, k, s, p in calls:
            x = rng.standard_normal(shape).astype(dtype)
            cols = im2col(x, k, s, p, work)
            assert cols.dtype == dtype
            np.testing.assert_array_equal(cols, im2col(x, k, s, p), err_msg=f"{shape} {dtype.__name__} k{k} s{s} p{p}")


@pytest.mark.parametrize(
    "stride,padding,backward_by", [(1, 1, "flipped"), (1, 0, "flipped"), (1, 1, "col2im"), (2, 1, "col2im")]
)
def test_conv_in_chunks_equals_the_whole_batch_at_once(
    stride: int, padding: int, backward_by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of one image (the budget set below one image) give the one-chunk results, and dWm sums the chunks."""
    rng = np.random.default_rng([stride, padding, 7])
    x = rng.standard_normal((5, 6, 7, 3))
    conv = Conv2d(3, 4, 3, stride, padding, rng=np.random.default_rng(0), dtype=np.float64, backward_by=backward_by)
    dy = rng.standard_normal((5, *conv.output_size(6, 7), 4))
    whole = _run(conv, x, dy)
    assert conv._cols is not None  # kept: the CPU's budget holds them
    monkeypatch.setitem(im2col_module.CHUNK_BYTES, "cpu", 1)
    monkeypatch.setitem(conv2d_module.KEEP_BYTES, "cpu", 0)  # as on a GPU: cols rebuilt in the backward
    assert len(im2col_module.image_chunks(5, 8, x)) == 5
    for what, a, b in zip(["y", "dx", "dW", "db"], _run(conv, x, dy), whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=what)
    assert conv._cols is None


def test_cols_are_kept_only_in_training_and_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(17)
    conv = Conv2d(3, 4, 3, 1, 1, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 5, 5, 3))
    conv(x)
    first = conv._cols
    assert first is not None and first.shape == (2 * 25, 27)
    conv(x)
    assert np.shares_memory(conv._cols, first)  # the layer's own buffers, reused from step to step
    conv.eval()
    conv(x)
    assert conv._cols is None  # evaluation has no backward to keep them for
    conv.train()
    monkeypatch.setitem(conv2d_module.KEEP_BYTES, "cpu", first.nbytes - 1)
    conv(x)
    assert conv._cols is None
    padded = 2 * 7 * 7 * 3 * 8  # the two padded 7×7×3 float64 images, kept beside their cols
    assert conv.kept_bytes(2, first.nbytes - 1) == 0 and conv.kept_bytes(2, first.nbytes) == first.nbytes + padded


def test_a_first_layer_skips_its_input_gradient() -> None:
    rng = np.random.default_rng(16)
    conv = Conv2d(3, 4, 3, 1, 1, rng=rng, dtype=np.float64)
    x, dy = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((2, 5, 5, 4))
    conv(x)
    full = conv.backward(dy)
    dw = conv.weight.grad.copy()
    conv.zero_grad()
    conv(x)
    assert conv.backward(dy, input_grad=False) is None and full.shape == x.shape
    np.testing.assert_array_equal(conv.weight.grad, dw)  # the parameters' gradients are the same


def _run(conv: Conv2d, x: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
    conv.zero_grad()
    y = conv(x)
    dx = conv.backward(dy)
    return [y, dx, *(p.grad.copy() for p in conv.parameters().values())]


@pytest.mark.parametrize(
    "stride,padding,backward_by",
    [(1, 1, "flipped"), (1, 0, "flipped"), (1, 2, "flipped"), (1, 1, "col2im"), (1, 0, "col2im"), (2, 1, "col2im")],
)
def test_conv_called_again_equals_fresh_layers(stride: int, padding: int, backward_by: str) -> None:
    """Forward–backward again and again on one layer, with changing batch sizes and dtypes, equals fresh layers."""
    rng = np.random.default_rng([stride, padding, len(backward_by)])

    def make() -> Conv2d:
        conv = Conv2d(3, 4, 3, stride, padding, rng=np.random.default_rng(0), dtype=np.float64, backward_by=backward_by)
        conv.bias.data[...] = np.arange(4.0)
        return conv

    reused = make()
    for n, dtype in [(2, np.float64), (5, np.float64), (2, np.float32), (2, np.float64), (3, np.float64)]:
        x = rng.standard_normal((n, 6, 7, 3)).astype(dtype)
        ho, wo = reused.output_size(6, 7)
        dy = rng.standard_normal((n, ho, wo, 4)).astype(dtype)
        x_before, dy_before = x.copy(), dy.copy()
        got, expected = _run(reused, x, dy), _run(make(), x, dy)
        for what, a, b in zip(["y", "dx", "dW", "db"], got, expected, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"batch {n} {dtype.__name__}: {what}")
        np.testing.assert_array_equal(x, x_before)  # the input is read, never written
        np.testing.assert_array_equal(dy, dy_before)


@pytest.mark.parametrize("backward_by,padding", [("flipped", 1), ("flipped", 2), ("col2im", 0)])
def test_results_are_not_overwritten_by_the_next_call(backward_by: str, padding: int) -> None:
    rng = np.random.default_rng(14)
    conv = Conv2d(2, 3, 3, padding=padding, rng=rng, dtype=np.float64, backward_by=backward_by)
    x1, x2 = rng.standard_normal((2, 2, 5, 5, 2))
    y1 = conv(x1)
    dx1 = conv.backward(rng.standard_normal(y1.shape))
    y1_kept, dx1_kept = y1.copy(), dx1.copy()
    y2 = conv(x2)
    dx2 = conv.backward(rng.standard_normal(y2.shape))
    np.testing.assert_array_equal(y1, y1_kept)
    np.testing.assert_array_equal(dx1, dx1_kept)
    assert not np.shares_memory(y1, y2) and not np.shares_memory(dx1, dx2)


def test_encoder_reusing_its_layers_equals_fresh_encoders() -> None:
    """Two batches of different sizes through one encoder (patch stem: windows read from a transposed view)."""
    rng = np.random.default_rng(15)

    def make() -> CNNEncoder:
        return CNNEncoder(channels=(4, 6), embed_dim=3, stem_patch=2, rng=np.random.default_rng(0), dtype=np.float64)

    reused = make()
    for n in (3, 5, 3):
        images = rng.standard_normal((n, 3, 8, 8))  # (N, C, H, W)
        g = rng.standard_normal((n, 3))
        results = []
        for enc in (reused, make()):
            enc.zero_grad()
            out = enc(images)
            results.append([out, enc.backward(g), *(p.grad.copy() for p in enc.parameters().values())])
        for a, b in zip(*results, strict=True):
            np.testing.assert_array_equal(a, b)


# --- BatchNorm2d ----------------------------------------------------------------------------------


def test_batch_norm_train_normalises_each_channel() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5, 5, 3)) * np.array([1.0, 3.0, 0.2]) + 7  # (N, H, W, C)
    y = BatchNorm2d(3, dtype=np.float64)(x)
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1, rtol=1e-3)  # 1 up to ε / σ²


def test_batch_norm_running_statistics_and_eval() -> None:
    rng = np.random.default_rng(3)
    bn = BatchNorm2d(2, momentum=0.1, dtype=np.float64)
    bn.weight.data[...] = [2.0, 0.5]
    bn.bias.data[...] = [1.0, -1.0]
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(4):
        x = rng.standard_normal((3, 4, 4, 2)) * 2 + 5
        bn(x)
        m = 3 * 4 * 4
        mean = 0.9 * mean + 0.1 * x.mean(axis=(0, 1, 2))
        var = 0.9 * var + 0.1 * x.var(axis=(0, 1, 2)) * m / (m - 1)  # unbiased
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-12)
    kept = bn.running_mean.copy()
    assert set(bn.buffers()) == {"running_mean", "running_var"}
    assert bn.buffers("stem_bn.")["stem_bn.running_var"] is bn.running_var  # the live array
    assert set(bn.parameters()) == {"weight", "bias"}  # buffers are not parameters

    bn.eval()
    x = rng.standard_normal((3, 4, 4, 2))
    y = bn(x)
    expected = (x - mean) / np.sqrt(var + 1e-5) * np.array([2.0, 0.5]) + np.array([1.0, -1.0])
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_allclose(bn(x[:1]), y[:1], rtol=1e-12)  # one image does not depend on the batch
    np.testing.assert_array_equal(bn.running_mean, kept)  # eval leaves the statistics alone


def test_batch_norm_is_the_formula_on_the_rows_view() -> None:
    """Forward, backward and running statistics against the textbook formulas on the (M, C) matrix, train then eval."""
    rng = np.random.default_rng(16)
    momentum, eps = 0.3, 1e-3
    bn = BatchNorm2d(3, momentum=momentum, eps=eps, dtype=np.float64)
    gamma, beta = rng.uniform(0.5, 2.0, 3), rng.standard_normal(3)
    bn.weight.data[...], bn.bias.data[...] = gamma, beta
    running_mean, running_var = np.zeros(3), np.ones(3)

    for step in range(3):
        x = rng.standard_normal((2, 4, 5, 3)) * np.array([2.0, 0.5, 1.0]) + np.array([1.0, -3.0, 0.0])
        dy = rng.standard_normal(x.shape)
        rows, g = x.reshape(-1, 3), dy.reshape(-1, 3)  # (M, C): one row per pixel
        m = rows.shape[0]
        mu = rows.mean(axis=0)
        var = ((rows - mu) ** 2).mean(axis=0)  # biased
        std = np.sqrt(var + eps)
        xhat = (rows - mu) / std
        # Ioffe & Szegedy's backward, term by term through σ² and μ
        dxhat = g * gamma
        dvar = (dxhat * (rows - mu)).sum(axis=0) * -0.5 * std**-3
        dmu = -(dxhat / std).sum(axis=0) + dvar * (-2 * (rows - mu)).mean(axis=0)
        dx_expected = dxhat / std + dvar * 2 * (rows - mu) / m + dmu / m
        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)

        bn.zero_grad()
        y = bn(x)
        dx = bn.backward(dy)
        assert y.shape == dx.shape == x.shape
        np.testing.assert_allclose(y, (xhat * gamma + beta).reshape(x.shape), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, dx_expected.reshape(x.shape), rtol=1e-10, atol=1e-12, err_msg=f"step {step}")
        np.testing.assert_allclose(bn.weight.grad, (g * xhat).sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(bn.bias.grad, g.sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-12)

    np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-12, atol=1e-15)
    kept_mean, kept_var = bn.running_mean.copy(), bn.running_var.copy()
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 3))
    dy = rng.standard_normal(x.shape)
    rows, g = x.reshape(-1, 3), dy.reshape(-1, 3)
    std = np.sqrt(running_var + eps)
    xhat = (rows - running_mean) / std
    bn.zero_grad()
    y = bn(x)
    dx = bn.backward(dy)
    np.testing.assert_allclose(y, (xhat * gamma + beta).reshape(x.shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, (g * gamma / std).reshape(x.shape), rtol=1e-12)  # statistics are constants
    np.testing.assert_allclose(bn.weight.grad, (g * xhat).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.bias.grad, g.sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, kept_mean)  # unchanged in eval
    np.testing.assert_array_equal(bn.running_var, kept_var)


def test_batch_norm_of_a_view_equals_that_of_a_copy() -> None:
    x = np.random.default_rng(17).standard_normal((2, 3, 4, 5)).transpose(0, 2, 3, 1)  # (N, H, W, C), a view
    dy = np.random.default_rng(18).standard_normal(x.shape)
    results = []
    for data in (x, np.ascontiguousarray(x)):
        bn = BatchNorm2d(3, dtype=np.float64)
        results.append([bn(data), bn.backward(dy), bn.weight.grad, bn.running_var.copy()])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_sums(dtype: type) -> None:
    rows = np.random.default_rng(19).standard_normal((37, 5)).astype(dtype)
    sums = column_sums(rows)
    assert sums.shape == (5,) and sums.dtype == dtype
    np.testing.assert_allclose(sums, rows.astype(np.float64).sum(axis=0), rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_dots(dtype: type) -> None:
    """One dot product per column, of contiguous rows and of a transposed view alike, in the rows' dtype."""
    rng = np.random.default_rng(20)
    a = rng.standard_normal((37, 5)).astype(dtype)
    b = rng.standard_normal((5, 37)).astype(dtype).T  # (37, 5), a view with swapped strides
    dots = column_dots(a, b)
    assert dots.shape == (5,) and dots.dtype == dtype
    want = [a[:, c].astype(np.float64) @ b[:, c].astype(np.float64) for c in range(5)]
    np.testing.assert_allclose(dots, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(column_dots(a, a), column_sums(a * a), rtol=1e-5 if dtype == np.float32 else 1e-12)


# --- pooling --------------------------------------------------------------------------------------


def test_pool_shapes_and_values() -> None:
    x = np.arange(2 * 4 * 6 * 3, dtype=np.float64).reshape(2, 4, 6, 3)  # (N, H, W, C)
    np.testing.assert_array_equal(MaxPool2d(2)(x), x[:, 1::2, 1::2, :])  # increasing values: bottom-right wins
    np.testing.assert_allclose(AvgPool2d(2)(x), (x[:, ::2, ::2, :] + x[:, 1::2, 1::2, :]) / 2)
    assert MaxPool2d(3, stride=2)(np.zeros((1, 7, 7, 1))).shape == (1, 3, 3, 1)
    assert AvgPool2d(3, stride=1)(np.zeros((1, 5, 4, 1))).shape == (1, 3, 2, 1)
    np.testing.assert_allclose(GlobalAvgPool()(x), x.mean(axis=(1, 2)))


def test_max_pool_picks_each_channel_on_its_own() -> None:
    """One window, two channels with their maxima in different places: each channel keeps its own winner."""
    x = np.zeros((1, 2, 2, 2))
    x[0, 0, 1, 0] = 5.0  # channel 0: top right
    x[0, 1, 0, 1] = 3.0  # channel 1: bottom left
    pool = MaxPool2d(2)
    np.testing.assert_array_equal(pool(x), [[[[5.0, 3.0]]]])
    dx = pool.backward(np.array([[[[10.0, 20.0]]]]))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 10], [0, 0]])
    np.testing.assert_array_equal(dx[0, :, :, 1], [[0, 0], [20, 0]])


def test_max_pool_ties_go_to_the_first_element() -> None:
    pool = MaxPool2d(2)
    pool(np.ones((1, 2, 4, 1)))
    dx = pool.backward(np.array([[[[3.0], [5.0]]]]))  # (1, 1, 2, 1)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[3, 0, 5, 0], [0, 0, 0, 0]])


def test_max_pool_sums_gradients_of_overlapping_windows() -> None:
    x = np.zeros((1, 3, 3, 1))
    x[0, 1, 1, 0] = 1.0  # the centre wins all four 2x2 windows
    pool = MaxPool2d(2, stride=1)
    pool(x)
    dx = pool.backward(np.array([[[[1.0], [2.0]], [[3.0], [4.0]]]]))  # (1, 2, 2, 1)
    assert dx[0, 1, 1, 0] == 10.0
    assert dx.sum() == 10.0


def test_global_avg_pool_backward_spreads_evenly() -> None:
    pool = GlobalAvgPool()
    pool(np.zeros((2, 4, 5, 3)))
    dx = pool.backward(np.full((2, 3), 20.0))
    np.testing.assert_array_equal(dx, np.ones((2, 4, 5, 3)))


# --- residual blocks and the encoder --------------------------------------------------------------


def test_residual_block_shortcut_only_when_needed() -> None:
    rng = np.random.default_rng(0)
    assert ResidualBlock(4, 4, rng=rng).shortcut_conv is None
    assert ResidualBlock(4, 8, rng=rng).shortcut_conv is not None
    block = ResidualBlock(4, 4, stride=2, rng=rng)
    assert block.shortcut_conv is not None
    assert block(np.zeros((2, 6, 6, 4), dtype=np.float32)).shape == (2, 3, 3, 4)


def test_encoder_shapes_and_stages() -> None:
    rng = np.random.default_rng(0)
    enc = CNNEncoder(channels=(4, 6, 8), blocks_per_stage=2, embed_dim=5, rng=rng, dtype=np.float64)
    assert len(enc.blocks) == 6
    assert [b.conv1.stride for b in enc.blocks] == [1, 1, 2, 1, 2, 1]  # stride 2 where a stage begins
    images = np.random.default_rng(1).standard_normal((3, 3, 12, 8))  # (N, C, H, W), not square
    out = enc(images)
    assert out.shape == (3, 5)
    assert enc.backward(np.ones_like(out)).shape == images.shape  # the gradient comes back (N, C, H, W)


def test_encoder_cost() -> None:
    """miniclip.measure.cost's rows for the default CNN: by hand, and against the layers of the built encoder."""
    enc = CNNEncoder(rng=np.random.default_rng(0))
    rows = cnn_cost((3, 32, 32), enc.channels, 1, enc.embed_dim)
    cost = ModelCost(rows)
    params = enc.parameters()
    assert cost.parameters == sum(p.data.size for p in params.values()) == 315_552
    for row in rows:  # each row's parameters are those of the module it names
        own = sum(p.data.size for name, p in params.items() if name.startswith(row.name + "."))
        assert row.parameters == own, row.name
    stem = 32 * 32 * 32 * 3 * 9  # output pixels × output channels × (input channels · 3 · 3)
    stage1 = 2 * 32 * 32 * 32 * 32 * 9
    stage2 = 16 * 16 * 64 * (32 * 9 + 64 * 9 + 32)  # conv1, conv2 and the 1x1 shortcut
    stage3 = 8 * 8 * 128 * (64 * 9 + 128 * 9 + 64)
    assert cost.multiply_adds == stem + stage1 + stage2 + stage3 + 128 * 64 == 49_127_424
    assert cost.flops == 2 * cost.multiply_adds

    # the shapes (C, H, W) per image of the rows are those a forward pass makes, channels-last
    by_name = cost.by_name()
    x = enc.stem_relu(enc.stem_bn(enc.stem_conv(np.zeros((2, 32, 32, 3), dtype=np.float32))))  # (N, H, W, C)
    assert (x.shape[3], x.shape[1], x.shape[2]) == by_name["stem_relu"].output == (32, 32, 32)
    for i, block in enumerate(enc.blocks):
        x = block(x)
        assert (x.shape[3], x.shape[1], x.shape[2]) == by_name[f"blocks.{i}.relu_out"].output
    assert [by_name[f"blocks.{i}.relu_out"].output for i in range(3)] == [(32, 32, 32), (64, 16, 16), (128, 8, 8)]
    assert by_name["pool"].output == (128,) and by_name["project"].output == (64,)


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
        (lambda r: Conv2d(3, 4, 3, stride=2, padding=1, rng=r), (2, 6, 6, 3)),
        (lambda r: Conv2d(3, 4, 3, padding=1, rng=r, backward_by="flipped"), (2, 6, 6, 3)),
        (lambda r: Conv2d(3, 4, 3, padding=1, rng=r, backward_by="col2im"), (2, 6, 6, 3)),
        (lambda r: BatchNorm2d(3), (2, 4, 4, 3)),
        (lambda r: BatchNorm2d(3).eval(), (2, 4, 4, 3)),
        (lambda r: MaxPool2d(2), (2, 4, 4, 3)),
        (lambda r: AvgPool2d(3, stride=2), (2, 5, 5, 3)),
        (lambda r: GlobalAvgPool(), (2, 4, 4, 3)),
        (lambda r: ResidualBlock(3, 4, stride=2, rng=r), (2, 6, 6, 3)),
        (lambda r: CNNEncoder(channels=(4, 8), embed_dim=5, rng=r), (2, 3, 8, 8)),  # the encoder takes (N, C, H, W)
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
    with pytest.raises(ValueError, match=r"channels-last \(N, H, W, 3\).*\(3, 8, 8\)"):
        conv(np.zeros((3, 8, 8), dtype=np.float32))  # not 4-D
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*\(1, 8, 8, 2\)"):
        conv(np.zeros((1, 8, 8, 2), dtype=np.float32))  # channel mismatch
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\).*\(1, 3, 8, 8\)"):
        conv(np.zeros((1, 3, 8, 8), dtype=np.float32))  # an (N, C, H, W) image by mistake
    with pytest.raises(ValueError, match="larger than the padded input 4x4"):
        conv(np.zeros((1, 4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"channels-last \(N, H, W, 2\)"):
        BatchNorm2d(2)(np.zeros((1, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"\(N, H, W, 2\).*\(1, 2, 4, 4\)"):
        BatchNorm2d(2)(np.zeros((1, 2, 4, 4)))  # an (N, C, H, W) batch by mistake
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm2d(2)(np.zeros((1, 1, 1, 2)))
    with pytest.raises(ValueError, match="larger than the input 3x3"):
        MaxPool2d(4)(np.zeros((1, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        AvgPool2d(2)(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        GlobalAvgPool()(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"images \(N, 3, H, W\)"):
        CNNEncoder(channels=(4,), rng=rng)(np.zeros((2, 1, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"images \(N, 3, H, W\)"):
        CNNEncoder(channels=(4,), rng=rng)(np.zeros((2, 8, 8, 3), dtype=np.float32))  # channels-last by mistake
    with pytest.raises(ValueError, match="expects cols of shape"):
        col2im(np.zeros((5, 9)), (1, 4, 4, 1), 3)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        im2col(np.zeros((4, 4)), 3)


# --- GPU: CuPy gives what NumPy gives (tests/conftest.py skips these without a GPU) ---------------


def _same_on_gpu(make: Callable[[np.random.Generator], Module], x: np.ndarray, rtol: float, calls: int = 1) -> None:
    """Build the module twice from the same seed, on the CPU and on the GPU, and compare everything.

    With ``calls`` > 1 the same batch goes forward and backward that many times (gradients
    accumulate), so work arrays reused from call to call are exercised on both devices.
    """
    cpu = make(np.random.default_rng(0))
    g = None
    for _ in range(calls):
        y_cpu = cpu(x)
        g = np.random.default_rng(1).standard_normal(y_cpu.shape).astype(x.dtype) if g is None else g
        dx_cpu = cpu.backward(g)
    with backend.using("gpu"):
        gpu = make(np.random.default_rng(0))
        for _ in range(calls):
            y_gpu = gpu(to_device(x))
            dx_gpu = gpu.backward(to_device(g))
    np.testing.assert_allclose(to_host(y_gpu), y_cpu, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(to_host(dx_gpu), dx_cpu, rtol=rtol, atol=rtol)
    for name, p in cpu.parameters().items():
        np.testing.assert_allclose(to_host(gpu.parameters()[name].grad), p.grad, rtol=rtol, atol=rtol, err_msg=name)


@pytest.mark.gpu
@pytest.mark.parametrize("stride,backward_by", [(2, "auto"), (1, "flipped"), (1, "col2im")])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_conv_gpu_matches_cpu(dtype: type, rtol: float, stride: int, backward_by: str) -> None:
    x = np.random.default_rng(2).standard_normal((2, 9, 8, 3)).astype(dtype)  # (N, H, W, C)
    make = lambda r: Conv2d(3, 5, 3, stride=stride, padding=1, rng=r, dtype=dtype, backward_by=backward_by)  # noqa: E731
    _same_on_gpu(make, x, rtol, calls=2)


@pytest.mark.gpu
@pytest.mark.parametrize("pool", [MaxPool2d(2), MaxPool2d(3, stride=2), AvgPool2d(3, stride=2), GlobalAvgPool()])
def test_pooling_gpu_matches_cpu(pool: Module) -> None:
    x = np.random.default_rng(3).permutation(2 * 7 * 7 * 3).reshape(2, 7, 7, 3) * 0.01  # (N, H, W, C)
    _same_on_gpu(lambda r: pool, x, 1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 2e-3)])
def test_batch_norm_gpu_matches_cpu(dtype: type, rtol: float) -> None:
    x = (np.random.default_rng(5).standard_normal((4, 5, 6, 3)) * 2 + 1).astype(dtype)  # (N, H, W, C)
    _same_on_gpu(lambda r: BatchNorm2d(3, dtype=dtype), x, rtol)


@pytest.mark.gpu
@pytest.mark.parametrize("stem_patch", [1, 2])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 2e-3)])
def test_encoder_gpu_matches_cpu(dtype: type, rtol: float, stem_patch: int) -> None:
    x = np.random.default_rng(4).standard_normal((4, 3, 16, 16)).astype(dtype)  # (N, C, H, W), as encoders take them
    make = lambda r: CNNEncoder(channels=(8, 16), embed_dim=6, stem_patch=stem_patch, rng=r, dtype=dtype)  # noqa: E731
    _same_on_gpu(make, x, rtol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_fast_backward_equals_col2im_on_gpu(dtype: type, rtol: float) -> None:
    rng = np.random.default_rng(6)
    weight, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    x, dy = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((2, 7, 6, 4))
    with backend.using("gpu"):
        convs = _conv_pair(3, 4, 3, 1, 1, True, dtype, weight, b)
        assert convs["auto"].flipped
        results = {}
        for route, conv in convs.items():
            y = conv(to_device(x.astype(dtype)))
            dx = conv.backward(to_device(dy.astype(dtype)))
            results[route] = [to_host(a) for a in (y, dx, conv.weight.grad, conv.bias.grad)]
    for fast, reference in zip(results["auto"], results["col2im"], strict=True):
        np.testing.assert_allclose(fast, reference, rtol=rtol, atol=rtol * float(np.abs(reference).max()))
