"""The gradient checks ``miniclip gradcheck`` runs: every layer, every encoder, the whole model.

Each topic keeps its own list of cases (:mod:`.foundation` for the walkthrough,
:mod:`.transformer`, :mod:`.conv`, :mod:`.clip`); :data:`CASES` joins them in lesson order.
The tests call the same cases, so what the command prints is what CI proves.
"""

from __future__ import annotations

import zlib

import numpy as np

from miniclip.checks import clip, conv, foundation, transformer
from miniclip.checks.common import CaseBuilder
from miniclip.gradcheck import GradCheckResult, gradcheck

CASES: dict[str, CaseBuilder] = {**foundation.CASES, **transformer.CASES, **conv.CASES, **clip.CASES}
assert len(CASES) == sum(len(m.CASES) for m in (foundation, transformer, conv, clip)), "duplicate check names"


def case_rng(name: str, seed: int = 0) -> np.random.Generator:
    """The generator for one case: fixed by its name and ``seed``, not by its place in the list."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def run_checks(names: list[str] | None = None, seed: int = 0) -> list[GradCheckResult]:
    """Run the named checks (all by default); each draws weights and inputs from :func:`case_rng`."""
    results = []
    for name in names or list(CASES):
        module, inputs, kwargs = CASES[name](case_rng(name, seed))
        results.append(gradcheck(module, *inputs, kwargs=kwargs, label=name, seed=seed))
    return results


def format_table(results: list[GradCheckResult]) -> str:
    """The table ``miniclip gradcheck`` prints: one line per checked tensor."""
    width = max(28, *(len(r.label) + 1 for r in results))
    header = f"{'check':<{width}} {'gradient':<30} {'rel. error':>10}  status"
    body = "\n".join(r.report(width) for r in results)
    failed = [r.label for r in results if not r.ok]
    summary = f"{len(results) - len(failed)}/{len(results)} checks passed (tolerance {results[0].tol:.0e})"
    if failed:
        summary += "; FAILED: " + ", ".join(failed)
    return f"{header}\n{'-' * len(header)}\n{body}\n{summary}"
