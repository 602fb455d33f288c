"""Class names the tokenizer cannot tell apart are refused, by name, before any image is read.

The tokenizer lower-cases and keeps only runs of letters or digits, so folders ``Cat`` and
``cat`` (or ``c++`` and ``c#``) would give identical captions, and ``!!!`` or an emoji none:
``load_folder`` — and so ``miniclip train --data FOLDER`` and ``miniclip eval`` — refuses them,
as ``miniclip classify`` refuses such labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL
from PIL import Image

import miniclip.data.folder
from miniclip.cli import main
from miniclip.data import load_folder
from miniclip.model.tokenizer import indistinct
from miniclip.training.configs import named_config
from miniclip.training.loop import train

SAME = "read as the same words"
NO_WORDS = "has no words (letters or digits)"

# (class folders, the message's start): each folder set holds one defect
REFUSED = [
    (["Cat", "cat"], f"class folders 'Cat' and 'cat' in {{root}} {SAME} ('cat') to the tokenizer"),
    (["c++", "c#"], f"class folders 'c#' and 'c++' in {{root}} {SAME} ('c') to the tokenizer"),
    (["dog", "!!!"], f"class folder '!!!' in {{root}} {NO_WORDS}"),
    (["???", "dog"], f"class folder '???' in {{root}} {NO_WORDS}"),
    (["dog", "\U0001f431\U0001f436"], f"class folder '\U0001f431\U0001f436' in {{root}} {NO_WORDS}"),
    (["golden_retriever", "Golden Retriever"], f"'Golden Retriever' and 'golden_retriever' in {{root}} {SAME}"),
    (["tabby cat", "tabby_cat", "dog"], f"class folders 'tabby cat' and 'tabby_cat' in {{root}} {SAME} ('tabby cat')"),
]
IDS = ["Cat-cat", "c++-c#", "!!!", "???", "emoji", "underscore-is-a-space", "same-class-name"]


def make_folder(root: Path, classes: list[str], per_class: int = 3) -> Path:
    """``root/<class>/i.png`` for each class: a few 8×8 PNGs of random colours."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    if len({p.name for p in root.iterdir()}) != len(classes):  # a case-insensitive file system merged two
        pytest.skip("this file system does not keep both folder names apart")
    return root


@pytest.fixture
def no_image_read(monkeypatch) -> None:
    """Fail the test if any image file is opened."""

    def refuse(path, image_size):
        pytest.fail(f"{path} was read before the class names were checked")

    monkeypatch.setattr(miniclip.data.folder, "load_image", refuse)


def test_indistinct_finds_the_first_wordless_name_and_the_first_pair_of_the_same_words() -> None:
    assert indistinct(["cat", "dog"]) == (None, None)
    assert indistinct(["Cat", "dog", "cat", "CAT"]) == (None, ("Cat", "cat"))
    assert indistinct(["c++", "c#"]) == (None, ("c++", "c#"))
    assert indistinct(["red circle", "Red, circle!"]) == (None, ("red circle", "Red, circle!"))
    assert indistinct(["dog", "!!!", "???", "\U0001f431"]) == ("!!!", None)  # wordless names are not a pair
    assert indistinct(["a", "\U0001f431", "A"]) == ("\U0001f431", ("a", "A"))
    with pytest.raises(ValueError, match="not one string"):
        indistinct("cat")


@pytest.mark.parametrize(("classes", "message"), REFUSED, ids=IDS)
def test_load_folder_refuses_class_names_the_tokenizer_cannot_tell_apart(
    classes, message, tmp_path, no_image_read
) -> None:
    root = make_folder(tmp_path / "photos", classes)
    with pytest.raises(ValueError) as refused:
        load_folder(root)
    assert message.format(root=root) in str(refused.value)


def test_the_refusals_say_what_to_do(tmp_path) -> None:
    with pytest.raises(ValueError, match="zero-shot could never tell them apart: rename or merge one$"):
        load_folder(make_folder(tmp_path / "a", ["Cat", "cat"]))
    with pytest.raises(ValueError, match="its captions would say nothing about the class; rename it$"):
        load_folder(make_folder(tmp_path / "b", ["!!!", "dog"]))


@pytest.mark.parametrize(("classes", "message"), REFUSED[:5], ids=IDS[:5])
def test_train_refuses_such_a_folder_and_leaves_no_run_folder(
    classes, message, tmp_path, no_image_read, capsys
) -> None:
    root = make_folder(tmp_path / "photos", classes)
    out = tmp_path / "run"
    assert main(["train", "--data", str(root), "--config", "tiny", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("miniclip train: error: "), err
    assert message.format(root=root) in last
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:.*have no test images")  # the tiny shapes run's test split is small
def test_eval_refuses_such_a_folder(tmp_path, monkeypatch, capsys) -> None:
    run = tmp_path / "run"
    cfg = named_config(
        "shapes", out_dir=str(run), n_train=64, n_test=16, epochs=1, batch_size=32, model=TINY_TRAIN_MODEL
    )
    train(cfg, show_progress=False)  # a tiny shapes run, then evaluated on the folder
    root = make_folder(tmp_path / "photos", ["Cat", "cat"])
    monkeypatch.setattr(miniclip.data.folder, "load_image", lambda path, size: pytest.fail(f"{path} was read"))
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(root), "--out", str(tmp_path / "eval")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("miniclip eval: error: ")
    assert f"class folders 'Cat' and 'cat' in {root} {SAME} ('cat')" in last


def test_a_folder_of_distinct_names_still_loads(tmp_path) -> None:
    names = ["Cat", "cats", "c3po", "c", "golden_retriever", "\u65e5\u672c", "dog!"]
    root = make_folder(tmp_path / "photos", names, per_class=2)
    data = load_folder(root, image_size=8, test_fraction=0.5)
    assert data.class_names == ["Cat", "c", "c3po", "cats", "dog!", "golden retriever", "\u65e5\u672c"]
    assert len(data.train_labels) == len(data.test_labels) == len(names)
