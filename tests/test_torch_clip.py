"""The real CLIP against PyTorch autograd, in float64, with the same weights on both sides.

The PyTorch side is written from torch's own functions (``F.linear``, ``F.layer_norm``,
``F.multi_head_attention_forward``, ``F.gelu``, ``F.normalize``, ``F.cross_entropy``) with our
weights copied in, and its gradients come from autograd. Conventions that differ:

* our ``Linear`` stores W as (D_in, D_out), PyTorch as (D_out, D_in): every 2-D parameter named
  ``weight`` (all of them linear layers here) is transposed on the way across, and its gradient
  on the way back; tables and positional embeddings are not;
* PyTorch's ``key_padding_mask`` is True on *padding*; our mask is 1 on real tokens.
"""

from __future__ import annotations

import numpy as np
import pytest

from miniclip.encoders.text_transformer import TextTransformer
from miniclip.encoders.vit import ViT
from miniclip.model.clip import CLIP
from miniclip.model.config import build_clip
from miniclip.module import Module
from miniclip.optim import AdamW, decays
from miniclip.teaching.gradient_cases.clip import tiny_config

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

F64 = np.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}
EPS = 1e-5  # LayerNorm epsilon on both sides


def _randomise(module: Module, rng: np.random.Generator) -> Module:
    """Random values in every parameter, so that biases are not 0 and LayerNorm gains not 1."""
    for p in module.parameters().values():
        p.data[...] = rng.normal(0.0, 0.5, p.data.shape)
    return module


def _is_linear_weight(name: str, value: np.ndarray) -> bool:
    return name.rsplit(".", 1)[-1] == "weight" and value.ndim == 2


def _torch_weights(module: Module) -> dict:
    """Our parameters as PyTorch leaf tensors in PyTorch's layout, by the same names."""
    weights = {}
    for name, p in module.parameters().items():
        value = p.data.T if _is_linear_weight(name, p.data) else p.data
        weights[name] = torch.tensor(np.array(value, dtype=F64), requires_grad=True)
    return weights


def _assert_same_grads(module: Module, weights: dict, prefix: str = "") -> None:
    """Every parameter gradient of ``module`` equals the autograd gradient of the same weight."""
    params = module.parameters()
    assert {prefix + name for name in params} <= set(weights)
    for name, p in params.items():
        theirs = weights[prefix + name].grad
        assert theirs is not None, f"PyTorch computed no gradient for {name}"
        theirs = theirs.numpy().T if _is_linear_weight(name, p.data) else theirs.numpy()
        np.testing.assert_allclose(p.grad, theirs, **TOL, err_msg=name)
        assert np.abs(p.grad).max() > 0, f"d({name}) is all zeros: nothing was compared"


# --- the PyTorch compositions ----------------------------------------------------------------------------------------


def _torch_block(w: dict, prefix: str, x, heads: int, padding=None):
    """Pre-norm block: x + attn(ln1(x)), then + mlp(ln2(·)), from torch's functions."""
    dim = x.shape[-1]
    a = F.layer_norm(x, (dim,), w[prefix + "ln1.weight"], w[prefix + "ln1.bias"], EPS).transpose(0, 1)  # (L, N, D)
    attended, _ = F.multi_head_attention_forward(
        a,
        a,
        a,
        dim,
        heads,
        w[prefix + "attn.qkv.weight"],  # (3D, D): rows q, k, v
        w[prefix + "attn.qkv.bias"],
        None,
        None,
        False,
        0.0,
        w[prefix + "attn.out.weight"],
        w[prefix + "attn.out.bias"],
        training=False,
        key_padding_mask=padding,
        need_weights=False,
    )
    h = x + attended.transpose(0, 1)  # (N, L, D)
    m = F.layer_norm(h, (dim,), w[prefix + "ln2.weight"], w[prefix + "ln2.bias"], EPS)
    m = F.gelu(F.linear(m, w[prefix + "mlp.fc1.weight"], w[prefix + "mlp.fc1.bias"]), approximate="tanh")
    return h + F.linear(m, w[prefix + "mlp.fc2.weight"], w[prefix + "mlp.fc2.bias"])


def _torch_vit(w: dict, images, patch: int, depth: int, heads: int, prefix: str = ""):
    n, c, height, width = images.shape
    # patchify exactly as miniclip.layers.patchify documents: patches row by row, values channel, row, column
    x = images.reshape(n, c, height // patch, patch, width // patch, patch).permute(0, 2, 4, 1, 3, 5)
    x = x.reshape(n, (height // patch) * (width // patch), c * patch * patch)  # (N, P, C·p·p)
    x = (
        F.linear(x, w[prefix + "patch_embed.weight"], w[prefix + "patch_embed.bias"])
        + w[prefix + "positions.positions"]
    )
    for i in range(depth):
        x = _torch_block(w, f"{prefix}blocks.{i}.", x, heads)
    x = F.layer_norm(x, (x.shape[-1],), w[prefix + "norm.weight"], w[prefix + "norm.bias"], EPS)
    return F.linear(x.mean(dim=1), w[prefix + "project.weight"])  # (N, d)


def _torch_text(w: dict, ids: np.ndarray, mask: np.ndarray, pool: str, depth: int, heads: int, prefix: str = ""):
    length = ids.shape[1]
    ids_t, m = torch.from_numpy(ids), torch.from_numpy(mask)
    x = w[prefix + "lookup.table"][ids_t] + w[prefix + "positions.positions"][:length]  # (N, L, D)
    for i in range(depth):
        x = _torch_block(w, f"{prefix}blocks.{i}.", x, heads, padding=m == 0)
    x = F.layer_norm(x, (x.shape[-1],), w[prefix + "norm.weight"], w[prefix + "norm.bias"], EPS)
    if pool == "end":
        pooled = x[torch.arange(len(ids)), m.sum(dim=1).long() - 1]  # the last real token of each row
    else:
        pooled = (x * m[:, :, None]).sum(dim=1) / m.sum(dim=1, keepdim=True)
    return F.linear(pooled, w[prefix + "project.weight"])  # (N, d)


def _torch_clip_loss(t, i, logit_scale, targets=None):
    """normalise → logits = e^s · cos → (CE(logits) + CE(logitsᵀ)) / 2."""
    logits = logit_scale.exp() * F.normalize(t, dim=1) @ F.normalize(i, dim=1).T  # (N, N)
    n = logits.shape[0]
    rows = torch.arange(n) if targets is None else targets
    cols = torch.arange(n) if targets is None else targets.T
    return (F.cross_entropy(logits, rows) + F.cross_entropy(logits.T, cols)) / 2, logits


def _mask(lengths: list[int], length: int) -> np.ndarray:
    return (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype(F64)


# --- encoders ---------------------------------------------------------------------------------------------------------


def test_vit_matches_torch():
    rng = np.random.default_rng(10)
    depth, heads, patch = 2, 2, 4
    ours = _randomise(
        ViT(
            image_size=8,
            patch_size=patch,
            channels=3,
            width=8,
            depth=depth,
            heads=heads,
            mlp_ratio=2,
            embed_dim=5,
            rng=rng,
            dtype=F64,
        ),
        rng,
    )
    images, g = rng.standard_normal((3, 3, 8, 8)), rng.standard_normal((3, 5))
    w = _torch_weights(ours)
    images_t = torch.tensor(images, requires_grad=True)
    out_t = _torch_vit(w, images_t, patch, depth, heads)
    (out_t * torch.from_numpy(g)).sum().backward()

    out = ours(images)
    dimages = ours.backward(g)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    np.testing.assert_allclose(dimages, images_t.grad.numpy(), **TOL)
    _assert_same_grads(ours, w)
    assert len(ours.parameters()) == 3 + 12 * depth + 3  # patch embed + positions, blocks, norm + projection


@pytest.mark.parametrize("pool", ["end", "mean"])
def test_text_transformer_matches_torch(pool):
    rng = np.random.default_rng(11)
    depth, heads, vocab, context = 2, 2, 11, 6
    ours = _randomise(
        TextTransformer(
            vocab_size=vocab,
            context_length=context,
            width=8,
            depth=depth,
            heads=heads,
            mlp_ratio=2,
            embed_dim=5,
            pool=pool,
            rng=rng,
            dtype=F64,
        ),
        rng,
    )
    ids = rng.integers(0, vocab, size=(4, context))
    ids[0, :3] = ids[2, 1] = 7  # a repeated token: its table row collects several gradients
    mask = _mask([6, 3, 1, 4], context)
    g = rng.standard_normal((4, 5))
    w = _torch_weights(ours)
    out_t = _torch_text(w, ids, mask, pool, depth, heads)
    (out_t * torch.from_numpy(g)).sum().backward()

    out = ours(ids, mask)
    assert ours.backward(g) is None  # token ids are not differentiable
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    _assert_same_grads(ours, w)  # the embedding table and the positions included


# --- the CLIP head: normalise, scale by e^s, contrastive loss both ways ---------------------------------------------


class _Features(Module):
    """A stand-in encoder that hands its input features straight to the head and keeps their gradient."""

    def forward(self, x, mask=None):
        return x

    def backward(self, d):
        self.grad = d
        return d


@pytest.mark.parametrize("soft", [False, True], ids=["identity targets", "soft targets"])
@pytest.mark.parametrize("seed", [0, 1])
def test_clip_head_matches_torch(seed, soft):
    rng = np.random.default_rng([12, seed])
    n, d = 5, 3
    t, i = rng.standard_normal((n, d)) * 2, rng.standard_normal((n, d)) * 0.5  # unnormalised features
    s = rng.uniform(0.5, 4.0)
    targets = None
    if soft:
        targets = rng.uniform(0.0, 1.0, (n, n)) + 4 * np.eye(n)
        for _ in range(200):  # Sinkhorn: rows and columns must both sum to 1, as the loss requires
            targets /= targets.sum(axis=1, keepdims=True)
            targets /= targets.sum(axis=0, keepdims=True)
    model = CLIP(_Features(), _Features(), logit_scale=s, dtype=F64)
    loss = model(t, i, targets=targets)
    di = model.backward()

    t_t, i_t, s_t = (torch.tensor(a, requires_grad=True) for a in (t, i, np.array(s)))
    loss_t, logits_t = _torch_clip_loss(t_t, i_t, s_t, None if targets is None else torch.from_numpy(targets))
    loss_t.backward()
    np.testing.assert_allclose(loss, loss_t.item(), **TOL)
    np.testing.assert_allclose(model.logits, logits_t.detach().numpy(), **TOL)
    np.testing.assert_allclose(model.text.grad, t_t.grad.numpy(), **TOL)
    np.testing.assert_allclose(di, i_t.grad.numpy(), **TOL)
    np.testing.assert_allclose(model.logit_scale.log_scale.grad, s_t.grad.numpy(), **TOL)


@pytest.mark.parametrize("pool", ["end", "mean"])
def test_whole_vit_transformer_clip_matches_torch(pool):
    cfg = tiny_config("vit", "transformer", text_pool=pool, image_depth=2, text_depth=2)
    rng = np.random.default_rng(13)
    model = _randomise(build_clip(cfg, rng=rng, dtype=F64), rng)
    ids = rng.integers(1, cfg.vocab_size, size=(4, cfg.context_length))
    mask = _mask([5, 2, 1, 3], cfg.context_length)
    images = rng.standard_normal((4, cfg.channels, cfg.image_size, cfg.image_size))
    loss = model(ids, images, mask)
    dimages = model.backward()

    w = _torch_weights(model)
    images_t = torch.tensor(images, requires_grad=True)
    t = _torch_text(w, ids, mask, pool, cfg.text_depth, cfg.text_heads, prefix="text.")
    i = _torch_vit(w, images_t, cfg.patch_size, cfg.image_depth, cfg.image_heads, prefix="image.")
    loss_t, _ = _torch_clip_loss(t, i, w["logit_scale.log_scale"])
    loss_t.backward()
    np.testing.assert_allclose(loss, loss_t.item(), **TOL)
    np.testing.assert_allclose(dimages, images_t.grad.numpy(), **TOL)
    _assert_same_grads(model, w)


# --- one AdamW step on a whole model -------------------------------------------------------------------------------


@pytest.mark.parametrize(("image_encoder", "text_encoder"), [("vit", "transformer"), ("cnn", "bag_of_words")])
def test_adamw_on_whole_clip_matches_torch(image_encoder, text_encoder):
    cfg = tiny_config(image_encoder, text_encoder)
    rng = np.random.default_rng(14)
    model = build_clip(cfg, rng=rng, dtype=F64)
    ids = rng.integers(1, cfg.vocab_size, size=(4, cfg.context_length))
    mask = _mask([5, 2, 1, 3], cfg.context_length)
    images = rng.standard_normal((4, cfg.channels, cfg.image_size, cfg.image_size))

    params = model.parameters()
    decayed = [name for name, p in params.items() if decays(name, p)]
    kept = [name for name in params if name not in decayed]
    assert "logit_scale.log_scale" in kept and "image.project.weight" in decayed
    for name in kept:  # biases, 1-D gains, tables, positions, the logit scale: never decayed
        assert name.endswith(("bias", "table", "positions", "log_scale")) or params[name].data.ndim < 2, name
    # Adam's moments live in the optimiser, so the same PyTorch tensors (our layout) serve every step.
    theirs = {name: torch.tensor(p.data.copy(), requires_grad=True) for name, p in params.items()}
    lr, betas, eps, wd = 1e-2, (0.9, 0.98), 1e-6, 0.1
    ours = AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    reference = torch.optim.AdamW(
        [
            {"params": [theirs[name] for name in decayed], "weight_decay": wd},
            {"params": [theirs[name] for name in kept], "weight_decay": 0.0},
        ],
        lr=lr,
        betas=betas,
        eps=eps,
        foreach=False,
    )
    for _ in range(3):  # the first step, then two with bias correction still at work
        ours.zero_grad()
        model(ids, images, mask)
        model.backward()
        for name, p in params.items():
            theirs[name].grad = torch.tensor(p.grad.copy())  # identical gradients on both sides
        before = {name: p.data.copy() for name, p in params.items()}
        ours.step()
        reference.step()
        for name, p in params.items():
            np.testing.assert_allclose(p.data, theirs[name].detach().numpy(), rtol=1e-10, atol=1e-14, err_msg=name)
            assert not np.array_equal(p.data, before[name]), f"{name} did not move"
