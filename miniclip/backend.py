"""The one place that knows NumPy from CuPy.

Every other module asks this one for its array module (``xp``), in one of two ways:

* from an array it already has: ``xp = get_array_module(x)`` (inside forward/backward), or
* from the chosen device: ``xp = get_array_module()`` (when creating new arrays).

The device is chosen by :func:`set_device`, by the environment variable
``MINICLIP_DEVICE=cpu|gpu`` (read the first time it is needed, never at import), or by
``miniclip --device cpu|gpu`` on the command line. CuPy is imported only when the GPU is
asked for, so ``import miniclip`` works everywhere.

Initial weights are always drawn on the host from a seeded NumPy generator and then moved
with :func:`to_device`, so a CPU run and a GPU run with the same seed start identical.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

DEVICES = ("cpu", "gpu")
GPU_HINT = (
    'install CuPy for your CUDA version (pip install -e ".[gpu]" for CUDA 12, '
    '".[gpu-cuda13]" for CUDA 13) on a machine with an NVIDIA GPU, or use --device cpu'
)

_device: str | None = None  # None until first asked for; then "cpu" or "gpu"


class DeviceUnavailableError(RuntimeError):
    """Raised when the GPU is asked for but CuPy or a GPU is missing (one-line message)."""


def _cupy() -> Any:
    """Import CuPy and check that it sees a GPU; raise a one-line error that says how to fix it."""
    try:
        import cupy
    except ImportError as exc:
        raise DeviceUnavailableError(f"GPU requested but CuPy is not installed: {GPU_HINT}") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise DeviceUnavailableError(f"GPU requested but CUDA is not usable ({exc}): {GPU_HINT}") from exc
    if count < 1:
        raise DeviceUnavailableError(f"GPU requested but no GPU was found: {GPU_HINT}")
    return cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        _cupy()
    except DeviceUnavailableError:
        return False
    return True


def set_device(name: str) -> None:
    """Choose where arrays live from now on: ``"cpu"`` (NumPy) or ``"gpu"`` (CuPy)."""
    global _device
    if name not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {name!r}")
    if name == "gpu":
        _cupy()
    _device = name


def environment_device() -> str:
    """The device ``MINICLIP_DEVICE`` names (default ``cpu``); a ``ValueError`` naming the variable otherwise."""
    name = os.environ.get("MINICLIP_DEVICE", "cpu").strip().lower() or "cpu"
    if name not in DEVICES:
        raise ValueError(f"MINICLIP_DEVICE={name!r} names no device: set it to one of {', '.join(DEVICES)}")
    return name


def get_device() -> str:
    """The current device; the first call reads ``MINICLIP_DEVICE`` (default ``cpu``)."""
    if _device is None:
        set_device(environment_device())
    assert _device is not None
    return _device


def memory_bytes() -> int | None:
    """The memory of the machine in bytes (the host's RAM; None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def gpu_free_bytes() -> int | None:
    """The GPU memory a new array can still get: the device's free bytes plus what CuPy's pool holds unused.

    None on the CPU (the host's free memory is the operating system's to judge).
    """
    if get_device() != "gpu":
        return None
    cupy = _cupy()
    free, _ = cupy.cuda.runtime.memGetInfo()
    return int(free) + int(cupy.get_default_memory_pool().free_bytes())


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep the memory a step frees, for the next step; True when it took the settings.

    A training step makes and frees the same few hundred MB of arrays every step. Left to itself,
    glibc hands the freed top of its heap back to the kernel and asks for it again in the next
    step, and every 4 KB page it gets back costs a page fault when first written: thousands a
    step for the ``cpu`` configuration, measured as 10–30 % of its step time. A high trim threshold
    keeps that memory in the process. The mmap threshold is set too (to glibc's largest, 32 MB),
    because setting either one turns off glibc's own tuning of the other. The process then keeps
    its peak memory until it exits, which is what a training run wants. The ``miniclip`` command
    asks for this when it starts; where the C library has no ``mallopt`` (macOS, musl) nothing
    changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter already runs on
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, 2**30)) and bool(mallopt(M_MMAP_THRESHOLD, 32 * 2**20))


def check_memory(nbytes: float, what: str) -> None:
    """A ``ValueError`` naming ``what`` when ``nbytes`` (a lower bound of what it needs) exceeds the machine's memory.

    Asked before allocating, so an absurd size is one line, not a ``MemoryError`` after minutes.
    """
    total = memory_bytes()
    if total is not None and nbytes > total:
        raise ValueError(
            f"{what} needs at least {nbytes / 2**30:,.1f} GiB of memory, more than the {total / 2**30:,.1f} GiB "
            "this machine has: give a smaller size"
        )


@contextlib.contextmanager
def using(name: str) -> Iterator[None]:
    """Temporarily switch device: ``with using("gpu"): ...``."""
    global _device
    before = _device
    set_device(name)
    try:
        yield
    finally:
        _device = before


def get_array_module(x: Any = None) -> Any:
    """The array module (``numpy`` or ``cupy``) of ``x``, or of the current device if ``x`` is None."""
    if x is None:
        return _cupy() if get_device() == "gpu" else np
    if isinstance(x, np.ndarray | np.generic):
        return np
    module = type(x).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return np


def on_gpu(x: Any) -> bool:
    """True when ``x`` is a CuPy (device) array."""
    return get_array_module(x) is not np


def to_device(a: Any, dtype: Any = None) -> Any:
    """Move a host array (or anything array-like) to the current device, optionally casting."""
    xp = get_array_module()
    return xp.asarray(a, dtype=dtype)


def to_host(a: Any) -> np.ndarray:
    """Return ``a`` as a NumPy array (a device-to-host copy for CuPy arrays)."""
    if get_array_module(a) is np:
        return np.asarray(a)
    return a.get()


def to_float(a: Any) -> float:
    """A 0-d array (or number) as a Python float. On the GPU this waits for the device: log sparingly."""
    return float(to_host(a))


def seed(n: int) -> np.random.Generator:
    """Seed NumPy (and CuPy, if the current device is the GPU) and return a fresh host generator for initial weights.

    The device is asked for with :func:`get_device`, so a GPU chosen only by ``MINICLIP_DEVICE``
    (not read yet when ``seed`` is the first call that needs it) is seeded too.
    """
    np.random.seed(n)
    if get_device() == "gpu":
        _cupy().random.seed(n)
    return np.random.default_rng(n)


def column_dots(a: Any, b: Any) -> Any:
    """Σ over the rows of a·b for two (M, C) matrices, (C,): one column dot product per channel.

    NumPy's ``einsum("mc,mc->c")`` multiplies and adds in one pass without the (M, C) product.
    CuPy's einsum (without the optional cuTENSOR) copies both operands transposed and runs C
    batched 1×M·M×1 products, so on the GPU one elementwise kernel forms a·b and one cuBLAS
    product with a vector of ones sums it.
    """
    if get_array_module(a) is np:
        return np.einsum("mc,mc->c", a, b)  # (C,)
    return _cupy().ones(a.shape[0], dtype=a.dtype) @ (a * b)  # (C,)


def global_generator(xp: Any) -> Any:
    """The global generator of ``xp`` (the one :func:`seed` seeds), with ``random(shape, dtype=)``.

    ``cupy.random`` itself. For NumPy, a ``numpy.random.Generator`` on ``numpy.random.get_bit_generator()``,
    the MT19937 behind the legacy ``numpy.random`` functions: drawing from it advances the same stream
    that ``numpy.random.seed`` seeds.
    """
    return np.random.Generator(np.random.get_bit_generator()) if xp is np else xp.random


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` where ``index`` may repeat (plain ``+=`` would lose updates)."""
    xp = get_array_module(target)
    if xp is np and index.ndim == 1 and values.ndim == 2 and index.size:
        # np.add.at adds one row at a time. With thousands of rows (a batch's tokens) it is faster to
        # sort the rows by index, sum each run of equal indices at once, and add every sum once.
        order = np.argsort(index, kind="stable")  # (M,)
        ordered = index[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first row of each run
        target[ordered[starts]] += np.add.reduceat(values[order], starts, axis=0)  # each index once: no loss
    elif xp is np:
        np.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)
