"""``miniclip compare``: a ratio only where both crossings are measured, and only runs that compare.

One tiny shapes run is trained for the module; the runs it is compared with are copies of its
checkpoint saved with another training configuration (no image is loaded to compare runs).
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL

from miniclip.cli import main
from miniclip.evaluation.compare import Curve, efficiency, format_comparison, load_curves
from miniclip.training.checkpoint import load_checkpoint, save_checkpoint
from miniclip.training.configs import named_config
from miniclip.training.loop import train


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "run"
    cfg = named_config("tiny", out_dir=str(out), model=TINY_TRAIN_MODEL, n_train=256, n_test=96, epochs=2)
    train(cfg, show_progress=False)
    return out


def _variant(run: Path, out: Path, class_names: list[str] | None = None, **config: object) -> Path:
    """A copy of ``run`` at ``out`` whose saved training configuration has ``config``'s values (and class names)."""
    ckpt = load_checkpoint(run)
    state = ckpt.train_config["state"] | ({"class_names": class_names} if class_names is not None else {})
    save_checkpoint(
        out,
        model=ckpt.model,
        model_config=ckpt.model_config,
        tokenizer=ckpt.tokenizer,
        train_config={"config": ckpt.train_config["config"] | config, "state": state},
        metrics=ckpt.metrics,
    )
    return out


def _compare(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["compare", *args])
    return status, out.getvalue(), err.getvalue()


def _curve(label: str, seen: list[float], top1: list[float]) -> Curve:
    return Curve(label, "contrastive", 8, np.array(seen), np.array(top1), "t", None)


# -- the ratio --------------------------------------------------------------------------------------------------------


def test_one_epoch_runs_give_no_ratio_and_say_which() -> None:
    a = _curve("A", [1984], [0.054])  # the report: --n-train 2000 and 4000, one epoch each
    c = _curve("C", [3968], [0.135])
    e = efficiency(a, c)
    assert e.ratio is None and e.unresolved == ["A", "C"]
    printed = format_comparison([a, c])
    assert "A and C had already reached 5.4% at their first evaluations (1,984 and 3,968 images)" in printed
    assert "no ratio" in printed and "× as many" not in printed and "at most" not in printed


def test_the_slower_run_past_the_level_at_its_first_evaluation_gives_no_ratio() -> None:
    fast = _curve("fast", [100, 200, 300], [0.1, 0.3, 0.5])  # crosses 50 % at its third evaluation: measured
    slow = _curve("slow", [1000, 2000], [0.55, 0.6])  # already at 55 % after 1,000 images: when it got to 50 %?
    e = efficiency(fast, slow)
    assert (e.faster, e.slower, e.unresolved, e.ratio) == ("fast", "slow", ["slow"], None)
    printed = format_comparison([fast, slow])
    assert "slow had already reached 50.0% at its first evaluation (1,000 images), so when it got there" in printed
    assert "fast" not in printed.splitlines()[-1] and "×" not in printed


def test_a_ratio_where_both_crossings_are_between_evaluations() -> None:
    fast = _curve("fast", [100, 200, 300], [0.1, 0.3, 0.7])
    slow = _curve("slow", [1000, 2000], [0.45, 0.5])
    e = efficiency(slow, fast)
    assert e.unresolved == [] and e.images_faster == pytest.approx(250.0) and e.ratio == pytest.approx(8.0)
    assert "fast needed 250 images, slow 2,000, 8.0× as many" in format_comparison([slow, fast])


# -- runs that do not compare -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"data": "cifar10"}, "dataset 'cifar10' against 'shapes'"),
        ({"n_test": 48}, "n_test 48 against 96"),
        ({"seed": 1}, "seed 1 against 0"),  # it draws the shapes' test images
        ({"class_names": ["a", "b"]}, "2 classes against 48"),
    ],
)
def test_runs_evaluated_on_other_images_are_refused(run, tmp_path, changes, words) -> None:
    other = _variant(run, tmp_path / "other", **changes)
    with pytest.raises(ValueError, match="not evaluated on the same test images") as refused:
        load_curves([other, run])
    assert words in str(refused.value) and str(other) in str(refused.value) and str(run) in str(refused.value)
    status, printed, err = _compare(str(other), str(run), "--out", str(tmp_path / "c.png"))
    assert status == 2 and printed == "" and err.startswith("miniclip compare: error: ") and words in err
    assert not (tmp_path / "c.png").exists()  # refused before anything is drawn


def test_folders_and_cifar_compare_by_what_chooses_their_test_images(run, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = {"data": str(tmp_path / "images"), "n_test": None}
    a = _variant(run, tmp_path / "a", **folder)
    same = _variant(run, tmp_path / "same", **folder | {"data": "images/../images", "n_train": 128})
    assert [c.label for c in load_curves([a, same])] == ["a", "same"]  # one folder, spelt two ways
    for changes, words in (
        ({"seed": 1}, "seed 0 against 1"),
        ({"test_fraction": 0.5}, "test_fraction 0.2 against 0.5"),
    ):
        other = _variant(run, tmp_path / "other", **folder | changes)  # the folder's per-class split
        with pytest.raises(ValueError, match=words):
            load_curves([a, other])
    cifar = {"data": "cifar10", "n_test": None}
    seeds = [_variant(run, tmp_path / f"cifar{s}", **cifar | {"seed": s}) for s in (0, 1)]
    assert len(load_curves(seeds, templates="train templates")) == 2  # the whole test split: no seed chooses it
    sampled = [_variant(run, tmp_path / f"e{n}", eval_images=n) for n in (0, 32)]
    assert len(load_curves(sampled)) == 2  # the first 32 test images are a sample of the same split, not another


# -- labels -----------------------------------------------------------------------------------------------------------


def test_runs_of_one_folder_name_get_distinct_labels(run, tmp_path) -> None:
    for parent in ("a", "b"):
        shutil.copytree(run, tmp_path / parent / "run")
    status, printed, err = _compare(
        str(tmp_path / "a" / "run"), str(tmp_path / "b/run"), "--out", str(tmp_path / "c.png")
    )
    assert status == 0, err
    rows = [line.split()[0] for line in printed.splitlines()[1:3]]
    assert rows == ["a/run", "b/run"]
    assert [c.label for c in load_curves([tmp_path / "a/run", run])] == ["a/run", f"{run.parent.name}/run"]


def test_a_run_given_twice_and_a_label_given_twice_are_refused(run, tmp_path) -> None:
    png = str(tmp_path / "c.png")
    for second in (str(run), str(run / "checkpoint.npz")):
        status, _, err = _compare(str(run), second, "--out", png)
        assert status == 2 and f"the run {run.resolve() / 'checkpoint.npz'} is given twice" in err
        assert "give each run once" in err
    other = _variant(run, tmp_path / "other")
    status, _, err = _compare(str(run), str(other), "--out", png, "--label", "same", "same")
    assert status == 2 and "are both labelled 'same': give each run its own --label" in err
    assert not Path(png).exists()
