"""AdamW, SGD with momentum and gradient clipping against torch.optim, in float64."""

from __future__ import annotations

import numpy as np
import pytest

from miniclip.module import Parameter
from miniclip.optim import SGD, AdamW, clip_grad_norm, decays

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

SHAPES = {
    "encode.weight": (4, 3),  # decayed
    "conv.weight": (2, 3, 2, 2),  # decayed
    "encode.bias": (3,),
    "norm.weight": (3,),  # 1-D: no decay
    "lookup.table": (5, 4),
    "logit_scale": (),
}


def _pair(seed: int) -> tuple[dict[str, Parameter], dict[str, torch.Tensor]]:
    """The same random float64 weights as miniclip Parameters and as torch leaf tensors."""
    rng = np.random.default_rng(seed)
    ours = {name: Parameter(rng.standard_normal(shape)) for name, shape in SHAPES.items()}
    theirs = {name: torch.tensor(p.data.copy(), requires_grad=True) for name, p in ours.items()}
    return ours, theirs


def _set_grads(ours: dict[str, Parameter], theirs: dict[str, torch.Tensor], rng: np.random.Generator) -> None:
    for name, p in ours.items():
        g = rng.standard_normal(p.data.shape) * rng.uniform(0.1, 10.0)  # a different scale per tensor
        p.grad[...] = g
        theirs[name].grad = torch.tensor(g.copy())


def _assert_same(ours: dict[str, Parameter], theirs: dict[str, torch.Tensor]) -> None:
    for name, p in ours.items():
        np.testing.assert_allclose(p.data, theirs[name].detach().numpy(), rtol=1e-10, atol=1e-13, err_msg=name)


def test_adamw_matches_torch_with_decayed_and_undecayed_groups() -> None:
    ours, theirs = _pair(0)
    lr, betas, eps, wd = 0.01, (0.8, 0.95), 1e-6, 0.1
    opt = AdamW(ours, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    decayed = [theirs[n] for n, p in ours.items() if decays(n, p)]
    others = [theirs[n] for n, p in ours.items() if not decays(n, p)]
    assert len(decayed) == 2 and len(others) == 4
    ref = torch.optim.AdamW(
        [{"params": decayed, "weight_decay": wd}, {"params": others, "weight_decay": 0.0}],
        lr=lr,
        betas=betas,
        eps=eps,
        foreach=False,
    )
    rng = np.random.default_rng(1)
    for step in range(6):
        new_lr = lr * (0.5 + 0.1 * step)  # a changing learning rate, as a schedule gives
        opt.set_lr(new_lr)
        for group in ref.param_groups:
            group["lr"] = new_lr
        _set_grads(ours, theirs, rng)
        opt.step()
        ref.step()
        _assert_same(ours, theirs)
    for name in ours:
        torch_state = ref.state[theirs[name]]
        np.testing.assert_allclose(opt.m[name], torch_state["exp_avg"].numpy(), rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(opt.v[name], torch_state["exp_avg_sq"].numpy(), rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_torch(momentum: float) -> None:
    ours, theirs = _pair(2)
    opt = SGD(ours, lr=0.05, momentum=momentum)
    ref = torch.optim.SGD(list(theirs.values()), lr=0.05, momentum=momentum, foreach=False)
    rng = np.random.default_rng(3)
    for _ in range(5):
        _set_grads(ours, theirs, rng)
        opt.step()
        ref.step()
        _assert_same(ours, theirs)


@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(max_norm: float) -> None:
    ours, theirs = _pair(4)
    _set_grads(ours, theirs, np.random.default_rng(5))
    total = clip_grad_norm(ours, max_norm)
    ref_total = torch.nn.utils.clip_grad_norm_(list(theirs.values()), max_norm, foreach=False)
    np.testing.assert_allclose(float(total), ref_total.item(), rtol=1e-12)
    for name, p in ours.items():
        np.testing.assert_allclose(p.grad, theirs[name].grad.numpy(), rtol=1e-10, atol=1e-15, err_msg=name)
