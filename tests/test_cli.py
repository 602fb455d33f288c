"""The ``miniclip`` command: help everywhere, and user mistakes end in exit status 2 without a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from miniclip import backend, cli

ROOT = Path(__file__).resolve().parents[1]


def _subcommands() -> list[str]:
    """Every sub-command the parser knows, so new ones are covered without editing this file."""
    parser = cli.build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return list(actions[0].choices)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "miniclip", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_there_are_subcommands():
    assert {"walkthrough", "gradcheck"} <= set(_subcommands())


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: miniclip")
    for name in _subcommands():
        assert name in out


@pytest.mark.parametrize("command", _subcommands())
def test_subcommand_help(capsys, command):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: miniclip {command}")
    assert "--device" in out


def test_python_dash_m_help():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: miniclip")


BAD = {
    "bad flag": (["gradcheck", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    "base 0.5": (["walkthrough", "--base", "0.5"], "base must be greater than 1, got '0.5'"),
    "base word": (["walkthrough", "--base", "three"], "base must be a number greater than 1 or 'e'"),
    "base inf": (["walkthrough", "--base", "inf"], "base must be a finite number greater than 1, got inf"),
    "base 1e300": (["walkthrough", "--base", "1e300"], "base must be at most 3.91e+102"),
    "negative lr": (["walkthrough", "--lr", "-1"], "expected a positive number, got '-1'"),
    "device tpu": (["--device", "tpu", "gradcheck"], "invalid choice: 'tpu'"),
    "sub device tpu": (["gradcheck", "--device", "tpu"], "invalid choice: 'tpu'"),
    "bad seed": (["gradcheck", "--seed", "x"], "argument --seed: expected a whole number >= 0, got 'x'"),
    "bad command": (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    "no command": ([], "the following arguments are required: COMMAND"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_exit_2(capsys, case):
    args, message = BAD[case]
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "usage: miniclip" in err


@pytest.mark.parametrize("case", ["bad flag", "base 0.5", "base inf", "base 1e300", "device tpu"])
def test_bad_arguments_exit_2_without_traceback(case):
    args, message = BAD[case]
    result = _run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr


@pytest.mark.usefixtures("without_cupy")
def test_device_gpu_without_cupy_exits_2_with_one_line():
    result = _run("--device", "gpu", "gradcheck")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "CuPy" in lines[0]
    assert lines[0].startswith("miniclip: error:")


@pytest.mark.usefixtures("without_cupy")
@pytest.mark.parametrize("args", [["--device", "gpu", "gradcheck"], ["gradcheck", "--device", "gpu"]])
def test_device_gpu_without_cupy_in_process(capsys, args):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "CuPy" in err and err.count("\n") == 1
    assert backend.get_device() == "cpu"


# --- miniclip gradcheck, on one cheap check (tests/test_gradcheck.py runs every check, once) -----------------------


def test_gradcheck_only_prints_the_table_and_exits_0(capsys):
    assert cli.main(["gradcheck", "--device", "cpu", "--only", "relu"]) == 0  # matched ignoring case
    assert backend.get_device() == "cpu"
    header, rule, *rows, summary = capsys.readouterr().out.splitlines()
    assert header.split() == ["check", "gradient", "rel.", "error", "status"] and set(rule) == {"-"}
    assert [row.split()[:3] for row in rows] == [["ReLU", "d(input", "0)"]]
    assert rows[0].endswith("ok") and float(rows[0].split()[3]) < 1e-6
    assert summary == "1/1 checks passed (tolerance 1e-06)"


def test_gradcheck_without_only_lists_every_check(capsys, monkeypatch):
    """Every case gets its line and the count; the differencing is faked (test_gradcheck.py runs it for real)."""
    from miniclip.teaching import gradient_cases as checks
    from miniclip.teaching.gradcheck import GradCheckResult, TensorError

    monkeypatch.setattr(
        checks, "gradcheck", lambda module, *a, label, **k: GradCheckResult(label, [TensorError("d(x)", 0)])
    )
    assert cli.main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    for name in checks.CASES:
        assert f"{name} " in out
    assert f"{len(checks.CASES)}/{len(checks.CASES)} checks passed" in out


def test_gradcheck_fails_on_a_broken_backward_and_exits_1(capsys, monkeypatch):
    from miniclip.layers import ReLU

    monkeypatch.setattr(ReLU, "backward", lambda self, dy: dy)  # forgets the mask x > 0
    assert cli.main(["gradcheck", "--only", "ReLU"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out.splitlines()[2]
    assert out.count("analytic") == 3  # the three worst entries, each with its numeric value
    assert out.rstrip().endswith("0/1 checks passed (tolerance 1e-06); FAILED: ReLU")


def test_gradcheck_only_with_no_match_exits_2(capsys):
    assert cli.main(["gradcheck", "--only", "nosuchlayer"]) == 2
    assert "no check matches" in capsys.readouterr().err


def test_walkthrough_at_the_largest_base_stays_finite():
    """MAX_BASE is the real bound: there every printed power and sum is finite, just above it is refused."""
    import math
    import warnings

    from miniclip.teaching.walkthrough import MAX_BASE, check_base, compute_walkthrough

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        r = compute_walkthrough(base=MAX_BASE)
    for key in ("power", "row_sums", "col_sums", "p_rows", "p_cols", "loss", "loss_after"):
        assert all(math.isfinite(v) for v in r[key].ravel()), key
    for bad in (1.0, math.inf, math.nan, MAX_BASE * 1.001):
        with pytest.raises(ValueError, match="base must be"):
            check_base(bad)
        with pytest.raises(ValueError, match="base must be"):
            compute_walkthrough(base=bad)


def test_walkthrough_into_a_closed_pipe_exits_0():
    """`miniclip walkthrough | head -1`: the reader has gone before the output is written; a normal exit."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left at once: every write gets EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "miniclip", "walkthrough"],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("lr", ["1e200", "1e300"])
def test_walkthrough_with_an_lr_that_overflows_is_one_line(lr):
    """The step itself is fine; the logits after it overflow: one line, exit 2, no RuntimeWarning flood."""
    result = _run("walkthrough", "--lr", lr)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"miniclip walkthrough: error: lr {float(lr):g} is too large: after the SGD step the logits overflow "
        "float64; try the default 0.1"
    )
