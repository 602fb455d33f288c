"""The flat optimiser state: parameters, gradients and AdamW's moments as views of a few buffers.

The views share memory with the buffers both ways, flattening keeps every value, AdamW on whole
buffers is the per-parameter formula to the last bit, clipping flat buffers is clipping one array
per parameter, and the trainer's roll-back copies the buffers and restores them exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL

from miniclip import backend
from miniclip.layers import Linear
from miniclip.measure.bench import bench_model_config, make_batch
from miniclip.model.config import build_clip
from miniclip.module import Module, Parameter
from miniclip.optim import AdamW, FlatParameters, clip_grad_norm, decays
from miniclip.optim.flat import ALIGN_BYTES
from miniclip.training.configs import named_config
from miniclip.training.rollback import StepSnapshot
from miniclip.training.step import train_step


class Small(Module):
    """Decayed matrices and undecayed biases, gains, a table and a 0-d scale, in odd sizes (padding between)."""

    def __init__(self, rng: np.random.Generator, dtype: object = np.float64) -> None:
        self.encode = Linear(5, 3, rng=rng, dtype=dtype)  # encode.weight decays, encode.bias does not
        self.project = Linear(3, 7, rng=rng, dtype=dtype)
        self.gain = Parameter.from_host(rng.uniform(0.5, 1.5, 7), dtype)  # 1-D: no decay
        self.table = Parameter.from_host(rng.normal(size=(11, 3)), dtype)  # 2-D, but not a weight: no decay
        self.scale = Parameter.from_host(np.array(2.5), dtype)  # 0-d


def _params(seed: int = 0, dtype: object = np.float64) -> dict[str, Parameter]:
    return Small(np.random.default_rng(seed), dtype).parameters()


def _fill_grads(params: dict[str, Parameter], rng: np.random.Generator, scale: float = 1.0) -> None:
    for p in params.values():
        p.grad[...] = backend.to_device(rng.normal(0.0, scale, p.data.shape).astype(p.data.dtype))


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _tiny_clip(optimise: bool = True) -> tuple[Module, AdamW | None, tuple[np.ndarray, ...]]:
    """A tiny float32 CLIP with batch norms (the cpu configuration's kind), its AdamW (or None), a batch."""
    cfg = named_config("cpu", model=TINY_TRAIN_MODEL, batch_size=6)
    clip = build_clip(bench_model_config(cfg), rng=np.random.default_rng(0))
    optimizer = AdamW(clip.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay) if optimise else None
    b = make_batch(6, cfg.context_length)
    return clip, optimizer, (b["ids"], b["images"], b["mask"], b["targets"])


# ---------------------------------------------------------------- the layout


def test_flattening_keeps_every_value_and_binds_views_of_the_buffers() -> None:
    params = _params()
    _fill_grads(params, np.random.default_rng(1))
    before = {n: (p.data.copy(), p.grad.copy(), p.data.shape) for n, p in params.items()}
    flat = FlatParameters(params, decays)
    groups = {g.key: g.names for g in flat.groups}  # in the order the rule first gave each answer
    assert groups == {True: ["encode.weight", "project.weight"], False: [n for n in params if not n.endswith("weight")]}
    for name, p in params.items():
        data, grad, shape = before[name]
        np.testing.assert_array_equal(p.data, data, err_msg=name)
        np.testing.assert_array_equal(p.grad, grad, err_msg=name)
        assert p.data.shape == p.grad.shape == shape and p.data.flags.c_contiguous and p.grad.flags.c_contiguous
        group = flat.groups[flat.layout[name][0]]
        assert np.shares_memory(p.data, group.data) and np.shares_memory(p.grad, group.grad), name
        assert (_address(p.data) - _address(group.data)) % ALIGN_BYTES == 0, name  # each slice aligned
    for group in flat.groups:  # the padding: the buffer's entries no parameter owns, all zero
        owned = np.zeros(group.data.size, dtype=bool)
        for name in group.names:
            start = flat.layout[name][1]
            owned[start : start + params[name].data.size] = True
        assert not owned.all(), "the odd sizes leave padding"
        assert not group.data[~owned].any() and not group.grad[~owned].any()


def test_writes_go_both_ways_between_views_and_buffers() -> None:
    params = _params()
    flat = FlatParameters(params, decays)
    w = params["project.weight"]
    index, start, _ = flat.layout["project.weight"]
    w.data[1, 2] = 42.0  # through the parameter: the buffer sees it
    assert flat.groups[index].data[start + np.ravel_multi_index((1, 2), w.data.shape)] == 42.0
    flat.groups[index].grad[start : start + w.data.size] = 7.0  # through the buffer: the parameter sees it
    assert np.all(w.grad == 7.0)
    s = params["scale"]
    s.data -= 0.5  # in place on a 0-d view
    assert s.data.shape == () and flat.groups[flat.layout["scale"][0]].data[flat.layout["scale"][1]] == 2.0


def test_views_of_other_buffers_follow_the_same_layout() -> None:
    params = _params()
    flat = FlatParameters(params, decays)
    buffers = flat.zeros()
    assert [b.shape for b in buffers] == [g.data.shape for g in flat.groups] and not any(b.any() for b in buffers)
    views = flat.views(buffers)
    for name, view in views.items():
        assert view.shape == params[name].data.shape and np.shares_memory(view, buffers[flat.layout[name][0]])
        view[...] = params[name].data
    for buffer, group in zip(buffers, flat.groups, strict=True):
        np.testing.assert_array_equal(buffer, group.data)


def test_zero_grad_zeroes_every_gradient_through_the_views() -> None:
    params = _params()
    opt = AdamW(params)
    _fill_grads(params, np.random.default_rng(2))
    assert all(p.grad.any() for p in params.values())
    opt.zero_grad()
    assert not any(p.grad.any() for p in params.values())
    assert not any(g.any() for g in opt.grad_buffers())


def test_mixed_dtypes_and_tied_parameters_are_refused() -> None:
    params = _params(dtype=np.float64)
    params["encode.bias"] = Parameter(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="one dtype on one device.*float32.*float64"):
        AdamW(params)
    tied = _params()
    tied["decode.weight"] = tied["encode.weight"]  # one Parameter under two names
    with pytest.raises(ValueError, match="decode.weight shares its parameter or array with encode.weight"):
        FlatParameters(tied, decays)
    shared = _params()
    shared["copy"] = Parameter(np.zeros(2))
    shared["copy"].data = shared["gain"].data  # two Parameters, one array
    with pytest.raises(ValueError, match="copy shares"):
        FlatParameters(shared)


def test_a_rebound_parameter_stops_the_next_step() -> None:
    params = _params()
    opt = AdamW(params)
    opt.step()
    params["table"].data = params["table"].data.copy()  # cut off from the buffer
    with pytest.raises(RuntimeError, match=r"table\.data was replaced.*in place"):
        opt.step()
    params = _params()
    opt = AdamW(params)
    params["gain"].grad = np.ones(7)
    with pytest.raises(RuntimeError, match=r"gain\.grad was replaced"):
        opt.step()


def test_no_parameters_no_buffers() -> None:
    opt = AdamW({})
    opt.zero_grad()
    opt.step()
    assert opt.buffers() == {} and opt.grad_buffers() == [] and opt.state() == {"step": np.array(1)}
    assert clip_grad_norm(opt.grad_buffers(), 1.0) == 0.0


# ---------------------------------------------------------------- AdamW on whole buffers


def _adamw_by_parameter(params, m, v, t, lr, b1, b2, eps, wd) -> None:
    """The update one parameter at a time, as AdamW took it before its state went flat."""
    correction1, correction2 = 1.0 - b1**t, math.sqrt(1.0 - b2**t)
    for name, p in params.items():
        if decays(name, p) and wd:
            p.data *= 1.0 - lr * wd
        m[name] *= b1
        m[name] += (1.0 - b1) * p.grad
        v[name] *= b2
        v[name] += (1.0 - b2) * (p.grad * p.grad)
        p.data -= (lr / correction1) * m[name] / (np.sqrt(v[name]) / correction2 + eps)


def test_flat_adamw_is_the_per_parameter_formula_to_the_last_bit() -> None:
    ours, theirs = _params(seed=3), _params(seed=3)
    lr, betas, eps, wd = 0.01, (0.8, 0.95), 1e-6, 0.1
    opt = AdamW(ours, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    m = {n: np.zeros_like(p.data) for n, p in theirs.items()}
    v = {n: np.zeros_like(p.data) for n, p in theirs.items()}
    rng = np.random.default_rng(4)
    for t in range(1, 5):
        step_lr = lr * (1.0 + 0.3 * t)  # a changing rate, as the schedule gives
        opt.set_lr(step_lr)
        _fill_grads(theirs, rng, scale=float(rng.uniform(0.1, 10.0)))
        for name, p in ours.items():
            p.grad[...] = theirs[name].grad
        opt.step()
        _adamw_by_parameter(theirs, m, v, t, step_lr, *betas, eps, wd)
        for name, p in ours.items():
            np.testing.assert_array_equal(p.data, theirs[name].data, err_msg=name)
            np.testing.assert_array_equal(opt.m[name], m[name], err_msg=name)
            np.testing.assert_array_equal(opt.v[name], v[name], err_msg=name)
    assert set(opt.decay_names) == {"encode.weight", "project.weight"}
    assert not all(np.array_equal(p.data, _params(seed=3)[n].data) for n, p in ours.items() if n in opt.decay_names)


def test_state_round_trip_keeps_the_keys_and_fills_the_flat_buffers() -> None:
    params = _params(seed=5)
    opt = AdamW(params, lr=0.01)
    rng = np.random.default_rng(6)
    for _ in range(2):
        _fill_grads(params, rng)
        opt.step()
    state = opt.state()
    assert set(state) == {"step"} | {f"{k}.{n}" for n in params for k in ("m", "v")}  # one entry per name, as before
    twin = _params(seed=5)
    twin_opt = AdamW(twin, lr=0.01)
    twin_opt.load_state(state)
    assert twin_opt.t == 2
    for mine, theirs in zip(twin_opt.m_flat + twin_opt.v_flat, opt.m_flat + opt.v_flat, strict=True):
        np.testing.assert_array_equal(mine, theirs)  # load_state wrote into the flat buffers, padding untouched


# ---------------------------------------------------------------- clipping


@pytest.mark.parametrize("scale", [10.0, 1e-4])  # clipped, and left alone
def test_clipping_flat_buffers_is_clipping_each_parameter(scale: float) -> None:
    # A float32 model of a few thousand weights: big enough that float32 sums of the squares, per
    # parameter or per flat buffer, differ in their last bits (the float64 sum is what makes them agree).
    clip, opt, _ = _tiny_clip()
    flat_params, separate = clip.parameters(), _tiny_clip(optimise=False)[0].parameters()
    _fill_grads(separate, np.random.default_rng(8), scale)
    for name, p in flat_params.items():
        p.grad[...] = separate[name].grad
    total_flat = clip_grad_norm(opt.grad_buffers(), 1.0)
    total_separate = clip_grad_norm(separate, 1.0)
    assert total_flat.dtype == total_separate.dtype == np.float32
    assert total_flat == total_separate
    assert (float(total_flat) > 1.0) == (scale > 1.0)
    for name, p in flat_params.items():
        np.testing.assert_array_equal(p.grad, separate[name].grad, err_msg=name)


# ---------------------------------------------------------------- the roll-back snapshot


def test_snapshot_restores_weights_moments_buffers_and_step_exactly() -> None:
    clip, optimizer, batch = _tiny_clip()
    rng = np.random.default_rng(9)
    train_step(clip, optimizer, *batch, grad_clip=1.0)  # moments that are not zero
    snapshot = StepSnapshot(clip, optimizer, rng)
    assert len(snapshot.copies) == 3 * len(optimizer.flat.groups) + len(clip.buffers())  # whole buffers, not arrays
    snapshot.take()
    model_before, optim_before, rng_before = clip.state(), optimizer.state(), rng.bit_generator.state
    rng.random(3)
    train_step(clip, optimizer, *batch, grad_clip=1.0)  # weights, moments, running statistics and t all move
    moved = clip.state()
    assert any(not np.array_equal(moved[k], model_before[k]) for k in clip.buffers())
    assert optimizer.t == int(optim_before["step"]) + 1
    snapshot.restore()
    for name, value in clip.state().items():
        np.testing.assert_array_equal(value, model_before[name], err_msg=name)
    for name, value in optimizer.state().items():
        np.testing.assert_array_equal(value, optim_before[name], err_msg=name)
    assert rng.bit_generator.state == rng_before


def test_snapshot_refuses_an_optimiser_over_other_parameters() -> None:
    clip, _, _ = _tiny_clip()
    partial = dict(list(clip.parameters().items())[:-1])
    with pytest.raises(ValueError, match="exactly the model's parameters"):
        StepSnapshot(clip, AdamW(partial), np.random.default_rng(0))


# ---------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_flat_state_on_gpu() -> None:
    with backend.using("gpu"):
        xp = backend.get_array_module()
        flat_params, separate = _params(seed=10, dtype=np.float32), _params(seed=10, dtype=np.float32)
        opt = AdamW(flat_params, lr=0.01, weight_decay=0.1)
        w = flat_params["encode.weight"]
        assert backend.get_array_module(w.data) is xp and w.data.base is not None
        w.data[0, 0] = 5.0  # through the view into the buffer
        index, start, _ = opt.flat.layout["encode.weight"]
        assert float(opt.flat.groups[index].data[start]) == 5.0
        separate["encode.weight"].data[0, 0] = 5.0
        _fill_grads(separate, np.random.default_rng(11), 10.0)
        for name, p in flat_params.items():
            p.grad[...] = separate[name].grad
        assert float(clip_grad_norm(opt.grad_buffers(), 1.0)) == float(clip_grad_norm(separate, 1.0))
        for name, p in flat_params.items():
            np.testing.assert_array_equal(backend.to_host(p.grad), backend.to_host(separate[name].grad), err_msg=name)
        opt.step()
        opt.zero_grad()
        assert not any(bool(p.grad.any()) for p in flat_params.values())
        weights = {n: backend.to_host(p.data) for n, p in flat_params.items()}
    assert all(np.isfinite(a).all() for a in weights.values())
