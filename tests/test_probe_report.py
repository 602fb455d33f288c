"""``miniclip probe``: the embeddings of a run, the figures, the summary, and bad input refused early.

One tiny shapes run is trained and probed once for the module (48 classes, 10 test images
each); the checks then read what the command wrote and compare its numbers with the same
quantities computed another way.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL

from miniclip.cli import main
from miniclip.evaluation.trained_run import load_run
from miniclip.evaluation.zeroshot import class_embeddings, encode_images, zero_shot
from miniclip.probe import figures, report
from miniclip.probe.embeddings import embed_blurred, embed_run
from miniclip.probe.robustness import class_bases, gaussian_blur, principal_angles
from miniclip.training.configs import named_config
from miniclip.training.loop import train

SIGMAS = ["1", "3"]
POINTS = 5
RANK = 2


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "run"
    cfg = named_config(
        "shapes", out_dir=str(out), n_train=256, n_test=480, epochs=1, batch_size=32, model=TINY_TRAIN_MODEL
    )
    train(cfg, show_progress=False)
    return out


def _probe(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["probe", *args, "--no-progress"])
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def probed(run, tmp_path_factory) -> tuple[Path, str, dict]:
    out = tmp_path_factory.mktemp("probe_out") / "probe"
    status, stdout, stderr = _probe(
        str(run), "--blur", *SIGMAS, "--points", str(POINTS), "--rank", str(RANK), "--out", str(out)
    )
    assert status == 0, stderr
    return out, stdout, json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_writes_every_figure_and_the_summary(probed) -> None:
    out, stdout, _ = probed
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([*report.FIGURES, "summary.json", "summary.md"])
    for name in report.FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".partial")], "the staging folder was left behind"
    assert stdout.startswith("# miniclip probe") and str(out) in stdout
    assert "| class |" in (out / "summary.md").read_text(encoding="utf-8")


def test_summary_numbers_agree_with_zero_shot(run, probed) -> None:
    _, _, summary = probed
    loaded = load_run(run)
    data = loaded.dataset()
    ckpt = loaded.checkpoint
    images = encode_images(ckpt.model, data.test_images, loaded.normalize)
    ensemble = class_embeddings(ckpt.model, ckpt.tokenizer, data.class_names, data.train_templates, 16)
    clean = zero_shot(images, data.test_labels, ensemble)
    assert summary["zero_shot_top1"]["0"] == pytest.approx(clean["top1"])
    assert summary["classes"] == list(data.class_names) and summary["test_images"] == 480
    assert summary["options"] == {"sigmas": [1.0, 3.0], "points_per_class": POINTS, "rank": RANK, "seed": 0}
    per_class = summary["zero_shot_per_class"]
    assert per_class["sigmas"] == ["0", "1", "3"]
    assert np.allclose([per_class[name][0] for name in data.class_names], clean["per_class"], atol=1e-4)
    blurred = zero_shot(embed_blurred(loaded, data.test_images, 3.0), data.test_labels, ensemble)
    assert summary["zero_shot_top1"]["3"] == pytest.approx(blurred["top1"])
    shares = np.array([summary["predicted_share"][name] for name in data.class_names])  # (K, 3)
    assert np.allclose(shares.sum(axis=0), 1.0, atol=1e-3)


def test_summary_matrices_are_well_formed(probed) -> None:
    _, _, summary = probed
    k = len(summary["classes"])
    for matrix in summary["similarity"].values():
        m = np.array(matrix)
        assert m.shape == (k, k) and np.all(np.abs(m) <= 1 + 1e-3)
    for name in ("mean", "max"):
        angles = np.array(summary["subspace_angles_degrees"][name])
        assert angles.shape == (k, k) and np.allclose(angles, angles.T) and np.allclose(np.diag(angles), 0)
        assert np.all((angles >= 0) & (angles <= 90 + 1e-6))
    assert np.all(
        np.array(summary["subspace_angles_degrees"]["max"])
        >= np.array(summary["subspace_angles_degrees"]["mean"]) - 1e-3
    )
    for dim in ("H0", "H1"):
        distances = summary["wasserstein_clean_vs_blurred"][dim]
        assert all(len(v) == 2 and min(v) >= 0 for v in distances.values())
    cosines = summary["mean_cosine_clean_vs_blurred"]
    assert all(len(v) == 2 and max(v) <= 1 + 1e-6 for name, v in cosines.items() if name != "sigmas")
    assert 0 < summary["gap"]["angle_degrees"] < 180
    assert {name for group in summary["fragile"].values() for name, _ in group} <= set(summary["classes"])


def test_subspace_angles_are_each_pairs_principal_angles(run, probed) -> None:
    """The summary's mean and largest angle matrices, from one pass, are what one SVD per pair and reduction gives."""
    _, _, summary = probed
    loaded = load_run(run)
    data = loaded.dataset()
    emb = embed_run(loaded, data)
    bases = class_bases(emb.images, emb.labels, k=RANK, class_names=data.class_names)
    k = len(bases)
    for name, reduce in (("mean", np.mean), ("max", np.max)):
        want = np.zeros((k, k))
        for a in range(k):
            for b in range(a + 1, k):
                want[a, b] = want[b, a] = reduce(principal_angles(bases[a], bases[b]))
        np.testing.assert_allclose(summary["subspace_angles_degrees"][name], want, atol=5e-4, err_msg=name)  # 3 places
    assert not np.allclose(summary["subspace_angles_degrees"]["mean"], summary["subspace_angles_degrees"]["max"])


def test_blurred_embeddings_are_the_blurred_images_embeddings(run) -> None:
    """Blurring on the device inside the batches equals blurring every image first, then encoding."""
    loaded = load_run(run)
    data = loaded.dataset()
    images = data.test_images[:40]
    by_batches = embed_blurred(loaded, images, 2.0)
    first = encode_images(loaded.checkpoint.model, gaussian_blur(images, 2.0), loaded.normalize)
    assert np.allclose(by_batches, first, atol=1e-6)


def test_embed_run_holds_every_template_and_the_ensemble(run) -> None:
    loaded = load_run(run)
    data = loaded.dataset()
    emb = embed_run(loaded, data)
    k, t = len(data.class_names), len(data.train_templates)
    assert emb.captions.shape == (k, t, emb.images.shape[1]) and emb.templates == list(data.train_templates)
    assert np.allclose(np.linalg.norm(emb.captions, axis=-1), 1, atol=1e-5)
    ckpt = loaded.checkpoint
    assert np.allclose(
        emb.ensemble, class_embeddings(ckpt.model, ckpt.tokenizer, data.class_names, emb.templates, 16), atol=1e-6
    )
    assert emb.counts.sum() == 480 and emb.counts.min() == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--points", "11"], "--points 11 is more than class"),
        (["--points", "2"], "--points must be at least 3"),
        (["--rank", "10"], "too few for a rank-10 subspace"),
    ],
)
def test_bad_options_are_refused_before_any_file(run, tmp_path, args, message) -> None:
    out = tmp_path / "probe"
    status, _, stderr = _probe(str(run), "--out", str(out), *args)
    assert status == 2
    assert message in stderr and "Traceback" not in stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sigma", ["0", "-1", "nan", "x"])
def test_a_sigma_that_is_not_positive_is_an_argument_error(run, tmp_path, sigma, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["probe", str(run), "--blur", sigma, "--out", str(tmp_path / "p")])
    assert exit_.value.code == 2
    assert "expected a positive number" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_a_missing_run_and_an_out_file_are_named(run, tmp_path) -> None:
    status, _, stderr = _probe(str(tmp_path / "nowhere"))
    assert status == 2 and "no checkpoint at" in stderr
    file = tmp_path / "taken.txt"
    file.write_text("keep me", encoding="utf-8")
    status, _, stderr = _probe(str(run), "--out", str(file))
    assert status == 2 and "is a file" in stderr
    assert file.read_text(encoding="utf-8") == "keep me"


def test_check_sigmas_sorts_and_refuses() -> None:
    assert report.check_sigmas([3, 1, 3], 32) == [1.0, 3.0]
    with pytest.raises(ValueError, match="at least one"):
        report.check_sigmas([], 32)
    with pytest.raises(ValueError, match="finite and > 0"):
        report.check_sigmas([1, float("inf")], 32)


def test_default_points_follow_the_smallest_class() -> None:
    names = ["a", "b"]
    assert report.check_class_sizes(np.array([500, 40]), names, None, 5, 128) == 40
    assert report.check_class_sizes(np.array([500, 400]), names, None, 5, 128) == report.DEFAULT_POINTS
    with pytest.raises(ValueError, match="class 'b' has 4"):
        report.check_class_sizes(np.array([500, 4]), names, None, 5, 128)


def test_figures_refuse_mismatched_input(tmp_path) -> None:
    with pytest.raises(ValueError, match="one 2-D point per label"):
        figures.plot_map(np.zeros((3, 2)), np.zeros(4, dtype=int), ["a"], tmp_path / "m.png", title="t")
    with pytest.raises(ValueError, match="values must be"):
        figures.plot_against_sigma([0, 1], [(np.zeros((2, 3)), "y", "t")], ["a", "b"], tmp_path / "s.png")
    with pytest.raises(ValueError, match="no diagrams"):
        figures.plot_diagrams([], tmp_path / "d.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
def test_measure_on_the_gpu_matches_the_cpu(run) -> None:
    """The same probe on CuPy arrays: zero-shot, cosines, angles and diagram distances agree with NumPy's."""
    from miniclip import backend

    options = {"sigmas": [2.0], "points": POINTS, "rank": RANK, "progress": False}
    cpu = report.measure(run, **options)
    backend.set_device("gpu")
    gpu = report.measure(run, **options)
    assert np.allclose(gpu["accuracy"], cpu["accuracy"], atol=0.02)  # a tie may fall the other way in float32
    assert np.allclose(gpu["cosine"], cpu["cosine"], atol=1e-4)
    assert np.allclose(gpu["angles_mean"], cpu["angles_mean"], atol=0.5)
    assert np.allclose(gpu["wasserstein"], cpu["wasserstein"], atol=1e-3)
    assert gpu["gap"]["angle_degrees"] == pytest.approx(cpu["gap"]["angle_degrees"], abs=1e-3)
