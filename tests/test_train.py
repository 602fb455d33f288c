"""The training loop on tiny synthetic data: it learns, resumes exactly, stops on NaN, saves on Ctrl-C."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL

from miniclip.checkpoint import load_checkpoint
from miniclip.train import Trainer, TrainingDivergedError, named_config, train

TINY_MODEL = TINY_TRAIN_MODEL


def tiny(tmp_path, name="run", **changes):
    """A shapes run small enough for a test: 192 training images, batches of 32, a 2-stage CNN."""
    options = {
        "out_dir": str(tmp_path / name),
        "n_train": 192,
        "n_test": 96,
        "epochs": 2,
        "batch_size": 32,
        "model": TINY_MODEL,
        "augment": True,
    } | changes
    return named_config("shapes", **options)


def test_training_lowers_the_loss_and_writes_its_files(tmp_path):
    cfg = tiny(tmp_path, epochs=3, lr=5e-3)
    metrics = train(cfg, show_progress=False)
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    out = tmp_path / "run"
    for name in ("checkpoint.npz", "metrics.jsonl", "curves.png", "config.json", "tokenizer.json"):
        assert (out / name).stat().st_size > 0, name
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(metrics))
    zero_shot = metrics[-1]["zero_shot"]
    assert set(zero_shot) == {"one template", "train templates", "unseen templates"}
    assert "heldout_top1" in zero_shot["one template"]  # shapes keeps colour-shape pairs out of training
    assert not list(out.glob("*.tmp*")) and not list(out.glob("tmp*"))


def _stop_at(step_to_stop):
    def on_step(step):
        if step == step_to_stop:
            raise KeyboardInterrupt

    return on_step


@pytest.mark.parametrize("stop", [3, 6])  # in the middle of epoch 1, and at the start of epoch 2
def test_resume_gives_the_same_metrics_as_an_uninterrupted_run(tmp_path, stop):
    straight = train(tiny(tmp_path, "straight"), show_progress=False)

    cfg = tiny(tmp_path, "interrupted")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, show_progress=False, on_step=_stop_at(stop))
    saved = load_checkpoint(tmp_path / "interrupted")
    assert saved.progress["epoch"] * 6 + saved.progress["batch"] == stop  # 192 / 32 = 6 steps per epoch
    resumed = train(cfg, resume=True, show_progress=False)

    assert json.dumps(resumed).replace(" ", "") != ""  # JSON-able
    for a, b in zip(straight, resumed, strict=True):
        assert a["train_loss"] == b["train_loss"]
        assert a["zero_shot"] == b["zero_shot"]
    final_a, final_b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "interrupted")
    for name, value in final_a.model.state().items():
        np.testing.assert_array_equal(value, final_b.model.state()[name], err_msg=name)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = tiny(tmp_path, epochs=3)
    trainer = Trainer(cfg, show_progress=False)

    def poison(step):
        if step == 8:  # in epoch 2, after epoch 1's checkpoint was written
            trainer.model.image.project.weight.data[...] = np.nan

    with pytest.raises(TrainingDivergedError, match="last good checkpoint"):
        trainer.run(on_step=poison)
    kept = load_checkpoint(tmp_path / "run")
    assert kept.progress == {"epoch": 1, "batch": 0, "loss_sum": 0.0}
    assert all(np.isfinite(v).all() for v in kept.model.state().values())


def test_starting_over_an_existing_run_needs_resume(tmp_path):
    cfg = tiny(tmp_path, epochs=1)
    train(cfg, show_progress=False)
    with pytest.raises(ValueError, match="--resume"):
        Trainer(cfg, show_progress=False)


def test_resume_refuses_a_changed_configuration(tmp_path):
    train(tiny(tmp_path, epochs=1), show_progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(tiny(tmp_path, epochs=2, batch_size=16), resume=True, show_progress=False)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"targets": "soft"}, "targets"),
        ({"warmup": 1.5}, "warmup"),
        ({"batch_size": 1}, "batch"),
        ({"model": {"image_encoder": "resnet"}}, "image encoder"),
    ],
)
def test_bad_training_configuration_is_a_clear_error(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        Trainer(tiny(tmp_path, **changes), show_progress=False)


def test_identity_targets_train_too(tmp_path):
    metrics = train(tiny(tmp_path, epochs=1, targets="identity"), show_progress=False)
    assert np.isfinite(metrics[0]["train_loss"])
