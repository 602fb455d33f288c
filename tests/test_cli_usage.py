"""End to end through ``miniclip.cli.main``: train, eval, classify and search on a tiny shapes run.

One tiny run is trained once for the module (256 shapes, one epoch, a 2-stage CNN); the
commands then read it as a user would. Errors a user can make end with a one-line
``error:`` message and a non-zero exit status, never a traceback (checked in a real
subprocess for two of them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL
from PIL import Image

import miniclip.training.loop
from miniclip.cli import main
from miniclip.data import load_shapes
from miniclip.evaluation.report import evaluate_run
from miniclip.model.clip import CLIP
from miniclip.training.checkpoint import load_checkpoint, save_checkpoint
from miniclip.training.configs import CONFIGS, named_config
from miniclip.training.loop import train

TINY_MODEL = TINY_TRAIN_MODEL
N_TEST = 96  # test images of the tiny run
TEMPLATE_SETS = ("one template", "train templates", "unseen templates")  # what shapes runs report each epoch
EVAL_TEMPLATE_SETS = ('bare label "{}"', '"a photo of a {}."', "train templates", "unseen templates")  # and eval


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A trained tiny shapes run: its folder holds checkpoint.npz, metrics.jsonl and curves.png."""
    out = tmp_path_factory.mktemp("cli") / "run"
    cfg = named_config(
        "shapes", out_dir=str(out), n_train=256, n_test=N_TEST, epochs=1, batch_size=32, model=TINY_MODEL
    )
    train(cfg, show_progress=False)
    return out


@pytest.fixture(scope="module")
def evaluation(run, tmp_path_factory) -> tuple[str, Path]:
    """What ``miniclip eval RUN --out DIR`` printed, and DIR (run once: the 48-class plots take seconds)."""
    out = tmp_path_factory.mktemp("eval")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(["eval", str(run), "--out", str(out), "--pairs", "4"])
    assert status == 0
    return stdout.getvalue(), out


@pytest.fixture
def tiny_shapes_config(monkeypatch):
    """Make the named ``shapes`` configuration tiny, so ``miniclip train --data shapes`` takes a second.

    The CLI has no flags for the number of shapes images or the model sizes; this swaps the
    configuration it starts from, and everything else goes through the real command.
    """
    small = dataclasses.replace(CONFIGS["shapes"], n_train=128, n_test=48, batch_size=32, model=TINY_MODEL)
    monkeypatch.setitem(CONFIGS, "shapes", small)


def error_line(stderr: str, command: str) -> str:
    """The last line of stderr, checked to be the CLI's one-line error for ``command``."""
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"miniclip {command}: error: "), stderr
    return last


# -- train ------------------------------------------------------------------------------------


def test_train_writes_a_run_and_prints_zero_shot_accuracy(tiny_shapes_config, tmp_path, capsys):
    out = tmp_path / "shapes-run"
    assert main(["train", "--data", "shapes", "--out", str(out), "--epochs", "1", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert f"configuration 'shapes' on cpu, writing to {out}" in printed
    for name in TEMPLATE_SETS:
        assert re.search(rf"zero-shot top-1 \({name}\): \d+\.\d\d%   top-5: \d+\.\d\d%", printed), name
    for name in ("checkpoint.npz", "metrics.jsonl", "curves.png", "config.json", "tokenizer.json"):
        assert (out / name).stat().st_size > 0, name
    saved = load_checkpoint(out)
    assert saved.train_config["config"]["seed"] == 3 and saved.train_config["config"]["epochs"] == 1
    assert saved.progress == {"epoch": 1, "batch": 0, "loss_sum": 0.0}
    assert [m["epoch"] for m in saved.metrics] == [1]


def test_train_resume_of_a_finished_run_changes_nothing_and_a_second_start_is_refused(
    tiny_shapes_config, tmp_path, capsys
):
    out = str(tmp_path / "again")
    args = ["train", "--data", "shapes", "--out", out, "--epochs", "1"]
    assert main(args) == 0
    before = (Path(out) / "metrics.jsonl").read_text()
    assert main([*args, "--resume"]) == 0  # already at its last epoch: nothing to do
    assert (Path(out) / "metrics.jsonl").read_text() == before
    capsys.readouterr()
    assert main(args) == 2  # without --resume the existing checkpoint is never overwritten
    assert "--resume" in error_line(capsys.readouterr().err, "train")


def test_ctrl_c_during_training_returns_130_with_the_resume_hint(tiny_shapes_config, tmp_path, monkeypatch, capsys):
    def interrupted(self, on_step=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(miniclip.training.loop.Trainer, "run", interrupted)
    out = tmp_path / "stopped"
    assert main(["train", "--data", "shapes", "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert f"interrupted: checkpoint saved in {out}; continue with the same command and --resume" in captured.out
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "argument --epochs: expected a positive whole number, got '0'"),
        (["--image-encoder", "resnet"], "argument --image-encoder: invalid choice: 'resnet'"),
    ],
)
def test_train_rejects_bad_arguments_before_doing_anything(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", "shapes", "--out", str(tmp_path / "never"), *args])
    assert stop.value.code == 2
    assert message in error_line(capsys.readouterr().err, "train")
    assert not (tmp_path / "never").exists()


def test_train_on_a_missing_folder_names_it(tmp_path, capsys):
    assert main(["train", "--data", "/no/such/folder", "--out", str(tmp_path / "never")]) == 2
    assert "unknown dataset '/no/such/folder'" in error_line(capsys.readouterr().err, "train")
    assert not (tmp_path / "never").exists()


def test_resume_without_a_checkpoint_is_an_error(tiny_shapes_config, tmp_path, capsys):
    out = tmp_path / "fresh"
    assert main(["train", "--data", "shapes", "--out", str(out), "--resume"]) == 2
    assert f"no checkpoint at {out / 'checkpoint.npz'}" in error_line(capsys.readouterr().err, "train")


# -- eval -------------------------------------------------------------------------------------


def test_eval_prints_accuracy_per_template_set_per_class_and_recall(run, evaluation):
    printed, _ = evaluation
    assert printed.startswith(f"{run / 'checkpoint.npz'}: {N_TEST} test images of shapes, 48 classes")
    for name in EVAL_TEMPLATE_SETS:
        assert re.search(rf"^{re.escape(name)} +\d+\.\d% +\d+\.\d%   held-out combinations", printed, re.M), name
    assert "per-class top-1 (train templates):" in printed
    per_class = re.findall(r"^  (small|large) (\w+) (\w+) +\d+\.\d%$", printed, re.M)
    assert len(per_class) == 48
    assert re.search(r"^  text_to_image +R@1 \d+\.\d%  R@5 \d+\.\d%  R@10 \d+\.\d%$", printed, re.M)
    assert re.search(r"^  image_to_text +R@1 \d+\.\d%   \(zero-shot top-1 with this one caption", printed, re.M)


def test_eval_writes_the_plots_and_eval_json(run, evaluation):
    printed, out = evaluation
    for name in ("confusion.png", "similarity.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) > 100, name
    assert f"plots: {out / 'confusion.png'}, {out / 'similarity.png'}" in printed
    summary = json.loads((out / "eval.json").read_text())
    assert summary["checkpoint"] == str(run / "checkpoint.npz")
    assert set(summary["zero_shot"]) == set(EVAL_TEMPLATE_SETS)
    for values in summary["zero_shot"].values():
        assert 0 <= values["top1"] <= values["top5"] <= 1
        assert len(values["per_class"]) == 48
    assert summary["recall"]["text_to_image"]["R@1"] <= summary["recall"]["text_to_image"]["R@10"]
    name = '"a photo of a {}."'
    one = summary["zero_shot"][name]
    assert f"{name:<22} {one['top1']:7.1%} {one['top5']:7.1%}" in printed  # the file matches the print
    assert not (run / "eval.json").exists()  # --out was honoured


def test_eval_encodes_each_test_image_once(run, tmp_path, monkeypatch):
    """One encoding of the test split serves the zero-shot table, the heatmap and retrieval."""
    encoded = []
    encode_image = CLIP.encode_image

    def counting(self, images):
        encoded.append(len(images))
        return encode_image(self, images)

    monkeypatch.setattr(CLIP, "encode_image", counting)
    for plot in ("plot_confusion", "plot_similarity"):  # drawing them takes seconds and encodes nothing
        monkeypatch.setattr(f"miniclip.evaluation.report.{plot}", lambda *args, **kwargs: None)
    report = evaluate_run(str(run), out_dir=str(tmp_path))
    assert sum(encoded) == N_TEST and "retrieval" in report


def test_eval_of_a_missing_folder_is_an_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    assert f"no checkpoint at {tmp_path / 'nowhere' / 'checkpoint.npz'}" in error_line(capsys.readouterr().err, "eval")


@pytest.mark.parametrize("command", ["eval", "classify", "search"])
def test_a_checkpoint_without_training_information_is_refused_alike(command, run, image_files, tmp_path, capsys):
    """Without the run's mean and std every embedding would be off: no command guesses them."""
    ckpt = load_checkpoint(run)
    bare = save_checkpoint(tmp_path, model=ckpt.model, model_config=ckpt.model_config, tokenizer=ckpt.tokenizer)
    more = {"eval": [], "classify": [str(image_files[0]), "--labels", "a", "b"], "search": ["a large cross"]}
    assert main([command, str(bare), *more[command]]) == 2
    message = error_line(capsys.readouterr().err, command).split(": error: ", 1)[1]
    assert message == (
        f"{bare} holds no training configuration (it was not written by `miniclip train`), "
        "so the normalisation of its images and the dataset it was trained on are unknown"
    )
    assert not (tmp_path / "search.png").exists()


def _with_meta(run: Path, folder: Path, change) -> Path:
    """A copy of the run's checkpoint in ``folder`` whose metadata ``change(meta)`` edited in place."""
    with np.load(run / "checkpoint.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    change(meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "checkpoint.npz", **arrays)
    return folder


@pytest.mark.parametrize(
    ("mean_std", "message"),
    [
        ([[0.5, 0.5, 0.5], [0.2, 0.0, 0.2]], r"std \[0.2, 0.0, 0.2\] must be positive in every channel"),
        ([[0.5, float("nan"), 0.5], [0.2, 0.2, 0.2]], r"mean \[0.5, nan, 0.5\] is not finite"),
        ([[0.5], [0.2]], r"mean has 1 values for the model's 3 channels"),
    ],
)
@pytest.mark.parametrize("command", ["eval", "classify"])
def test_a_nonsense_stored_normalisation_is_refused(command, mean_std, message, run, image_files, tmp_path, capsys):
    """A std of 0 would divide every pixel by zero and print nan% with exit 0: refuse it, naming the field."""

    def change(meta):
        meta["train_config"]["state"]["mean_std"] = mean_std

    bad = _with_meta(run, tmp_path / "bad", change)
    more = {"eval": ["--out", str(tmp_path)], "classify": [str(image_files[0]), "--labels", "red", "blue"]}
    assert main([command, str(bad), *more[command]]) == 2
    line = error_line(capsys.readouterr().err, command)
    assert "the stored normalisation (training state 'mean_std')" in line
    assert re.search(message, line), line
    assert not (tmp_path / "eval.json").exists()


# -- classify and search ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_files(tmp_path_factory) -> list[Path]:
    """Two PNG files drawn from the shapes test split."""
    folder = tmp_path_factory.mktemp("images")
    shapes = load_shapes(n_train=8, n_test=2, seed=1)
    paths = []
    for i, image in enumerate(shapes.test_images):
        paths.append(folder / f"img{i}.png")
        Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(paths[-1])  # (H, W, 3)
    return paths


def test_classify_prints_a_probability_for_each_label_of_each_image(run, image_files, capsys):
    labels = ["small red circle", "large blue square"]
    assert main(["classify", str(run), *map(str, image_files), "--labels", *labels]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [lines[0], lines[3]] == [str(p) for p in image_files]
    for block in (lines[1:3], lines[4:6]):
        parsed = [re.fullmatch(r"  +(\d+\.\d\d)%  (.+)", line).groups() for line in block]
        probs = [float(p) for p, _ in parsed]
        assert sorted(label for _, label in parsed) == sorted(labels)
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 100) < 0.02


def test_classify_top_and_template_options(run, image_files, capsys):
    args = ["classify", str(run), str(image_files[0]), "--labels", "red", "blue", "green", "--top", "1"]
    assert main([*args, "--template", "a drawing of a {}."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and re.fullmatch(r"  +\d+\.\d\d%  (red|blue|green)", lines[1])


def test_classify_a_missing_image_is_an_error(run, image_files, tmp_path, capsys):
    missing = tmp_path / "nope.png"
    assert main(["classify", str(run), str(image_files[0]), str(missing), "--labels", "a", "b"]) == 2
    assert f"image file {missing} does not exist" in error_line(capsys.readouterr().err, "classify")


def test_search_writes_a_grid_of_the_best_matches(run, tmp_path, capsys):
    out = tmp_path / "X.png"
    assert main(["search", str(run), "a small red circle", "--top", "4", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"saved {out}"
    found = re.fullmatch(r"best 4 test images for 'a small red circle': (.+)", lines[0])
    scores = [float(title.rsplit(" ", 1)[1]) for title in found.group(1).split(", ")]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True)
    with Image.open(out) as grid:
        assert grid.format == "PNG" and grid.width > grid.height  # 4 images in one row


def test_search_looks_through_the_runs_own_test_split(run, tmp_path, monkeypatch, capsys):
    shown = {}

    def fake_grid(images, titles, path, ncols):  # the grid of 96 images takes seconds to draw
        shown["images"] = images

    monkeypatch.setattr("miniclip.plots.plot_image_grid", fake_grid)
    assert main(["search", str(run), "a large cross", "--top", "500", "--out", str(tmp_path / "all.png")]) == 0
    assert capsys.readouterr().out.startswith(f"best {N_TEST} test images for 'a large cross'")
    test_images = load_shapes(n_train=256, n_test=N_TEST, seed=0).test_images  # (96, 3, 32, 32) as in training
    assert sorted(map(bytes, shown["images"])) == sorted(map(bytes, test_images))


# -- no traceback, in a real process ----------------------------------------------------------


@pytest.mark.parametrize("case", ["garbage checkpoint", "missing image"])
def test_errors_in_a_subprocess_give_one_line_and_no_traceback(case, run, image_files, tmp_path):
    if case == "garbage checkpoint":
        garbage = tmp_path / "checkpoint.npz"
        garbage.write_bytes(b"not a checkpoint at all\n")
        args, command, message = ["eval", str(garbage)], "eval", "is not a miniclip checkpoint"
    else:
        args = ["classify", str(run), str(tmp_path / "nope.png"), "--labels", "red", "blue"]
        command, message = "classify", "does not exist"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MINICLIP_DEVICE": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "miniclip", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1  # exactly one line
    assert message in error_line(done.stderr, command)


# -- unknown words, empty labels, search --out and long queries -------------------------------


def test_classify_names_unknown_words_and_drops_labels_it_cannot_score(run, image_files, capsys):
    """On a shapes run 'cat' is nothing but <unk>: it is dropped, saying so; 'zebra' is named in a warning."""
    labels = ["cat", "YELLOW CIRCLE", "a red zebra"]
    assert main(["classify", str(run), str(image_files[0]), "--labels", *labels]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.strip().splitlines()
    assert all(line.startswith("miniclip classify: warning: ") for line in warnings), captured.err
    assert "'zebra' in label 'a red zebra' is not in the run's vocabulary and read as <unk>" in captured.err
    assert "dropped label 'cat': cannot be scored, none of the words is in the run's vocabulary" in captured.err
    printed = [re.fullmatch(r"  +\d+\.\d\d%  (.+)", line).group(1) for line in captured.out.splitlines()[1:]]
    assert sorted(printed) == ["YELLOW CIRCLE", "a red zebra"]


def test_classify_with_no_label_it_can_score_is_an_error(run, image_files, capsys):
    assert main(["classify", str(run), str(image_files[0]), "--labels", "cat", "Zebra"]) == 2
    line = error_line(capsys.readouterr().err, "classify")
    assert "no label can be scored: none of the words of 'cat', 'Zebra' is in the run's vocabulary" in line
    assert "it knows " in line  # a few words it does know


def test_classify_warns_about_unknown_words_of_its_template(run, image_files, capsys):
    args = ["classify", str(run), str(image_files[0]), "--labels", "red", "blue", "--template", "a sketch of a {}"]
    assert main(args) == 0
    assert "'sketch' in the template is not in the run's vocabulary" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["", "dog"], "label '' has no words"),
        (["red", "!?"], "label '!?' has no words"),
        (["red circle", "Red, circle"], "labels must be distinct: 'red circle' and 'Red, circle' are the same words"),
    ],
)
def test_classify_refuses_empty_labels_and_labels_that_read_the_same(labels, message, run, image_files, capsys):
    assert main(["classify", str(run), str(image_files[0]), "--labels", *labels]) == 2
    assert message in error_line(capsys.readouterr().err, "classify")


@pytest.fixture
def no_grid(monkeypatch) -> dict:
    """Skip drawing search grids (seconds each); what would have been drawn is kept."""
    shown: dict = {}

    def fake_grid(images, titles, path, ncols):
        shown.update(images=images, titles=titles, path=path)

    monkeypatch.setattr("miniclip.plots.plot_image_grid", fake_grid)
    return shown


def test_search_names_unknown_words_of_the_query(run, tmp_path, no_grid, capsys):
    assert main(["search", str(run), "a photo of a Zebra", "--top", "3", "--out", str(tmp_path / "z.png")]) == 0
    captured = capsys.readouterr()
    assert (
        captured.err
        == "miniclip search: warning: 'zebra' in the query is not in the run's vocabulary and read as <unk>\n"
    )
    assert captured.out.startswith("best 3 test images for 'a photo of a Zebra'")


def test_search_for_nothing_but_unknown_words_is_an_error(run, tmp_path, no_grid, capsys):
    assert main(["search", str(run), "Zebra, giraffe!", "--out", str(tmp_path / "z.png")]) == 2
    line = error_line(capsys.readouterr().err, "search")
    assert "the query 'Zebra, giraffe!' cannot be scored: none of its words is in the run's vocabulary" in line
    assert not no_grid


@pytest.mark.parametrize(
    "out, message", [("folder", "is a folder: give the PNG file to write"), ("x.jpg", "must end in .png")]
)
def test_search_out_must_be_a_png_file(out, message, run, tmp_path, capsys, monkeypatch):
    (tmp_path / "folder").mkdir()
    loaded = []
    monkeypatch.setattr("miniclip.evaluation.trained_run.load_run", lambda path: loaded.append(path))  # never reached
    assert main(["search", str(run), "a red circle", "--out", str(tmp_path / out)]) == 2
    assert message in error_line(capsys.readouterr().err, "search")
    assert not loaded and sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_a_very_long_query_is_echoed_shortened(run, tmp_path, no_grid, capsys):
    query = "red " * 2500  # 10,000 characters
    assert main(["search", str(run), query, "--top", "2", "--out", str(tmp_path / "long.png")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert len(first) < 200 and "(10000 characters)" in first


# -- eval and search find a folder dataset that moved --------------------------------------------


@pytest.fixture
def moved_folder_run(run, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """The run, as if trained on ``--data my_folder`` elsewhere; the folder (2 classes) now lies somewhere else."""
    folder = tmp_path / "moved" / "my_folder"
    shapes = load_shapes(n_train=20, n_test=2, seed=4)
    for k, image in enumerate(shapes.train_images):
        (folder / ("red" if k % 2 else "blue")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(
            folder / ("red" if k % 2 else "blue") / f"{k}.png"
        )

    def change(meta):
        meta["train_config"]["config"]["data"] = "my_folder"  # as typed, relative to where training ran
        meta["train_config"]["config"] |= {"n_train": None, "n_test": None}  # a folder run keeps its whole splits

    relative = _with_meta(run, tmp_path / "relative-run", change)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return relative, folder


@pytest.mark.parametrize("command", ["eval", "search"])
def test_a_relative_folder_that_is_not_here_is_named_with_a_hint(command, moved_folder_run, tmp_path, capsys):
    relative, _ = moved_folder_run
    more = {"eval": ["--out", str(tmp_path / "plots")], "search": ["a red circle", "--out", str(tmp_path / "s.png")]}
    assert main([command, str(relative), *more[command]]) == 2
    line = error_line(capsys.readouterr().err, command)
    here = tmp_path / "elsewhere" / "my_folder"
    assert "the run was trained on the image folder 'my_folder', which does not exist from here" in line
    assert f"(a relative path, here {here})" in line
    assert line.endswith("give the folder with --data")


def test_eval_takes_data_like_search(moved_folder_run, tmp_path, capsys, monkeypatch):
    relative, folder = moved_folder_run
    for plot in ("plot_confusion", "plot_similarity"):
        monkeypatch.setattr(f"miniclip.evaluation.report.{plot}", lambda *args, **kwargs: None)
    assert main(["eval", str(relative), "--data", str(folder), "--out", str(tmp_path / "plots")]) == 0
    assert re.match(r".*checkpoint.npz: \d+ test images of my_folder, 2 classes", capsys.readouterr().out)


@pytest.mark.parametrize("template", ["", "a photo"])
def test_classify_refuses_a_template_without_its_braces(template, run, image_files, capsys):
    """--template "" once fell back to the 18-template ensemble without a word."""
    assert main(["classify", str(run), str(image_files[0]), "--labels", "red", "blue", "--template", template]) == 2
    line = error_line(capsys.readouterr().err, "classify")
    assert f"each template must be a str with exactly one '{{}}' for the class name, got {template!r}" in line
