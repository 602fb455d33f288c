"""Every lesson runs to the end as a notebook (its own asserts pass), shows every figure it saves, and writes
nothing where it runs; ``lessons/README.md`` lists exactly the lessons that exist, numbered 01, 02, ..., with
lettered lessons (06a, 06b, ...) inserted after the numbered one they follow.

Each lesson is executed once, inside its own test (so pytest-xdist spreads the lessons over its workers), in a
fresh kernel by ``book/build.py``'s :func:`execute_notebook`. The executed notebook is kept on disk in a folder
all workers share (:func:`lesson_cache`), so ``tests/test_book.py`` builds the site from it instead of running
the lessons a second time; a lock per lesson makes whichever test gets there first run it and the other wait.

Without the ``book`` extra (jupytext, nbclient, ipykernel) each lesson runs as a plain script instead: its
asserts and the nothing-written check still hold, and the figures cannot be counted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
LESSONS_DIR = ROOT / "lessons"
BUILD_SCRIPT = ROOT / "book" / "build.py"
LESSON_FILE = re.compile(r"(\d\d)([a-z]?)_[A-Za-z0-9_]+\.py")  # 06_attention_by_hand.py, 06a_...: number, letter
LESSONS = sorted(p for p in LESSONS_DIR.glob("[0-9][0-9]*_*.py") if LESSON_FILE.fullmatch(p.name))  # 06 < 06a < 07
LESSON_NAME = re.compile(r"\b(\d\d[a-z]?_[A-Za-z0-9_]+\.py)\b")
NOTEBOOK_TOOLS = ("jupytext", "nbclient", "nbconvert", "ipykernel", "latex2mathml", "filelock")
SCRIPT_TIMEOUT = 120
# What show() saves; a lesson also keeps other files there (05's vocabulary, 09-14's training runs in folders)
FIGURE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")


def book_tools_missing() -> list[str]:
    """The ``book`` extra's modules that do not import here (none: lessons run as notebooks)."""
    return [name for name in NOTEBOOK_TOOLS if importlib.util.find_spec(name) is None]


def load_build() -> ModuleType:
    """``book/build.py`` imported by its path (the book is not part of the installed package)."""
    module = sys.modules.get("miniclip_book_build")
    if module is None:
        spec = importlib.util.spec_from_file_location("miniclip_book_build", BUILD_SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


@dataclass
class LessonRun:
    """What one execution of a lesson left: the notebook, the error if a cell raised, the files it wrote."""

    notebook: Any = field(repr=False)  # nbformat.NotebookNode; None where the lesson ran as a plain script
    error: str | None
    saved: list[str]  # figure files directly under $MINICLIP_LESSON_OUT (one for each show())
    stray: list[str]  # files written into the working directory (there should be none)

    def image_outputs(self) -> int:
        """How many images the executed notebook displays."""
        return load_build().image_outputs(self.notebook)


def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder this test session's xdist workers share (the parent of each worker's ``--basetemp``)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    cache = shared / "lesson-notebooks"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def lesson_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where executed lessons are kept for this session (see :func:`shared_cache`)."""
    return shared_cache(tmp_path_factory)


def run_lesson(path: Path, cache: Path, *, wait: bool = True) -> LessonRun | None:
    """The lesson at ``path`` executed as a notebook, once per session: from ``cache`` if a test already ran it.

    With ``wait=False``, returns None at once instead of waiting while another worker runs it.
    """
    import filelock
    import nbformat

    key = f"{path.stem}-{hashlib.sha1(path.read_bytes()).hexdigest()[:12]}"  # an edited lesson runs again
    done = cache / f"{key}.ipynb"
    try:
        with filelock.FileLock(cache / f"{key}.lock", timeout=-1 if wait else 0):
            if not done.exists():
                run = _execute(path, cache)
                run.notebook.metadata["miniclip_test"] = {"error": run.error, "saved": run.saved, "stray": run.stray}
                partial = done.with_suffix(".partial")
                nbformat.write(run.notebook, partial)
                partial.replace(done)  # atomic: another worker never reads half a notebook
    except filelock.Timeout:
        return None
    notebook = nbformat.read(done, as_version=4)
    facts = notebook.metadata.pop("miniclip_test")
    return LessonRun(notebook, facts["error"], facts["saved"], facts["stray"])


def _execute(path: Path, cache: Path) -> LessonRun:
    from nbclient.exceptions import CellExecutionError

    build = load_build()
    notebook = build.read_lesson(path)
    with tempfile.TemporaryDirectory(prefix=f"{path.stem}-", dir=cache) as scratch:
        workdir, out = Path(scratch) / "work", Path(scratch) / "out"
        workdir.mkdir()
        error = None
        try:
            build.execute_notebook(notebook, out, workdir=workdir)
        except CellExecutionError as failure:
            error = str(failure)[-4000:]
        saved = sorted(p.name for p in out.glob("*") if p.is_file() and p.suffix.lower() in FIGURE_SUFFIXES)
        stray = sorted(p.name for p in workdir.iterdir())
    return LessonRun(notebook, error, saved, stray)


def run_as_script(path: Path, tmp_path: Path) -> LessonRun:
    """Run ``path`` as a plain script in ``tmp_path`` (figures saved in ``tmp_path/plots``), as a reader would."""
    plots = tmp_path / "plots"
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "MINICLIP_DEVICE": "cpu",
        "MINICLIP_LESSON_OUT": str(plots),  # exercise the optional plotting path, outside the repo
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    run = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, timeout=SCRIPT_TIMEOUT, capture_output=True, text=True
    )
    error = None if run.returncode == 0 else f"exit {run.returncode}:\n{run.stderr[-4000:]}"
    stray = sorted(p.name for p in tmp_path.iterdir() if p != plots)
    return LessonRun(None, error, [], stray)


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs(path: Path, lesson_cache: Path, tmp_path: Path) -> None:
    """The lesson runs to its end, writes nothing where it runs, and displays each figure it saves."""
    run = run_as_script(path, tmp_path) if book_tools_missing() else run_lesson(path, lesson_cache)
    assert run is not None
    assert run.error is None, f"{path.name} failed:\n{run.error}"
    assert run.stray == [], f"{path.name} wrote files into its working directory: {run.stray}"
    if run.notebook is not None:
        shown = run.image_outputs()
        assert shown == len(run.saved), (
            f"{path.name} displays {shown} images but saved {len(run.saved)} figures under MINICLIP_LESSON_OUT "
            f"({run.saved}): every figure should go through miniclip.teaching.lesson_output.show(), "
            "which does both"
        )


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
