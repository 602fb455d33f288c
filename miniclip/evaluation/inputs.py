"""What every classifier and map here is given, checked once: class labels, and clouds of points.

Zero-shot classification (:mod:`miniclip.evaluation.zeroshot`) and the linear probe
(:mod:`miniclip.evaluation.linear_probe`) both score predictions against integer class labels; both ask
:func:`check_labels` first, on the host, so that a label out of range is a clear message and never an
index that wraps silently on the GPU. The linear probe's features and the probe's maps and diagrams
(:mod:`miniclip.probe`) take clouds of points (N, d), refused by :func:`check_points` when they hold
NaN or are not 2-D. It imports only NumPy and the backend, so light commands (``miniclip gradcheck``)
can use it.

Lessons 10 and 11 meet both checks, through zero-shot and through the maps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import get_array_module, to_host


def check_labels(labels: Any, n: int, k: int) -> np.ndarray:
    """``labels`` as a host int64 array (N,), each in [0, K), before anything reaches the device."""
    host = np.asarray(to_host(labels))
    if host.shape != (n,) or (n and host.dtype.kind not in "iu"):
        raise ValueError(f"labels must be {n} integers (one per image), got dtype {host.dtype} shape {host.shape}")
    if n and (host.min() < 0 or host.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}) for {k} classes, got range [{host.min()}, {host.max()}]")
    return host.astype(np.int64)


def check_points(x: Any, what: str = "points") -> Any:
    """Refuse a cloud no analysis can use — not 2-D, or NaN/inf anywhere — naming ``what``; return its array module."""
    xp = get_array_module(x)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (N, d), got shape {tuple(x.shape)}")
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"{what} contain NaN or infinite values")
    return xp
