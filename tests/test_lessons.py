"""Every lesson runs to the end as a plain script (its own asserts pass), writes nothing
where it runs, and ``lessons/README.md`` lists exactly the lessons that exist, numbered 01, 02, ...
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LESSONS_DIR = ROOT / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
LESSON_NAME = re.compile(r"\b(\d\d_[A-Za-z0-9_]+\.py)\b")


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs(path: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "MINICLIP_DEVICE": "cpu",
        "MINICLIP_LESSON_OUT": str(plots),  # exercise the optional plotting path, outside the repo
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    run = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, timeout=120, capture_output=True, text=True
    )
    assert run.returncode == 0, f"{path.name} failed (exit {run.returncode}):\n{run.stderr[-4000:]}"
    written = sorted(p.name for p in tmp_path.iterdir() if p != plots)
    assert written == [], f"{path.name} wrote files into its working directory: {written}"


def test_lessons_exist() -> None:
    assert LESSONS, f"no lessons found in {LESSONS_DIR}"


def test_readme_lists_every_lesson() -> None:
    listed = set(LESSON_NAME.findall((LESSONS_DIR / "README.md").read_text(encoding="utf-8")))
    present = {p.name for p in LESSONS}
    assert not present - listed, f"lessons missing from lessons/README.md: {sorted(present - listed)}"
    assert not listed - present, f"lessons/README.md lists files that do not exist: {sorted(listed - present)}"


def test_lesson_numbers_are_consecutive() -> None:
    numbers = [int(p.name[:2]) for p in LESSONS]
    assert numbers == list(range(1, len(numbers) + 1)), f"lesson numbers must run 01, 02, ... once each: {numbers}"
