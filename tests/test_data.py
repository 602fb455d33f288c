"""The data layer: CIFAR-10 binary files and download, image folders, shapes, captions, augmentation.

Fast and offline: CIFAR-10 files are written here in the official layout with a few records
each, and the downloader is served a tiny archive from memory instead of the network.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tarfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from miniclip import backend
from miniclip.data import (
    CLIP_CIFAR10_TEMPLATES,
    SHAPES_TEMPLATES,
    TRAIN_TEMPLATES,
    UNSEEN_TEMPLATES,
    DownloadError,
    ImageTextDataset,
    ImageTooLargeError,
    batches,
    channel_stats,
    cifar10,
    data_root,
    folder,
    horizontal_flip,
    load_cifar10,
    load_dataset,
    load_folder,
    load_shapes,
    make_captions,
    normalize,
    prompts,
    random_crop,
    shapes,
)
from miniclip.data.augment import draw_crop_offsets, draw_flips
from miniclip.data.folder import load_image
from miniclip.evaluation.classify_and_search import load_images

ORIGINAL_LOAD = ImageFile.ImageFile.load

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PROMPTS_FILE = Path("/work/shared/data/clip_cifar10_prompts.txt")


# ---------------------------------------------------------------- CIFAR-10 files


def cifar_files(rng: np.random.Generator, per_file: int = 3) -> dict[str, bytes]:
    """The official file names with ``per_file`` random records each (labels cycle 0..9), and the meta file."""
    files = {}
    for k, name in enumerate([*cifar10.TRAIN_FILES, *cifar10.TEST_FILES]):
        labels = (np.arange(per_file) + k) % 10
        pixels = rng.integers(0, 256, (per_file, 3072))
        files[name] = np.concatenate([labels[:, None], pixels], axis=1).astype(np.uint8).tobytes()
    files["batches.meta.txt"] = ("\n".join(CIFAR_CLASSES) + "\n\n").encode()  # the official file ends in blank lines
    return files


def write_cifar(root: Path, files: dict[str, bytes]) -> Path:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_read_batch_exact_values_and_channel_order(tmp_path: Path) -> None:
    red = np.arange(1024) % 251  # distinct along the row-major plane
    record = np.concatenate([[7], red, np.full(1024, 100), np.full(1024, 200)]).astype(np.uint8)
    second = np.concatenate([[2], np.zeros(3072)]).astype(np.uint8)
    path = tmp_path / "batch.bin"
    path.write_bytes(record.tobytes() + second.tobytes())
    images, labels = cifar10.read_batch(path)
    assert images.shape == (2, 3, 32, 32) and images.dtype == np.uint8 and images.flags.c_contiguous
    assert labels.tolist() == [7, 2] and labels.dtype == np.int64
    assert images[0, 0, 0, 1] == 1 and images[0, 0, 1, 0] == 32 and images[0, 0, 2, 3] == 67  # row-major
    np.testing.assert_array_equal(images[0, 0].reshape(-1), red)  # plane 0 is red
    assert (images[0, 1] == 100).all() and (images[0, 2] == 200).all()  # then green, then blue
    assert (images[1] == 0).all()


def test_load_cifar10_from_tiny_official_layout(tmp_path: Path) -> None:
    files = cifar_files(np.random.default_rng(0))
    write_cifar(tmp_path, files)
    data = load_cifar10(tmp_path, download=False)
    assert data.class_names == CIFAR_CLASSES and data.train_templates == TRAIN_TEMPLATES
    assert data.train_images.shape == (15, 3, 32, 32) and data.test_images.shape == (3, 3, 32, 32)
    assert data.train_labels.tolist() == [0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6]  # batch 1 first, in order
    test = np.frombuffer(files["test_batch.bin"], dtype=np.uint8).reshape(3, 3073)
    np.testing.assert_array_equal(data.test_images.reshape(3, -1), test[:, 1:])
    assert data.test_labels.tolist() == test[:, 0].tolist()


def test_file_size_not_whole_records_is_a_clear_error(tmp_path: Path) -> None:
    files = cifar_files(np.random.default_rng(0))
    files["data_batch_3.bin"] = files["data_batch_3.bin"][:-5]
    write_cifar(tmp_path, files)
    with pytest.raises(ValueError, match=r"data_batch_3\.bin has 9,214 bytes.*3073-byte.*Delete the folder"):
        load_cifar10(tmp_path, download=False)


def test_missing_folder_without_download_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-bin") in message
    assert "download=True" in message and "make_cifar10_bin.py" not in message  # no development-machine path
    assert "miniclip train --data shapes" in message and "--data-dir DIR" in message


def test_random_bytes_class_names_file_is_named(tmp_path: Path) -> None:
    files = cifar_files(np.random.default_rng(0))
    files["batches.meta.txt"] = bytes(np.random.default_rng(1).integers(0, 256, 400, dtype=np.uint8))
    folder = write_cifar(tmp_path, files)
    with pytest.raises(ValueError) as info:
        load_cifar10(tmp_path, download=False)
    message = str(info.value)
    assert str(folder / "batches.meta.txt") in message and "not a text file of class names" in message
    assert "delete the folder" in message


@pytest.mark.parametrize("where", ["root", "root/below", "batches folder"])
def test_data_dir_that_is_a_file_says_so_in_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    afile = tmp_path / "cifar.tar"
    afile.write_bytes(b"not a folder")
    root = {"root": afile, "root/below": afile / "below"}.get(where, tmp_path)
    if where == "batches folder":
        (tmp_path / "cifar-10-batches-bin").write_bytes(b"not a folder")
    monkeypatch.setattr(cifar10, "urlopen", lambda *a, **k: pytest.fail("no download should be tried"))
    with pytest.raises(NotADirectoryError, match=r"is a file, not a folder.*point --data-dir") as info:
        load_cifar10(root, download=True)
    assert "Errno" not in str(info.value)


def test_failed_download_points_at_what_works_offline(tmp_path: Path) -> None:
    data = official_tarball(cifar_files(np.random.default_rng(3)))
    _, opener = opener_for(data, fail_after=100)
    with pytest.raises(DownloadError) as info:
        cifar10.download_cifar10(tmp_path, md5=hashlib.md5(data).hexdigest(), opener=opener, progress=False)
    message = str(info.value)
    assert "miniclip train --data shapes" in message and "--data-dir DIR" in message
    assert "../shared" not in message and "make_cifar10_bin" not in message


@pytest.mark.parametrize("download", [False, True])
@pytest.mark.parametrize("where", ["--data-dir", "default"])
def test_loading_creates_no_folder_unless_data_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, download: bool, where: str
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no route to host")

    monkeypatch.setattr(cifar10, "urlopen", offline)
    monkeypatch.delenv("MINICLIP_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    data_dir = str(tmp_path / "new" / "data") if where == "--data-dir" else None  # None: datasets/ here
    with pytest.raises(DownloadError if download else FileNotFoundError, match="no route to host|not found"):
        load_dataset("cifar10", data_dir, download=download)
    assert os.listdir(tmp_path) == []  # neither new/data nor datasets/ is left behind, empty


def test_image_folder_that_is_a_file_says_so(tmp_path: Path) -> None:
    afile = tmp_path / "cat.png"
    afile.write_bytes(b"png")
    with pytest.raises(NotADirectoryError, match=r"cat\.png is a file, not an image folder"):
        load_folder(afile)


def test_incomplete_folder_names_the_missing_file(tmp_path: Path) -> None:
    files = cifar_files(np.random.default_rng(0))
    del files["test_batch.bin"]
    write_cifar(tmp_path, files)
    with pytest.raises(FileNotFoundError, match=r"missing test_batch\.bin.*Delete"):
        load_cifar10(tmp_path, download=True)  # present but incomplete: never downloads over it


def test_data_root_argument_then_environment_then_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINICLIP_DATA", raising=False)
    assert data_root() == Path("datasets")
    monkeypatch.setenv("MINICLIP_DATA", "/somewhere/else")
    assert data_root() == Path("/somewhere/else")
    assert data_root("mine") == Path("mine")


# ---------------------------------------------------------------- CIFAR-10 download


def tarball(members: dict[str, bytes], folder_entry: bool = True) -> bytes:
    """A .tar.gz in memory holding ``members`` (name → contents)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if folder_entry:
            info = tarfile.TarInfo("cifar-10-batches-bin")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def official_tarball(files: dict[str, bytes]) -> bytes:
    members = {f"cifar-10-batches-bin/{name}": data for name, data in files.items()}
    members["cifar-10-batches-bin/readme.html"] = b"<html></html>"
    return tarball(members)


class FakeResponse(io.BytesIO):
    """What ``urlopen`` returns, serving ``data``; it may announce another length or fail part-way."""

    def __init__(self, data: bytes, length: int | None = None, fail_after: int | None = None) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data) if length is None else length)}
        self.fail_after = fail_after

    def read(self, size: int | None = -1) -> bytes:
        if self.fail_after is not None:
            if self.tell() >= self.fail_after:
                raise ConnectionResetError("connection reset by peer")
            size = self.fail_after - self.tell()
        return super().read(size)


def opener_for(data: bytes, **kwargs: int) -> tuple[list[str], object]:
    calls: list[str] = []

    def opener(url: str, timeout: float | None = None) -> FakeResponse:
        calls.append(url)
        return FakeResponse(data, **kwargs)

    return calls, opener


def test_download_success_extracts_into_place_and_keeps_nothing_else(tmp_path: Path) -> None:
    files = cifar_files(np.random.default_rng(1))
    data = official_tarball(files)
    calls, opener = opener_for(data)
    root = tmp_path / "data"
    folder = cifar10.download_cifar10(root, md5=hashlib.md5(data).hexdigest(), opener=opener, progress=False)
    assert calls == [cifar10.URL]
    assert folder == root / "cifar-10-batches-bin"
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-bin"]  # no archive, no temporaries
    for name, contents in files.items():
        assert (folder / name).read_bytes() == contents
    assert load_cifar10(root, download=False).train_images.shape == (15, 3, 32, 32)


def test_load_cifar10_downloads_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = official_tarball(cifar_files(np.random.default_rng(2)))
    calls, opener = opener_for(data)
    monkeypatch.setattr(cifar10, "urlopen", opener)
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(data).hexdigest())
    monkeypatch.setenv("MINICLIP_DATA", str(tmp_path / "env-root"))
    dataset = load_cifar10()  # root from the environment
    assert len(calls) == 1 and dataset.test_images.shape == (3, 3, 32, 32)
    assert (tmp_path / "env-root" / "cifar-10-batches-bin" / "test_batch.bin").is_file()
    load_cifar10()
    assert len(calls) == 1  # present now: not fetched again


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("checksum", r"corrupt: MD5 [0-9a-f]{32} != expected"),
        ("short", r"incomplete: got [\d,]+ of [\d,]+ bytes"),
        ("reset", r"failed: connection reset by peer"),
    ],
)
def test_failed_download_is_clear_and_leaves_nothing(tmp_path: Path, kind: str, message: str) -> None:
    data = official_tarball(cifar_files(np.random.default_rng(3)))
    md5 = hashlib.md5(data).hexdigest()
    if kind == "checksum":
        md5 = "0" * 32
        _, opener = opener_for(data)
    elif kind == "short":  # the server promised more than it sent
        _, opener = opener_for(data[:100], length=len(data))
    else:  # the connection drops after 100 bytes
        _, opener = opener_for(data, fail_after=100)
    with pytest.raises(DownloadError, match=message) as info:
        cifar10.download_cifar10(tmp_path, md5=md5, opener=opener, progress=False)
    assert "Nothing was kept" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # neither the temporary file nor the archive


@pytest.mark.parametrize("bad", ["cifar-10-batches-bin/../../evil.txt", "cifar-10-batches-bin/extra.bin"])
def test_unexpected_archive_member_is_refused_and_leaves_nothing(tmp_path: Path, bad: str) -> None:
    members = {f"cifar-10-batches-bin/{n}": d for n, d in cifar_files(np.random.default_rng(4)).items()}
    members[bad] = b"surprise"
    data = tarball(members)
    _, opener = opener_for(data)
    with pytest.raises(DownloadError, match="unexpected member"):
        cifar10.download_cifar10(tmp_path, md5=hashlib.md5(data).hexdigest(), opener=opener, progress=False)
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "evil.txt").exists()


def test_archive_with_a_wrong_sized_member_leaves_nothing(tmp_path: Path) -> None:
    files = cifar_files(np.random.default_rng(5))
    files["data_batch_2.bin"] += b"\x00"
    data = official_tarball(files)
    _, opener = opener_for(data)
    with pytest.raises(DownloadError, match=r"could not unpack.*data_batch_2\.bin"):
        cifar10.download_cifar10(tmp_path, md5=hashlib.md5(data).hexdigest(), opener=opener, progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- a folder of images


def save_image(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    Image.new("RGB", size, rgb).save(path)


def make_photo_folder(root: Path) -> Path:
    for name, rgb, count in [("red_car", (200, 0, 0), 5), ("blue_sky", (0, 0, 200), 4)]:
        (root / name).mkdir(parents=True)
        for i in range(count):
            save_image(root / name / f"{i}.png", rgb, size=(40 + 7 * i, 30))
    return root


def test_folder_dataset_classes_split_and_unreadable_file(tmp_path: Path) -> None:
    root = make_photo_folder(tmp_path / "photos")
    (root / "red_car" / "broken.jpg").write_bytes(b"this is not an image")
    (root / "blue_sky" / ".hidden.png").write_bytes(b"ignored")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file\(s\).*red_car/broken\.jpg"):
        data = load_folder(root, image_size=16, test_fraction=0.25, seed=0)
    assert data.class_names == ["blue sky", "red car"]  # sorted by folder name, "_" read as a space
    assert data.train_images.shape[1:] == (3, 16, 16) and data.train_images.dtype == np.uint8
    assert np.bincount(data.train_labels).tolist() == [3, 4] and np.bincount(data.test_labels).tolist() == [1, 1]
    blue = data.train_images[data.train_labels == 0]
    assert (blue[:, 2] == 200).all() and (blue[:, :2] == 0).all()  # RGB order kept
    with pytest.warns(UserWarning):
        again = load_folder(root, image_size=16, test_fraction=0.25, seed=0)
    np.testing.assert_array_equal(again.test_images, data.test_images)  # the seeded split repeats


def test_folder_image_is_center_cropped_then_resized(tmp_path: Path) -> None:
    image = np.zeros((20, 60, 3), dtype=np.uint8)  # wide: left red, middle green, right blue
    image[:, :20, 0] = image[:, 20:40, 1] = image[:, 40:, 2] = 255
    (tmp_path / "stripes").mkdir()
    Image.fromarray(image).save(tmp_path / "stripes" / "a.png")
    Image.fromarray(image).convert("L").save(tmp_path / "stripes" / "grey.png")  # converted to RGB
    (tmp_path / "zigzags").mkdir()  # a second class: a folder needs two
    save_image(tmp_path / "zigzags" / "z.png", (9, 9, 9))
    data = load_folder(tmp_path, image_size=8, test_fraction=0.0)
    assert data.test_images.shape == (0, 3, 8, 8)
    colour = data.train_images[0]  # a.png sorts first
    assert (colour[1] == 255).all() and (colour[0] == 0).all() and (colour[2] == 0).all()
    assert (data.train_images[1][0] == data.train_images[1][1]).all()


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_folder(tmp_path)
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "x.jpg").write_bytes(b"garbage")
    (tmp_path / "dogs").mkdir()
    save_image(tmp_path / "dogs" / "d.png", (1, 2, 3))
    with pytest.raises(ValueError, match=r"no readable images \(1 file\(s\) Pillow cannot read\)"):
        load_folder(tmp_path)


def test_a_folder_with_one_class_is_refused_naming_it(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "tabby_cat").mkdir(parents=True)
    for i in range(5):
        save_image(photos / "tabby_cat" / f"{i}.png", (10 * i, 0, 0))
    (photos / ".thumbnails").mkdir()  # hidden: not a class
    with pytest.raises(ValueError, match=r"only one class sub-folder, 'tabby_cat': .*at least two classes") as info:
        load_folder(photos)
    assert str(photos) in str(info.value)
    with pytest.raises(ValueError, match="only one class sub-folder"):
        load_dataset(str(photos))


def huge_png(path: Path, width: int, height: int) -> Path:
    """A black 1-bit PNG of ``width`` × ``height``, written row by row so the test never holds its pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pack = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits of one row
    idat = b"".join(pack.compress(row) for _ in range(height)) + pack.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding any image's pixels fails the test: a refusal must come from the header alone."""

    def load(self: ImageFile.ImageFile):  # type: ignore[no-untyped-def]
        if self.size[0] * self.size[1] > 1_000_000:
            pytest.fail(f"a {self.size} image was decoded")
        return ORIGINAL_LOAD(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_a_small_file_that_decodes_to_a_huge_image_is_refused_before_decoding(tmp_path: Path, no_decoding) -> None:
    path = huge_png(tmp_path / "bomb.png", 10_000, 10_000)
    assert path.stat().st_size < 50_000  # a few KB on disk ...
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png is 10000×10000 pixels \(100 megapixels\).*40 megapixels"):
        load_image(path, 32)  # ... 100 million pixels decoded: refused from the header
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png is 10000×10000 pixels"):
        load_images([path], 32)  # classify and search: the message is not wrapped a second time


def test_a_huge_image_in_a_folder_is_skipped_with_its_size(tmp_path: Path, no_decoding) -> None:
    root = make_photo_folder(tmp_path / "photos")
    huge_png(root / "red_car" / "bomb.png", 10_000, 10_000)
    with pytest.warns(UserWarning, match=r"skipped 1 .*red_car/bomb\.png \(10000×10000 pixels, too large\)"):
        data = load_folder(root, image_size=8, test_fraction=0.0)
    assert np.bincount(data.train_labels).tolist() == [4, 5]


def test_pillows_own_limit_names_the_file(tmp_path: Path, no_decoding) -> None:
    path = huge_png(tmp_path / "giant.png", 20_000, 20_000)  # 400 megapixels: Image.open itself refuses
    with pytest.raises(ImageTooLargeError, match=r"giant\.png is too large to load"):
        load_image(path, 32)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folder, "MAX_PIXELS", 20_000)  # below the 400×400 = 160,000 of the files
    Image.new("RGB", (400, 400), (200, 30, 10)).save(tmp_path / "big.jpg", quality=95)
    Image.new("RGB", (400, 400), (200, 30, 10)).save(tmp_path / "big.png")
    image = load_image(tmp_path / "big.jpg", 32)  # decoded at 1/8 scale (50×50): under the cap
    assert image.shape == (3, 32, 32) and np.abs(image[:, 16, 16].astype(int) - [200, 30, 10]).max() < 8
    with pytest.raises(ImageTooLargeError, match=r"big\.png is 400×400 pixels"):
        load_image(tmp_path / "big.png", 32)  # a PNG has no reduced decoding: refused


# ---------------------------------------------------------------- shapes


def test_shapes_are_deterministic_and_balanced() -> None:
    a, b = load_shapes(n_train=120, n_test=96, seed=3), load_shapes(n_train=120, n_test=96, seed=3)
    assert a.train_images.tobytes() == b.train_images.tobytes() and a.test_images.tobytes() == b.test_images.tobytes()
    assert (a.train_labels == b.train_labels).all() and (a.test_labels == b.test_labels).all()
    assert not np.array_equal(a.train_images, load_shapes(n_train=120, n_test=96, seed=4).train_images)
    np.testing.assert_array_equal(load_shapes(n_train=40, n_test=96, seed=3).test_images, a.test_images)
    assert a.train_images.shape == (120, 3, 32, 32) and a.train_images.dtype == np.uint8
    assert np.bincount(a.test_labels, minlength=48).tolist() == [2] * 48
    assert a.train_templates == SHAPES_TEMPLATES and a.class_names[0] == "small red circle"


def test_shapes_hold_out_colour_shape_pairs_but_not_colours_or_shapes() -> None:
    data = load_shapes(n_train=400, n_test=96, seed=0)
    held = set(data.heldout_classes)
    assert len(held) == 2 * len(shapes.HELDOUT) == 8
    assert held.isdisjoint(data.train_labels.tolist())  # never trained on
    assert held <= set(data.test_labels.tolist())  # but tested
    assert data.heldout_mask(data.test_labels).sum() == 16
    trained = [data.class_names[c].split() for c in set(data.train_labels.tolist())]
    assert {size for size, _, _ in trained} == set(shapes.SIZES)
    assert {colour for _, colour, _ in trained} == set(shapes.COLOURS)
    assert {shape for _, _, shape in trained} == set(shapes.SHAPES)
    for colour, shape in shapes.HELDOUT:
        assert f"small {colour} {shape}" in [data.class_names[c] for c in held]


def test_shapes_draw_what_the_name_says() -> None:
    data = load_shapes(n_train=480, n_test=0, seed=1, image_size=32)
    images = data.train_images.astype(np.int32)  # (N, 3, S, S)
    background = np.median(images, axis=(2, 3), keepdims=True)  # the shape covers less than half the image
    painted = np.abs(images - background).sum(axis=1) > 60  # (N, S, S)
    names = [data.class_names[c].split() for c in data.train_labels]
    area = painted.sum(axis=(1, 2))
    large = np.array([size == "large" for size, _, _ in names])
    assert area[large].mean() > 2.5 * area[~large].mean()
    colour = (images * painted[:, None]).sum(axis=(2, 3)) / np.maximum(area, 1)[:, None]  # mean shape colour
    red = np.array([c == "red" for _, c, _ in names])
    assert (colour[red, 0] > colour[red, 1] + 100).all()


def test_shapes_generation_is_fast_and_sized() -> None:
    start = time.perf_counter()
    data = load_shapes(n_train=4000, n_test=1000)
    assert time.perf_counter() - start < 3.0
    assert len(data.train_labels) == 4000 and len(data.test_labels) == 1000
    assert load_shapes(n_train=10, n_test=2, image_size=48).image_shape == (3, 48, 48)
    with pytest.raises(ValueError, match="image_size"):
        load_shapes(image_size=4)


# ---------------------------------------------------------------- captions and the dataset record


def test_templates_lists() -> None:
    assert len(CLIP_CIFAR10_TEMPLATES) == 18 and len(set(CLIP_CIFAR10_TEMPLATES)) == 18
    assert 10 <= len(TRAIN_TEMPLATES) <= 20
    assert set(TRAIN_TEMPLATES).isdisjoint(UNSEEN_TEMPLATES)
    for template in [*CLIP_CIFAR10_TEMPLATES, *TRAIN_TEMPLATES, *UNSEEN_TEMPLATES, *SHAPES_TEMPLATES]:
        assert template.count("{}") == 1
    if PROMPTS_FILE.is_file():  # the project's copy matches the reference list
        lines = PROMPTS_FILE.read_text().splitlines()
        assert lines[lines.index("[templates]") + 1 :][:18] == CLIP_CIFAR10_TEMPLATES


def test_make_captions_is_seeded_and_fills_class_names() -> None:
    labels = np.array([0, 2, 1, 2] * 50)
    names = ["cat", "dog", "red car"]
    a = make_captions(labels, names, TRAIN_TEMPLATES, np.random.default_rng(0))
    assert a == make_captions(labels, names, TRAIN_TEMPLATES, np.random.default_rng(0))
    assert a != make_captions(labels, names, TRAIN_TEMPLATES, np.random.default_rng(1))
    assert all(names[label] in caption for label, caption in zip(labels, a, strict=True))
    assert {caption.replace("red car", "{}") for caption in a[1::2]} == set(TRAIN_TEMPLATES)  # all used
    with pytest.raises(ValueError, match="labels must be integers in"):
        make_captions([3], names, TRAIN_TEMPLATES, np.random.default_rng(0))
    with pytest.raises(ValueError, match="exactly one"):
        make_captions([0], names, ["no placeholder"], np.random.default_rng(0))


def test_prompts_every_class_with_every_template() -> None:
    table = prompts(["cat", "dog"], ["a {}.", "the {} again."])
    assert table == [["a cat.", "the cat again."], ["a dog.", "the dog again."]]


def tiny_dataset(**changes: object) -> ImageTextDataset:
    fields: dict[str, object] = dict(
        name="tiny",
        class_names=["a", "b", "c"],
        train_images=np.zeros((4, 3, 8, 8), dtype=np.uint8),
        train_labels=np.array([0, 1, 0, 1]),
        test_images=np.zeros((3, 3, 8, 8), dtype=np.uint8),
        test_labels=np.array([0, 1, 2]),
        train_templates=["a {}."],
        heldout_classes=[2],
    )
    fields.update(changes)
    return ImageTextDataset(**fields)  # type: ignore[arg-type]


def test_dataset_record_checks_its_fields() -> None:
    data = tiny_dataset()
    assert data.num_classes == 3 and data.image_shape == (3, 8, 8)
    assert data.heldout_mask(data.test_labels).tolist() == [False, False, True]
    assert data.prompts() == [["a a."], ["a b."], ["a c."]]
    assert "3 classes, 1 held out, 4 train + 3 test" in repr(data)
    with pytest.raises(ValueError, match="train_images must be a NumPy uint8"):
        tiny_dataset(train_images=np.zeros((4, 3, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"test_labels must be a NumPy int64 array of shape \(3,\)"):
        tiny_dataset(test_labels=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        tiny_dataset(train_labels=np.array([0, 1, 3, 1]))
    with pytest.raises(ValueError, match=r"present in training \[1\]"):
        tiny_dataset(heldout_classes=[1])
    with pytest.raises(ValueError, match="differ in shape"):
        tiny_dataset(test_images=np.zeros((3, 3, 9, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="distinct"):
        tiny_dataset(class_names=["a", "a", "c"])


# ---------------------------------------------------------------- augmentation and batches


def test_random_crop_shifts_each_image_within_the_padding() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (16, 3, 8, 8), dtype=np.uint8)
    np.testing.assert_array_equal(random_crop(images, 0, rng), images)  # padding 0: the identity
    out = random_crop(images, 2, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = []
    for n in range(16):
        found = [
            (dy, dx) for dy in range(5) for dx in range(5) if (padded[n, :, dy : dy + 8, dx : dx + 8] == out[n]).all()
        ]
        assert found, f"image {n} is not a window of its padded self"
        offsets.append(found[0])
    assert len(set(offsets)) > 4  # offsets differ from image to image
    np.testing.assert_array_equal(out, random_crop(images, 2, np.random.default_rng(1)))  # seeded
    assert (random_crop(images, 3, rng, mode="reflect") > 0).all()  # reflection brings in no zeros
    with pytest.raises(ValueError, match="padding"):
        random_crop(images, -1, rng)


def test_random_crop_with_the_global_generator_seeded_by_backend() -> None:
    images = np.arange(4 * 3 * 6 * 6, dtype=np.uint8).reshape(4, 3, 6, 6)
    backend.seed(5)
    first = random_crop(images, 2)
    backend.seed(5)
    np.testing.assert_array_equal(random_crop(images, 2), first)


def test_horizontal_flip() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 3, 5, 5), dtype=np.uint8)
    flipped = horizontal_flip(images, p=1.0, rng=rng)
    np.testing.assert_array_equal(flipped, images[..., ::-1])
    np.testing.assert_array_equal(horizontal_flip(flipped, p=1.0, rng=rng), images)  # its own inverse
    np.testing.assert_array_equal(horizontal_flip(images, p=0.0, rng=rng), images)
    some = horizontal_flip(images, p=0.5, rng=rng)
    changed = (some != images).any(axis=(1, 2, 3))
    assert 16 < changed.sum() < 48
    np.testing.assert_array_equal(some[changed], images[changed][..., ::-1])


def test_precomputed_offsets_and_flips_give_what_the_generator_path_gives() -> None:
    """The trainer draws crops and flips on the host in one go; the images must come out as with ``rng=``."""
    images = np.random.default_rng(0).integers(1, 256, (16, 3, 6, 6), dtype=np.uint8)
    via_rng = np.random.default_rng(4)
    expected = horizontal_flip(random_crop(images, 2, via_rng), 0.5, via_rng)
    drawn = np.random.default_rng(4)
    offsets, flips = draw_crop_offsets(drawn, 16, 2), draw_flips(drawn, 16, 0.5)  # (2, N) int64, (N,) bool
    assert offsets.shape == (2, 16) and offsets.dtype == np.int64 and flips.dtype == bool
    assert 0 < flips.sum() < 16 and len(set(offsets[0].tolist())) > 1  # the draws do vary
    got = horizontal_flip(random_crop(images, 2, offsets=offsets), flips=flips.astype(np.int64))  # 0/1 ints too
    np.testing.assert_array_equal(got, expected)
    assert drawn.bit_generator.state == via_rng.bit_generator.state  # the same numbers were consumed

    with pytest.raises(ValueError, match=r"dx must lie in \[0, 4\]"):
        random_crop(images, 2, offsets=(offsets[0], offsets[1] + 5))
    with pytest.raises(ValueError, match=r"one number per image, shape \(16,\)"):
        random_crop(images, 2, offsets=offsets[:, :3])
    with pytest.raises(ValueError, match="not both"):
        random_crop(images, 2, np.random.default_rng(0), offsets=offsets)
    with pytest.raises(ValueError, match=r"flips must hold one number per image"):
        horizontal_flip(images, flips=flips[:3])
    with pytest.raises(ValueError, match="not both"):
        horizontal_flip(images, rng=np.random.default_rng(0), flips=flips)


def test_normalize_accepts_arrays_for_its_statistics() -> None:
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 4, 4), dtype=np.uint8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    as_arrays = normalize(images, np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32))
    np.testing.assert_array_equal(as_arrays, normalize(images, mean, std))


def test_normalize_and_channel_stats() -> None:
    images = np.random.default_rng(0).integers(0, 256, (32, 3, 4, 4), dtype=np.uint8)
    x = normalize(images)
    assert x.dtype == np.float32 and x.shape == images.shape
    assert normalize(images, dtype=np.float64).dtype == np.float64
    zero = normalize(np.zeros((1, 3, 1, 1), dtype=np.uint8))
    np.testing.assert_allclose(
        zero.reshape(3), -np.array([0.4914, 0.4822, 0.4465]) / np.array([0.2470, 0.2435, 0.2616]), rtol=1e-6
    )
    mean, std = channel_stats(images, chunk=5)
    np.testing.assert_allclose(mean, images.mean(axis=(0, 2, 3)) / 255, rtol=1e-12)
    np.testing.assert_allclose(std, images.std(axis=(0, 2, 3)) / 255, rtol=1e-9)
    own = normalize(images, mean, std, dtype=np.float64)
    np.testing.assert_allclose(own.mean(axis=(0, 2, 3)), 0, atol=1e-9)
    np.testing.assert_allclose(own.std(axis=(0, 2, 3)), 1, atol=1e-9)
    with pytest.raises(ValueError, match="one mean and std per channel"):
        normalize(images, mean=(0.5,), std=(0.5,))


def test_batches() -> None:
    assert [b.tolist() for b in batches(7, 3)] == [[0, 1, 2], [3, 4, 5]]  # no rng: in order, short batch dropped
    assert [len(b) for b in batches(7, 3, drop_last=False)] == [3, 3, 1]
    shuffled = list(batches(10, 5, np.random.default_rng(0)))
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(10)) and shuffled[0].tolist() != [0, 1, 2, 3, 4]
    again = list(batches(10, 5, np.random.default_rng(0)))
    assert all((a == b).all() for a, b in zip(shuffled, again, strict=True))
    assert shuffled[0].dtype == np.int64
    with pytest.raises(ValueError, match="larger than the 3 examples"):
        batches(3, 4)


@pytest.mark.gpu
def test_augment_on_the_gpu_matches_the_cpu() -> None:
    import cupy

    images = np.random.default_rng(0).integers(0, 256, (8, 3, 6, 6), dtype=np.uint8)
    with backend.using("gpu"):
        device = backend.to_device(images)
        crop = random_crop(device, 2, np.random.default_rng(1))  # host generator, device images
        assert isinstance(crop, cupy.ndarray)
        np.testing.assert_array_equal(backend.to_host(crop), random_crop(images, 2, np.random.default_rng(1)))
        on_device = random_crop(device, 2, cupy.random.default_rng(1))  # a generator on the device
        assert on_device.shape == device.shape
        np.testing.assert_array_equal(backend.to_host(horizontal_flip(device, p=1.0)), images[..., ::-1])
        x = normalize(device)
        assert isinstance(x, cupy.ndarray) and x.dtype == np.float32
        np.testing.assert_allclose(backend.to_host(x), normalize(images), rtol=1e-6)
        drawn = np.random.default_rng(1)
        offsets = backend.to_device(draw_crop_offsets(drawn, 8, 2))  # (2, N) on the device
        flips = backend.to_device(draw_flips(drawn, 8).astype(np.int64))  # (N,) 0/1 on the device
        precomputed = horizontal_flip(random_crop(device, 2, offsets=offsets), flips=flips)
        assert isinstance(precomputed, cupy.ndarray)
        via_rng = np.random.default_rng(1)
        expected = horizontal_flip(random_crop(images, 2, via_rng), 0.5, via_rng)
        np.testing.assert_array_equal(backend.to_host(precomputed), expected)


# ---------------------------------------------------------------- load_dataset


def test_load_dataset_dispatches_by_name(tmp_path: Path) -> None:
    assert load_dataset("shapes", n_train=40, n_test=48).name == "shapes"
    write_cifar(tmp_path / "data", cifar_files(np.random.default_rng(0)))
    assert load_dataset("cifar10", tmp_path / "data", download=False).name == "cifar10"
    photos = make_photo_folder(tmp_path / "photos")
    assert load_dataset(str(photos), image_size=12).image_shape == (3, 12, 12)
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist': choose 'cifar10', 'shapes' or the path"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="32x32"):
        load_dataset("cifar10", tmp_path / "data", image_size=64)
