"""A second, independent check of every hand-written backward: PyTorch autograd in float64.

Each test draws fresh random inputs from a seeded generator, runs the miniclip forward and
backward, runs the same computation in PyTorch, and compares the outputs and every gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from miniclip.layers import ContrastiveLoss, Embedding, Linear, MeanPool, Patchify
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

F64 = np.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}


def _leaf(a: np.ndarray):
    """A float64 PyTorch leaf tensor that records its gradient."""
    return torch.tensor(np.asarray(a, dtype=F64), requires_grad=True)


def _close(ours, theirs) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL)


def _torch_clip_loss(logits, base: float = math.e, targets=None):
    """``(CE(rows) + CE(columns)) / 2`` in base ``b``: softmax_b(x) = softmax_e(x ln b), log_b = ln / ln b."""
    n = logits.shape[0]
    scaled = logits * math.log(base)
    rows_target = torch.arange(n) if targets is None else targets
    cols_target = torch.arange(n) if targets is None else targets.T
    loss = (F.cross_entropy(scaled, rows_target) + F.cross_entropy(scaled.T, cols_target)) / 2
    return loss / math.log(base)


def _patches_torch(images, p: int):
    """(N, C, H, W) → (N, P, C·p·p) with unfold: patches row by row, values channel, row, column."""
    return F.unfold(images, kernel_size=p, stride=p).transpose(1, 2)


# --- (a) the contrastive head --------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [math.e, 3.0], ids=["base e", "base 3"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrastive_loss_matches_cross_entropy(base, seed):
    rng = np.random.default_rng(seed)
    n = 3 + seed
    logits = rng.standard_normal((n, n)) * 2
    upstream = rng.uniform(0.5, 2.0)
    head = ContrastiveLoss(base=base)
    loss = head(logits)
    dlogits = head.backward(upstream)

    t_logits = _leaf(logits)
    t_loss = _torch_clip_loss(t_logits, base)
    (t_loss * upstream).backward()
    _close(loss, t_loss)
    _close(dlogits, t_logits.grad)


@pytest.mark.parametrize("seed", [0, 1])
def test_contrastive_loss_soft_targets_match_cross_entropy(seed):
    rng = np.random.default_rng(10 + seed)
    n = 4
    logits = rng.standard_normal((n, n))
    targets = rng.uniform(0.1, 1.0, (n, n)) + 2 * np.eye(n)
    for _ in range(100):  # make rows and columns both sum to 1
        targets /= targets.sum(axis=1, keepdims=True)
        targets /= targets.sum(axis=0, keepdims=True)
    head = ContrastiveLoss()
    loss = head(logits, targets=targets)
    dlogits = head.backward()

    t_logits = _leaf(logits)
    t_loss = _torch_clip_loss(t_logits, targets=torch.tensor(targets))
    t_loss.backward()
    _close(loss, t_loss)
    _close(dlogits, t_logits.grad)


# --- (b) the whole walkthrough model -----------------------------------------------------------------------------


@pytest.mark.parametrize("base", [math.e, 3.0], ids=["base e", "base 3"])
def test_walkthrough_model_matches_pytorch(base):
    rng = np.random.default_rng(20)
    cfg = WalkthroughConfig(vocab_size=7, channels=2, base=base)
    model = WalkthroughCLIP(cfg, rng=rng, dtype=F64)
    n, length = 4, 5
    ids = rng.integers(0, cfg.vocab_size, size=(n, length))
    ids[0, :2] = ids[1, 0] = 3  # a word that repeats within and across captions
    images = rng.standard_normal((n, cfg.channels, 4, 6))
    lengths = np.array([5, 2, 1, 4])
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(F64)

    loss = model(ids, images, mask)
    dimages = model.backward()

    w = {name: _leaf(p.data) for name, p in model.parameters().items()}
    t_images = _leaf(images)
    t_mask = torch.tensor(mask)
    words = w["text.lookup.table"][torch.tensor(ids)]  # (N, L, E)
    hidden = F.relu(words @ w["text.encode.weight"] + w["text.encode.bias"])  # (N, L, Ht)
    pooled = (hidden * t_mask[:, :, None]).sum(dim=1) / t_mask.sum(dim=1, keepdim=True)  # (N, Ht)
    t = pooled @ w["text.project.weight"]  # (N, d)
    patches = _patches_torch(t_images, cfg.patch_size)  # (N, P, C·p·p)
    hidden_i = F.relu(patches @ w["image.encode.weight"] + w["image.encode.bias"])  # (N, P, Hi)
    i = hidden_i.mean(dim=1) @ w["image.project.weight"]  # (N, d)
    logits = t @ i.T  # (N, N)
    t_loss = _torch_clip_loss(logits, base)
    t_loss.backward()

    _close(loss, t_loss)
    _close(model.logits, logits)
    for name, p in model.parameters().items():
        _close(p.grad, w[name].grad)
    _close(dimages, t_images.grad)


# --- (c) single layers -------------------------------------------------------------------------------------------


def test_linear_matches_pytorch():
    rng = np.random.default_rng(30)
    layer = Linear(5, 4, rng=rng, dtype=F64)
    x = rng.standard_normal((3, 2, 5))
    g = rng.standard_normal((3, 2, 4))
    y = layer(x)
    dx = layer.backward(g)

    t_x, t_w, t_b = _leaf(x), _leaf(layer.weight.data), _leaf(layer.bias.data)
    t_y = F.linear(t_x, t_w.T, t_b)  # PyTorch stores the weight as (D_out, D_in)
    t_y.backward(torch.tensor(g))
    _close(y, t_y)
    _close(dx, t_x.grad)
    _close(layer.weight.grad, t_w.grad)
    _close(layer.bias.grad, t_b.grad)


@pytest.mark.parametrize(("shape", "p"), [((2, 3, 4, 6), 2), ((1, 1, 6, 6), 3), ((2, 2, 4, 4), 4)])
def test_patchify_matches_unfold(shape, p):
    rng = np.random.default_rng(31)
    images = rng.standard_normal(shape)
    layer = Patchify(p)
    patches = layer(images)
    g = rng.standard_normal(patches.shape)
    dimages = layer.backward(g)

    t_images = _leaf(images)
    t_patches = _patches_torch(t_images, p)
    t_patches.backward(torch.tensor(g))
    _close(patches, t_patches)
    _close(dimages, t_images.grad)


def test_mean_pool_with_mask_matches_pytorch():
    rng = np.random.default_rng(32)
    x = rng.standard_normal((4, 5, 3))
    mask = (np.arange(5)[None, :] < np.array([5, 1, 3, 2])[:, None]).astype(F64)
    g = rng.standard_normal((4, 3))
    pool = MeanPool()
    y = pool(x, mask)
    dx = pool.backward(g)

    t_x, t_mask = _leaf(x), torch.tensor(mask)
    t_y = (t_x * t_mask[:, :, None]).sum(dim=1) / t_mask.sum(dim=1, keepdim=True)
    t_y.backward(torch.tensor(g))
    _close(y, t_y)
    _close(dx, t_x.grad)


def test_embedding_matches_pytorch():
    rng = np.random.default_rng(33)
    lookup = Embedding(6, 3, rng=rng, dtype=F64)
    ids = np.array([[0, 2, 2, 5], [2, 0, 1, 1]])
    g = rng.standard_normal((2, 4, 3))
    vectors = lookup(ids)
    lookup.backward(g)

    t_table = _leaf(lookup.table.data)
    t_vectors = F.embedding(torch.tensor(ids), t_table)
    t_vectors.backward(torch.tensor(g))
    _close(vectors, t_vectors)
    _close(lookup.table.grad, t_table.grad)
