"""Data augmentation and batching, in array code that runs on NumPy and CuPy alike.

Each function takes its array module from the images (``xp = get_array_module(images)``), so
on the GPU the images stay on the device and are augmented there. Images are (N, C, H, W).

* :func:`random_crop` — pad every side by ``p`` pixels, then cut an H × W window at a random
  offset ``(dy, dx) ∈ {0..2p}²`` chosen per image: the image shifts by up to ``p`` pixels.
  One gather does the whole batch::

      out[n, c, i, j] = padded[n, c, dy[n] + i, dx[n] + j]

  It reads through a strided *view* that holds every shifted copy of every image without
  copying anything, ``shifts[n, dy, dx] = padded[n, :, dy : dy + H, dx : dx + W]``, and picks
  one per image: whole rows of pixels are copied at a time, not one pixel per index.

* :func:`horizontal_flip` — mirror each image left–right with probability ``p``.
* :func:`normalize` — uint8 pixels to floats with zero mean and unit variance per channel::

      x = (pixels / 255 − mean[c]) / std[c]

* :func:`batches` — shuffled index arrays, one per mini-batch.

Randomness: pass ``rng``, a NumPy ``Generator`` (draws on the host, then the few numbers per
image are moved to the images' device) or a CuPy ``Generator`` (``cupy.random.default_rng``,
draws on the GPU). With ``rng=None`` the array module's global generator is used
(``numpy.random`` / ``cupy.random``), which :func:`miniclip.backend.seed` seeds.

Or draw the numbers yourself and pass them in: ``random_crop(..., offsets=(dy, dx))`` and
``horizontal_flip(..., flips=flips)``. :func:`draw_crop_offsets` and :func:`draw_flips` draw
on the host exactly what the ``rng=`` path draws from a NumPy generator, so the trainer can
draw a whole step's numbers at once and move them to the GPU in one copy.

Lesson 08 crops and flips a numbered 4×4 image with it, and normalises the shapes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from miniclip.backend import get_array_module

# Per-channel (R, G, B) mean and standard deviation of the CIFAR-10 training pixels, in [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _integers(rng: Any, xp: Any, high: int, size: int) -> Any:
    """``size`` random integers in [0, high) as an array of module ``xp``."""
    if rng is None:
        return xp.random.randint(0, high, size=size)
    return xp.asarray(rng.integers(0, high, size=size))


def _uniform(rng: Any, xp: Any, size: int) -> Any:
    """``size`` random floats in [0, 1) as an array of module ``xp``."""
    if rng is None:
        return xp.random.random_sample(size)
    return xp.asarray(rng.random(size))


def draw_crop_offsets(rng: np.random.Generator, n: int, padding: int) -> np.ndarray:
    """Host draws for :func:`random_crop`: (2, N) int64, rows ``dy`` and ``dx``, each in [0, 2·padding].

    The same numbers, in the same order, as ``random_crop(images, padding, rng)`` draws from ``rng``.
    """
    dy = rng.integers(0, 2 * padding + 1, size=n)  # (N,) top edge of each window
    dx = rng.integers(0, 2 * padding + 1, size=n)  # (N,) left edge
    return np.stack([dy, dx]).astype(np.int64, copy=False)  # (2, N)


def draw_flips(rng: np.random.Generator, n: int, p: float = 0.5) -> np.ndarray:
    """Host draws for :func:`horizontal_flip`: (N,) bool, True where an image is mirrored (as its ``rng=`` path)."""
    return rng.random(n) < p  # (N,)


def _given(values: Any, xp: Any, n: int, what: str) -> Any:
    """Precomputed per-image numbers (N,) as an array of module ``xp`` (a copy only if they are elsewhere)."""
    values = xp.asarray(values)
    if tuple(values.shape) != (n,):
        raise ValueError(f"{what} must hold one number per image, shape ({n},), got {tuple(values.shape)}")
    return values


def _check_images(images: Any) -> None:
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")


def random_crop(images: Any, padding: int, rng: Any = None, mode: str = "constant", *, offsets: Any = None) -> Any:
    """Shift each image by up to ``padding`` pixels: pad (zeros, or ``mode="reflect"``), crop back at random.

    ``offsets``: precomputed ``(dy, dx)`` (a (2, N) array or a pair of (N,) arrays, integers in
    [0, 2·padding], e.g. from :func:`draw_crop_offsets`) instead of drawing from ``rng``. Host
    offsets are range-checked; offsets on the GPU are not (that would wait for the device, and
    CuPy wraps a bad index silently), so draw them with :func:`draw_crop_offsets`.
    """
    _check_images(images)
    if offsets is not None and rng is not None:
        raise ValueError("pass rng or offsets to random_crop, not both")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    if mode not in ("constant", "reflect"):
        raise ValueError(f"mode must be 'constant' or 'reflect', got {mode!r}")
    xp = get_array_module(images)
    n, c, h, w = images.shape
    if mode == "reflect" and padding >= min(h, w):
        raise ValueError(f"reflect padding must be smaller than the image side, got {padding} for {h}x{w}")
    pad = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    padded = xp.pad(images, pad, mode=mode)  # (N, C, H + 2p, W + 2p)
    if offsets is None:
        dy = _integers(rng, xp, 2 * padding + 1, n)  # (N,) top edge of each window
        dx = _integers(rng, xp, 2 * padding + 1, n)  # (N,) left edge
    else:
        if len(offsets) != 2:
            raise ValueError(f"offsets must be (dy, dx), got {len(offsets)} rows")
        for name, o in zip(("dy", "dx"), offsets, strict=True):
            if get_array_module(o) is np and np.size(o) and (np.min(o) < 0 or np.max(o) > 2 * padding):
                raise ValueError(f"crop offsets {name} must lie in [0, {2 * padding}] for padding {padding}")
        dy = _given(offsets[0], xp, n, "offsets dy")  # (N,)
        dx = _given(offsets[1], xp, n, "offsets dx")  # (N,)
    sn, sc, sh, sw = padded.strides
    shape = (n, 2 * padding + 1, 2 * padding + 1, c, h, w)  # shifts[n, dy, dx] = image n shifted by (dy, dx)
    shifts = xp.lib.stride_tricks.as_strided(padded, shape, (sn, sh, sw, sc, sh, sw))  # a view: nothing copied
    return shifts[xp.arange(n), dy, dx]  # (N, C, H, W): one shifted image per row of the batch


def horizontal_flip(images: Any, p: float = 0.5, rng: Any = None, *, flips: Any = None) -> Any:
    """Mirror each image left–right with probability ``p`` (``p=1`` flips all: its own inverse).

    ``flips``: precomputed (N,) booleans or 0/1 integers, nonzero = mirror (e.g. from
    :func:`draw_flips`), instead of drawing from ``rng``; ``p`` is then not used.
    """
    _check_images(images)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if flips is not None and rng is not None:
        raise ValueError("pass rng or flips to horizontal_flip, not both")
    xp = get_array_module(images)
    n = images.shape[0]
    flip = _uniform(rng, xp, n) < p if flips is None else _given(flips, xp, n, "flips") != 0  # (N,) bool
    return xp.where(flip[:, None, None, None], images[..., ::-1], images)  # (N, C, H, W)


def normalize(
    images: Any,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
    dtype: Any = np.float32,
) -> Any:
    """uint8 pixels (N, C, H, W) → floats of ``dtype``: ``(pixels / 255 − mean[c]) / std[c]``.

    ``mean`` and ``std``: C numbers each, or (C,) arrays of ``dtype`` already on the images'
    device, which are then used as they are (lists are copied to the device on every call).
    """
    _check_images(images)
    xp = get_array_module(images)
    if len(mean) != images.shape[1] or len(std) != images.shape[1]:
        raise ValueError(f"need one mean and std per channel ({images.shape[1]}), got {len(mean)} and {len(std)}")
    m = xp.asarray(mean, dtype=dtype).reshape(1, -1, 1, 1)  # (1, C, 1, 1)
    s = xp.asarray(std, dtype=dtype).reshape(1, -1, 1, 1)  # (1, C, 1, 1)
    x = images.astype(dtype)  # (N, C, H, W)
    x *= 1 / (255 * s)  # the same formula as pixels · a + b, in place: two passes instead of four
    x -= m / s
    return x


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units (for :func:`normalize`)."""
    _check_images(images)
    xp = get_array_module(images)
    total = xp.zeros(images.shape[1], dtype=np.float64)  # (C,) Σ x
    squares = xp.zeros(images.shape[1], dtype=np.float64)  # (C,) Σ x²
    for start in range(0, images.shape[0], chunk):  # chunks keep the float64 copy small
        x = images[start : start + chunk].astype(np.float64) / 255  # (n, C, H, W)
        total += x.sum(axis=(0, 2, 3))
        squares += (x**2).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = xp.sqrt(squares / count - mean**2)
    return tuple(float(v) for v in mean.tolist()), tuple(float(v) for v in std.tolist())


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None, drop_last: bool = True) -> Iterator[Any]:
    """Index arrays (host, int64) covering ``range(n)`` in mini-batches; shuffled when ``rng`` is given.

    With ``drop_last`` the final short batch is skipped, so every batch has ``batch_size`` rows
    (a contrastive loss compares each pair with the rest of its batch).
    """
    if batch_size < 1 or n < 0:
        raise ValueError(f"need batch_size >= 1 and n >= 0, got batch_size={batch_size}, n={n}")
    if drop_last and n < batch_size:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} examples: lower it or pass drop_last=False")
    order = rng.permutation(n) if rng is not None else np.arange(n)  # (n,)
    stop = n - n % batch_size if drop_last else n
    return (order[start : start + batch_size] for start in range(0, stop, batch_size))  # each (B,)
