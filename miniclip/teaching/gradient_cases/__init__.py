"""The gradient checks ``miniclip gradcheck`` runs: every layer, every encoder, the whole model.

Each topic keeps its own list of cases (:mod:`.foundation` for the walkthrough,
:mod:`.transformer`, :mod:`.conv`, :mod:`.clip`, then the predictive baseline's head
:mod:`.predictive` and the linear probe's loss :mod:`.linear_probe`); :data:`CASES` joins them in lesson order,
with one CLIP check for every pairing of the registered encoders (:mod:`miniclip.encoders.registry`).
The tests call the same cases, so what the command prints is what CI proves.
"""

from __future__ import annotations

import zlib

import numpy as np

from miniclip.teaching.gradcheck import GradCheckResult, gradcheck
from miniclip.teaching.gradient_cases import clip, conv, foundation, linear_probe, predictive, transformer
from miniclip.teaching.gradient_cases.common import CaseBuilder, Cases

_TOPICS = (foundation, transformer, conv, clip, predictive, linear_probe)


def _joined() -> dict[str, CaseBuilder]:
    cases = {name: case for topic in _TOPICS for name, case in topic.CASES.items()}
    assert len(cases) == sum(len(topic.CASES) for topic in _TOPICS), "duplicate check names"
    return cases


CASES = Cases(_joined)  # read afresh each time, as the CLIP pairings follow the encoder registry


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
