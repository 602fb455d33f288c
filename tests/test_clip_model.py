"""The real CLIP: every encoder pairing has a gradient check (they run in test_gradcheck.py); the
temperature and its clamp; float32 kept float32; padding that changes nothing; one clear
ValueError for each bad configuration; a few training steps that fit 8 pairs; CPU = GPU."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.encoders.text_transformer import TextTransformer
from miniclip.encoders.vit import ViT
from miniclip.layers.logit_scale import INIT, MAX
from miniclip.model.config import ModelConfig, build_clip
from miniclip.optim import AdamW, clip_grad_norm, warmup_cosine
from miniclip.teaching.gradient_cases.clip import CASES, LENGTHS, duplicate_caption_targets, padding_mask, tiny_config

F32, F64 = np.float32, np.float64


def _batch(cfg: ModelConfig, seed: int, n: int = 4, dtype=F64):
    """Token ids (start, words, end, padding), their mask and images, from their own generator."""
    rng = np.random.default_rng([seed, 1000])
    length = cfg.context_length
    lengths = np.array((LENGTHS * n)[:n])
    lengths = np.maximum(lengths, 2)  # room for <start> and <end>
    ids = rng.integers(4, cfg.vocab_size, size=(n, length))
    ids[:, 0] = 2  # <start>
    ids[np.arange(n), lengths - 1] = 3  # <end>
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(dtype)  # (N, L)
    ids[mask == 0] = 0  # <pad>
    images = rng.standard_normal((n, cfg.channels, cfg.image_size, cfg.image_size)).astype(dtype)
    return ids, mask, images


# --- gradient checks (run in test_gradcheck.py) --------------------------------------------------------------------


def test_every_image_and_text_encoder_pairing_is_checked():
    names = set(CASES)
    for image in ("patch_mlp", "cnn", "vit"):
        for text in ("bag_of_words", "transformer"):
            assert f"CLIP ({image}, {text})" in names
    assert any("soft targets" in name for name in names)


# --- the head: unit-length embeddings, logits = e^s · cosines, the temperature ------------------------------------


def test_embeddings_are_unit_length_and_logits_are_scaled_cosines():
    cfg = tiny_config()
    model = build_clip(cfg, rng=np.random.default_rng(0), dtype=F64)
    ids, mask, images = _batch(cfg, seed=1)
    t = model.encode_text(ids, mask)
    i = model.encode_image(images)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(i, axis=1), 1.0, rtol=1e-12)
    loss = model(ids, images, mask)
    np.testing.assert_allclose(model.logits, math.exp(INIT) * (t @ i.T), rtol=1e-12)
    assert loss.shape == () and float(loss) > 0
    assert np.abs(model.logits).max() <= math.exp(INIT) * (1 + 1e-12)  # a cosine is at most 1


def test_initial_temperature_is_0_07():
    model = build_clip(tiny_config(), rng=np.random.default_rng(0), dtype=F32)
    s = model.logit_scale.log_scale
    assert s.data.shape == () and s.data.dtype == F32
    assert float(s.data) == pytest.approx(math.log(1 / 0.07), rel=1e-7)
    assert float(model.logit_scale.scale) == pytest.approx(1 / 0.07, rel=1e-6)


def test_clamp_logit_scale_after_huge_adamw_steps_both_ways():
    """Ascending and descending the loss with lr = 1000 throws s far out; the clamp brings it back."""
    cfg = tiny_config("patch_mlp", "bag_of_words")
    ids, mask, images = _batch(cfg, seed=2, dtype=F32)
    bounds_hit = set()
    for direction in (1.0, -1.0):
        model = build_clip(cfg, rng=np.random.default_rng(0), dtype=F32)
        s = model.logit_scale.log_scale
        optimiser = AdamW(model.parameters(), lr=1000.0, weight_decay=0.1)  # s.data is now a view of its buffer
        array = s.data
        model(ids, images, mask)
        model.backward(direction)  # −1: gradient ascent on the loss, so s moves the other way
        assert float(s.grad) != 0
        optimiser.step()
        assert not 0.0 <= float(s.data) <= MAX, "the step should have left [0, ln 100]"
        model.clamp_logit_scale()
        assert s.data is array and s.data.dtype == F32  # clamped in place, still float32
        value = float(s.data)
        assert value in (0.0, float(np.float32(MAX)))
        bounds_hit.add(value)
        model(ids, images, mask)
        assert np.abs(model.logits).max() <= 100.0 * (1 + 1e-6)
    assert bounds_hit == {0.0, float(np.float32(MAX))}


# --- float32 stays float32 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_encoder", "text_encoder", "mask_dtype"),
    [("vit", "transformer", bool), ("cnn", "bag_of_words", F32)],
)
def test_float32_model_never_upcasts(image_encoder, text_encoder, mask_dtype):
    cfg = tiny_config(image_encoder, text_encoder)
    model = build_clip(cfg, rng=np.random.default_rng(0), dtype=F32)
    ids, mask, images = _batch(cfg, seed=3, dtype=F32)
    mask = mask.astype(mask_dtype)
    optimiser = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    optimiser.set_lr(warmup_cosine(3, total_steps=10, warmup_steps=2, base_lr=1e-3))
    for _ in range(2):  # the second round runs on weights the optimiser has written
        optimiser.zero_grad()
        loss = model(ids, images, mask)
        dimages = model.backward()
        norm = clip_grad_norm(model.parameters(), max_norm=0.5)
        optimiser.step()
        model.clamp_logit_scale()
        assert loss.dtype == F32 and model.logits.dtype == F32 and dimages.dtype == F32
        assert np.asarray(norm).dtype == F32
        assert model.encode_text(ids, mask).dtype == F32 and model.encode_image(images).dtype == F32
        for name, p in model.parameters().items():
            assert p.data.dtype == F32, f"{name} is {p.data.dtype}"
            assert p.grad.dtype == F32, f"d({name}) is {p.grad.dtype}"
            assert optimiser.m[name].dtype == F32 and optimiser.v[name].dtype == F32, name
    for name, buffer in _buffers(model).items():  # batch norm's running statistics
        assert buffer.dtype == F32, f"{name} is {buffer.dtype}"


def _buffers(module, prefix: str = "") -> dict:
    """Every buffer (state that is not a parameter) of ``module`` and its children, by name."""
    found = dict(module.buffers(prefix)) if hasattr(module, "buffers") else {}
    for name, child in module.children():
        found.update(_buffers(child, f"{prefix}{name}."))
    return found


# --- padding changes nothing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["end", "mean"])
def test_text_embedding_does_not_change_with_more_padding(pool):
    rng = np.random.default_rng(4)
    text = TextTransformer(
        vocab_size=9,
        context_length=9,
        width=8,
        depth=2,
        heads=2,
        mlp_ratio=2,
        embed_dim=4,
        pool=pool,
        rng=rng,
        dtype=F64,
    )
    for p in text.parameters().values():  # random biases and gains, not 0 and 1
        p.data[...] = rng.normal(0.0, 0.5, p.data.shape)
    short_ids = rng.integers(1, 9, size=(4, 5))
    short_mask = padding_mask(LENGTHS, 5)
    short_ids[short_mask == 0] = 0
    long_ids = np.concatenate([short_ids, rng.integers(1, 9, size=(4, 4))], axis=1)  # whatever the padding holds
    long_mask = np.concatenate([short_mask, np.zeros((4, 4))], axis=1)
    short = text(short_ids, short_mask)
    long = text(long_ids, long_mask)
    np.testing.assert_allclose(long, short, rtol=1e-12, atol=1e-12)
    unmasked = text(long_ids, None)  # the same ids without the mask: the padding would then count
    assert np.abs(unmasked - short).max() > 1e-3


def test_encoders_reject_bad_sizes_themselves():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"width 6 .*heads 4"):
        ViT(image_size=4, patch_size=2, width=6, heads=4, rng=rng)
    with pytest.raises(ValueError, match=r"patch size 3 .*image size 8"):
        ViT(image_size=8, patch_size=3, width=8, heads=2, rng=rng)
    with pytest.raises(ValueError, match=r"width 6 .*heads 4"):
        TextTransformer(vocab_size=9, width=6, heads=4, rng=rng)
    with pytest.raises(ValueError, match=r"got 1"):
        TextTransformer(vocab_size=9, context_length=1, width=8, heads=2, rng=rng)
    with pytest.raises(ValueError, match=r"'max'"):
        TextTransformer(vocab_size=9, width=8, heads=2, pool="max", rng=rng)
    vit = ViT(image_size=4, patch_size=2, channels=2, width=4, depth=1, heads=2, embed_dim=4, rng=rng)
    with pytest.raises(ValueError, match=r"\(N, C, 4, 4\), got \(2, 2, 8, 8\)"):
        vit(np.zeros((2, 2, 8, 8), dtype=F32))


def test_mismatched_batch_sizes_raise():
    cfg = tiny_config()
    model = build_clip(cfg, rng=np.random.default_rng(0))
    ids, mask, images = _batch(cfg, seed=0, dtype=F32)
    with pytest.raises(ValueError, match=r"4 texts .* 3 images"):
        model(ids, images[:3], mask)


def test_from_dict_rejects_unknown_keys():
    values = tiny_config().to_dict() | {"depth": 3, "colour": True}
    with pytest.raises(ValueError, match=r"unknown model configuration keys \['colour', 'depth'\]"):
        ModelConfig.from_dict(values)


def test_config_round_trips_through_json():
    cfg = tiny_config("cnn", "transformer", text_pool="mean", dropout=0.1)
    values = cfg.to_dict()
    again = ModelConfig.from_dict(json.loads(json.dumps(values)))
    assert again == cfg and again.to_dict() == values
    values["cnn_channels"].append(99)  # to_dict hands out a copy: the config is untouched
    assert cfg.cnn_channels == [2, 4]
    a = build_clip(cfg, rng=np.random.default_rng(5), dtype=F64).state()
    b = build_clip(again, rng=np.random.default_rng(5), dtype=F64).state()
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# --- training: 8 fixed pairs are fitted in 50 AdamW steps ---------------------------------------------------------


def test_tiny_clip_fits_eight_pairs():
    cfg = tiny_config(image_width=8, text_width=8, embed_dim=8)
    model = build_clip(cfg, rng=np.random.default_rng(3), dtype=F32)
    ids, mask, images = _batch(cfg, seed=4, n=8, dtype=F32)
    optimiser = AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    losses = []
    for _ in range(50):
        optimiser.zero_grad()
        losses.append(float(model(ids, images, mask)))
        model.backward()
        optimiser.step()
        model.clamp_logit_scale()
    final = float(model(ids, images, mask))
    assert all(math.isfinite(v) for v in losses)
    assert final < 0.25 * losses[0], (losses[0], final)
    assert final < 0.5 * math.log(8), (losses[0], final)  # far below chance (ln 8)
    assert (model.logits.argmax(axis=1) == np.arange(8)).mean() >= 7 / 8  # each caption finds its image


# --- the GPU gives the CPU's numbers ------------------------------------------------------------------------------


def _loss_and_grads(cfg: ModelConfig, device: str):
    ids, mask, images = _batch(cfg, seed=6, dtype=F64)
    with backend.using(device):
        model = build_clip(cfg, rng=np.random.default_rng(7), dtype=F64)
        ids, mask, images = (backend.to_device(a) for a in (ids, mask, images))
        loss = model(ids, images, mask, targets=duplicate_caption_targets(4))
        dimages = model.backward()
        grads = {name: backend.to_host(p.grad) for name, p in model.parameters().items()}
        return backend.to_float(loss), backend.to_host(dimages), grads


@pytest.mark.gpu
@pytest.mark.parametrize("image_encoder", ["vit", "cnn"])
def test_gpu_clip_matches_cpu(image_encoder):
    cfg = tiny_config(image_encoder, "transformer")
    cpu_loss, cpu_dimages, cpu_grads = _loss_and_grads(cfg, "cpu")
    gpu_loss, gpu_dimages, gpu_grads = _loss_and_grads(cfg, "gpu")
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-6)
    np.testing.assert_allclose(gpu_dimages, cpu_dimages, rtol=1e-6, atol=1e-12)
    assert gpu_grads.keys() == cpu_grads.keys()
    for name in cpu_grads:
        np.testing.assert_allclose(gpu_grads[name], cpu_grads[name], rtol=1e-6, atol=1e-12, err_msg=name)
    assert backend.get_device() == "cpu"


# --- training asks for no image gradient ---------------------------------------------------------------------------


@pytest.mark.parametrize("image_encoder", ["cnn", "vit", "patch_mlp"])
def test_no_image_gradient_leaves_every_parameter_gradient_as_it_was(image_encoder):
    """``backward(image_grad=False)`` returns None and fills the same parameter gradients as a full backward."""
    cfg = tiny_config(image_encoder, "bag_of_words")
    model = build_clip(cfg, rng=np.random.default_rng(0), dtype=F64)
    ids, mask, images = _batch(cfg, seed=5)
    grads = []
    for image_grad in (True, False):
        model.zero_grad()
        model(ids, images, mask)
        dimages = model.backward(image_grad=image_grad)
        assert (dimages is None) is not image_grad
        grads.append({name: p.grad.copy() for name, p in model.parameters().items()})
    for name in grads[0]:
        np.testing.assert_array_equal(grads[1][name], grads[0][name], err_msg=name)
