"""The small training runs the lessons share: the seeded ``tiny`` shapes run, trained once and reused.

Lessons 11–14 each look at a trained model, and most of them at the *same* one: the named
``tiny`` configuration on the synthetic shapes, seed 0. :func:`tiny_run` trains it (or a
variant, ``**changes`` to its configuration) the first time it is asked for and hands back the
finished run folder every time after: a cell run again, or the next lesson, trains nothing.

Where it lives: under ``$MINICLIP_LESSON_OUT`` when that names a folder (so the lessons share
it, and ``miniclip probe`` can read it afterwards), else in a scratch folder that lasts as long
as the kernel (:func:`~miniclip.teaching.lesson_output.scratch_folder`). Training writes into
a hidden folder of its own, renamed into place only when done, so a half-trained run is never
found; two lessons training the same seeded run at once give the same numbers, and the second
rename simply loses.

Lessons 11–14 use it; lesson 09 trains its run by hand, to show the loop.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from miniclip.teaching.lesson_output import lesson_out, scratch_folder
from miniclip.training.checkpoint import checkpoint_file
from miniclip.training.configs import named_config
from miniclip.training.loop import Trainer


def tiny_run(name: str = "tiny_shapes_run", **changes: Any) -> Path:
    """The seeded ``tiny`` shapes run (with ``changes`` to its configuration) as ``name``: trained once, then reused."""
    folder = (lesson_out() or scratch_folder("runs")) / name
    if not checkpoint_file(folder).exists():
        shutil.rmtree(folder, ignore_errors=True)  # a run stopped part-way: train it again
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
        Trainer(named_config("tiny", out_dir=str(staging), **changes), show_progress=False).run()
        try:
            staging.rename(folder)
        except OSError:  # another lesson finished the same seeded run meanwhile: the same numbers
            shutil.rmtree(staging, ignore_errors=True)
    return folder
