"""Model state: parameters and buffers (batch-norm running statistics) go out and come back."""

import numpy as np
import pytest

from miniclip.model.config import ModelConfig, build_clip


def _small_cnn_clip(seed: int):
    cfg = ModelConfig(
        image_encoder="cnn",
        text_encoder="bag_of_words",
        cnn_channels=[4, 8],
        embed_dim=8,
        text_width=8,
        vocab_size=12,
        image_size=8,
    )
    return build_clip(cfg, rng=np.random.default_rng(seed), dtype=np.float64)


def test_state_holds_running_statistics_and_restores_them():
    rng = np.random.default_rng(0)
    model = _small_cnn_clip(0)
    ids, images = rng.integers(0, 12, size=(4, 5)), rng.normal(2.0, 3.0, size=(4, 3, 8, 8))
    model(ids, images)  # a training forward moves the running statistics
    state = model.state()
    running = [k for k in state if k.endswith(("running_mean", "running_var"))]
    bn_gains = [k for k in state if k.endswith("bn.weight") or k.endswith(("bn1.weight", "bn2.weight"))]
    assert len(running) == 2 * len(bn_gains) > 0  # a mean and a variance per batch norm
    assert not np.allclose(state["image.stem_bn.running_mean"], 0)

    fresh = _small_cnn_clip(1)  # other weights, initial statistics
    fresh.load_state(state)
    model.eval(), fresh.eval()
    np.testing.assert_array_equal(fresh.encode_image(images), model.encode_image(images))


def test_load_state_checks_everything_before_copying():
    model = _small_cnn_clip(0)
    state = model.state()
    before = model.state()
    bad = dict(state)
    bad["image.stem_bn.running_var"] = np.ones(99)
    with pytest.raises(ValueError, match="running_var"):
        model.load_state(bad)
    after = model.state()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing half-copied
