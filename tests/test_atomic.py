"""Atomic writes: a file is the old one or the new one, never half of one, and no temporary file is left.

The first tests check :func:`miniclip.atomic.write_atomically` itself; the last one checks that every
file miniclip writes (checkpoint, vocabulary, figure, CIFAR-10 download) goes through it: each writer
is made to fail after its bytes are written but before the rename (``os.fsync`` raises), and the file
it was replacing must still be whole.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest

from miniclip.atomic import write_atomically


def _half_then_fail(exc: BaseException):
    def write(f):
        f.write(b"half of the new")
        raise exc

    return write


def test_writes_the_file_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    assert write_atomically(str(path), lambda f: f.write(b"one")) == path  # a str path is accepted too
    write_atomically(path, lambda f: f.write(b"two"))  # replaces an existing file
    assert path.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["notes.txt"]
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0o600


@pytest.mark.parametrize("exc", [OSError("No space left on device"), KeyboardInterrupt()], ids=["OSError", "Ctrl-C"])
def test_a_failure_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path, exc: BaseException) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"the old contents")
    with pytest.raises(type(exc)):
        write_atomically(path, _half_then_fail(exc))
    assert path.read_bytes() == b"the old contents"
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_a_failure_midway_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bad"):
        write_atomically(tmp_path / "new.bin", _half_then_fail(ValueError("bad")))
    assert os.listdir(tmp_path) == []


def test_a_failed_rename_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(OSError):
        write_atomically(tmp_path / "folder", lambda f: f.write(b"data"))
    assert os.listdir(tmp_path) == ["folder"] and os.listdir(tmp_path / "folder") == []


# --- every writer in the package goes through write_atomically ---------------------------------------------------


def _checkpoint(folder: Path, version: int) -> Path:
    from miniclip.model.config import build_clip
    from miniclip.model.tokenizer import Tokenizer
    from miniclip.teaching.gradient_cases.clip import tiny_config
    from miniclip.training.checkpoint import save_checkpoint

    tokenizer = Tokenizer.build(["a red cat", "a blue dog"])
    cfg = tiny_config("patch_mlp", "bag_of_words", vocab_size=tokenizer.vocab_size)
    model = build_clip(cfg, rng=np.random.default_rng(version), dtype=np.float32)
    return save_checkpoint(folder, model=model, model_config=cfg, tokenizer=tokenizer, progress={"step": version})


def _vocabulary(folder: Path, version: int) -> Path:
    from miniclip.model.tokenizer import Tokenizer

    path = folder / "tokenizer.json"
    Tokenizer.build([f"caption number {version}"]).save(path)
    return path


def _figure(folder: Path, version: int) -> Path:
    from miniclip.plots import plot_image_grid

    images = np.full((2, 3, 4, 4), 40 * version, dtype=np.uint8)
    return plot_image_grid(images, [f"image {version}", "other"], folder / "grid.png")


class _Response(io.BytesIO):
    headers: dict[str, str] = {}


def _download(folder: Path, version: int) -> Path:
    from miniclip.data import cifar10

    data = f"archive {version}".encode() * 1000
    dest = folder / cifar10.ARCHIVE
    cifar10.fetch(
        "https://example.org/a.tar.gz",
        dest,
        hashlib.md5(data).hexdigest(),
        lambda url, timeout: _Response(data),
        progress=False,
    )
    return dest


WRITERS = {"checkpoint": _checkpoint, "tokenizer": _vocabulary, "plot": _figure, "cifar10 download": _download}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_keeps_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch, writer: str) -> None:
    path = WRITERS[writer](tmp_path, 1)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert path.name in before

    def fail(fd: int) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "fsync", fail)  # write_atomically syncs just before the rename: all written, none renamed
    with pytest.raises(OSError, match="No space left"):  # DownloadError is an OSError too
        WRITERS[writer](tmp_path, 2)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the old files, whole; no temporaries

    WRITERS[writer](tmp_path, 2)  # and without the failure the new contents arrive
    assert path.read_bytes() != before[path.name]
