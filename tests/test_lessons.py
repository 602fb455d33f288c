"""Every lesson runs to the end as a plain script (its own asserts pass), writes nothing
where it runs, and ``lessons/README.md`` lists exactly the lessons that exist, numbered 01, 02, ...,
with lettered lessons (06a, 06b, ...) inserted after the numbered one they follow.
"""

from __future__ import annotations

import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LESSONS_DIR = ROOT / "lessons"
LESSON_FILE = re.compile(r"(\d\d)([a-z]?)_[A-Za-z0-9_]+\.py")  # 06_attention_by_hand.py, 06a_...: number, letter
LESSONS = sorted(p for p in LESSONS_DIR.glob("[0-9][0-9]*_*.py") if LESSON_FILE.fullmatch(p.name))  # 06 < 06a < 07
LESSON_NAME = re.compile(r"\b(\d\d[a-z]?_[A-Za-z0-9_]+\.py)\b")


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs(path: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots"
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "MINICLIP_DEVICE": "cpu",
        "MINICLIP_LESSON_OUT": str(plots),  # exercise the optional plotting path, outside the repo
        # One BLAS thread: the lessons' tiny models gain nothing from more, and on a busy machine
        # threads fighting over the cores made a lesson that trains ten times slower.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
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
    labels = [LESSON_FILE.fullmatch(p.name).groups() for p in LESSONS]  # ("06", ""), ("06", "a"), ...
    numbers = [int(number) for number, letter in labels if not letter]
    assert numbers == list(range(1, len(numbers) + 1)), f"lesson numbers must run 01, 02, ... once each: {numbers}"
    for number in sorted({number for number, letter in labels if letter}):
        letters = "".join(letter for n, letter in labels if n == number and letter)
        assert int(number) in numbers, f"lessons {number}{letters[0]}... follow a lesson {number} that does not exist"
        assert letters == string.ascii_lowercase[: len(letters)], f"lessons {number}x must run a, b, ...: {letters}"
