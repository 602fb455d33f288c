"""``miniclip pretrained fetch``: the four files land whole or not at all, every failure is one line.

No test touches the network: ``huggingface_hub.snapshot_download`` is replaced by a stand-in that
copies files into the ``local_dir`` it is given (as the real one does, bookkeeping folder included),
or raises the errors the real one raises offline, for an unknown repository, and so on.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from miniclip import cli
from miniclip.pretrained import fetch as fetching
from miniclip.pretrained.load import FILES, fetched_folder, load_pretrained

hub = pytest.importorskip("huggingface_hub", reason="the stand-in raises huggingface_hub's own errors")
errors = pytest.importorskip("huggingface_hub.errors", reason="huggingface_hub keeps its errors there")

NAME = "someone/tiny-clip"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty pretrained folder, and the place the files of the stand-in download come from."""
    monkeypatch.setenv("MINICLIP_PRETRAINED", str(tmp_path / "home"))
    return tmp_path / "home"


def _downloader(monkeypatch, source: Path | None = None, error: BaseException | None = None, calls=None):
    """Replace ``snapshot_download``: copy the allowed files of ``source`` into ``local_dir``, or raise ``error``."""

    def snapshot_download(*, repo_id, allow_patterns, local_dir, **kwargs):
        if calls is not None:
            calls.append({"repo_id": repo_id, "allow_patterns": list(allow_patterns), "local_dir": Path(local_dir)})
        local = Path(local_dir)
        (local / ".cache" / "huggingface").mkdir(parents=True)  # the real one keeps its bookkeeping there
        if error is not None:
            (local / "config.json").write_text("{}")  # something half-downloaded, to be cleaned away
            raise error
        for name in allow_patterns:
            if (source / name).is_file():
                shutil.copy(source / name, local / name)
        return str(local)

    monkeypatch.setattr(hub, "snapshot_download", snapshot_download)


def _leftovers(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    pytest.importorskip("torch", reason="the stand-in model is saved by transformers")
    pytest.importorskip("transformers", reason="the stand-in model is saved by transformers")
    from reference_clip import SMALL, learned_tokenizer, save_reference_clip

    folder = tmp_path_factory.mktemp("hub") / "tiny-clip"
    save_reference_clip(folder, SMALL, learned_tokenizer())
    (folder / "pytorch_model.bin").write_bytes(b"a pickle that must never be fetched")
    return folder


def test_fetch_downloads_the_four_files_and_the_folder_loads(released, home, monkeypatch, capsys):
    calls: list = []
    _downloader(monkeypatch, released, calls=calls)
    assert cli.main(["pretrained", "fetch", NAME]) == 0
    folder = fetched_folder(NAME)
    assert folder == home / "someone--tiny-clip"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # no pickle, no bookkeeping, nothing else
    assert calls[0]["repo_id"] == NAME and sorted(calls[0]["allow_patterns"]) == sorted(FILES)
    assert calls[0]["local_dir"].parent == home and calls[0]["local_dir"].name.endswith(".partial")  # staged
    assert _leftovers(home) == ["someone--tiny-clip"]
    out = capsys.readouterr().out
    assert f"fetched {NAME} into {folder}" in out and f"--init-from {NAME}" in out
    pretrained = load_pretrained(NAME)  # found by its Hub name
    assert pretrained.folder == folder and pretrained.config.image_size == 64

    assert cli.main(["pretrained", "list"]) == 0
    assert NAME in capsys.readouterr().out
    assert cli.main(["pretrained", "fetch", NAME]) == 0  # a second fetch downloads nothing
    assert "already fetched" in capsys.readouterr().out and len(calls) == 1


def test_fetch_to_a_folder_of_ones_choice(released, home, tmp_path, monkeypatch, capsys):
    _downloader(monkeypatch, released)
    to = tmp_path / "models" / "mine"
    assert cli.main(["pretrained", "fetch", NAME, "--to", str(to)]) == 0
    assert sorted(p.name for p in to.iterdir()) == sorted(FILES)
    assert f"--init-from {to}" in capsys.readouterr().out
    assert not home.exists()  # nothing in the default place
    assert np.isfinite(load_pretrained(to).model.logit_scale.scale).all()


def _hub_error(kind: str, message: str) -> BaseException:
    """huggingface_hub's error ``kind`` (its HTTP errors want a response object to build: made without one)."""
    cls = getattr(errors, kind)
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


@pytest.mark.parametrize(
    "error, message",
    [
        (("LocalEntryNotFoundError", "An error happened ... check your internet connection"), "could not reach"),
        (("OfflineModeIsEnabled", "offline"), "connect to the network and fetch again"),
        (("RepositoryNotFoundError", "404 Client Error.\nRepository Not Found"), "has no model someone/tiny-clip"),
        (("GatedRepoError", "403 Client Error.\nCannot access gated repo"), "accept its terms"),
        (("HfHubHTTPError", "500 Server Error.\nInternal"), "did not send someone/tiny-clip (500 Server Error.)"),
        (OSError(28, "No space left on device"), "No space left on device"),
    ],
)
def test_download_errors_are_one_line_and_leave_nothing(home, monkeypatch, capsys, error, message):
    _downloader(monkeypatch, error=_hub_error(*error) if isinstance(error, tuple) else error)
    assert cli.main(["pretrained", "fetch", NAME]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("miniclip pretrained: error: ")
    assert not home.exists()  # not even the pretrained folder it made for the download


def test_offline_says_so(home, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _downloader(monkeypatch, error=_hub_error("LocalEntryNotFoundError", "cannot find the requested files"))
    assert cli.main(["pretrained", "fetch", NAME]) == 2
    assert "(HF_HUB_OFFLINE is set)" in capsys.readouterr().err


def test_a_repository_without_safetensors_is_refused(released, home, tmp_path, monkeypatch, capsys):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt", "pytorch_model.bin"):
        shutil.copy(released / name, pickled / name)
    _downloader(monkeypatch, pickled)
    home.mkdir()
    (home / "kept").mkdir()  # what was there stays there
    assert cli.main(["pretrained", "fetch", NAME]) == 2
    err = capsys.readouterr().err
    assert "has no model.safetensors" in err and "pytorch_model.bin" in err and len(err.strip().splitlines()) == 1
    assert _leftovers(home) == ["kept"]


def test_a_repository_that_is_not_a_clip_is_refused(released, home, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other"
    shutil.copytree(released, other)
    (other / "config.json").write_text('{"model_type": "bert", "hidden_size": 16}')
    _downloader(monkeypatch, other)
    assert cli.main(["pretrained", "fetch", NAME]) == 2
    err = capsys.readouterr().err
    assert "is not a CLIP miniclip can build" in err and len(err.strip().splitlines()) == 1
    assert not home.exists()


def test_without_huggingface_hub_one_line_says_how_to_install(home, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import huggingface_hub now raises ImportError
    assert cli.main(["pretrained", "fetch", NAME]) == 2
    err = capsys.readouterr().err
    assert "huggingface_hub, which is not installed" in err and "[pretrained]" in err
    assert len(err.strip().splitlines()) == 1 and not home.exists()


@pytest.mark.parametrize("name", ["clip-vit-base-patch32", "a/b/c", "../x", "owner/", "a--b/c", "o/-x"])
def test_a_bad_name_is_refused_before_anything(home, monkeypatch, capsys, name):
    _downloader(monkeypatch, error=AssertionError("must not be called"))
    assert cli.main(["pretrained", "fetch", name]) == 2
    assert "is not a Hugging Face model name" in capsys.readouterr().err
    assert not home.exists()


def test_a_destination_in_the_way_is_refused(home, tmp_path, monkeypatch, capsys):
    _downloader(monkeypatch, error=AssertionError("must not be called"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert cli.main(["pretrained", "fetch", NAME, "--to", str(busy)]) == 2
    assert "exists and is not a model folder" in capsys.readouterr().err
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]


def test_a_staging_folder_left_by_a_killed_fetch_is_removed(released, home, monkeypatch, capsys):
    home.mkdir()
    prefix = fetching.temporary_prefix(fetching.STAGING)  # .fetch.PID@HOST-
    stale = home / (prefix.replace(f".{os.getpid()}@", ".999999999@") + "x.partial")  # a process that cannot run
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    _downloader(monkeypatch, released)
    assert cli.main(["pretrained", "fetch", NAME]) == 0
    assert _leftovers(home) == ["someone--tiny-clip"]
    assert "removed 1 unfinished file(s)" in capsys.readouterr().err


def test_an_interrupted_fetch_leaves_nothing(home, monkeypatch):
    _downloader(monkeypatch, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        fetching.fetch(NAME)
    assert not home.exists()


def test_list_with_nothing_fetched(home, capsys):
    assert cli.main(["pretrained", "list"]) == 0
    assert "no models fetched" in capsys.readouterr().out
