"""Refused before the first step, not after an epoch of training: a bad --out, an empty split."""

from __future__ import annotations

import errno
import os

import pytest
from PIL import Image
from test_train import tiny

from miniclip import train as train_module
from miniclip.train import PROBE_FILE, train


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

    monkeypatch.setattr(train_module, "write_atomically", read_only)
    message, steps = _train_counting_steps(tiny(tmp_path, epochs=1))
    assert steps == 0
    out = tmp_path / "run"
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
    assert not (tmp_path / "run" / PROBE_FILE).exists()


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
