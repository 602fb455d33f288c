"""Dependencies point one way: what each entry point imports, checked in a fresh interpreter.

The real CLIP (``clip``, ``model_config``, ``encoders``) and ``evaluate`` never import the
walkthrough's model or the trainer; ``miniclip gradcheck`` and ``miniclip walkthrough`` never
load the trainer or the heavy libraries only training, plotting and image files need.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

REAL = ("miniclip.model.clip", "miniclip.model.config", "miniclip.encoders", "miniclip.evaluation.report")
TEACHING_AND_TRAINING = ("miniclip.teaching.walkthrough_model", "miniclip.training.loop")
HEAVY = ("tqdm", "matplotlib", "PIL", "miniclip.training.loop")


def _printed(code: str) -> object:
    """Run ``code`` in a new interpreter and return the JSON value its last line prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_real_clip_and_evaluation_import_neither_the_walkthrough_model_nor_the_trainer():
    code = f"""
import importlib, json, sys
found = {{}}
for name in {REAL!r}:  # one after the other: each list says what that import added, if anything
    importlib.import_module(name)
    found[name] = [m for m in {TEACHING_AND_TRAINING!r} if m in sys.modules]
print(json.dumps(found))
"""
    assert _printed(code) == {name: [] for name in REAL}


@pytest.mark.parametrize("argv", [["gradcheck", "--only", "ReLU"], ["walkthrough"]], ids=["gradcheck", "walkthrough"])
def test_the_light_commands_load_no_trainer_plots_or_image_library(argv):
    code = f"""
import contextlib, io, json, sys
from miniclip.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    status = main({argv!r})
print(json.dumps([status, [m for m in {HEAVY!r} if m in sys.modules]]))
"""
    assert _printed(code) == [0, []]
