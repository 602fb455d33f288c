"""The convolutional layers and encoder against PyTorch autograd, in float64 with copied weights.

Our layers are channels-last, (N, H, W, C), PyTorch's (N, C, H, W): arrays are transposed at the
boundary (``nchw``), weights are not (both store (out, in, k, k)). The encoder takes (N, C, H, W)
images on both sides.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from miniclip.encoders.cnn import CNNEncoder  # noqa: E402
from miniclip.layers.batch_norm import BatchNorm2d  # noqa: E402
from miniclip.layers.conv2d import Conv2d  # noqa: E402
from miniclip.layers.pooling import AvgPool2d, GlobalAvgPool, MaxPool2d  # noqa: E402

pytestmark = pytest.mark.torch
TOL = {"rtol": 1e-10, "atol": 1e-12}


def leaf(a: np.ndarray) -> torch.Tensor:
    """A float64 torch tensor that collects its gradient."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def close(ours: np.ndarray, theirs: torch.Tensor, what: str) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL, err_msg=what)


def nchw(a: np.ndarray) -> np.ndarray:
    """Ours (N, H, W, C) → PyTorch's (N, C, H, W)."""
    return a.transpose(0, 3, 1, 2)


CONV_CASES = [(3, 2, 1), (3, 1, 0), (1, 1, 0), (2, 3, 2), (4, 2, 1), (3, 1, 1), (2, 1, 1), (5, 1, 2), (3, 1, 2)]
ROUTES = [
    (k, s, p, route)
    for k, s, p in CONV_CASES
    for route in ("col2im", "flipped")
    if route == "col2im" or (s == 1 and p <= k - 1)  # the flipped kernel needs stride 1 and padding <= k - 1
]


@pytest.mark.parametrize("kernel,stride,padding,backward_by", ROUTES)
def test_conv2d(kernel: int, stride: int, padding: int, backward_by: str) -> None:
    rng = np.random.default_rng([kernel, stride, padding])
    conv = Conv2d(3, 4, kernel, stride, padding, rng=rng, dtype=np.float64, backward_by=backward_by)
    conv.bias.data[...] = rng.standard_normal(4)
    x = rng.standard_normal((2, 7, 9, 3))  # (N, H, W, C)
    y = conv(x)  # (N, Ho, Wo, O)
    g = rng.standard_normal(y.shape)
    dx = conv.backward(g)

    tx, tw, tb = leaf(nchw(x)), leaf(conv.weight.data), leaf(conv.bias.data)  # same weight layout, no transpose
    ty = F.conv2d(tx, tw, tb, stride=stride, padding=padding)
    ty.backward(torch.tensor(nchw(g)))
    close(nchw(y), ty, "y")
    close(nchw(dx), tx.grad, "dx")
    close(conv.weight.grad, tw.grad, "dW")
    close(conv.bias.grad, tb.grad, "db")


def test_batch_norm_train_then_eval() -> None:
    rng = np.random.default_rng(5)
    ours = BatchNorm2d(3, momentum=0.2, eps=1e-4, dtype=np.float64)
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2, eps=1e-4).double()
    gamma, beta = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    ours.weight.data[...], ours.bias.data[...] = gamma, beta
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(gamma))
        theirs.bias.copy_(torch.tensor(beta))

    for mode in ["train"] * 3 + ["eval"] * 2:
        ours.train(mode == "train")
        theirs.train(mode == "train")
        x = rng.standard_normal((4, 5, 6, 3)) * 3 + 2  # (N, H, W, C)
        g = rng.standard_normal(x.shape)
        ours.zero_grad()
        theirs.zero_grad()
        y = ours(x)
        dx = ours.backward(g)
        tx = leaf(nchw(x))
        ty = theirs(tx)
        ty.backward(torch.tensor(nchw(g)))
        close(nchw(y), ty, f"{mode}: y")
        close(nchw(dx), tx.grad, f"{mode}: dx")
        close(ours.weight.grad, theirs.weight.grad, f"{mode}: dγ")
        close(ours.bias.grad, theirs.bias.grad, f"{mode}: dβ")
        close(ours.running_mean, theirs.running_mean, f"{mode}: running_mean")
        close(ours.running_var, theirs.running_var, f"{mode}: running_var")


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), (2, 1), (3, None)])
def test_pooling(kernel: int, stride: int | None) -> None:
    rng = np.random.default_rng(kernel * 10 + (stride or 0))
    x = rng.permutation(2 * 8 * 7 * 3).reshape(2, 8, 7, 3) * 0.01  # (N, H, W, C), distinct: no ties in max pooling
    for ours, theirs in [
        (MaxPool2d(kernel, stride), lambda t: F.max_pool2d(t, kernel, stride)),
        (AvgPool2d(kernel, stride), lambda t: F.avg_pool2d(t, kernel, stride)),
    ]:
        y = ours(x)
        g = rng.standard_normal(y.shape)
        tx = leaf(nchw(x))
        ty = theirs(tx)
        ty.backward(torch.tensor(nchw(g)))
        close(nchw(y), ty, f"{type(ours).__name__}: y")
        close(nchw(ours.backward(g)), tx.grad, f"{type(ours).__name__}: dx")
    pool = GlobalAvgPool()
    y = pool(x)  # (N, C)
    g = rng.standard_normal(y.shape)
    tx = leaf(nchw(x))
    ty = tx.mean(dim=(2, 3))
    ty.backward(torch.tensor(g))
    close(y, ty, "GlobalAvgPool: y")
    close(nchw(pool.backward(g)), tx.grad, "GlobalAvgPool: dx")


def torch_encoder(enc: CNNEncoder, images: torch.Tensor, params: dict, buffers: dict) -> torch.Tensor:
    """The same network written with torch.nn.functional, reading our weights by name."""

    def bn(name: str, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x,
            buffers[name + ".running_mean"],
            buffers[name + ".running_var"],
            params[name + ".weight"],
            params[name + ".bias"],
            training=enc.training,
            momentum=0.1,
            eps=1e-5,
        )

    def conv(name: str, module: Conv2d, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, params[name + ".weight"], stride=module.stride, padding=module.padding)

    x = F.relu(bn("stem_bn", conv("stem_conv", enc.stem_conv, images)))
    for i, block in enumerate(enc.blocks):
        b = f"blocks.{i}."
        main = F.relu(bn(b + "bn1", conv(b + "conv1", block.conv1, x)))
        main = bn(b + "bn2", conv(b + "conv2", block.conv2, main))
        skip = x
        if block.shortcut_conv is not None:
            skip = bn(b + "shortcut_bn", conv(b + "shortcut_conv", block.shortcut_conv, x))
        x = F.relu(main + skip)
    return x.mean(dim=(2, 3)) @ params["project.weight"]  # our projection stores (D_in, D_out)


def _bn_modules(enc: CNNEncoder) -> dict[str, BatchNorm2d]:
    found = {"stem_bn": enc.stem_bn}
    for i, block in enumerate(enc.blocks):
        for name in ("bn1", "bn2", "shortcut_bn"):
            if getattr(block, name) is not None:
                found[f"blocks.{i}.{name}"] = getattr(block, name)
    return found


@pytest.mark.parametrize("stem_patch", [1, 2])  # a 3x3 stem, and a patch stem that reads a transposed view unpadded
def test_cnn_encoder_end_to_end(stem_patch: int) -> None:
    rng = np.random.default_rng(6)
    enc = CNNEncoder(
        channels=(4, 6, 8), blocks_per_stage=2, embed_dim=5, stem_patch=stem_patch, rng=rng, dtype=np.float64
    )
    params = {name: leaf(p.data) for name, p in enc.parameters().items()}
    bns = _bn_modules(enc)
    buffers = {name: torch.tensor(arr.copy()) for n, m in bns.items() for name, arr in m.buffers(n + ".").items()}
    assert len(buffers) == 2 * (1 + 2 * 6 + 2)  # stem, two in each of 6 blocks, two shortcut projections

    for mode in ["train", "train", "eval"]:
        enc.train(mode == "train")
        images = rng.standard_normal((4, 3, 12, 10))
        g = rng.standard_normal((4, 5))
        enc.zero_grad()
        for p in params.values():
            p.grad = None
        out = enc(images)
        d_images = enc.backward(g)
        t_images = leaf(images)
        t_out = torch_encoder(enc, t_images, params, buffers)
        t_out.backward(torch.tensor(g))
        close(out, t_out, f"{mode}: embeddings")
        close(d_images, t_images.grad, f"{mode}: d images")
        for name, p in enc.parameters().items():
            close(p.grad, params[name].grad, f"{mode}: d {name}")
        for n, m in bns.items():
            for name, arr in m.buffers(n + ".").items():
                close(arr, buffers[name], f"{mode}: {name}")
