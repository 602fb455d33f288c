"""Class labels: the one check that a labels array is what every classifier here expects.

Zero-shot classification (:mod:`miniclip.evaluation.zeroshot`) and the linear probe
(:mod:`miniclip.evaluation.linear_probe`) both score predictions against integer class labels; both ask
this module first, on the host, so that a label out of range is a clear message and never an
index that wraps silently on the GPU. It imports only NumPy and the backend, so light
commands (``miniclip gradcheck``) can use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import to_host


def check_labels(labels: Any, n: int, k: int) -> np.ndarray:
    """``labels`` as a host int64 array (N,), each in [0, K), before anything reaches the device."""
    host = np.asarray(to_host(labels))
    if host.shape != (n,) or (n and host.dtype.kind not in "iu"):
        raise ValueError(f"labels must be {n} integers (one per image), got dtype {host.dtype} shape {host.shape}")
    if n and (host.min() < 0 or host.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}) for {k} classes, got range [{host.min()}, {host.max()}]")
    return host.astype(np.int64)
