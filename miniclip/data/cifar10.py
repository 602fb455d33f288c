"""CIFAR-10 read from the official binary files with NumPy (no pickle), downloaded if missing.

The official ``cifar-10-binary.tar.gz`` unpacks to ``<root>/cifar-10-batches-bin/``::

    data_batch_1.bin … data_batch_5.bin    10,000 training images each
    test_batch.bin                         10,000 test images
    batches.meta.txt                       the 10 class names, one per line, in label order

Every ``.bin`` file is a run of 3073-byte records, 30,730,000 bytes in all::

    byte 0           the label, 0..9
    bytes 1..1024    the red plane, 32 rows of 32 pixels (row-major)
    bytes 1025..2048 the green plane
    bytes 2049..3072 the blue plane

so a file read as a (N, 3073) uint8 array gives the labels in column 0 and, reshaped, the
images as (N, 3, 32, 32) — already channels-first, as the image encoders want.

Where the data lives (the *data root*): the ``root`` argument, else the environment variable
``MINICLIP_DATA``, else ``datasets/`` relative to the current directory.

When the folder is missing and ``download=True``, the archive is fetched from the official
address into the data root, first as a temporary file that is renamed only once its MD5
checksum matches; only the expected member names are unpacked, into a temporary folder that is
renamed into place when complete; the archive is then deleted. Whatever goes wrong, nothing
half-written is left behind, not even the data root itself if the download had to create it;
loading creates no folder unless it is about to download. Offline, developers rebuild the same
layout from the JPEG copy kept beside the project: ``python3 ../shared/data/make_cifar10_bin.py DATA_DIR``.

Lesson 08 writes a file of three records and reads it back.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from miniclip.atomic import clear_leftovers, temporary_prefix, write_atomically
from miniclip.data.captions import TRAIN_TEMPLATES
from miniclip.data.dataset import ImageTextDataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILES = ["test_batch.bin"]
META_FILE = "batches.meta.txt"
MEMBERS = [*TRAIN_FILES, *TEST_FILES, META_FILE, "readme.html"]  # all the official archive holds
RECORD = 1 + 3 * 32 * 32  # 3073 bytes: label, then the R, G and B planes
OFFICIAL_SIZE = 10_000 * RECORD  # 30,730,000 bytes per official file
# What works anywhere, with or without internet (developers' offline rebuild: see the module docstring).
OFFLINE_HINT = (
    "no internet? `miniclip train --data shapes` needs no download, and `--data-dir DIR` (or MINICLIP_DATA=DIR) "
    f"uses a copy you already have: DIR is the folder that holds {FOLDER}/"
)

urlopen: Callable[..., Any] = urllib.request.urlopen  # tests replace this to serve a local archive


class DownloadError(OSError):
    """A download or unpack failed; the message says what to delete or re-run."""


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root``, else ``$MINICLIP_DATA``, else ``datasets/`` (relative to the current directory)."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("MINICLIP_DATA") or "datasets")


def check_size(path: Path) -> None:
    """Raise a ValueError unless ``path`` holds a whole, non-zero number of 3073-byte records."""
    size = path.stat().st_size
    if size == 0 or size % RECORD:
        raise ValueError(
            f"{path} has {size:,} bytes, not a whole number of {RECORD}-byte CIFAR-10 records "
            f"(the official files have {OFFICIAL_SIZE:,}): the file is truncated or not CIFAR-10. "
            f"Delete the folder {path.parent} and load again to download it afresh."
        )


def read_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``.bin`` file: images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    path = Path(path)
    check_size(path)
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD)  # (N, 3073)
    labels = records[:, 0].astype(np.int64)  # (N,)
    if labels.max() > 9:
        raise ValueError(f"{path}: label {labels.max()} found, CIFAR-10 labels are 0..9; delete {path.parent}")
    images = records[:, 1:].reshape(-1, 3, 32, 32).copy()  # (N, 3, 32, 32): R, G, B planes, rows, columns
    return images, labels


def read_class_names(path: str | os.PathLike[str]) -> list[str]:
    """The class names in ``batches.meta.txt``: one per line, blank lines ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a ValueError, but its message names no file
        raise ValueError(
            f"{path} is not a text file of class names ({exc.reason} at byte {exc.start}): "
            f"it is damaged or not CIFAR-10; delete the folder {Path(path).parent} and load again"
        ) from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != 10:
        raise ValueError(f"{path} should list the 10 CIFAR-10 class names, found {len(names)}: {names}")
    return names


def load_cifar10(root: str | os.PathLike[str] | None = None, download: bool = True) -> ImageTextDataset:
    """CIFAR-10 from ``<root>/cifar-10-batches-bin`` (50,000 train + 10,000 test images), downloading if missing.

    Captions come from :data:`~miniclip.data.captions.TRAIN_TEMPLATES`.
    """
    root = data_root(root)
    folder = root / FOLDER
    for place in (folder, root, *root.parents):  # the nearest that exists must be a folder, not a file
        if place.exists():
            if not place.is_dir():
                raise NotADirectoryError(
                    f"{place} is a file, not a folder, so CIFAR-10 cannot be read or downloaded into {folder}: "
                    f"point --data-dir (or MINICLIP_DATA) at the folder that holds {FOLDER}/"
                )
            break
    if not folder.is_dir():
        if not download:
            raise FileNotFoundError(
                f"CIFAR-10 not found: {folder} does not exist. Load with download=True to fetch {URL} "
                f"(about 170 MB) into {root}, or unpack that archive there yourself; " + OFFLINE_HINT
            )
        download_cifar10(root)
    missing = [name for name in [*TRAIN_FILES, *TEST_FILES, META_FILE] if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 in {folder} is incomplete: missing {', '.join(missing)}. "
            f"Delete {folder} and load again (download=True fetches it afresh); " + OFFLINE_HINT
        )
    train = [read_batch(folder / name) for name in TRAIN_FILES]
    test_images, test_labels = read_batch(folder / TEST_FILES[0])
    return ImageTextDataset(
        name="cifar10",
        class_names=read_class_names(folder / META_FILE),
        train_images=np.concatenate([images for images, _ in train]),  # (50000, 3, 32, 32)
        train_labels=np.concatenate([labels for _, labels in train]),  # (50000,)
        test_images=test_images,  # (10000, 3, 32, 32)
        test_labels=test_labels,  # (10000,)
        train_templates=TRAIN_TEMPLATES,
    )


def download_cifar10(
    root: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    md5: str | None = None,
    opener: Callable[..., Any] | None = None,
    progress: bool = True,
) -> Path:
    """Fetch, check and unpack the official archive into ``<root>/cifar-10-batches-bin``; return that folder.

    ``url``, ``md5`` and ``opener`` (a ``urllib.request.urlopen`` look-alike) default to the
    official address, its checksum and this module's :data:`urlopen`.
    """
    root = data_root(root)
    created = [place for place in (root, *root.parents) if not place.exists()]  # deepest first
    root.mkdir(parents=True, exist_ok=True)
    archive = root / ARCHIVE
    try:
        fetch(url or URL, archive, md5 or MD5, opener or urlopen, progress=progress)
        try:
            return unpack(archive, root)
        finally:
            archive.unlink(missing_ok=True)  # unpacked (or unusable): the 170 MB archive is not kept
    except BaseException:
        remove_empty(created)  # a failed download leaves no empty data folder behind either
        raise


def remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is still empty; stop at the first that is not."""
    for folder in folders:
        try:
            folder.rmdir()  # only ever removes an empty folder
        except OSError:
            return


def fetch(url: str, dest: Path, md5: str, opener: Callable[..., Any], *, progress: bool = True) -> None:
    """Download ``url`` to ``dest`` atomically (:mod:`miniclip.atomic`); it is kept only if the MD5 matches."""
    retry = (
        f"Nothing was kept; check the connection and load again, or put {FOLDER} into {dest.parent} yourself; "
        + OFFLINE_HINT
    )

    def download(out: IO[bytes]) -> None:
        digest = hashlib.md5()
        with opener(url, timeout=60) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length else None
            received = 0
            with tqdm(total=expected, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected is not None and received != expected:
            raise DownloadError(f"download of {url} incomplete: got {received:,} of {expected:,} bytes. {retry}")
        if digest.hexdigest() != md5:
            raise DownloadError(
                f"download of {url} is corrupt: MD5 {digest.hexdigest()} != expected {md5} "
                f"({received:,} bytes). {retry}"
            )

    try:
        write_atomically(dest, download)  # on any error (Ctrl-C too) no partial file is left behind
    except DownloadError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"download of {url} failed: {exc}. {retry}") from exc


def unpack(archive: Path, root: Path) -> Path:
    """Extract the expected members of ``archive`` into a temporary folder, then rename it to ``root/FOLDER``."""
    expected = {f"{FOLDER}/{name}" for name in MEMBERS}
    clear_leftovers(root, FOLDER)  # an unpack killed outright left its staging folder
    staging = Path(tempfile.mkdtemp(dir=root, prefix=temporary_prefix(FOLDER), suffix=".partial"))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if member.name.rstrip("/") == FOLDER and member.isdir():
                    continue
                if member.name not in expected or not member.isfile():  # no links, no paths of its own choosing
                    raise ValueError(f"unexpected member {member.name!r} in the archive")
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has contents
                with source, open(staging / Path(member.name).name, "wb") as out:
                    shutil.copyfileobj(source, out)
        missing = [name for name in MEMBERS[:-1] if not (staging / name).is_file()]  # readme.html is optional
        if missing:
            raise ValueError(f"the archive lacks {', '.join(missing)}")
        for name in [*TRAIN_FILES, *TEST_FILES]:
            check_size(staging / name)  # every file whole before anything is moved into place
        folder = root / FOLDER
        os.replace(staging, folder)
        return folder
    except (OSError, ValueError, tarfile.TarError) as exc:
        raise DownloadError(
            f"could not unpack {archive}: {exc}. Nothing was kept; delete {root / FOLDER} if present and load again."
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
