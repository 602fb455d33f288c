"""Optimisers, gradient clipping and the learning-rate schedule (NumPy; GPU tests skip without one)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.layers import Embedding, Linear
from miniclip.module import Module, Parameter
from miniclip.optim import SGD, AdamW, clip_grad_norm, decays, warmup_cosine


class Tiny(Module):
    """Every kind of parameter name the decay rule must tell apart."""

    def __init__(self, rng: np.random.Generator, dtype: object = np.float32) -> None:
        self.lookup = Embedding(7, 4, rng=rng, dtype=dtype)  # lookup.table (2-D, no decay)
        self.encode = Linear(4, 3, rng=rng, dtype=dtype)  # encode.weight (decay), encode.bias
        self.positions = Parameter.from_host(rng.normal(size=(5, 4)), dtype)  # 2-D, no decay
        self.logit_scale = Parameter.from_host(np.array(math.log(1 / 0.07)), dtype)  # 0-d temperature


class Norm(Module):
    def __init__(self, dtype: object) -> None:
        self.weight = Parameter.from_host(np.ones(3), dtype)  # LayerNorm gain: named weight, but 1-D
        self.bias = Parameter.from_host(np.zeros(3), dtype)


class Conv(Module):
    def __init__(self, rng: np.random.Generator, dtype: object) -> None:
        self.weight = Parameter.from_host(rng.normal(size=(3, 2, 2, 2)), dtype)  # a 4-D kernel: decays


def _model(seed: int = 0, dtype: object = np.float32) -> Module:
    rng = np.random.default_rng(seed)
    model = Tiny(rng, dtype)
    model.norm = Norm(dtype)
    model.conv = Conv(rng, dtype)
    return model


def _random_grads(params: dict[str, Parameter], rng: np.random.Generator, scale: float = 1.0) -> None:
    for p in params.values():
        p.grad[...] = backend.to_device(rng.normal(0.0, scale, p.data.shape).astype(p.data.dtype))


def _quadratic(w: np.ndarray, curvature: np.ndarray) -> tuple[float, np.ndarray]:
    """f(w) = ½ Σ a w², gradient a w."""
    return 0.5 * float((curvature * w * w).sum()), curvature * w


# ---------------------------------------------------------------- SGD


def test_sgd_plain_step_by_hand() -> None:
    p = Parameter(np.array([1.0, -2.0]))
    p.grad[...] = [0.5, 1.0]
    SGD({"w": p}, lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -2.1], rtol=0, atol=1e-15)


def test_sgd_momentum_two_steps_by_hand() -> None:
    # f = ½ w², g = w; lr 0.1, μ 0.9: v=1, w=0.9; then v=0.9·1+0.9=1.8, w=0.9−0.18=0.72
    p = Parameter(np.array([1.0]))
    opt = SGD({"w": p}, lr=0.1, momentum=0.9)
    for expected in (0.9, 0.72):
        p.grad[...] = p.data
        opt.step()
        np.testing.assert_allclose(p.data, [expected], rtol=1e-14)
    np.testing.assert_allclose(opt.velocity["w"], [1.8], rtol=1e-14)


def test_sgd_without_momentum_keeps_no_velocity() -> None:
    p = Parameter(np.array([1.0]))
    opt = SGD({"w": p}, lr=0.1)
    p.grad[...] = 1.0
    opt.step()
    assert opt.velocity == {}


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_minimises_a_quadratic(momentum: float) -> None:
    curvature = np.array([1.0, 0.05])
    p = Parameter(np.array([3.0, -4.0]))
    opt = SGD({"w": p}, lr=0.5, momentum=momentum)
    start, _ = _quadratic(p.data, curvature)
    for _ in range(200):
        _, p.grad[...] = _quadratic(p.data, curvature)
        opt.step()
    end, _ = _quadratic(p.data, curvature)
    assert end < 1e-3 * start


def test_momentum_beats_plain_on_an_ill_conditioned_quadratic() -> None:
    curvature = np.array([1.0, 0.01])
    finals = {}
    for momentum in (0.0, 0.9):
        p = Parameter(np.array([1.0, 1.0]))
        opt = SGD({"w": p}, lr=1.0, momentum=momentum)
        for _ in range(100):
            _, p.grad[...] = _quadratic(p.data, curvature)
            opt.step()
        finals[momentum], _ = _quadratic(p.data, curvature)
    assert finals[0.9] < 0.01 * finals[0.0]


@pytest.mark.parametrize(
    "kwargs", [{"lr": 0.0}, {"lr": -1.0}, {"lr": 0.1, "momentum": 1.0}, {"lr": 0.1, "momentum": -0.1}]
)
def test_sgd_rejects_bad_hyperparameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SGD({}, **kwargs)


# ---------------------------------------------------------------- AdamW


def test_decay_mask_selects_exactly_the_matrix_weights() -> None:
    model = _model()
    params = model.parameters()
    assert set(params) == {
        "lookup.table",
        "encode.weight",
        "encode.bias",
        "positions",
        "logit_scale",
        "norm.weight",
        "norm.bias",
        "conv.weight",
    }
    assert [name for name, p in params.items() if decays(name, p)] == ["encode.weight", "conv.weight"]
    assert AdamW(params).decay_names == ["encode.weight", "conv.weight"]


def test_adamw_first_step_moves_every_weight_by_lr() -> None:
    # At t = 1, m̂ = g and v̂ = g², so the Adam step is lr · g/(|g| + ε) ≈ lr · sign(g).
    p = Parameter(np.array([0.3, -2.0, 5.0]))
    p.grad[...] = [1e-3, -10.0, 4.0]
    AdamW({"b.bias": p}, lr=0.01, weight_decay=0.5).step()  # a bias: no decay
    np.testing.assert_allclose(p.data, [0.3 - 0.01, -2.0 + 0.01, 5.0 - 0.01], rtol=1e-6)


def test_adamw_decays_only_decayed_parameters() -> None:
    params = _model(dtype=np.float64).parameters()
    before = {n: p.data.copy() for n, p in params.items()}
    opt = AdamW(params, lr=0.1, weight_decay=0.5)
    opt.step()  # all gradients zero: only the decay moves anything
    for name, p in params.items():
        if name in ("encode.weight", "conv.weight"):
            np.testing.assert_allclose(p.data, before[name] * (1 - 0.1 * 0.5), rtol=1e-14)
        else:
            np.testing.assert_array_equal(p.data, before[name])


def test_adamw_minimises_a_quadratic() -> None:
    curvature = np.array([1.0, 10.0, 0.1])
    p = Parameter(np.array([1.0, -1.0, 2.0]))
    opt = AdamW({"w": p}, lr=0.05, weight_decay=0.0)
    for step in range(400):
        opt.set_lr(warmup_cosine(step, 400, 20, 0.05))
        _, p.grad[...] = _quadratic(p.data, curvature)
        opt.step()
    assert np.abs(p.data).max() < 1e-2


def test_updates_happen_in_place_and_float32_stays_float32() -> None:
    rng = np.random.default_rng(1)
    for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: AdamW(ps, lr=0.1, weight_decay=0.1)):
        params = _model(dtype=np.float32).parameters()
        opt = make(params)  # AdamW lays the parameters out flat here: from now on, in place
        arrays = {n: p.data for n, p in params.items()}
        for _ in range(3):
            _random_grads(params, rng)
            clip_grad_norm(params, 1.0)
            opt.step()
        for name, p in params.items():
            assert p.data is arrays[name], f"{name} was rebound"
            assert p.data.dtype == np.float32 and p.grad.dtype == np.float32, name
        buffers = list(getattr(opt, "velocity", {}).values()) + list(getattr(opt, "m", {}).values())
        buffers += list(getattr(opt, "v", {}).values())
        assert buffers and all(b.dtype == np.float32 for b in buffers)


def test_set_lr_is_used_by_the_next_step() -> None:
    p = Parameter(np.array([1.0]))
    opt = AdamW({"w": p}, lr=0.1)
    opt.set_lr(0.0)
    p.grad[...] = 1.0
    opt.step()
    assert opt.lr == 0.0 and p.data[0] == 1.0
    with pytest.raises(ValueError):
        opt.set_lr(-1e-3)
    with pytest.raises(ValueError):
        opt.set_lr(float("nan"))


def test_adamw_state_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(2)
    params = _model(seed=3).parameters()
    opt = AdamW(params, lr=0.01)
    for _ in range(3):
        _random_grads(params, rng)
        opt.step()
    state = opt.state()
    assert int(state["step"]) == 3
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert set(state) == {"step"} | {f"{k}.{n}" for n in params for k in ("m", "v")}

    twin = _model(seed=99).parameters()  # different weights: copy them over, then the optimiser state
    for name, p in twin.items():
        p.data[...] = params[name].data
    twin_opt = AdamW(twin, lr=0.01)
    twin_opt.load_state(state)
    assert twin_opt.t == 3
    for ps, o in ((params, opt), (twin, twin_opt)):
        _random_grads(ps, np.random.default_rng(5))
        o.step()
    for name in params:
        np.testing.assert_array_equal(twin[name].data, params[name].data)
    state["m.encode.weight"][...] = 7.0  # state() hands out copies, not the live buffers
    assert not np.any(opt.m["encode.weight"] == 7.0)


def test_adamw_load_state_rejects_mismatches() -> None:
    params = _model().parameters()
    opt = AdamW(params)
    good = opt.state()
    missing = {k: v for k, v in good.items() if k != "v.encode.bias"}
    with pytest.raises(ValueError, match="missing.*v.encode.bias"):
        opt.load_state(missing)
    with pytest.raises(ValueError, match="unexpected.*m.other"):
        opt.load_state(good | {"m.other": np.zeros(2)})
    with pytest.raises(ValueError, match="m.encode.weight: expected shape"):
        opt.load_state(good | {"m.encode.weight": np.zeros((3, 4))})
    with pytest.raises(ValueError, match="step"):
        opt.load_state(good | {"step": np.array(1.5)})


@pytest.mark.parametrize(
    "kwargs",
    [{"lr": 0.0}, {"betas": (0.9, 1.0)}, {"betas": (-0.1, 0.9)}, {"eps": 0.0}, {"weight_decay": -0.1}],
)
def test_adamw_rejects_bad_hyperparameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        AdamW({}, **kwargs)


# ---------------------------------------------------------------- gradient clipping


def _global_norm(params: dict[str, Parameter]) -> float:
    return math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in params.values()))


def test_clip_scales_large_gradients_to_max_norm() -> None:
    params = _model(dtype=np.float64).parameters()
    _random_grads(params, np.random.default_rng(6), scale=10.0)
    before = _global_norm(params)
    directions = {n: p.grad / before for n, p in params.items()}
    total = clip_grad_norm(params, max_norm=1.5)
    assert before > 1.5
    np.testing.assert_allclose(float(total), before, rtol=1e-12)
    np.testing.assert_allclose(_global_norm(params), 1.5, rtol=1e-5)
    for name, p in params.items():  # same direction: every gradient scaled by one factor
        np.testing.assert_allclose(p.grad / _global_norm(params), directions[name], rtol=1e-10, atol=1e-14)


def test_clip_leaves_small_gradients_exactly_alone() -> None:
    params = _model(dtype=np.float32).parameters()
    _random_grads(params, np.random.default_rng(7), scale=1e-3)
    before = {n: p.grad.copy() for n, p in params.items()}
    total = clip_grad_norm(params, max_norm=1.0)
    assert float(total) < 1.0
    assert total.dtype == np.float32
    for name, p in params.items():
        np.testing.assert_array_equal(p.grad, before[name])
        assert p.grad.dtype == np.float32


def test_clip_handles_zero_gradients_and_bad_max_norm() -> None:
    params = _model().parameters()
    assert float(clip_grad_norm(params, 1.0)) == 0.0
    assert all(not p.grad.any() for p in params.values())
    with pytest.raises(ValueError):
        clip_grad_norm(params, 0.0)


# ---------------------------------------------------------------- schedule


def test_warmup_cosine_shape() -> None:
    total, warmup, base, low = 100, 10, 3e-4, 1e-5
    lrs = [warmup_cosine(s, total, warmup, base, low) for s in range(total + 1)]
    assert lrs[0] == 0.0
    assert lrs[warmup] == pytest.approx(base, rel=1e-15)
    assert lrs[total] == pytest.approx(low, rel=1e-12)
    assert lrs[55] == pytest.approx((base + low) / 2, rel=1e-12)  # half way through the cosine
    assert np.all(np.diff(lrs[: warmup + 1]) > 0)  # rising during warm-up
    assert np.all(np.diff(lrs[warmup:]) < 0)  # falling afterwards
    np.testing.assert_allclose(lrs[:warmup], base * np.arange(warmup) / warmup, rtol=1e-15)
    assert warmup_cosine(total + 5, total, warmup, base, low) == low
    assert all(isinstance(lr, float) for lr in lrs)


def test_warmup_cosine_without_warmup_starts_at_base() -> None:
    assert warmup_cosine(0, 10, 0, 1.0) == 1.0
    assert warmup_cosine(10, 10, 0, 1.0) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    "args",
    [
        (-1, 10, 2, 1.0, 0.0),  # negative step
        (0, 0, 0, 1.0, 0.0),  # no steps
        (0, 10, 10, 1.0, 0.0),  # warm-up as long as training
        (0, 10, -1, 1.0, 0.0),
        (0, 10, 2, 0.0, 0.0),  # base must be positive
        (0, 10, 2, 1.0, 2.0),  # min above base
        (0, 10, 2, 1.0, -0.1),
    ],
)
def test_warmup_cosine_rejects_bad_arguments(args: tuple) -> None:
    with pytest.raises(ValueError):
        warmup_cosine(*args)


# ---------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_optimisers_on_gpu_match_cpu() -> None:
    results = {}
    for device in ("cpu", "gpu"):
        with backend.using(device):
            params = _model(seed=8).parameters()
            adamw = AdamW(params, lr=0.01, weight_decay=0.1)
            rng = np.random.default_rng(9)
            for _ in range(3):
                _random_grads(params, rng, scale=5.0)
                total = clip_grad_norm(params, 1.0)
                assert backend.get_array_module(total) is backend.get_array_module()
                adamw.step()
            for p in params.values():
                assert backend.get_array_module(p.data) is backend.get_array_module() and p.data.dtype == np.float32
            results[device] = {n: backend.to_host(p.data) for n, p in params.items()} | adamw.state()
    for key, value in results["cpu"].items():
        np.testing.assert_allclose(results["gpu"][key], value, rtol=1e-5, atol=1e-6, err_msg=key)
