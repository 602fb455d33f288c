"""``miniclip eval`` end to end on tiny shapes runs: prompts side by side, retrieval, ensembles, probe, predictive.

Three tiny runs are trained once for the module (256 shapes, one epoch): two contrastive runs on
the same data that differ in their learning rate (a shapes run's seed draws its images too, so
runs of different seeds would have different test splits: those are made by editing a copy's
configuration, for the refusals), and one with the predictive objective. Where the library
computes a number another way (zero-shot, recall, the members' probabilities), the report is checked against it.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL
from PIL import Image

from miniclip.backend import to_host
from miniclip.cli import main
from miniclip.data import load_shapes
from miniclip.data.captions import check_templates, ensemble_templates, prompts, report_templates
from miniclip.evaluation.linear_probe import L2_GRID
from miniclip.evaluation.report import measure_retrieval, retrieval_lines
from miniclip.evaluation.retrieval import recall_at_k
from miniclip.evaluation.trained_run import load_run
from miniclip.evaluation.zeroshot import class_embeddings, class_vectors, encode_images, evaluate_zero_shot
from miniclip.layers.softmax import softmax
from miniclip.training.configs import named_config
from miniclip.training.loop import train

N_TRAIN, N_TEST = 256, 96  # 6 or 7 training images of each of the 40 classes seen in training
PROMPT_ROWS = ('bare label "{}"', '"a photo of a {}."', "train templates", "unseen templates")


def _train(folder: Path, **overrides) -> Path:
    cfg = named_config(
        "shapes",
        out_dir=str(folder),
        n_train=N_TRAIN,
        n_test=N_TEST,
        epochs=1,
        batch_size=32,
        model=TINY_TRAIN_MODEL | overrides.pop("model", {}),
        **overrides,
    )
    train(cfg, show_progress=False)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two contrastive runs on the same data (learning rates 3e-3 and 1e-2) and a predictive one."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "a": _train(root / "a"),
        "b": _train(root / "b", lr=1e-2),
        "predictive": _train(root / "predictive", model={"objective": "predictive"}),
    }


def _eval(*args: str) -> tuple[int, str, str]:
    """``miniclip eval ARGS``: the exit status, stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["eval", *args])
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def probed(runs, tmp_path_factory) -> tuple[str, str, dict]:
    """``miniclip eval A --linear-probe``: stdout, stderr and eval.json (run once)."""
    out = tmp_path_factory.mktemp("eval-a")
    status, printed, progress = _eval(str(runs["a"]), "--out", str(out), "--pairs", "3", "--linear-probe")
    assert status == 0, progress
    return printed, progress, json.loads((out / "eval.json").read_text())


# -- 1. four prompt sets side by side -------------------------------------------------------------


def test_the_bare_label_is_a_template_of_its_own():
    assert check_templates(["{}"]) == ["{}"]
    assert prompts(["small red circle"], ["{}"]) == [["small red circle"]]
    cifar = SimpleNamespace(name="cifar10", train_templates=["a photo of a {}."])
    folder = SimpleNamespace(name="pets", train_templates=["a {}.", "a photo of a {}."])
    assert list(report_templates(cifar)) == [
        'bare label "{}"',
        '"a photo of a {}."',
        "CLIP 18 templates",
        "unseen templates",
    ]
    assert len(report_templates(cifar)["CLIP 18 templates"]) == 18
    assert report_templates(folder)["train templates"] == folder.train_templates == ensemble_templates(folder)


def test_eval_puts_four_prompt_sets_side_by_side(runs, probed):
    printed, _, summary = probed
    rows = re.findall(r"^(.+?) +(\d+\.\d)% +(\d+\.\d)%   held-out combinations", printed, re.M)
    assert [name for name, _, _ in rows] == list(PROMPT_ROWS)
    assert list(summary["zero_shot"]) == list(PROMPT_ROWS)
    run = load_run(runs["a"])
    ckpt, dataset = run.checkpoint, run.dataset()
    by_hand = evaluate_zero_shot(
        ckpt.model, ckpt.tokenizer, dataset, run.normalize, ckpt.model_config.context_length, {"bare": ["{}"]}
    )["bare"]
    assert summary["zero_shot"]['bare label "{}"']["top1"] == pytest.approx(by_hand["top1"])
    assert rows[0][1] == f"{100 * by_hand['top1']:.1f}"  # the file matches the print


# -- 2. retrieval that means something -----------------------------------------------------------


def test_retrieval_on_shared_captions_is_class_aware_and_says_why(runs, probed):
    printed, _, summary = probed
    assert "class-aware recall: a hit when an item of the query's class ranks in the top k" in printed
    assert (
        f"the {N_TEST} images share 48 captions, so an exact pair cannot be told from the rest of its class" in printed
    )
    assert "_class" not in printed  # the plain recall (R@1 ≈ 1/N per caption's images) is not printed
    assert re.search(r"^  text_to_image +R@1 \d+\.\d%  R@5 \d+\.\d%  R@10 \d+\.\d%$", printed, re.M)
    assert re.search(r"^  image_to_text +R@1 \d+\.\d%   \(zero-shot top-1 with this one caption", printed, re.M)
    recall = summary["recall"]
    assert recall["measure"] == "class-aware" and recall["caption_template"] == "a {}."
    run = load_run(runs["a"])
    ckpt, dataset = run.checkpoint, run.dataset()
    images = encode_images(ckpt.model, dataset.test_images, run.normalize)
    words = class_embeddings(
        ckpt.model, ckpt.tokenizer, dataset.class_names, ["a {}."], ckpt.model_config.context_length
    )
    by_hand = recall_at_k(images, words[dataset.test_labels], labels=dataset.test_labels)  # the one implementation
    assert recall["text_to_image"] == pytest.approx(by_hand["text_to_image_class"])
    assert recall["image_to_text"] == pytest.approx({"R@1": by_hand["image_to_text_class"]["R@1"]})


def test_retrieval_with_one_image_per_caption_is_plain_recall(runs):
    run = load_run(runs["a"])
    dataset = run.dataset()
    _, first = np.unique(dataset.test_labels, return_index=True)  # one test image of each class
    one_each = SimpleNamespace(
        class_names=dataset.class_names, train_templates=dataset.train_templates, test_labels=dataset.test_labels[first]
    )
    images = encode_images(run.checkpoint.model, dataset.test_images[first], run.normalize)
    recall = measure_retrieval(run, one_each, images)
    lines = retrieval_lines({"recall": recall})  # an instance recall needs no more than its numbers
    assert (
        lines[1] == "  recall: a hit when the query's own pair ranks in the top k (each caption belongs to one image)"
    )
    assert recall["measure"] == "instance" and set(recall["image_to_text"]) == {"R@1", "R@5", "R@10"}


# -- 3. model ensembles -------------------------------------------------------------------------


def _probabilities_by_hand(path: Path) -> np.ndarray:
    """softmax over the classes of e^s · cosine with the prompt ensemble (or of log p · q for a predictive run)."""
    run = load_run(path)
    ckpt, dataset = run.checkpoint, run.dataset()
    templates, length = dataset.train_templates, ckpt.model_config.context_length
    images = encode_images(ckpt.model, dataset.test_images, run.normalize)  # no flip averaging in these runs
    classes = class_vectors(ckpt.model, ckpt.tokenizer, dataset.class_names, templates, length)
    scale = ckpt.model.logit_scale.scale if hasattr(ckpt.model, "logit_scale") else 1.0
    return to_host(softmax(scale * (images @ classes.T), axis=1))


@pytest.mark.parametrize("members", [("a", "b"), ("a", "predictive")])
def test_an_ensemble_averages_the_members_probabilities(members, runs, tmp_path):
    paths = [runs[m] for m in members]
    status, printed, _ = _eval(*map(str, paths), "--out", str(tmp_path / "ens"))
    assert status == 0
    rows = re.findall(r"^(\S+) +(\d+\.\d)% +(\d+\.\d)%$", printed, re.M)
    assert [name for name, _, _ in rows] == [str(p / "checkpoint.npz") for p in paths] + ["ensemble"]
    summary = json.loads((tmp_path / "ens" / "eval.json").read_text())
    labels = load_shapes(n_train=N_TRAIN, n_test=N_TEST, seed=0).test_labels
    probs = [_probabilities_by_hand(p) for p in paths]
    for member, p in zip(summary["members"], probs, strict=True):
        assert member["top1"] == pytest.approx(float((p.argmax(axis=1) == labels).mean()))
    mean = (probs[0] + probs[1]) / 2
    assert summary["ensemble"]["top1"] == pytest.approx(float((mean.argmax(axis=1) == labels).mean()))
    with Image.open(tmp_path / "ens" / "confusion.png") as image:
        assert image.format == "PNG"
    assert sorted(p.name for p in (tmp_path / "ens").iterdir()) == ["confusion.png", "eval.json"]


def _copy_with(run: Path, folder: Path, **config) -> Path:
    """A copy of the run's checkpoint whose training configuration has ``config`` replaced."""
    with np.load(run / "checkpoint.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    meta["train_config"]["config"] |= config
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    folder.mkdir(parents=True)
    np.savez(folder / "checkpoint.npz", **arrays)
    return folder


def _image_folder(root: Path, classes: list[str]) -> Path:
    shapes = load_shapes(n_train=10 * len(classes), n_test=2, seed=5)
    for k, image in enumerate(shapes.train_images):
        (root / classes[k % len(classes)]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(
            root / classes[k % len(classes)] / f"{k}.png"
        )
    return root


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("seed", "their test splits differ (as many images, 96, but not the same ones; a run's seed"),
        ("n_test", "their test splits differ (96 and 48 test images; a run's seed and n_test (and a folder's"),
        ("dataset", "they were trained on different datasets (pets and shapes)"),
        ("classes", "their classes differ (class 1 is 'green' in one, 'red' in the other)"),
    ],
)
def test_an_ensemble_of_runs_that_do_not_share_a_test_split_is_refused(case, message, runs, tmp_path, capsys):
    first, other = runs["a"], tmp_path / "other"
    if case == "seed":
        _copy_with(runs["a"], other, seed=1)
    elif case == "n_test":
        _copy_with(runs["a"], other, n_test=48)
    else:
        first = _copy_with(
            runs["a"],
            tmp_path / "first",
            data=str(_image_folder(tmp_path / "x" / "pets", ["blue", "green"])),
            n_train=None,
            n_test=None,
        )
        if case == "dataset":
            other = runs["b"]
        else:
            _copy_with(
                runs["a"],
                other,
                data=str(_image_folder(tmp_path / "y" / "pets", ["blue", "red"])),
                n_train=None,
                n_test=None,
            )
    out = tmp_path / "never"
    status, _, err = _eval(str(first), str(other), "--out", str(out))
    assert status == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        f"miniclip eval: error: cannot ensemble {first / 'checkpoint.npz'} and {other / 'checkpoint.npz'}: "
    )
    assert message in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ([], "an ensemble of 2 runs needs --out, a folder of its own"),
        (["--out", "X", "--linear-probe"], "--linear-probe evaluates one run"),
    ],
)
def test_an_ensemble_needs_out_and_takes_no_probe(more, message, runs, tmp_path):
    more = [str(tmp_path / "X") if m == "X" else m for m in more]
    status, _, err = _eval(str(runs["a"]), str(runs["b"]), *more)
    assert status == 2 and f"miniclip eval: error: {message}" in err
    assert list(tmp_path.iterdir()) == []


# -- 4. the linear probe ------------------------------------------------------------------------


def test_the_linear_probe_reports_full_data_and_few_shot_beside_zero_shot(probed):
    printed, progress, summary = probed
    block = printed[printed.index("linear probe (") :]
    assert "softmax regression on the image encoder's output, before the head" in block
    assert re.search(r"^  zero-shot \(train templates\) +\d+\.\d%", block, re.M)
    for name in (f"all {N_TRAIN} training images", "1 per class", "4 per class"):
        converged = r"(  \(stopped after \d+ steps, not converged\))?"  # said when a fit hit the step cap
        assert re.search(
            rf"^  {name} +\d+\.\d%  held-out combinations 0\.0%, seen \d+\.\d%{converged}$", block, re.M
        ), name
    assert re.search(r"^  16 per class +n/a  '[a-z ]+' has only [67] training images$", block, re.M)
    assert "the few-shot probes keep that λ: one image per class leaves none to hold out" in block
    assert "8 of the 48 classes have no training images: no probe can predict them" in block
    probe = summary["linear_probe"]
    assert probe["l2"] in L2_GRID and len(probe["l2_heldout_accuracy"]) == len(L2_GRID)
    assert probe["all"]["n_train"] == N_TRAIN and 0 <= probe["all"]["top1"] <= 1
    assert [probe["few_shot"][k]["n_train"] for k in ("1", "4")] == [40, 160]  # the 40 classes with training images
    assert probe["few_shot"]["16"]["top1"] is None and "training images" in probe["few_shot"]["16"]["note"]
    assert probe["all"]["heldout_top1"] == 0.0  # a probe never predicts a class it has no images of
    assert "miniclip eval: linear probe: encoding 256 training and 96 test images" in progress


# -- 5. the predictive objective ----------------------------------------------------------------


def test_a_predictive_run_is_evaluated_without_its_missing_text_encoder(runs, tmp_path):
    out = tmp_path / "eval"
    status, printed, err = _eval(str(runs["predictive"]), "--out", str(out), "--linear-probe", "--no-progress")
    assert status == 0 and err == ""
    rows = re.findall(r"^(.+?) +\d+\.\d% +\d+\.\d%   held-out", printed, re.M)
    assert rows == list(PROMPT_ROWS)
    assert len(re.findall(r"^  (small|large) \w+ \w+ +\d+\.\d%$", printed, re.M)) == 48  # per class
    assert (
        "similarity heatmap and retrieval: skipped, they need caption embeddings and it was trained with the "
        "predictive objective (--objective predictive), which has no text encoder" in printed
    )
    assert re.search(rf"^  all {N_TRAIN} training images +\d+\.\d%", printed, re.M)
    assert printed.rstrip().endswith(f"plots: {out / 'confusion.png'}")
    summary = json.loads((out / "eval.json").read_text())
    assert "recall" not in summary and summary["linear_probe"]["features"] == "image encoder output, before the head"
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "eval.json"]
