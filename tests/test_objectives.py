"""Both objectives train from ``miniclip train``; their learning curves compare; split sizes work for any dataset.

Tiny shapes runs (the tests' half-width model) of each objective are trained once for the module.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL
from PIL import Image

from miniclip import backend
from miniclip.cli import main
from miniclip.data import load_dataset, load_shapes
from miniclip.evaluation.compare import Curve, efficiency, format_comparison, images_to_reach, learning_curve
from miniclip.model.clip import CLIP
from miniclip.model.config import ModelConfig, build_model
from miniclip.model.predictive import PredictiveModel
from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.configs import TrainConfig, named_config
from miniclip.training.loop import Trainer, train

SIZES = {"n_train": 256, "n_test": 96, "epochs": 2, "batch_size": 32}


def _config(out: Path, objective: str, **changes) -> TrainConfig:
    return named_config(
        "shapes", out_dir=str(out), model={**TINY_TRAIN_MODEL, "objective": objective}, **SIZES | changes
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("objectives")
    for objective in ("contrastive", "predictive"):
        train(_config(root / objective, objective), show_progress=False)
    return {objective: root / objective for objective in ("contrastive", "predictive")}


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


def test_a_predictive_run_trains_saves_and_reloads(runs) -> None:
    ckpt = load_checkpoint(runs["predictive"])
    assert isinstance(ckpt.model, PredictiveModel) and ckpt.model_config.objective == "predictive"
    assert not any(name.startswith("text.") for name in ckpt.model.state())  # no text encoder was built
    metrics = [json.loads(line) for line in (runs["predictive"] / "metrics.jsonl").read_text().splitlines()]
    assert [m["images_seen"] for m in metrics] == [256, 512]
    assert metrics[0]["logit_scale"] is None  # the predictive head has no temperature
    assert math.isfinite(metrics[0]["first_loss"]) and metrics[-1]["train_loss"] < metrics[0]["first_loss"]
    for table in metrics[-1]["zero_shot"].values():
        assert 0 <= table["top1"] <= 1


def test_both_objectives_start_from_the_same_image_encoder() -> None:
    configs = {
        o: ModelConfig.from_dict({**TINY_TRAIN_MODEL, "objective": o, "vocab_size": 30})
        for o in ("contrastive", "predictive")
    }
    models = {o: build_model(c, rng=np.random.default_rng(5)) for o, c in configs.items()}
    assert isinstance(models["contrastive"], CLIP) and isinstance(models["predictive"], PredictiveModel)
    contrastive, predictive = (models[o].image.parameters() for o in ("contrastive", "predictive"))
    assert contrastive.keys() == predictive.keys()
    assert all(np.array_equal(contrastive[k].data, predictive[k].data) for k in contrastive)


def test_the_first_loss_of_a_contrastive_run_is_logged_near_ln_n(runs) -> None:
    first = json.loads((runs["contrastive"] / "metrics.jsonl").read_text().splitlines()[0])["first_loss"]
    assert abs(first - math.log(SIZES["batch_size"])) < 1.5  # equal logits would give exactly ln N


@pytest.mark.parametrize(
    ("command", "words"),
    [("classify", "classifying with any labels"), ("search", "searching images by a text query"), ("probe", "probing")],
)
def test_commands_that_need_a_text_encoder_refuse_a_predictive_run(runs, tmp_path, command, words) -> None:
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    args = {"classify": [str(image), "--labels", "a", "b"], "search": ["a red circle"], "probe": ["--no-progress"]}
    status, _, err = _run(command, str(runs["predictive"]), *args[command])
    assert status == 2 and "Traceback" not in err
    assert words in err and "needs a text encoder" in err and "--objective predictive" in err


def test_an_unknown_objective_is_an_argument_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--objective", "generative"])
    assert exit_.value.code == 2 and "invalid choice: 'generative'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown objective 'generative'"):
        ModelConfig(objective="generative").validate()


def test_resume_refuses_another_objective(runs) -> None:
    with pytest.raises(ValueError, match="cannot resume .*model"):
        Trainer(_config(runs["contrastive"], "predictive"), resume=True, show_progress=False)


def test_compare_prints_both_runs_and_the_ratio(runs, tmp_path) -> None:
    out = tmp_path / "curves.png"
    status, printed, err = _run("compare", str(runs["contrastive"]), str(runs["predictive"]), "--out", str(out))
    assert status == 0, err
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "contrastive" in printed and "predictive" in printed
    # Both tiny runs are at their final level after their first epoch already, so when they got there is not known.
    assert "first evaluation" in printed and "no ratio" in printed and "× as many" not in printed
    status, _, err = _run("compare", str(runs["contrastive"]), "--out", str(tmp_path / "c.txt"))
    assert status == 2 and "must end in .png" in err
    status, _, err = _run("compare", str(runs["contrastive"]), "--out", str(out), "--label", "a", "b")
    assert status == 2 and "one per run" in err


def _curve(label: str, seen: list[float], top1: list[float]) -> Curve:
    return Curve(label, "contrastive", 8, np.array(seen), np.array(top1), "t", None)


def test_the_efficiency_ratio_interpolates_between_epochs() -> None:
    fast = _curve("fast", [100, 200, 300], [0.2, 0.6, 0.8])
    slow = _curve("slow", [100, 200, 300], [0.1, 0.3, 0.5])
    assert images_to_reach(fast, 0.5) == pytest.approx(175.0)  # a quarter of the way from 200 back to 100
    assert images_to_reach(fast, 0.1) == 100.0 and images_to_reach(slow, 0.9) == math.inf
    e = efficiency(slow, fast)
    assert (e.faster, e.slower, e.accuracy) == ("fast", "slow", 0.5)
    assert e.ratio == pytest.approx(300 / 175)
    assert "1.7× as many" in format_comparison([slow, fast])


def test_learning_curve_of_a_run_without_images_seen_counts_them(runs, tmp_path) -> None:
    curve = learning_curve(runs["contrastive"])
    assert curve.images_seen.tolist() == [256.0, 512.0] and curve.templates == "train templates"
    with pytest.raises(ValueError, match="logged no zero-shot accuracy for 'nope'"):
        learning_curve(runs["contrastive"], templates="nope")


# -- split sizes -----------------------------------------------------------------------------------------------------


def test_subsets_of_a_folder_are_seeded_and_refuse_too_many(tmp_path) -> None:
    drawn = load_shapes(n_train=120, n_test=0, seed=3)
    for k, (image, label) in enumerate(zip(drawn.train_images, drawn.train_labels, strict=True)):
        folder = tmp_path / drawn.class_names[label].replace(" ", "_")
        folder.mkdir(exist_ok=True)
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{k}.png")
    whole = load_dataset(str(tmp_path), test_fraction=0.25)
    part = load_dataset(str(tmp_path), test_fraction=0.25, n_train=10, n_test=5)
    again = load_dataset(str(tmp_path), test_fraction=0.25, n_train=10, n_test=5)
    assert (len(part.train_labels), len(part.test_labels)) == (10, 5)
    assert np.array_equal(part.train_images, again.train_images)
    assert len(whole.test_labels) == sum(round(0.25 * n) for n in np.bincount(drawn.train_labels) if n)
    with pytest.warns(UserWarning, match=r"train split holds \d+ images, fewer than the 1000 asked for: using all"):
        everything = load_dataset(str(tmp_path), n_train=1000)
    assert len(everything.train_labels) == len(whole.train_labels)


def test_shapes_sizes_and_old_configs() -> None:
    shapes = load_dataset("shapes", n_train=50, n_test=20)
    assert (len(shapes.train_labels), len(shapes.test_labels)) == (50, 20)
    default = load_dataset("shapes")
    assert (len(default.train_labels), len(default.test_labels)) == (4000, 1000)
    # a CIFAR-10 run saved before the split sizes applied to it: 4000/1000 then meant "shapes only"
    old = TrainConfig.from_dict({"data": "cifar10", "n_train": 4000, "n_test": 1000})
    assert (old.n_train, old.n_test) == (None, None)
    kept = TrainConfig.from_dict({"data": "shapes", "n_train": 4000, "n_test": 1000})
    assert (kept.n_train, kept.n_test) == (4000, 1000)
    with pytest.raises(ValueError, match="test_fraction"):
        TrainConfig(test_fraction=1.0).validate()


def test_the_train_flags_reach_the_configuration(monkeypatch, tmp_path) -> None:
    seen = {}

    class Stop(Exception):
        pass

    def capture(self, cfg, **kwargs):
        seen["cfg"] = cfg
        raise Stop

    monkeypatch.setattr(Trainer, "__init__", capture)
    with pytest.raises(Stop):
        main(
            [
                "train",
                "--data",
                "shapes",
                "--n-train",
                "300",
                "--n-test",
                "60",
                "--objective",
                "predictive",
                "--out",
                str(tmp_path / "r"),
            ]
        )
    cfg = seen["cfg"]
    assert (cfg.n_train, cfg.n_test, cfg.model["objective"]) == (300, 60, "predictive")
    assert backend.get_device() == "cpu"
    for bad in (["--test-fraction", "1.5"], ["--n-train", "0"]):
        with pytest.raises(SystemExit):
            main(["train", *bad])


def test_a_run_past_the_level_at_its_first_point_gives_no_ratio() -> None:
    fast = _curve("fast", [100, 200], [0.7, 0.8])
    slow = _curve("slow", [100, 200], [0.2, 0.5])
    e = efficiency(fast, slow)
    assert e.ratio is None and e.unresolved == ["fast"] and e.images_faster == 100.0  # reached somewhere before 100
    printed = format_comparison([fast, slow])
    assert "fast had already reached 50.0% at its first evaluation (100 images)" in printed
    assert "no ratio" in printed and "× as many" not in printed and "at least" not in printed


def test_the_test_subset_does_not_depend_on_n_train() -> None:
    shapes = load_shapes(n_train=400, n_test=200, seed=0)
    tests = [shapes.subset(n, 50, seed=1).test_labels for n in (None, 100, 300)]
    assert all(np.array_equal(tests[0], t) for t in tests[1:])
    assert shapes.subset() is shapes  # nothing to choose: no copy
