"""Nothing lost, nothing late: where a command writes is checked before its work, signals clean up, JSON is strict.

One tiny shapes run (48 classes, 20 test images each, a 16-d embedding) serves most tests; a
copy of it in another folder stands in for a second member of an ensemble. "Before any work"
is tested by making the checkpoint loader fail the test if it is reached; the signal tests run
the command in a child process, since a SIGTERM that is not handled ends the process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL
from PIL import Image

from miniclip import atomic, backend
from miniclip.cli import main
from miniclip.evaluation import trained_run
from miniclip.probe import report
from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.configs import named_config
from miniclip.training.loop import train


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lost") / "run"
    cfg = named_config(
        "shapes", out_dir=str(out), n_train=256, n_test=960, epochs=1, batch_size=32, model=TINY_TRAIN_MODEL
    )
    train(cfg, show_progress=False)
    return out


@pytest.fixture(scope="module")
def copy(run, tmp_path_factory) -> Path:
    """The same run in another folder: a second member for an ensemble."""
    other = tmp_path_factory.mktemp("lost_copy") / "run"
    shutil.copytree(run, other)
    return other


def _main(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(list(args))
    return status, stdout.getvalue(), stderr.getvalue()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if any checkpoint is read: what it checks must come before any loading."""

    def refuse(path, *args, **kwargs):
        raise AssertionError(f"{path} was loaded before the output place was checked")

    monkeypatch.setattr(trained_run, "load_checkpoint", refuse)


# -- 1. an ensemble never writes into a member's folder -------------------------------------------


@pytest.mark.parametrize("inside", ["", "sub"], ids=["the member's folder", "a folder inside it"])
def test_an_ensemble_is_refused_an_out_in_a_members_run_folder(run, copy, inside) -> None:
    assert _main("eval", str(run))[0] == 0  # the run's own evaluation
    before = _files(run)
    status, _, err = _main("eval", str(run), str(copy), "--out", str(run / inside))
    assert status == 2 and "run folder of the member" in err and "folder of its own" in err
    assert _files(run) == before and not (run / "sub").exists()


def test_an_ensemble_of_one_run_twice_is_refused_before_any_loading(run, no_loading, tmp_path) -> None:
    status, _, err = _main("eval", str(run), str(run / "checkpoint.npz"), "--out", str(tmp_path / "ensemble"))
    assert status == 2 and "are the same run: give each member once" in err and "Traceback" not in err


# -- 2. the output place is checked before any work -----------------------------------------------


@pytest.fixture
def a_file(tmp_path) -> Path:
    file = tmp_path / "afile"
    file.write_text("keep me", encoding="utf-8")
    return file


@pytest.mark.parametrize(
    "command",
    [
        ["probe", "{run}", "--out", "{file}/probe"],
        ["eval", "{run}", "--linear-probe", "--out", "{file}/sub"],
        ["eval", "{run}", "--out", "{file}"],
        ["eval", "{run}", "{copy}", "--out", "{file}/sub"],
        ["search", "{run}", "a red circle", "--out", "{file}/grid.png"],
        ["compare", "{run}", "--out", "{file}/curves.png"],
    ],
    ids=["probe", "eval --linear-probe", "eval", "ensemble", "search", "compare"],
)
def test_an_output_place_under_a_file_is_refused_before_any_loading(run, copy, a_file, no_loading, command) -> None:
    args = [a.format(run=run, copy=copy, file=a_file) for a in command]
    status, _, err = _main(*args)
    assert status == 2 and "is a file" in err and "Traceback" not in err, err
    assert a_file.read_text(encoding="utf-8") == "keep me"


def test_the_default_probe_folder_taken_by_a_file_is_refused_before_any_loading(run, copy, no_loading) -> None:
    blocker = copy / "probe"
    blocker.write_text("not a folder", encoding="utf-8")
    try:
        status, _, err = _main("probe", str(copy), "--no-progress")
    finally:
        blocker.unlink()
    assert status == 2 and f"the output folder {blocker} is a file" in err


def test_an_output_folder_that_cannot_be_written_is_named_not_a_staging_folder(run, monkeypatch, tmp_path) -> None:
    def read_only(path, write):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr("miniclip.atomic.write_atomically", read_only)
    out = tmp_path / "new" / "probe"
    status, _, err = _main("probe", str(run), "--out", str(out), "--no-progress")
    assert status == 2 and f"cannot write to {tmp_path}, where the output folder {out} would go" in err
    assert "partial" not in err and list(tmp_path.iterdir()) == []


def test_odd_output_places(run, tmp_path, monkeypatch) -> None:
    link = tmp_path / "gone"
    link.symlink_to(tmp_path / "nowhere")
    status, _, err = _main("eval", str(run), "--out", str(link))  # a link to nothing: refused before the work
    assert status == 2 and "is a link to" in err and "does not exist" in err
    someone_elses = tmp_path / atomic.WRITE_CHECK  # another command checking this folder right now
    someone_elses.write_bytes(b"")
    assert atomic.check_output_folder(tmp_path) == tmp_path and someone_elses.exists()
    status, _, err = _main("eval", str(tmp_path / "nope"))  # a missing run is named before the output place
    assert status == 2 and f"no checkpoint at {tmp_path / 'nope' / 'checkpoint.npz'}" in err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    status, _, err = _main("eval", str(run), "--out", ".")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "here").iterdir()) == ["confusion.png", "eval.json", "similarity.png"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc here")
def test_a_folder_that_takes_no_new_files_is_named_so(run, tmp_path) -> None:
    status, _, err = _main("probe", str(run), "--out", "/proc/miniclip-probe", "--no-progress")
    assert status == 2 and "cannot write to /proc" in err and "partial" not in err


# -- 3. probe --rank and --points against what the run allows --------------------------------------


def test_a_rank_above_the_embedding_is_refused_before_embedding(run, monkeypatch, tmp_path) -> None:
    def no_embedding(*args, **kwargs):
        raise AssertionError("the test images were embedded before --rank was checked")

    monkeypatch.setattr(report, "embed_run", no_embedding)
    # 20 test images per class allow 19 directions, but the embedding has 16: --rank 18 cannot work.
    status, _, err = _main("probe", str(run), "--rank", "18", "--out", str(tmp_path / "p"), "--no-progress")
    assert status == 2 and "--rank 18" in err and "the embedding has 16 dimensions" in err
    assert "give --rank between 1 and 16" in err and not (tmp_path / "p").exists()


def test_the_advice_names_values_that_work_or_says_that_none_do() -> None:
    names = ["a", "b"]
    with pytest.raises(ValueError, match="give --rank between 1 and 128") as info:
        report.check_class_sizes(np.array([1000, 1000]), names, None, 200, 128)
    assert "--rank 200" in str(info.value)
    with pytest.raises(ValueError, match="class 'b' has 2 test image") as info:  # no --points nobody typed
        report.check_class_sizes(np.array([500, 2]), names, None, 1, 128)
    assert "--points must" not in str(info.value) and "larger test split" in str(info.value)
    with pytest.raises(ValueError, match=r"give --points between 3 and 40"):
        report.check_class_sizes(np.array([500, 40]), names, 2, 1, 128)
    assert report.check_class_sizes(np.array([500, 40]), names, None, 39, 128) == 40


# -- 6. absurd numbers: one line naming the option, before any allocation -----------------------------


@pytest.mark.parametrize("sigma", ["1e6", "1e300", "1e308", "33"])
def test_a_blur_wider_than_the_image_is_refused_naming_blur(run, monkeypatch, tmp_path, sigma) -> None:
    monkeypatch.setattr(report, "embed_run", lambda *a, **k: pytest.fail("embedded before --blur was checked"))
    status, _, err = _main("probe", str(run), "--blur", sigma, "--out", str(tmp_path / "p"), "--no-progress")
    assert status == 2 and "--blur" in err and "32×32" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, option",
    [
        (["bench", "--batch-size", "10000000000", "--no-torch", "--no-layers"], "--batch-size"),
        (["bench", "--gemm-size", "10000000", "--no-torch", "--no-layers", "--warmup", "0", "--steps", "1"], "--gemm"),
        (["train", "--data", "shapes", "--n-train", "1000000000000", "--out", "{tmp}/run"], "--n-train"),
    ],
    ids=["bench --batch-size", "bench --gemm-size", "train --n-train"],
)
def test_sizes_that_cannot_fit_are_refused_before_allocating(tmp_path, args, option) -> None:
    status, _, err = _main(*(a.format(tmp=tmp_path) for a in args))
    assert status == 2 and option in err and "GiB" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_memory_error_is_one_line_naming_the_options(monkeypatch) -> None:
    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.00 TiB for an array")

    monkeypatch.setattr("miniclip.measure.bench.run_bench", out_of_memory)
    status, _, err = _main("bench")
    assert status == 2
    assert err.strip().splitlines() == [
        "miniclip bench: error: out of memory (Unable to allocate 1.00 TiB for an array); "
        "give a smaller --batch-size or --gemm-size"
    ]


# -- 7, 8, 10. a class with no test images; a configuration's sizes; warnings as one line -----------------


@pytest.fixture
def folder_with_a_tiny_class(tmp_path) -> Path:
    """Classes 'red' and 'green' of 10 images, and 'blue' of 2 (round(0.2 × 2) = 0 test images)."""
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for name, n, colour in (("red", 10, (200, 30, 30)), ("green", 10, (30, 200, 30)), ("blue", 2, (30, 30, 200))):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_a_class_without_test_images_is_warned_shown_in_words_and_null_in_json(folder_with_a_tiny_class, tmp_path):
    out = tmp_path / "run"
    status, printed, err = _main(
        "train", "--config", "tiny", "--data", str(folder_with_a_tiny_class), "--epochs", "1", "--batch-size", "8",
        "--out", str(out),
    )  # fmt: skip
    assert status == 0, err
    # The start line names the data and its real sizes; tiny's 2,048/480 shapes sizes do not apply to a folder.
    assert f"miniclip train: data {folder_with_a_tiny_class}: 18 training and 4 test images, 3 classes" in printed
    assert "asked for" not in err
    # The warning is one line, without Python's file name, line number and source line.
    warned = [line for line in err.splitlines() if "no test images" in line]
    assert len(warned) == 1 and warned[0].startswith("miniclip train: warning: 1 of the 3 classes have no test images")
    assert "'blue'" in warned[0] and "UserWarning" not in err and ".py:" not in err
    status, report_text, err = _main("eval", str(out), "--no-progress")
    assert status == 0, err
    assert any(line.split() == ["blue", "no", "test", "images"] for line in report_text.splitlines())
    assert not re.search(r"\bnan\b", report_text, re.IGNORECASE)
    text = (out / "eval.json").read_text(encoding="utf-8")
    summary = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in eval.json is not JSON"))
    per_class = summary["zero_shot"]["train templates"]["per_class"]
    assert per_class[0] is None and all(isinstance(v, float) for v in per_class[1:])  # classes sorted: blue first


def test_a_held_out_part_without_images_reads_no_test_images() -> None:
    from miniclip.evaluation.report import _heldout_extra

    line = _heldout_extra({"heldout": {"top1": float("nan")}, "seen": {"top1": 0.5}})
    assert line == "   held-out combinations no test images, seen 50.0%"


def test_json_text_is_strict() -> None:
    assert atomic.json_text({"a": float("nan"), "b": [np.float32(1.5), float("inf")], "c": np.int64(3)}) == (
        '{"a": null, "b": [1.5, null], "c": 3}'
    )


def test_a_configurations_sizes_apply_only_to_its_dataset(capsys) -> None:
    assert (named_config("tiny").n_train, named_config("tiny").n_test) == (2048, 480)
    assert (named_config("tiny", data="cifar10").n_train, named_config("tiny", data="cifar10").n_test) == (None, None)
    assert named_config("tiny", data="cifar10", n_train=100).n_train == 100
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "cifar10 for cpu, gpu; shapes for shapes, tiny" in shown  # --data's default, configuration by configuration
    assert "2048 with --config tiny" in shown and "480 with --config tiny" in shown
    assert "runs/tiny for tiny" in shown  # --out's default
    with pytest.raises(SystemExit):
        main(["gradcheck", "--help"])
    assert "(default 0)" in " ".join(capsys.readouterr().out.split())


# -- 9. SIGTERM and SIGHUP clean up like Ctrl-C; a killed run's leftovers are cleared ----------------------


def _in_a_child(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINICLIP_DEVICE": "cpu"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this system")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_signal_while_eval_writes_leaves_nothing_half_written(run, tmp_path, name) -> None:
    out = tmp_path / "eval"
    child = _in_a_child(f"""
        import os, signal, sys
        import miniclip.evaluation.report as evaluate
        def plot_confusion(*args, **kwargs):
            (args[2].parent / "half.png").write_bytes(b"half")
            os.kill(os.getpid(), signal.{name})
        evaluate.plot_confusion = plot_confusion
        from miniclip.cli import main
        sys.exit(main(["eval", {str(run)!r}, "--out", {str(out)!r}]))
    """)
    assert child.returncode == 130, child.stderr
    assert f"interrupted ({name})" in child.stderr
    assert list(tmp_path.iterdir()) == []  # no eval folder, no staging folder


def test_sigterm_while_probe_writes_leaves_no_partial_folder(run, tmp_path) -> None:
    out = tmp_path / "probe"
    child = _in_a_child(f"""
        import os, signal, sys
        from miniclip.probe import report
        def figures(probe, folder):
            (folder / "half.png").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
        report._figures = figures
        from miniclip.cli import main
        sys.exit(main(["probe", {str(run)!r}, "--out", {str(out)!r}, "--blur", "1", "--points", "3", "--rank", "1",
                       "--no-progress"]))
    """)
    assert child.returncode == 130, child.stderr
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_training_saves_at_the_step_boundary(tmp_path) -> None:
    out = tmp_path / "run"
    child = _in_a_child(f"""
        import os, signal, sys
        from miniclip.training.loop import Trainer
        step = Trainer.step
        def signalled(self, idx, number):
            if number == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives inside step 2: the loop stops after it
            return step(self, idx, number)
        Trainer.step = signalled
        from miniclip.cli import main
        sys.exit(main(["train", "--config", "tiny", "--n-train", "256", "--n-test", "96", "--epochs", "1",
                       "--out", {str(out)!r}]))
    """)
    assert child.returncode == 130, child.stderr
    assert "checkpoint saved" in child.stdout
    saved = load_checkpoint(out)
    assert saved.train_config["config"]["n_train"] == 256
    assert saved.progress == {"epoch": 0, "batch": 3, "loss_sum": pytest.approx(saved.progress["loss_sum"])}
    # steps 0, 1 and 2 done: the stop came at the next step boundary, and --resume continues from there
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def _a_finished_process_id() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # its process is gone (reused only after the system wraps around its ids)


def test_leftovers_of_a_killed_run_are_cleared_on_the_next_start_saying_so(copy) -> None:
    dead, alive = _a_finished_process_id(), os.getpid()
    host = atomic.temporary_prefix("x").split("@")[1].removesuffix("-")  # this machine, as leftovers name it
    staging = copy / f".report.{dead}@{host}-abc123.partial"  # what an eval killed outright left in its folder
    staging.mkdir()
    (staging / "half.png").write_bytes(b"half")
    tmp = copy / f".eval.json.{dead}@{host}-xyz789.tmp"  # and a file it was writing
    tmp.write_bytes(b"")
    live = copy / f".eval.json.{alive}@{host}-live0000.tmp"  # a running process's file is never touched
    elsewhere = copy / f".eval.json.{dead}@anothermachine-xyz789.tmp"  # nor another machine's (a shared disk)
    for file in (live, elsewhere):
        file.write_bytes(b"")
    try:
        status, _, err = _main("eval", str(copy), "--no-progress")
        assert status == 0, err
        assert not staging.exists() and not tmp.exists() and live.exists() and elsewhere.exists()
        assert "miniclip eval: warning: removed 2 unfinished file(s)" in err and "killed" in err
        status, _, err = _main("eval", str(copy), "--no-progress")
        assert status == 0 and "removed" not in err
    finally:
        live.unlink(missing_ok=True)
        elsewhere.unlink(missing_ok=True)


def test_staged_folder_moves_in_whole_or_not_at_all(tmp_path) -> None:
    out = tmp_path / "report"
    with pytest.raises(KeyboardInterrupt), atomic.staged_folder(out) as staging:
        (staging / "a.txt").write_text("a", encoding="utf-8")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic.staged_folder(out) as staging:
        (staging / "a.txt").write_text("a", encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["report"] and (out / "a.txt").read_text(encoding="utf-8") == "a"
    assert atomic.check_output_folder(out) == out and atomic.clear_leftovers(tmp_path) == []


# -- 10. small words ---------------------------------------------------------------------------------------


def test_a_negative_seed_is_refused_naming_seed(run, capsys) -> None:
    for command in (["probe", str(run)], ["train"], ["gradcheck"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--seed", "-1"])
        assert info.value.code == 2 and "argument --seed: expected a whole number >= 0" in capsys.readouterr().err


def test_a_bad_miniclip_device_is_named_as_such(run, monkeypatch) -> None:
    monkeypatch.setenv("MINICLIP_DEVICE", "banana")
    monkeypatch.setattr(backend, "_device", None)
    status, _, err = _main("eval", str(run))
    assert status == 2
    assert "MINICLIP_DEVICE='banana' names no device: set it to one of cpu, gpu" in err
    assert "checkpoint" not in err


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--objective", "predictive", "--targets", "identity"], "--targets identity: the predictive objective"),
        (["--objective", "predictive", "--text-encoder", "transformer"], "--text-encoder transformer: the predictive"),
        (["--test-fraction", "0.3"], "--test-fraction is for a folder of your own images; shapes comes with"),
    ],
    ids=["predictive --targets", "predictive --text-encoder", "shapes --test-fraction"],
)
def test_flags_that_would_change_nothing_are_refused(tmp_path, flags, words) -> None:
    out = tmp_path / "run"
    status, _, err = _main(
        "train", "--config", "tiny", "--n-train", "64", "--n-test", "48", "--epochs", "1", "--out", str(out), *flags
    )
    assert status == 2 and words in err and not out.exists()
