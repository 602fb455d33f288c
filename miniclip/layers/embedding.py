"""Embedding: look up one learned vector per token id (the walkthrough's word2vec table).

    forward:  vectors[n, l] = table[ids[n, l]]          ids (N, L) → (N, L, D)
    backward: dtable[v] = Σ over every (n, l) with ids[n, l] = v of dvectors[n, l]

When a word appears twice in a batch its row of the table receives both gradients, so the
backward is a scatter-*add*; a plain ``dtable[ids] += g`` would keep only one of them.

Ids must lie in ``[0, vocab_size)``. NumPy would raise for a too-large id but silently take
``-1`` as the last row, and CuPy silently wraps *every* out-of-range index, so nothing at the
lookup itself would catch a bad id on the GPU. Checking there would cost a device → host wait
on every call, so the check (:func:`check_token_ids`) runs on the host instead: in
:meth:`Embedding.forward` for host (NumPy) ids, where it is free, and where device ids are
made — the trainer checks its caption table once when it builds it, and
:func:`miniclip.evaluation.zeroshot.encode_texts` checks each batch before moving it. Ids that are
already on the device when they reach :meth:`Embedding.forward` are trusted.

Lessons 03 and 05 derive the scatter-add by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import get_array_module, scatter_add, to_device
from miniclip.module import Module, Parameter


def check_token_ids(ids: np.ndarray, vocab_size: int) -> None:
    """Raise ``ValueError`` unless the host ids are integers in ``[0, vocab_size)`` (min/max on the host)."""
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"token ids must be integers, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(
            f"token ids must lie in [0, {vocab_size - 1}] for a table of {vocab_size} rows; "
            f"got values from {ids.min()} to {ids.max()}"
        )


class Embedding(Module):
    """A ``(vocab_size, dim)`` table of vectors, indexed by integer token ids."""

    def __init__(self, vocab_size: int, dim: int, *, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        self.table = Parameter.from_host(rng.normal(0.0, 1.0, (vocab_size, dim)), dtype)
        self._ids: Any = None

    @property
    def vocab_size(self) -> int:
        """Rows of the table: every token id must lie in ``[0, vocab_size)``."""
        return int(self.table.data.shape[0])

    def forward(self, ids: Any) -> Any:
        xp = get_array_module(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"token ids must be integers, got dtype {ids.dtype}")
        if xp is np:
            check_token_ids(ids, self.vocab_size)  # host ids: free to check here
        # Device ids are not checked: min/max would wait for the GPU on every step (see the module docstring).
        ids = to_device(ids) if get_array_module(self.table.data) is not xp else ids
        self._ids = ids
        return self.table.data[ids]  # (N, L, D)

    def backward(self, dvectors: Any) -> None:
        self._require_forward(self._ids)
        dim = self.table.data.shape[1]
        scatter_add(self.table.grad, self._ids.reshape(-1), dvectors.reshape(-1, dim))
        return None  # token ids are not differentiable
