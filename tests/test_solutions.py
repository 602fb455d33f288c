"""Every lesson's exercises have a solution in ``lessons/solutions/`` (same file name), and each solution runs
to its end as a plain script (its asserts pass) writing nothing where it runs.

Until the folder holds a first solution these tests pass vacuously; from then on every lesson needs one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_lessons import LESSONS, ROOT, run_as_script

SOLUTIONS_DIR = ROOT / "lessons" / "solutions"
SOLUTIONS = sorted(SOLUTIONS_DIR.glob("*.py"))


def test_every_lesson_has_a_solution() -> None:
    if not SOLUTIONS:
        return  # no solutions written yet
    present = {p.name for p in SOLUTIONS}
    lessons = {p.name for p in LESSONS}
    assert not lessons - present, f"lessons without a solution in {SOLUTIONS_DIR}: {sorted(lessons - present)}"
    assert not present - lessons, f"solutions for lessons that do not exist: {sorted(present - lessons)}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_solution_runs(path: Path, tmp_path: Path) -> None:
    run = run_as_script(path, tmp_path)
    assert run.error is None, f"{path.name} failed, {run.error}"
    assert run.stray == [], f"{path.name} wrote files into its working directory: {run.stray}"
