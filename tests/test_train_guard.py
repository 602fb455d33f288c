"""Refused before the first step, not after an epoch of training: a bad --out, an empty split."""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

import pytest
from conftest import TINY_TRAIN_MODEL
from PIL import Image
from test_train import tiny

from miniclip import atomic as atomic_module
from miniclip import cli
from miniclip.atomic import WRITE_CHECK
from miniclip.evaluation.trained_run import load_run
from miniclip.training import loop as train_module
from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.configs import CONFIGS, TrainConfig
from miniclip.training.loop import Trainer, train


def _train_counting_steps(cfg):
    """Run ``train(cfg)``, expecting a ValueError; return it and the number of steps taken before it."""
    steps = []
    with pytest.raises(ValueError) as info:
        train(cfg, show_progress=False, on_step=steps.append)
    return str(info.value), len(steps)


def test_an_out_folder_that_is_a_file_is_refused_before_the_first_step(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    message, steps = _train_counting_steps(tiny(tmp_path, epochs=1))
    assert steps == 0
    assert f"the output folder {tmp_path / 'run'} is a file, not a folder" in message


def test_an_out_folder_under_a_file_is_refused_before_the_first_step(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    message, steps = _train_counting_steps(tiny(tmp_path, "file/run", epochs=1))
    assert steps == 0
    assert f"cannot create the output folder {tmp_path / 'file' / 'run'}: {tmp_path / 'file'} is a file" in message


def test_a_read_only_out_folder_is_refused_before_the_first_step(tmp_path, monkeypatch):
    def read_only(path, write):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(atomic_module, "write_atomically", read_only)
    message, steps = _train_counting_steps(tiny(tmp_path, epochs=1))
    assert steps == 0
    out = tmp_path / "run"  # not there yet: the folder it would be made in is the one proven writable
    assert f"cannot write to {tmp_path}, where the output folder {out} would go: it is not writable" in message
    assert "(Read-only file system)" in message
    out.mkdir()
    message, steps = _train_counting_steps(tiny(tmp_path, epochs=1))
    assert steps == 0
    assert f"cannot write to the output folder {out}: it is not writable (Read-only file system)" in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write to any folder")
def test_an_out_folder_without_write_permission_is_refused_before_the_first_step(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    out.chmod(0o500)
    try:
        message, steps = _train_counting_steps(tiny(tmp_path, epochs=1))
    finally:
        out.chmod(0o700)
    assert steps == 0
    assert "it is not writable" in message


def test_the_write_check_leaves_only_the_run_behind(tmp_path):
    train(tiny(tmp_path, epochs=1), show_progress=False)
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(WRITE_CHECK)] == []


def test_a_folder_dataset_with_an_empty_test_split_is_refused_before_the_first_step(tmp_path):
    photos = tmp_path / "photos"
    for name, rgb in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (photos / name).mkdir(parents=True)
        for i in range(2):  # two images per class: round(0.2 * 2) = 0 of them go to the test split
            Image.new("RGB", (40, 40), tuple(max(0, c - 40 * i) for c in rgb)).save(photos / name / f"{i}.png")
    message, steps = _train_counting_steps(tiny(tmp_path, data=str(photos), batch_size=2, epochs=1))
    assert steps == 0
    assert f"the test split of {photos} is empty (4 training images, 0 test images, 2 classes)" in message
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


# ---------------------------------------------------------------- --resume takes the saved configuration


def _started_run(tmp_path, **changes):
    """A run started with batches of 8 and 2 epochs (none of them the cpu configuration's), stopped at step 3."""
    cfg = tiny(tmp_path, n_train=64, n_test=48, batch_size=8, **changes)  # one test image per class
    with pytest.raises(KeyboardInterrupt):
        train(cfg, show_progress=False, on_step=lambda step: step == 3 and _interrupt())
    return cfg


def test_resume_without_flags_takes_the_saved_configuration(tmp_path, capsys):
    cfg = _started_run(tmp_path)
    straight = train(dataclasses.replace(cfg, out_dir=str(tmp_path / "straight")), show_progress=False)
    assert cli.main(["train", "--out", cfg.out_dir, "--resume"]) == 0
    resumed = load_checkpoint(cfg.out_dir)
    assert TrainConfig.from_dict(resumed.train_config["config"]) == cfg
    assert [m["train_loss"] for m in resumed.metrics] == [m["train_loss"] for m in straight]
    assert "as configured when it started" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--batch-size", "16"], "--batch-size gives batch size 16, but the run was started with 8"),
        (["--lr", "0.1"], "--lr gives lr 0.1, but the run was started with 0.003"),
        (["--seed", "5"], "--seed gives seed 5, but the run was started with 0"),
        (["--no-augment"], "--no-augment gives augment off, but the run was started with on"),
        (["--text-encoder", "bag_of_words"], "--text-encoder gives text encoder 'bag_of_words', but the run"),
        (["--config", "tiny"], "--config tiny gives"),
        (["--epochs", "1"], "the run has already trained 1 epoch(s) of the 2 it was started with"),
    ],
)
def test_resume_refuses_a_flag_that_differs_from_the_saved_run_by_name(tmp_path, capsys, flags, named):
    cfg = _started_run(tmp_path)
    if flags == ["--epochs", "1"]:  # train on into epoch 2 (8 steps per epoch), so that one epoch is done
        with pytest.raises(KeyboardInterrupt):
            train(cfg, resume=True, show_progress=False, on_step=lambda step: step == 10 and _interrupt())
    before = load_checkpoint(cfg.out_dir).progress
    assert cli.main(["train", "--out", cfg.out_dir, "--resume", *flags]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume {cfg.out_dir}" in err and named in err
    assert load_checkpoint(cfg.out_dir).progress == before  # nothing trained


def test_resume_accepts_flags_that_match_and_more_epochs_saying_what_they_do(tmp_path, capsys):
    cfg = _started_run(tmp_path)
    flags = ["--data", "shapes", "--batch-size", "8", "--seed", "0", "--epochs", "3"]
    assert cli.main(["train", "--out", cfg.out_dir, "--resume", *flags]) == 0
    saved = load_checkpoint(cfg.out_dir)
    assert [m["epoch"] for m in saved.metrics] == [1, 2, 3]
    assert TrainConfig.from_dict(saved.train_config["config"]) == dataclasses.replace(cfg, epochs=3)
    out = capsys.readouterr().out
    assert "--epochs 3: the run was started with 2 epochs and has trained 0" in out
    assert "schedule is recomputed for 3 epochs" in out


def _interrupt():
    raise KeyboardInterrupt


def test_a_bad_out_folder_is_refused_before_the_data_loads(tmp_path, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the dataset was loaded (perhaps downloaded) before --out was checked")

    monkeypatch.setattr(train_module, "load_dataset", no_loading)
    (tmp_path / "run").write_text("not a folder")
    message, steps = _train_counting_steps(tiny(tmp_path, epochs=1))
    assert steps == 0 and "is a file, not a folder" in message


# ---------------------------------------------------------------- a folder dataset: its classes, its stored path


def _photos(root, classes=("red", "green", "blue"), per_class=10):
    """A folder dataset: one sub-folder per class, ``per_class`` small PNGs in each."""
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rgb = [40 * i % 256, 20 * k, 255 - 10 * i]
            rgb[k % 3] = 255
            Image.new("RGB", (36, 36), tuple(rgb)).save(root / name / f"{i}.png")
    return root


def _folder_run(tmp_path, photos, **changes):
    return tiny(tmp_path, data=str(photos), **({"batch_size": 8, "epochs": 2, "augment": False} | changes))


def test_resume_refuses_a_folder_whose_classes_changed_naming_them(tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    cfg = _folder_run(tmp_path, photos)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, show_progress=False, on_step=lambda step: step == 2 and _interrupt())
    before = load_checkpoint(cfg.out_dir).progress
    _photos(photos, classes=("yellow_sun",))  # one class added ...
    for file in (photos / "green").iterdir():  # ... and one taken away
        file.unlink()
    (photos / "green").rmdir()
    assert cli.main(["train", "--out", cfg.out_dir, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"cannot resume {cfg.out_dir}: the classes of {photos} have changed" in err
    assert "added 'yellow sun'" in err and "missing 'green'" in err
    assert load_checkpoint(cfg.out_dir).progress == before  # nothing trained
    with pytest.raises(ValueError, match="added 'yellow sun'; missing 'green'"):
        Trainer(cfg, resume=True, show_progress=False)


def test_resume_of_a_checkpoint_without_class_names_does_not_check_them(tmp_path):
    photos = _photos(tmp_path / "photos")
    cfg = _folder_run(tmp_path, photos, epochs=1)
    trainer = Trainer(cfg, show_progress=False)
    assert trainer.train_state["class_names"] == ["blue", "green", "red"]
    del trainer.train_state["class_names"]  # as a checkpoint written before they were stored
    trainer.save()
    _photos(photos, classes=("yellow",))
    assert Trainer(cfg, resume=True, show_progress=False).dataset.class_names == ["blue", "green", "red", "yellow"]


def test_a_folder_run_stores_the_resolved_data_path_that_eval_finds_from_elsewhere(tmp_path, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    _photos(work / "my_folder")
    elsewhere.mkdir()
    (work / "cifar").mkdir()
    monkeypatch.chdir(work)
    cfg = tiny(tmp_path, data="./my_folder", data_dir="cifar", batch_size=8, epochs=1, augment=False)
    train(cfg, show_progress=False)
    stored = TrainConfig.from_dict(load_checkpoint(cfg.out_dir).train_config["config"])
    assert Path(stored.data).is_absolute() and Path(stored.data).is_dir()
    assert stored.data == str((work / "my_folder").resolve())
    assert stored.data_dir == str((work / "cifar").resolve())
    assert cfg.data == "./my_folder"  # the caller's configuration is left as it was
    monkeypatch.chdir(elsewhere)
    assert load_run(cfg.out_dir).dataset().class_names == ["blue", "green", "red"]
    assert cli.main(["train", "--out", cfg.out_dir, "--resume", "--epochs", "2"]) == 0  # resumable from here too


def test_named_datasets_are_stored_as_named(tmp_path):
    cfg = tiny(tmp_path, epochs=1)
    train(cfg, show_progress=False)
    assert load_checkpoint(cfg.out_dir).train_config["config"]["data"] == "shapes"


# ---------------------------------------------------------------- train --help


@pytest.mark.parametrize(
    "flag, field",
    [
        ("--epochs", "epochs"),
        ("--batch-size", "batch_size"),
        ("--seed", "seed"),
        ("--image-encoder", "model.image_encoder"),
        ("--text-encoder", "model.text_encoder"),
    ],
)
def test_train_help_gives_each_configuration_dependent_flag_its_defaults(capsys, flag, field):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse's line wrapping undone
    train_parser = cli.build_parser()._subparsers._group_actions[0].choices["train"]
    (action,) = [a for a in train_parser._actions if flag in a.option_strings]
    assert action.help and "default: the configuration's" in action.help
    help_text = " ".join(action.help.split())
    assert help_text in text
    for name, cfg in CONFIGS.items():  # every configuration's own value, as CONFIGS holds it
        value = cfg.model[field.removeprefix("model.")] if field.startswith("model.") else getattr(cfg, field)
        assert str(value) in help_text and (name in help_text or "in each" in help_text)
    if flag == "--epochs":
        assert f"{CONFIGS['cpu'].epochs} for cpu" in help_text


# ---------------------------------------------------------------- a Trainer resumed in code follows the same rule


def test_a_trainer_resumed_in_code_keeps_the_saved_configuration(tmp_path):
    """One rule for what may differ on resume, whether the flags were typed or the configuration built in code."""
    cfg = tiny(tmp_path, epochs=1, model={**TINY_TRAIN_MODEL, "context_length": 12})  # sizes come from the data
    train(cfg, show_progress=False)
    saved = load_checkpoint(cfg.out_dir).train_config["config"]
    longer = Trainer(dataclasses.replace(cfg, epochs=2), resume=True, show_progress=False)  # its own configuration
    assert longer.cfg.model == saved["model"] and longer.cfg.epochs == 2
    partial = Trainer(dataclasses.replace(cfg, model={"image_encoder": "cnn"}), resume=True, show_progress=False)
    assert partial.cfg.model == saved["model"]  # a partial model dict does not replace what the run was
    with pytest.raises(ValueError, match=r"the configuration's lr gives lr 0\.1, .* resume with the configuration"):
        Trainer(dataclasses.replace(cfg, lr=0.1), resume=True, show_progress=False)
