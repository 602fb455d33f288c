"""im2col and col2im: turn a convolution into one matrix product, and back.

Images here are **channels-last**, (N, H, W, C): the C numbers of one pixel sit side by side
in memory, which is exactly what the matrix product wants (see :mod:`miniclip.layers.conv2d`).

A k×k convolution looks at one k×k window of every input channel per output pixel. ``im2col``
copies each window into one row of a matrix, so the convolution becomes a single GEMM::

    x (N, H, W, C)  →  cols (N·Ho·Wo, k·k·C)        row r = (n, i, j): the window under output pixel (i, j)
                                                     columns ordered kernel row, kernel column, channel

    Ho = ⌊(H + 2·padding − k) / stride⌋ + 1          Wo = ⌊(W + 2·padding − k) / stride⌋ + 1

(the input is first padded with ``padding`` zeros on every side).

``col2im`` is the *adjoint* (transpose) of ``im2col``, not its inverse: every entry of a row is
added back to the pixel it was copied from. When windows overlap (stride < k) a pixel was
copied into several rows, so it receives the *sum* of their values. That is exactly the
backward of ``im2col``: for any x and c, ``⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩``. Padding
positions are dropped at the end: they were constants, not inputs.

Neither loops over pixels, so the same code runs on NumPy and CuPy. ``im2col`` reads all the
windows through one strided *view* of the padded image (:func:`windows`) and copies it out in
one go; ``col2im`` cannot write through such a view (windows overlap), so it loops over the
k·k kernel offsets (ki, kj): for each offset one strided slice of the padded image holds, for
every output pixel at once, the pixel that sits at that offset of its window, and the
gradients are added there. Each copy moves runs of C neighbouring numbers (one pixel's
channels) at a time.

Memory and speed: a convolution's ``cols`` is k·k times larger than its input (nine times for
a 3×3 layer), so a layer that kept its batch's ``cols`` for the backward would hold most of a
training step's memory (about 20 GB of them for the ``gpu`` configuration at batch 512).
:class:`~miniclip.layers.conv2d.Conv2d` therefore never keeps them: it works through the batch
a few images at a time (:func:`image_chunks`), and builds each chunk's ``cols`` again in the
backward, where the weight gradient needs them. The copy is cheap beside the matrix product, and
a chunk that fits the processor's caches makes both faster on the CPU. The chunks' work arrays
come from one :class:`Workspace` per dtype and device, shared by every layer, so the memory they
take is that of the largest chunk, not of every layer.

Lesson 07 works both by hand on a 4×4 image.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from miniclip.backend import get_array_module, on_gpu


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length along one axis: ``⌊(size + 2·padding − kernel) / stride⌋ + 1``.

    The one place this is computed: the convolution, the pools and the encoders' cost rows
    (:mod:`miniclip.encoders.counting`) all call it.
    """
    return (size + 2 * padding - kernel) // stride + 1


# The bytes of one chunk's cols, by device. On the CPU a few MB stay in the caches while the
# matrix product reads them; on a GPU a chunk must be large enough that its kernels keep the
# device busy (each chunk costs a few launches of ~10 µs).
CHUNK_BYTES = {"cpu": 4 * 2**20, "gpu": 128 * 2**20}


def image_chunks(n: int, image_bytes: int, like: Any) -> list[slice]:
    """Split ``n`` images into runs whose work arrays take about a chunk's bytes (at least one image each).

    ``image_bytes`` is what one image needs (its ``cols``); ``like`` tells the device (:data:`CHUNK_BYTES`).
    """
    step = chunk_size(n, image_bytes, CHUNK_BYTES["gpu" if on_gpu(like) else "cpu"])
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def chunk_size(n: int, image_bytes: int, budget: int) -> int:
    """Images per chunk: as many as ``budget`` bytes hold at ``image_bytes`` each, at least one, at most ``n``."""
    return max(1, min(n, budget // max(1, image_bytes)))


@contextlib.contextmanager
def budgets(table: dict[str, int], **by_device: int) -> Iterator[None]:
    """Set some devices' entries of a budget table for a while, then put them back.

    ``with budgets(CHUNK_BYTES, cpu=1):`` works one image at a time on the CPU.
    """
    before = dict(table)
    table.update(by_device)
    try:
        yield
    finally:
        table.clear()
        table.update(before)


class Workspace:
    """Work arrays by name, as views of flat buffers that only ever grow: reused from call to call.

    ``get(name, shape)`` hands back the first ``prod(shape)`` numbers of the buffer ``name``,
    reshaped; the buffer is reallocated only when a larger request comes. One workspace per dtype
    and device is shared by every layer (:func:`workspace`): a layer may use its arrays during
    one call, and must never return them or keep them, since the next call overwrites them.
    """

    def __init__(self, xp: Any, dtype: Any) -> None:
        self.xp, self.dtype = xp, dtype
        self._flat: dict[str, Any] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> Any:
        """An uninitialised array of ``shape`` in this workspace's dtype, living in buffer ``name``."""
        size = int(np.prod(shape))
        flat = self._flat.get(name)
        if flat is None or flat.size < size:
            flat = self._flat[name] = self.xp.empty(size, dtype=self.dtype)
        return flat[:size].reshape(shape)

    def nbytes(self) -> int:
        """The bytes this workspace holds now."""
        return sum(int(flat.nbytes) for flat in self._flat.values())


_workspaces: dict[tuple[str, str], Workspace] = {}


def workspace(like: Any) -> Workspace:
    """The shared :class:`Workspace` for the dtype and device of ``like``."""
    xp = get_array_module(like)
    key = (xp.__name__, str(like.dtype))
    if key not in _workspaces:
        _workspaces[key] = Workspace(xp, like.dtype)
    return _workspaces[key]


def _check(shape: tuple[int, ...], kernel: int, stride: int, padding: int) -> tuple[int, int]:
    if len(shape) != 4:
        raise ValueError(f"im2col expects channels-last (N, H, W, C) inputs, got shape {tuple(shape)}")
    if kernel < 1 or stride < 1 or padding < 0:
        raise ValueError(f"need kernel >= 1, stride >= 1, padding >= 0; got {kernel}, {stride}, {padding}")
    h, w = shape[1], shape[2]
    if kernel > h + 2 * padding or kernel > w + 2 * padding:
        raise ValueError(f"kernel {kernel} is larger than the padded input {h + 2 * padding}x{w + 2 * padding}")
    return conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)


def _window_slices(ki: int, kj: int, stride: int, ho: int, wo: int) -> tuple[slice, slice]:
    """Rows ki, ki+s, … and columns kj, kj+s, …: the pixel at offset (ki, kj) of every window."""
    return slice(ki, ki + stride * (ho - 1) + 1, stride), slice(kj, kj + stride * (wo - 1) + 1, stride)


def windows(padded: Any, kernel: int, stride: int, ho: int, wo: int) -> Any:
    """Every k×k window of ``padded`` (N, H, W, C) as a (N, Ho, Wo, k, k, C) *view*: nothing is copied.

    A view is a new way of reading the same memory, given by one step size (stride, in bytes)
    per axis. Moving to the next output pixel moves the window by ``stride`` pixels; moving
    inside the window moves by one pixel; so the six steps are those of the image's own
    (N, H, W) axes, with H and W used twice::

        windows[n, i, j, ki, kj, c] = padded[n, stride·i + ki, stride·j + kj, c]

    Windows overlap, so one number appears in several places: read from the view, never write.
    """
    xp = get_array_module(padded)
    sn, sh, sw, sc = padded.strides
    shape = (padded.shape[0], ho, wo, kernel, kernel, padded.shape[3])
    return xp.lib.stride_tricks.as_strided(padded, shape, (sn, stride * sh, stride * sw, sh, sw, sc))


def im2col(
    x: Any, kernel: int, stride: int = 1, padding: int = 0, work: Workspace | None = None, name: str = "x"
) -> Any:
    """Copy every k×k window of ``x`` (N, H, W, C) into one row: returns (N·Ho·Wo, k·k·C).

    With a workspace ``work`` the padded image and the result live in its buffers
    ``"<name> padded"`` and ``"<name> cols"``, and are overwritten by the next call that uses them.
    """
    xp = get_array_module(x)
    ho, wo = _check(tuple(x.shape), kernel, stride, padding)
    n, h, w, c = x.shape
    p = padding
    if p:
        shape = (n, h + 2 * p, w + 2 * p, c)
        if work is None:
            padded = xp.zeros(shape, dtype=x.dtype)
        else:  # a reused buffer: write the zero border, four thin strips
            padded = work.get(f"{name} padded", shape)
            padded[:, :p] = padded[:, p + h :] = 0
            padded[:, p : p + h, :p] = padded[:, p : p + h, p + w :] = 0
        padded[:, p : p + h, p : p + w, :] = x
    else:
        padded = x  # nothing to pad: read the windows straight from x
    shape = (n, ho, wo, kernel, kernel, c)
    cols = work.get(f"{name} cols", shape) if work is not None else xp.empty(shape, dtype=x.dtype)
    cols[...] = windows(padded, kernel, stride, ho, wo)  # one copy of every window, side by side
    return cols.reshape(n * ho * wo, kernel * kernel * c)  # (N·Ho·Wo, k·k·C)


def col2im(
    cols: Any,
    x_shape: tuple[int, ...],
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    work: Workspace | None = None,
    name: str = "dy",
) -> Any:
    """Add each row of ``cols`` (N·Ho·Wo, k·k·C) back onto the pixels it came from: returns ``x_shape`` (N, H, W, C).

    With a workspace ``work`` the sums are made in its buffer ``"<name> padded"`` and the result
    is a view of it, which the next call overwrites: copy it where it belongs before then.
    """
    xp = get_array_module(cols)
    ho, wo = _check(tuple(x_shape), kernel, stride, padding)
    n, h, w, c = x_shape
    if tuple(cols.shape) != (n * ho * wo, kernel * kernel * c):
        raise ValueError(
            f"col2im expects cols of shape {(n * ho * wo, kernel * kernel * c)} for x {tuple(x_shape)}, "
            f"got {tuple(cols.shape)}"
        )
    p = padding
    windows = cols.reshape(n, ho, wo, kernel, kernel, c)
    shape = (n, h + 2 * p, w + 2 * p, c)
    if work is None:
        padded = xp.zeros(shape, dtype=cols.dtype)
    else:
        padded = work.get(f"{name} padded", shape)
        padded.fill(0)
    for ki in range(kernel):
        for kj in range(kernel):
            # within one offset every window hits a different pixel, so += loses nothing;
            # overlaps between windows are summed across the offsets of this loop
            rows, columns = _window_slices(ki, kj, stride, ho, wo)
            padded[:, rows, columns, :] += windows[:, :, :, ki, kj, :]  # (N, Ho, Wo, C)
    inside = padded[:, p : p + h, p : p + w, :]  # (N, H, W, C): padding dropped
    return inside if work is not None else xp.ascontiguousarray(inside)
