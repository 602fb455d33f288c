"""The training loop on tiny synthetic data: it learns, resumes exactly, stops on NaN, saves on Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import warnings

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL

from miniclip import backend
from miniclip.data import augment
from miniclip.data.augment import horizontal_flip, normalize, random_crop
from miniclip.model.tokenizer import SPECIALS, Tokenizer
from miniclip.optim import AdamW
from miniclip.training import loop as train_module
from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.configs import named_config
from miniclip.training.loop import Trainer, TrainingDivergedError, train

TINY_MODEL = TINY_TRAIN_MODEL


def tiny(tmp_path, name="run", **changes):
    """A shapes run small enough for a test: 192 training images, batches of 32, a 2-stage CNN.

    With another ``data`` (a folder), the split sizes are left at None, as ``miniclip train
    --data FOLDER`` leaves them: the folder's whole splits.
    """
    sizes = {"n_train": 192, "n_test": 96} if changes.get("data", "shapes") == "shapes" else {}
    options = {
        "out_dir": str(tmp_path / name),
        **sizes,
        "epochs": 2,
        "batch_size": 32,
        "model": TINY_MODEL,
        "augment": True,
    } | changes
    return named_config("shapes", **options)


def _assert_same_run(straight: list, resumed: list, straight_dir, resumed_dir) -> None:
    """An interrupted and resumed run equals the uninterrupted one: every epoch's metrics and every final weight."""
    for a, b in zip(straight, resumed, strict=True):
        assert a["train_loss"] == b["train_loss"]
        assert a["zero_shot"] == b["zero_shot"]
    final_a, final_b = load_checkpoint(straight_dir), load_checkpoint(resumed_dir)
    for name, value in final_a.model.state().items():
        np.testing.assert_array_equal(value, final_b.model.state()[name], err_msg=name)


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

    lines = (tmp_path / "interrupted" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == resumed  # every epoch, the ones before the stop too, as JSON
    _assert_same_run(straight, resumed, tmp_path / "straight", tmp_path / "interrupted")


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = tiny(tmp_path, epochs=3)
    trainer = Trainer(cfg, show_progress=False)

    def poison(step):
        if step == 8:  # in epoch 2, after epoch 1's checkpoint was written
            trainer.model.image.project.weight.data[...] = np.nan

    kept = f"the last good checkpoint, {tmp_path / 'run' / 'checkpoint.npz'} (after epoch 1), is kept"
    with pytest.raises(TrainingDivergedError, match=re.escape(kept)):
        trainer.run(on_step=poison)
    kept = load_checkpoint(tmp_path / "run")
    assert kept.progress == {"epoch": 1, "batch": 0, "loss_sum": 0.0}
    assert all(np.isfinite(v).all() for v in kept.model.state().values())


def test_a_run_that_diverges_before_any_checkpoint_says_there_is_none_and_no_numpy_warnings(tmp_path):
    """--lr 1e9 on a fresh run: NaN within a few steps, a message that claims no checkpoint, no RuntimeWarnings."""
    steps = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy RuntimeWarning inside a step would fail the test
        with pytest.raises(TrainingDivergedError) as info:
            train(tiny(tmp_path, lr=1e9), show_progress=False, on_step=steps.append)
    assert len(steps) < 6  # within the first epoch: nothing was saved
    message = str(info.value)
    assert f"no checkpoint was written yet, so there is nothing in {tmp_path / 'run'} to resume" in message
    assert "last good checkpoint" not in message
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_a_resumed_run_that_diverges_names_the_checkpoint_it_resumed_from(tmp_path):
    cfg = tiny(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, show_progress=False, on_step=_stop_at(3))  # saved in epoch 1, after batch 3
    trainer = Trainer(cfg, resume=True, show_progress=False)
    trainer.model.image.project.weight.data[...] = np.nan
    kept = f"the last good checkpoint, {tmp_path / 'run' / 'checkpoint.npz'} (in epoch 1, after batch 3), is kept"
    with pytest.raises(TrainingDivergedError, match=re.escape(kept)):
        trainer.run()


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


# ---------------------------------------------------------------- one step's batch


def _capture_step(trainer, monkeypatch, idx):
    """Run ``trainer.step(idx, 0)`` with train_step replaced by a recorder; return what it was given."""
    seen = {}

    def record(model, optimizer, token_ids, images, mask, targets, *, grad_clip, world=None):
        seen.update(token_ids=token_ids, images=images, mask=mask, targets=targets)
        return np.float32(0.0)

    monkeypatch.setattr(train_module, "train_step", record)
    trainer.step(idx, 0)
    return seen


@pytest.mark.parametrize("augmented", [True, False], ids=["augmented", "plain"])
def test_a_step_draws_what_the_augment_functions_would_draw(tmp_path, monkeypatch, augmented):
    """The batch a step builds is the one the rng= path of crop, flip and templates gives (so old runs resume)."""
    trainer = Trainer(tiny(tmp_path, augment=augmented), show_progress=False)
    idx = np.random.default_rng(9).permutation(192)[:32]
    rng = np.random.default_rng()
    rng.bit_generator.state = trainer.augment_rng.bit_generator.state
    seen = _capture_step(trainer, monkeypatch, idx)

    images = trainer.dataset.train_images[idx]  # (B, C, H, W) uint8
    if augmented:
        images = horizontal_flip(random_crop(images, 4, rng), 0.5, rng)
    captions = trainer.dataset.captions(trainer.dataset.train_labels[idx], rng)  # the dataset's own caption draw
    ids, mask = trainer.tokenizer.encode_batch(captions, trainer.cfg.context_length)  # (B, L) each
    np.testing.assert_array_equal(seen["images"], normalize(images, *trainer.mean_std))
    np.testing.assert_array_equal(seen["token_ids"], ids)
    np.testing.assert_array_equal(seen["mask"], mask)
    assert trainer.augment_rng.bit_generator.state == rng.bit_generator.state  # nothing more, nothing less drawn


def test_an_epoch_takes_the_batches_of_augment_batches(tmp_path, monkeypatch):
    """The trainer's shuffling is :func:`miniclip.data.augment.batches` with its order generator."""
    trainer = Trainer(tiny(tmp_path, n_train=200), show_progress=False)  # 200 = 6 batches of 32 + 8 left over
    rng = np.random.default_rng()
    rng.bit_generator.state = trainer.order_rng.bit_generator.state
    taken = []
    monkeypatch.setattr(trainer, "step", lambda idx, step: taken.append(idx) or np.float32(0.0))
    monkeypatch.setattr(trainer, "_end_epoch", lambda seconds, rate: None)
    trainer._stop_requested = False  # as run() sets it
    trainer._run_epoch(None)
    expected = list(augment.batches(200, 32, rng))
    assert len(taken) == len(expected) == trainer.steps_per_epoch == 6
    for got, want in zip(taken, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_step_moves_its_random_numbers_and_indices_to_the_device_in_one_copy(tmp_path, monkeypatch):
    trainer = Trainer(tiny(tmp_path), show_progress=False)
    copies = []
    to_device = backend.to_device

    def counting(a, dtype=None):
        copies.append(np.shape(a))
        return to_device(a, dtype)

    def no_draws(*args):
        raise AssertionError("the step drew per-image numbers inside the augment functions")

    monkeypatch.setattr(backend, "to_device", counting)
    monkeypatch.setattr(augment, "_integers", no_draws)
    monkeypatch.setattr(augment, "_uniform", no_draws)
    _capture_step(trainer, monkeypatch, np.arange(32))
    assert copies == [(5, 32)]  # indices, dy, dx, flip, template: one array


def test_a_tokenizer_larger_than_the_models_token_table_is_refused_before_training(tmp_path):
    """On the GPU such ids would wrap silently, so the caption table is checked once, when it is built."""
    cfg = tiny(tmp_path)
    trainer = Trainer(cfg, show_progress=False)
    words = trainer.tokenizer.tokens[len(SPECIALS) :]
    trainer.tokenizer = Tokenizer([*SPECIALS, "unused", "words", *words])  # every word's id moves up by 2
    trainer.save()
    with pytest.raises(ValueError, match="token table"):  # refused on load, or by the trainer if load let it through
        Trainer(cfg, resume=True, show_progress=False)


# ---------------------------------------------------------------- Ctrl-C inside a step


def _checkpoint_state(path):
    ckpt = load_checkpoint(path)
    return ckpt.model.state(), ckpt.optimizer_state, ckpt.rng_state, ckpt.progress


@pytest.mark.parametrize("where", ["inside AdamW", "after AdamW"])
def test_an_interrupt_inside_a_step_saves_the_state_after_the_last_whole_step(tmp_path, monkeypatch, where):
    """A KeyboardInterrupt halfway through the optimiser's update (a second Ctrl-C) saves no half-applied step."""
    clean = tiny(tmp_path, "clean")
    with pytest.raises(KeyboardInterrupt):
        train(clean, show_progress=False, on_step=_stop_at(4))  # stops between steps 3 and 4: 4 whole steps

    real_step = AdamW.step
    calls = []

    def interrupted_step(self):
        calls.append(self.t)
        if len(calls) < 5:
            return real_step(self)
        if where == "after AdamW":
            real_step(self)  # the whole update is applied, then the interrupt lands before the step is counted
            raise KeyboardInterrupt
        self.t += 1  # as AdamW.step begins: the step is counted...
        for name, p in list(self.params.items())[:3]:  # ...and the first few parameters moved
            self.m[name] += 1.0
            p.data -= 0.5
        raise KeyboardInterrupt

    cut = tiny(tmp_path, "cut")
    monkeypatch.setattr(AdamW, "step", interrupted_step)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(cut, show_progress=False)
    monkeypatch.setattr(AdamW, "step", real_step)
    assert signal.getsignal(signal.SIGINT) is handler  # the roll-back's brief SIG_IGN is undone

    (model_a, optim_a, rng_a, progress_a), (model_b, optim_b, rng_b, progress_b) = (
        _checkpoint_state(tmp_path / "clean"),
        _checkpoint_state(tmp_path / "cut"),
    )
    assert progress_b == progress_a and progress_b["batch"] == 4
    assert int(optim_b["step"]) == 4  # the optimiser counted as many steps as the batch counter
    assert rng_b == rng_a
    for name, value in model_a.items():
        np.testing.assert_array_equal(model_b[name], value, err_msg=name)
    for name, value in optim_a.items():
        np.testing.assert_array_equal(optim_b[name], value, err_msg=name)

    straight = train(tiny(tmp_path, "straight"), show_progress=False)
    resumed = train(cut, resume=True, show_progress=False)
    _assert_same_run(straight, resumed, tmp_path / "straight", tmp_path / "cut")
