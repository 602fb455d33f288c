"""The gradient checks ``miniclip gradcheck`` runs: every layer, the head and the whole model.

Each entry builds a module in float64 with random weights and random inputs from a seeded
generator and hands them to :func:`miniclip.gradcheck.gradcheck`. The tests call the same
list, so what the command prints is what CI proves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from miniclip.backend import to_device
from miniclip.gradcheck import GradCheckResult, gradcheck
from miniclip.layers import ContrastiveLoss, Embedding, Linear, MeanPool, Patchify, ReLU, Similarity, projection
from miniclip.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

F64 = np.float64
Case = tuple[Any, tuple[Any, ...], dict[str, Any]]  # (module, positional inputs, keyword inputs)


def _normal(rng: np.random.Generator, *shape: int) -> Any:
    return to_device(rng.standard_normal(shape))


def _padding_mask(rng: np.random.Generator, n: int, length: int) -> Any:
    lengths = rng.integers(1, length + 1, size=n)  # every item keeps at least one real token
    return to_device((np.arange(length)[None, :] < lengths[:, None]).astype(F64))


def _soft_targets(rng: np.random.Generator, n: int) -> Any:
    """A doubly stochastic target matrix (rows and columns sum to 1), as for duplicate captions."""
    y = rng.uniform(0.1, 1.0, (n, n)) + np.eye(n) * 3
    for _ in range(200):  # Sinkhorn: alternate row and column normalisation
        y /= y.sum(axis=1, keepdims=True)
        y /= y.sum(axis=0, keepdims=True)
    return to_device(y)


def _walkthrough(rng: np.random.Generator) -> Case:
    cfg = WalkthroughConfig(vocab_size=7, channels=2)
    model = WalkthroughCLIP(cfg, rng=rng, dtype=F64)
    ids = to_device(rng.integers(0, cfg.vocab_size, size=(4, 3)))  # repeated ids across the batch
    images = _normal(rng, 4, 2, 4, 4)
    return model, (ids, images), {"mask": _padding_mask(rng, 4, 3)}


CASES: dict[str, Callable[[np.random.Generator], Case]] = {
    "Linear": lambda r: (Linear(5, 4, rng=r, dtype=F64), (_normal(r, 3, 2, 5),), {}),
    "projection": lambda r: (projection(5, 3, rng=r, dtype=F64), (_normal(r, 4, 5),), {}),
    "ReLU": lambda r: (ReLU(), (_normal(r, 3, 4),), {}),
    "Patchify": lambda r: (Patchify(2), (_normal(r, 2, 3, 4, 6),), {}),
    "Embedding (repeated ids)": lambda r: (
        Embedding(5, 3, rng=r, dtype=F64),
        (to_device(np.array([[0, 1, 1], [4, 1, 0]])),),
        {},
    ),
    "MeanPool": lambda r: (MeanPool(), (_normal(r, 3, 4, 5),), {}),
    "MeanPool (padding mask)": lambda r: (MeanPool(), (_normal(r, 3, 4, 5),), {"mask": _padding_mask(r, 3, 4)}),
    "Similarity": lambda r: (Similarity(), (_normal(r, 3, 2), _normal(r, 3, 2)), {}),
    "ContrastiveLoss (base e)": lambda r: (ContrastiveLoss(), (_normal(r, 4, 4),), {}),
    "ContrastiveLoss (base 3)": lambda r: (ContrastiveLoss(base=3), (_normal(r, 4, 4),), {}),
    "ContrastiveLoss (soft targets)": lambda r: (
        ContrastiveLoss(),
        (_normal(r, 4, 4),),
        {"targets": _soft_targets(r, 4)},
    ),
    "WalkthroughCLIP (base e)": _walkthrough,
    "WalkthroughCLIP (base 3)": lambda r: (
        WalkthroughCLIP(WalkthroughConfig(base=3), rng=r, dtype=F64),
        (to_device(r.integers(0, 6, size=(3, 2))), _normal(r, 3, 1, 2, 4)),
        {},
    ),
}


def run_checks(names: list[str] | None = None, seed: int = 0) -> list[GradCheckResult]:
    """Run the named checks (all by default), each with its own generator seeded from ``seed``."""
    results = []
    for i, name in enumerate(names or list(CASES)):
        rng = np.random.default_rng([seed, i])
        module, inputs, kwargs = CASES[name](rng)
        results.append(gradcheck(module, *inputs, kwargs=kwargs, label=name, seed=seed + i))
    return results


def format_table(results: list[GradCheckResult]) -> str:
    """The table ``miniclip gradcheck`` prints: one line per checked tensor."""
    header = f"{'check':<28} {'gradient':<26} {'rel. error':>10}  status"
    body = "\n".join(r.report() for r in results)
    failed = [r.label for r in results if not r.ok]
    summary = f"{len(results) - len(failed)}/{len(results)} checks passed (tolerance {results[0].tol:.0e})"
    if failed:
        summary += "; FAILED: " + ", ".join(failed)
    return f"{header}\n{'-' * len(header)}\n{body}\n{summary}"
