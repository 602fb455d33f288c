"""Embedding: look up one learned vector per token id (the walkthrough's word2vec table).

    forward:  vectors[n, l] = table[ids[n, l]]          ids (N, L) → (N, L, D)
    backward: dtable[v] = Σ over every (n, l) with ids[n, l] = v of dvectors[n, l]

When a word appears twice in a batch its row of the table receives both gradients, so the
backward is a scatter-*add*; a plain ``dtable[ids] += g`` would keep only one of them.
Ids are checked against the table before they are used: CuPy would silently wrap an
out-of-range index instead of raising.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from miniclip.backend import get_array_module, scatter_add, to_device
from miniclip.module import Module, Parameter


class Embedding(Module):
    """A ``(vocab_size, dim)`` table of vectors, indexed by integer token ids."""

    def __init__(self, vocab_size: int, dim: int, *, rng: np.random.Generator, dtype: Any = np.float32) -> None:
        self.table = Parameter.from_host(rng.normal(0.0, 1.0, (vocab_size, dim)), dtype)
        self._ids: Any = None

    def forward(self, ids: Any) -> Any:
        xp = get_array_module(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"token ids must be integers, got dtype {ids.dtype}")
        vocab = self.table.data.shape[0]
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(
                f"token ids must lie in [0, {vocab - 1}] for a table of {vocab} rows; "
                f"got values from {int(ids.min())} to {int(ids.max())}"
            )
        ids = to_device(ids) if get_array_module(self.table.data) is not xp else ids
        self._ids = ids
        return self.table.data[ids]  # (N, L, D)

    def backward(self, dvectors: Any) -> None:
        dim = self.table.data.shape[1]
        scatter_add(self.table.grad, self._ids.reshape(-1), dvectors.reshape(-1, dim))
        return None  # token ids are not differentiable
