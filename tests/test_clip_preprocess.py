"""CLIP's image preprocessing, compared with ``transformers``' PIL image processor at its default CLIP settings.

The processor is constructed directly (nothing is downloaded). In transformers 5 the PIL one is
``CLIPImageProcessorPil`` (``CLIPImageProcessor`` needs torchvision there); in transformers 4 it
is ``CLIPImageProcessor`` itself. The comparisons skip without transformers.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from miniclip.pretrained.preprocess import (
    CLIP_MEAN,
    CLIP_SIZE,
    CLIP_STD,
    normalize,
    prepare,
    prepare_batch,
    preprocess,
    resized_size,
)

TOLERANCE = 1e-6  # float32 arithmetic in another order: the largest difference measured is 4.8e-7


def _reference(**options):
    """The PIL/NumPy ``CLIPImageProcessor`` with CLIP's defaults (``options`` switch steps off)."""
    transformers = pytest.importorskip("transformers")
    processor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return processor(**options)


def _photo() -> Image.Image:
    """The lessons' photograph: the portrait of Grace Hopper in matplotlib's sample data (lesson 07)."""
    cbook = pytest.importorskip("matplotlib.cbook")
    try:
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            photo = Image.open(f)
            photo.load()
    except (OSError, ValueError):
        pytest.skip("this matplotlib ships no grace_hopper.jpg")
    return photo


def _random(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels)


def _image(name: str) -> Image.Image:
    if name == "photo":
        return _photo()
    if name == "photo-cmyk":
        return _photo().convert("CMYK")
    if name == "photo-palette-transparent":
        palette = _photo().convert("P")
        palette.info["transparency"] = 0  # one palette colour see-through: laid on white like an alpha band
        return palette
    if name == "rgba":
        transformers = pytest.importorskip("transformers")
        if int(transformers.__version__.split(".")[0]) < 5:
            pytest.skip("transformers 4 drops the alpha band instead of laying the image on white")
        return _random(90, 120, "RGBA", seed=5)
    sizes = {"wide": (640, 200), "tall": (150, 500), "small": (32, 32), "odd": (301, 227), "grey": (100, 80)}
    return _random(*sizes[name], mode="L" if name == "grey" else "RGB", seed=len(name))


IMAGES = ["photo", "wide", "tall", "small", "odd", "grey", "rgba", "photo-cmyk", "photo-palette-transparent"]


@pytest.mark.parametrize("name", IMAGES)
def test_prepare_gives_the_references_pixels_exactly(name):
    image = _image(name)
    expected = _reference(do_rescale=False, do_normalize=False)(image, return_tensors="np")["pixel_values"][0]
    got = prepare(image)
    assert got.dtype == np.uint8 and got.shape == (3, CLIP_SIZE, CLIP_SIZE) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", IMAGES)
def test_preprocess_equals_clip_image_processor(name):
    image = _image(name)
    expected = _reference()(image, return_tensors="np")["pixel_values"]
    got = preprocess(image)
    assert got.dtype == np.float32 and got.shape == expected.shape == (1, 3, CLIP_SIZE, CLIP_SIZE)
    assert np.abs(got - expected).max() <= TOLERANCE


@pytest.mark.parametrize("channels", [3, 1])
def test_prepare_batch_of_cifar_like_arrays_equals_the_reference(channels):
    images = np.random.default_rng(channels).integers(0, 256, (12, channels, 32, 32), dtype=np.uint8)
    expected = _reference()(list(images), input_data_format="channels_first", return_tensors="np")["pixel_values"]
    prepared = prepare_batch(images)
    assert prepared.dtype == np.uint8 and prepared.shape == (12, 3, CLIP_SIZE, CLIP_SIZE)
    assert np.abs(normalize(prepared) - expected).max() <= TOLERANCE


def test_normalize_is_within_tolerance_for_every_pixel_value():
    # A 224 × 224 image is neither resized nor cropped, so the reference only rescales and normalises it;
    # every value 0..255 appears in every channel, so this bounds the difference for any image.
    ramp = np.arange(CLIP_SIZE * CLIP_SIZE) % 256
    pixels = np.stack([ramp, ramp[::-1], (ramp * 7) % 256], axis=-1).reshape(CLIP_SIZE, CLIP_SIZE, 3)
    image = Image.fromarray(pixels.astype(np.uint8))
    expected = _reference()(image, return_tensors="np")["pixel_values"]
    assert np.abs(preprocess(image) - expected).max() <= TOLERANCE


def test_normalize_is_the_formula_with_clips_numbers():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16).repeat(3, axis=1)
    exact = (pixels / 255 - np.array(CLIP_MEAN)[:, None, None]) / np.array(CLIP_STD)[:, None, None]
    got = normalize(pixels)
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() < TOLERANCE


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (640, 200, (716, 224)),
        (150, 500, (224, 746)),
        (32, 32, (224, 224)),
        (224, 1000, (224, 1000)),
        (301, 227, (297, 224)),
    ],
)
def test_the_shortest_side_becomes_224_and_the_long_side_is_truncated(width, height, expected):
    assert resized_size(width, height) == expected  # 224 · 500 / 150 = 746.67 → 746


def test_a_smaller_size_is_resized_and_cropped_the_same_way():
    image = _random(90, 60, seed=3)
    got = prepare(image, size=32)
    resized = np.asarray(image.convert("RGB").resize((48, 32), Image.Resampling.BICUBIC))  # 32 · 90 / 60 = 48
    np.testing.assert_array_equal(got, resized[:, 8:40].transpose(2, 0, 1))  # left = (48 − 32) // 2


@pytest.mark.gpu
def test_normalize_on_the_gpu_equals_the_host():
    import cupy

    pixels = prepare_batch(np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8))
    on_gpu = normalize(cupy.asarray(pixels))
    assert isinstance(on_gpu, cupy.ndarray) and on_gpu.dtype == np.float32
    assert np.abs(cupy.asnumpy(on_gpu) - normalize(pixels)).max() <= TOLERANCE


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: prepare(np.zeros((3, 8, 8), np.uint8)), "PIL image"),
        (lambda: prepare(_random(8, 8), size=0), "size"),
        (lambda: prepare(Image.new("RGB", (0, 5))), "no pixels"),
        (lambda: prepare_batch(np.zeros((2, 3, 8, 8), np.float32)), "uint8"),
        (lambda: prepare_batch(np.zeros((3, 8, 8), np.uint8)), "uint8 array"),
        (lambda: prepare_batch(np.zeros((2, 2, 8, 8), np.uint8)), "1, 3 or 4 channels"),
        (lambda: preprocess([]), "at least one"),
    ],
    ids=["array-to-prepare", "size-0", "empty-image", "float-batch", "3d-batch", "two-channels", "no-images"],
)
def test_wrong_inputs_are_refused_in_words(call, words):
    with pytest.raises(ValueError, match=words):
        call()
