"""Fetching released CLIP weights from the Hugging Face Hub: the one place miniclip touches the network.

``miniclip pretrained fetch openai/clip-vit-base-patch32`` downloads exactly the four files a model
folder needs (:data:`~miniclip.pretrained.load.FILES`: ``config.json``, ``model.safetensors``,
``vocab.json``, ``merges.txt``) — never a pickled ``pytorch_model.bin`` — through
``huggingface_hub.snapshot_download``, into ``owner--name`` in the pretrained folder
(:func:`~miniclip.pretrained.load.fetched_folder`), where :func:`~miniclip.pretrained.load.load_pretrained`
finds it by the same name.

**A partial download never looks like a model folder.** The files go into a hidden staging
folder beside the destination (``.fetch.PID@HOST-….partial``, named as :mod:`miniclip.atomic`
names its temporary files); only when all four are there, and ``config.json`` describes a CLIP
miniclip can build, is the staging folder renamed onto the destination, in one step. A failed
download, a refused repository or Ctrl-C removes it; one left by a process killed outright is
removed by the next fetch into the same place.

**Every failure is one line naming what to do**: ``huggingface_hub`` not installed (it is the
optional ``pretrained`` extra), no network, an unknown or private repository, a gated one, a
repository without ``model.safetensors``. ``huggingface_hub`` is imported only here, only when
a fetch runs.

Lesson 16 names the command (``miniclip pretrained fetch``) where the files are not yet there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miniclip.atomic import check_output_folder, clear_leftovers, temporary_prefix
from miniclip.pretrained.hf_config import read_hf_config
from miniclip.pretrained.load import FILES, HUB_NAME, fetched_folder, pretrained_folder, pretrained_home

STAGING = "fetch"  # the name part of a staging folder: .fetch.PID@HOST-RANDOM.partial
EXAMPLE = "openai/clip-vit-base-patch32"
INSTALL = "pip install -e '.[pretrained]' (or pip install huggingface_hub)"


@dataclass
class Fetched:
    """What :func:`fetch` did: the model folder, and whether it was there already (nothing downloaded)."""

    folder: Path
    already: bool


def check_name(name: str) -> None:
    """Refuse, in one line, a name that is not ``owner/name`` as on huggingface.co.

    As the Hub's own rule: letters, digits, ``_``, ``-`` and ``.``, no part that begins or ends
    with ``-`` or ``.``, and no ``--`` or ``..`` (so ``owner--name``, the folder, is read back unambiguously).
    """
    parts = name.split("/")
    odd = any(p[:1] in "-." or p[-1:] in "-." or "--" in p or ".." in p for p in parts)
    if not HUB_NAME.fullmatch(name) or odd:
        raise ValueError(f"{name!r} is not a Hugging Face model name: give owner/name, e.g. {EXAMPLE}")


def fetch(name: str, to: str | os.PathLike[str] | None = None) -> Fetched:
    """Download the model ``name`` (``owner/name``) into ``to`` (default :func:`fetched_folder`); return where.

    A destination that already holds a complete model folder is kept as it is (nothing is
    downloaded); one that holds anything else is refused. Every failure is a ``ValueError`` of
    one line, and leaves nothing behind.
    """
    check_name(name)
    target = Path(os.path.abspath(to if to is not None else fetched_folder(name)))
    if target.exists():
        if _is_model_folder(target):
            return Fetched(target, already=True)
        if not target.is_dir() or any(target.iterdir()):
            raise ValueError(
                f"{target} exists and is not a model folder (it needs {', '.join(FILES)}): remove it, "
                "or fetch into another folder with --to"
            )
    snapshot_download = _snapshot_download()
    check_output_folder(target.parent)  # a file in the way, or no permission: refused before downloading
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]  # made here, removed on failure
    target.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(target.parent, STAGING)  # staging folders of fetches killed outright
    staging = Path(tempfile.mkdtemp(prefix=temporary_prefix(STAGING), suffix=".partial", dir=target.parent))
    try:
        try:
            snapshot_download(repo_id=name, allow_patterns=list(FILES), local_dir=staging)
        except Exception as exc:  # whatever the downloader raises is a failed download: said in one line
            raise ValueError(download_error(name, exc)) from None
        shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's own bookkeeping of the download
        check_download(name, staging)
        if target.is_dir():
            target.rmdir()  # empty (checked above): the rename below needs the place free
        os.replace(staging, target)  # the whole folder appears at once
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in made:  # innermost first
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return Fetched(target, already=False)


def check_download(name: str, folder: Path) -> None:
    """Refuse a download that lacks one of the four files, or whose ``config.json`` is not a CLIP's."""
    missing = [f for f in FILES if not (folder / f).is_file()]
    if FILES[1] in missing:
        raise ValueError(
            f"{name} has no model.safetensors on the Hugging Face Hub (its weights are only in a pickle format such "
            f"as pytorch_model.bin, which miniclip never opens): choose a repository that offers model.safetensors, "
            f"e.g. {EXAMPLE}"
        )
    if missing:
        raise ValueError(
            f"{name} lacks {', '.join(missing)} on the Hugging Face Hub, so it is not a CLIP in the transformers "
            f"layout miniclip reads (it needs {', '.join(FILES)}): choose another repository, e.g. {EXAMPLE}"
        )
    try:
        read_hf_config(folder)
    except ValueError as exc:
        raise ValueError(f"{name} is not a CLIP miniclip can build: {exc}") from None


def download_error(name: str, exc: BaseException) -> str:
    """One line for a failed download, naming what to do; the error kinds are read by class name.

    (By name, so that the message does not depend on where a version of ``huggingface_hub`` keeps its errors.)
    """
    kinds = {kind.__name__ for kind in type(exc).__mro__}
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "GatedRepoError" in kinds:
        return (
            f"{name} is gated on the Hugging Face Hub: accept its terms at https://huggingface.co/{name}, "
            "log in with `hf auth login`, then fetch again"
        )
    if kinds & {"RepositoryNotFoundError", "RevisionNotFoundError", "DisabledRepoError"}:
        return (
            f"the Hugging Face Hub has no model {name} (or it is private): check the name on https://huggingface.co, "
            f"e.g. {EXAMPLE}"
        )
    if kinds & {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError", "ConnectionError", "Timeout"} or (
        "TimeoutException" in kinds
    ):
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0") else ""
        return (
            f"could not reach the Hugging Face Hub to fetch {name}{offline}: connect to the network and fetch again, "
            f"or copy a model folder ({', '.join(FILES)}) to this machine and give its path"
        )
    if kinds & {"HfHubHTTPError", "HTTPError", "HTTPStatusError"}:
        return f"the Hugging Face Hub did not send {name} ({detail}): try again later"
    return f"fetching {name} failed ({type(exc).__name__}: {detail})"


def fetched_models() -> list[tuple[str, Path]]:
    """The models fetched into :func:`pretrained_home`: (Hub name, folder), complete ones only, by name."""
    home = pretrained_home()
    if not home.is_dir():
        return []
    found = []
    for folder in sorted(home.iterdir()):
        if not folder.name.startswith(".") and "--" in folder.name and _is_model_folder(folder):
            found.append((folder.name.replace("--", "/", 1), folder))
    return found


def folder_bytes(folder: Path) -> int:
    """The size of the files in ``folder`` (not below it)."""
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def _snapshot_download() -> Any:
    """``huggingface_hub.snapshot_download``, or a one-line ``ValueError`` saying how to install it."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ValueError(f"fetching needs huggingface_hub, which is not installed: {INSTALL}") from None
    return snapshot_download


def _is_model_folder(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    try:
        pretrained_folder(folder)
    except ValueError:
        return False
    return True
