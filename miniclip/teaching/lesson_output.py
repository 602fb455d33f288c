"""What a lesson shows and keeps: figures inline in a notebook, saved when asked; scratch folders that last.

A lesson runs two ways — as a plain script (``python lessons/07_image_encoders.py``, in the
tests and on a machine with no display) and as a notebook (Jupyter, VS Code, the book) — and
its figures should work in both without the lesson knowing which:

* :func:`show` takes a Matplotlib figure (or the path of an image a plotting function wrote)
  and shows it inline when the lesson runs in a notebook kernel, saves it as
  ``$MINICLIP_LESSON_OUT/<name>`` when that variable names a folder, and closes it. A plain
  script shows nothing and never blocks: Matplotlib picks a non-interactive backend where
  there is no display, and nothing here calls ``plt.show()``. Each call shows one image and
  saves one file, so a notebook's image outputs can be counted against the files.
* :func:`figure_folder` is where a plotting function that writes files should write: the
  output folder when one is set, otherwise a scratch folder, so the figure can still be shown.
* :func:`scratch_folder` is a temporary folder that lives as long as the Python process (the
  notebook's kernel), removed when it exits — never by a cell, so every cell can be run again
  in any order a reader would.

No lesson derives this; every lesson with a figure or a throw-away run uses it.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

OUT_VARIABLE = "MINICLIP_LESSON_OUT"


def lesson_out() -> Path | None:
    """The folder ``$MINICLIP_LESSON_OUT`` names (made if missing), or None when it is unset or empty."""
    value = os.environ.get(OUT_VARIABLE)
    if not value:
        return None
    folder = Path(value)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (where an image can be shown inline)."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _display_png(data: bytes) -> None:
    from IPython.display import Image, display

    display(Image(data=data, format="png"))


def show(figure: Any, name: str, *, dpi: int = 120) -> None:
    """Show ``figure`` inline in a notebook, save it as ``name`` under the lesson output folder if one is set.

    ``figure`` is a Matplotlib figure (closed afterwards) or the path of a PNG already written.
    Returns nothing, so a cell that ends with it shows the figure and no value under it.
    """
    out = lesson_out()
    if isinstance(figure, str | os.PathLike):
        data = Path(figure).read_bytes()
        if out is not None and Path(figure).resolve() != (out / name).resolve():
            (out / name).write_bytes(data)
    else:
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(figure)
        data = buffer.getvalue()
        if out is not None:
            (out / name).write_bytes(data)
    if in_notebook():
        _display_png(data)


_scratch: dict[str, Path] = {}


def scratch_folder(name: str = "scratch") -> Path:
    """A temporary folder for runs a lesson throws away, the same one for ``name`` all through the process.

    It is removed when the process (the notebook's kernel, or the script) exits, not by a cell, so
    running a cell again finds it still there.
    """
    if name not in _scratch or not _scratch[name].is_dir():
        folder = Path(tempfile.mkdtemp(prefix=f"miniclip-lesson-{name}-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _scratch[name] = folder
    return _scratch[name]


def figure_folder() -> Path:
    """Where a plotting function that writes files should write: the lesson output folder, else a scratch one."""
    return lesson_out() or scratch_folder("figures")
