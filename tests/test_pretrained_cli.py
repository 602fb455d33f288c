"""``--pretrained NAME|DIR`` in eval, classify, search and probe: released CLIP weights used as a run.

The stand-in for ``openai/clip-vit-base-patch32`` is a small random-weight ``transformers.CLIPModel``
saved as users download it (:mod:`reference_clip`; 64 × 64 images), evaluated on a tiny CIFAR-10
in the official binary layout (:mod:`test_data`), whose 32 × 32 images are brought to 64 × 64 by
CLIP's preprocessing. The numbers are checked against ``transformers`` itself: the zero-shot class
embeddings (prompt ensemble of ``get_text_features``), eval's zero-shot predictions, and classify's
probabilities on a photograph read by ``CLIPImageProcessor``. Every command run here checks that
the model folder — a download cache — is left exactly as it was.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from miniclip.cli import main
from miniclip.data import load_dataset
from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES, fill
from miniclip.evaluation import trained_run
from miniclip.evaluation.classify_and_search import scorable_labels, unknown_words
from miniclip.evaluation.report import evaluate_pretrained
from miniclip.evaluation.trained_run import pretrained_run
from miniclip.evaluation.zeroshot import class_vectors, encode_batch_size, encode_images, text_batch_size
from miniclip.model.clip import CLIP
from miniclip.model.tokenizer import Tokenizer
from miniclip.pretrained.preprocess import prepare, prepare_batch

torch = pytest.importorskip("torch", reason="the reference CLIPModel is PyTorch")
transformers = pytest.importorskip("transformers", reason="the reference is transformers.CLIPModel")

from reference_clip import SMALL, learned_tokenizer, save_reference_clip  # noqa: E402
from test_data import cifar_files, write_cifar  # noqa: E402

pytestmark = pytest.mark.torch

SIZE = SMALL["vision"]["image_size"]  # 64: the model's input, twice CIFAR-10's side
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
UNFETCHED = "openai/clip-vit-base-patch32"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The saved model folder, the ``CLIPModel`` it was saved from, and a tiny CIFAR-10 (40 test images, 200 train)."""
    root = tmp_path_factory.mktemp("pretrained_cli")
    model = save_reference_clip(root / "model", SMALL, learned_tokenizer())
    write_cifar(root / "data", cifar_files(np.random.default_rng(0), per_file=40))
    return root / "model", model, root / "data"


@pytest.fixture(scope="module")
def photo() -> Path:
    """The lessons' photograph: Grace Hopper, from matplotlib's sample data (lesson 07)."""
    cbook = pytest.importorskip("matplotlib.cbook")
    try:
        path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    except (OSError, ValueError):
        pytest.skip("this matplotlib ships no grace_hopper.jpg")
    if not path.is_file():
        pytest.skip("this matplotlib ships no grace_hopper.jpg")
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time, by relative path."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def cli(capsys, folder: Path, *argv: object) -> tuple[int, str, str]:
    """``miniclip ARGV`` in this process: its status, stdout and stderr; the model folder checked untouched."""
    before = snapshot(folder)
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert snapshot(folder) == before, "the model folder was written to"
    return status, out, err


def _features(output) -> np.ndarray:
    """``get_*_features``' tensor (transformers 4) or its ``pooler_output`` (transformers 5), unit rows."""
    x = output if isinstance(output, torch.Tensor) else output.pooler_output
    return (x / x.norm(dim=-1, keepdim=True)).numpy()


def reference_classes(model, folder: Path, labels: list[str], templates: list[str]) -> np.ndarray:
    """The prompt ensemble (K, d) by ``transformers``: its own tokenizer, ``get_text_features``, mean, renormalised."""
    tokenizer = transformers.CLIPTokenizer.from_pretrained(folder)
    captions = [fill(t, label) for label in labels for t in templates]
    batch = tokenizer(captions, padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        texts = _features(model.get_text_features(**batch)).reshape(len(labels), len(templates), -1)
    mean = texts.mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def reference_images(model, images: list[Image.Image]) -> np.ndarray:
    """Unit image embeddings (N, d) by ``transformers``: ``CLIPImageProcessor`` at the model's size, then the model."""
    processor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    prepare = processor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    pixels = prepare(images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return _features(model.get_image_features(pixel_values=pixels))


# -- eval ------------------------------------------------------------------------------------------


def test_eval_pretrained_writes_its_report_to_out_with_transformers_predictions(reference, capsys, tmp_path):
    folder, model, data = reference
    out = tmp_path / "eval"
    status, printed, _ = cli(
        capsys, folder, "eval", "--pretrained", folder, "--data-dir", data, "--out", out,
        "--linear-probe", "--n-train", 100, "--no-progress",
    )  # fmt: skip
    assert status == 0 and f"{folder}: 40 test images of cifar10, 10 classes" in printed
    report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert report["checkpoint"] == str(folder) and {"confusion.png", "similarity.png"} <= set(os.listdir(out))
    assert all(0 <= r["top1"] <= r["top5"] <= 1 for r in report["zero_shot"].values())
    assert 0 <= report["linear_probe"]["all"]["top1"] <= 1 and report["linear_probe"]["all"]["n_train"] == 100
    # As transformers encodes them: CLIPImageProcessor's pixels of each 32 × 32 image; and the same predictions.
    test = load_dataset("cifar10", data, download=False)
    run = pretrained_run(folder, data_dir=str(data))
    prepare = run.prepare_for(test.test_images)
    ours = encode_images(run.checkpoint.model, test.test_images, run.normalize, run.encode_batch, prepare=prepare)
    # (40, d): eval's own call
    theirs = reference_images(model, [Image.fromarray(image.transpose(1, 2, 0)) for image in test.test_images])
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-5, atol=1e-6)
    predicted = (theirs @ reference_classes(model, folder, CLASSES, CLIP_CIFAR10_TEMPLATES).T).argmax(axis=1)
    per_class = [float((predicted[test.test_labels == c] == c).mean()) for c in range(10)]
    ensemble = report["zero_shot"]["CLIP 18 templates"]
    assert ensemble["per_class"] == pytest.approx(per_class, abs=1e-12)
    assert ensemble["top1"] == pytest.approx(float((predicted == test.test_labels).mean()))


def test_eval_pretrained_without_out_prints_and_writes_nothing(reference, capsys, tmp_path, monkeypatch):
    folder, _, data = reference
    monkeypatch.chdir(tmp_path)
    status, printed, _ = cli(capsys, folder, "eval", "--pretrained", folder, "--data-dir", data, "--n-test", 20)
    assert status == 0 and "20 test images of cifar10" in printed and "CLIP 18 templates" in printed
    assert "plots: not written (give --out DIR" in printed and list(tmp_path.iterdir()) == []


def test_zero_shot_class_embeddings_equal_transformers_prompt_ensemble(reference):
    folder, model, _ = reference
    run = pretrained_run(folder)
    ckpt = run.checkpoint
    ours = class_vectors(ckpt.model, ckpt.tokenizer, CLASSES, CLIP_CIFAR10_TEMPLATES, ckpt.model_config.context_length)
    theirs = reference_classes(model, folder, CLASSES, CLIP_CIFAR10_TEMPLATES)
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-5, atol=1e-6)


# -- classify, search, probe -----------------------------------------------------------------------


def test_classify_pretrained_prints_transformers_probabilities_and_no_warning(reference, photo, capsys):
    folder, model, _ = reference
    labels = ["a woman in uniform", "cat", "zorblax"]  # a made-up word: spelled in byte pairs, never unknown
    status, printed, err = cli(capsys, folder, "classify", "--pretrained", folder, photo, "--labels", *labels)
    assert status == 0 and err == ""
    got = {m[2]: float(m[1]) / 100 for m in re.finditer(r"^\s+([\d.]+)%\s+(.+)$", printed, re.MULTILINE)}
    assert sorted(got) == sorted(labels)
    with Image.open(photo) as image:
        cosines = reference_images(model, [image]) @ reference_classes(model, folder, labels, CLIP_CIFAR10_TEMPLATES).T
    logits = float(model.logit_scale.detach().exp()) * cosines[0]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose([got[label] for label in labels], expected, atol=1e-4)  # printed to 0.01 %


def test_search_and_probe_pretrained_run_end_to_end(reference, capsys, tmp_path):
    folder, _, data = reference
    grid = tmp_path / "ships.png"
    status, printed, err = cli(
        capsys, folder, "search", "--pretrained", folder, "a photo of a zorblax ship", "--data-dir", data,
        "--n-test", 30, "--top", 4, "--out", grid,
    )  # fmt: skip
    assert status == 0 and err == "" and grid.is_file() and printed.startswith("best 4 test images for")
    probe = tmp_path / "probe"
    status, printed, _ = cli(
        capsys, folder, "probe", "--pretrained", folder, "--data-dir", data, "--out", probe,
        "--points", 3, "--rank", 2, "--blur", 1, "--no-progress",
    )  # fmt: skip
    summary = json.loads((probe / "summary.json").read_text(encoding="utf-8"))
    assert status == 0 and summary["run"] == str(folder) and summary["test_images"] == 40
    assert list(summary["zero_shot_top1"]) == ["0", "1"] and (probe / "summary.md").is_file()


# -- what is refused, in one line, before anything is read ---------------------------------------------


def _error(capsys, argv: list[str]) -> str:
    """The one-line argparse error of ``miniclip ARGV`` (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "{run}", "--pretrained", "{model}"], "not allowed with argument"),
        (["eval"], "one of the arguments checkpoint --pretrained is required"),
        (["search", "{run}", "a ship", "--pretrained", "{model}"], "not allowed with argument"),
        (["search", "a ship"], "one of the arguments checkpoint --pretrained is required"),
        (["probe", "{run}", "--pretrained", "{model}", "--out", "{tmp}/p"], "not allowed with argument"),
        (["probe"], "one of the arguments checkpoint --pretrained is required"),
        (["classify", "{run}", "{photo}", "--pretrained", "{model}", "--labels", "cat"], "not allowed with argument"),
        (["classify", "{photo}", "--labels", "cat"], "one of the arguments checkpoint --pretrained is required"),
        (["probe", "--pretrained", "{model}"], "--pretrained needs --out"),
        (["eval", "{run}", "--n-test", "5"], "--n-test chooses the images a --pretrained model sees"),
        (["eval", "--pretrained", "{model}", "--n-train", "5"], "the linear probe is fitted on: add --linear-probe"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_a_run_and_pretrained_both_or_neither_is_a_usage_error(reference, photo, capsys, tmp_path, argv, message):
    folder = reference[0]
    names = {"run": tmp_path, "model": folder, "photo": photo, "tmp": tmp_path}
    before = snapshot(folder)
    line = _error(capsys, [a.format(**names) for a in argv])
    assert line.startswith(f"miniclip {argv[0]}: error: ") and message in line
    assert snapshot(folder) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--pretrained", UNFETCHED],
        ["search", "--pretrained", UNFETCHED, "a ship"],
        ["probe", "--pretrained", UNFETCHED, "--out", "{tmp}/p"],
        ["classify", "--pretrained", UNFETCHED, "{photo}", "--labels", "cat"],
    ],
    ids=lambda v: v[0],
)
def test_an_unfetched_name_is_refused_in_one_line_before_any_loading(photo, capsys, monkeypatch, tmp_path, argv):
    monkeypatch.setenv("MINICLIP_PRETRAINED", str(tmp_path / "cache"))
    monkeypatch.setattr(trained_run, "load_dataset", lambda *a, **k: pytest.fail("a dataset was loaded"))
    monkeypatch.setattr(trained_run, "load_pretrained", lambda *a, **k: pytest.fail("a model was loaded"))
    status = main([a.format(tmp=tmp_path, photo=photo) for a in argv])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"miniclip {argv[0]}: error: {UNFETCHED} has not been fetched")
    assert f"`miniclip pretrained fetch {UNFETCHED}`" in err and not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--pretrained", "{model}", "--out", "{model}"],
        ["search", "--pretrained", "{model}", "a ship", "--out", "{model}/found.png"],
        ["probe", "--pretrained", "{model}", "--out", "{model}/probe"],
    ],
    ids=lambda v: v[0],
)
def test_output_into_the_model_folder_is_refused(reference, capsys, monkeypatch, argv):
    folder = reference[0]
    monkeypatch.setattr(trained_run, "load_pretrained", lambda *a, **k: pytest.fail("a model was loaded"))
    status, _, err = cli(capsys, folder, *(a.format(model=folder) for a in argv))
    assert status == 2 and "the model folder" in err and "never written to" in err


# -- the pieces ------------------------------------------------------------------------------------


def test_images_are_brought_to_the_models_size_only_when_they_are_not_it(reference):
    run = pretrained_run(reference[0])
    small = np.random.default_rng(1).integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    assert run.prepare_for(prepare_batch(small, SIZE)) is None and run.prepare_for(small) is not None
    model = run.checkpoint.model
    by_batches = encode_images(model, small, run.normalize, 3, prepare=run.prepare_for(small))  # 3 batches
    np.testing.assert_allclose(by_batches, encode_images(model, prepare_batch(small, SIZE), run.normalize), atol=1e-6)
    assert run.encode_batch == encode_batch_size(SIZE) == 125  # 500 images of 32 × 32, as many pixels
    assert (encode_batch_size(32), encode_batch_size(16), encode_batch_size(224), encode_batch_size(10_000)) == (
        500, 500, 10, 1,
    )  # fmt: skip
    assert run.text_batch == text_batch_size(77, 16) == 500  # the stand-in's text tower: 77 tokens × 16
    assert (text_batch_size(16, 128), text_batch_size(77, 512), text_batch_size(10_000, 10_000)) == (500, 25, 1)


def test_pretrained_run_is_a_run_with_clips_numbers(reference):
    run = pretrained_run(reference[0], n_test=5)
    assert run.checkpoint.path == reference[0] and run.checkpoint.optimizer_state is None and run.pretrained
    assert run.checkpoint.train_config == {} and run.checkpoint.progress == {}
    assert run.config.data == "cifar10" and run.config.n_test == 5 and run.config.flip_average is False
    assert run.mean == pytest.approx([0.48145466, 0.4578275, 0.40821073])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_test": 0}, "n_test must be at least 1"),
        ({"n_train": 2.5}, "whole numbers"),
        ({"data": "nowhere"}, "nowhere"),
    ],
)
def test_pretrained_run_checks_its_arguments_before_loading(reference, monkeypatch, options, message):
    monkeypatch.setattr(trained_run, "load_pretrained", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(ValueError, match=message):
        pretrained_run(reference[0], **options)


def test_byte_pairs_know_every_word_but_labels_must_still_differ(reference):
    tokenizer = pretrained_run(reference[0]).checkpoint.tokenizer
    warnings: list[str] = []
    assert unknown_words(tokenizer, "a zorblax on a qwxv") == []
    assert scorable_labels(tokenizer, ["zorblax", "qwxv"], warnings.append) == ["zorblax", "qwxv"] and warnings == []
    with pytest.raises(ValueError, match="labels must be distinct: 'Cat' and ' cat ' are the same byte pairs"):
        scorable_labels(tokenizer, ["Cat", " cat "])
    with pytest.raises(ValueError, match="label '  ' is blank"):
        scorable_labels(tokenizer, ["cat", "  "])


def test_labels_are_judged_by_the_tokenizers_own_encoding(reference):
    """Byte pairs tell "C++" from "C#" and spell an emoji; the word tokenizer sees the same word, and no word."""
    byte_pairs = pretrained_run(reference[0]).checkpoint.tokenizer
    word_level = Tokenizer.build(["a photo of a c cat"])
    assert byte_pairs.encode("C++") != byte_pairs.encode("C#") and byte_pairs.encode("🐱")
    assert scorable_labels(byte_pairs, ["C++", "C#", "🐱", "Cat!"]) == ["C++", "C#", "🐱", "Cat!"]
    with pytest.raises(ValueError, match="'C\\+\\+' and 'C#' are the same words to the tokenizer"):
        scorable_labels(word_level, ["C++", "C#"])
    with pytest.raises(ValueError, match="label '🐱' has no words"):
        scorable_labels(word_level, ["cat", "🐱"])
    with pytest.raises(ValueError, match="'Cat' and 'cat!' are the same words"):
        scorable_labels(word_level, ["Cat", "cat!"])


def test_classify_and_search_pretrained_take_what_byte_pairs_encode(reference, photo, capsys):
    folder, _, data = reference
    status, printed, err = cli(capsys, folder, "classify", "--pretrained", folder, photo, "--labels", "C++", "C#", "🐱")
    assert status == 0 and err == "" and all(f"  {label}\n" in printed for label in ("C++", "C#", "🐱"))
    query = ["search", "--pretrained", folder, "🐱", "--data-dir", data, "--n-test", 5]
    status, printed, err = cli(capsys, folder, *query)
    assert status == 0 and err == "" and printed.startswith("best 5 test images for '🐱'")


def _recording(monkeypatch, module, batches: dict[str, list]) -> None:
    """``CLIP.encode_image``/``encode_text`` record each batch's size; ``module``'s two batch rules give 3 and 7."""
    for name, key in (("encode_image", "images"), ("encode_text", "texts")):
        original = getattr(CLIP, name)

        def recorded(model, x, *rest, _original=original, _key=key):
            batches[_key].append(len(x))
            return _original(model, x, *rest)

        monkeypatch.setattr(CLIP, name, recorded)
    monkeypatch.setattr(module, "encode_batch_size", lambda size: batches["image_rule"].append(size) or 3)
    monkeypatch.setattr(module, "text_batch_size", lambda *sizes: batches["text_rule"].append(sizes) or 7)


def test_eval_pretrained_encodes_as_many_images_and_captions_at_a_time_as_the_rules_say(reference, monkeypatch):
    folder, _, data = reference
    batches: dict[str, list] = {"images": [], "texts": [], "image_rule": [], "text_rule": []}
    _recording(monkeypatch, trained_run, batches)
    evaluate_pretrained(folder, data_dir=str(data), n_test=20)
    assert set(batches["image_rule"]) == {SIZE} and set(batches["text_rule"]) == {(77, 16)}  # the model's sizes
    assert max(batches["images"]) == 3 and sum(batches["images"]) == 20  # 20 test images, 3 at a time
    assert max(batches["texts"]) == 7 and 10 * len(CLIP_CIFAR10_TEMPLATES) <= sum(batches["texts"])  # 180 captions


def photo_folder(root: Path, per_class: int = 3) -> dict[Path, np.ndarray]:
    """Two classes of 80 × 120 noise PNGs under ``root``: each file, and its pixels as CLIP's preprocessing reads it."""
    rng = np.random.default_rng(0)
    expected = {}
    for name in ("tabby_cat", "red_car"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            file = root / name / f"{i}.png"
            Image.fromarray(rng.integers(0, 256, (120, 80, 3), dtype=np.uint8)).save(file)  # 80 wide, 120 high
            with Image.open(file) as image:
                expected[file] = prepare(image, SIZE)  # (3, 64, 64)
    return expected


def assert_read_the_clip_way(images: np.ndarray, expected: dict[Path, np.ndarray]) -> None:
    """Every image (N, 3, S, S) is one of the files as CLIP reads it, none twice."""
    wanted = {array.tobytes() for array in expected.values()}
    assert images.shape[1:] == (3, SIZE, SIZE) and len({image.tobytes() for image in images}) == len(images)
    assert {image.tobytes() for image in images} <= wanted


def test_a_folder_of_photos_is_read_at_the_models_size_the_clip_way(reference, tmp_path):
    expected = photo_folder(tmp_path / "photos")
    run = pretrained_run(reference[0], data=str(tmp_path / "photos"))
    dataset = run.dataset()
    assert_read_the_clip_way(np.concatenate([dataset.train_images, dataset.test_images]), expected)
    assert len(dataset.train_labels) + len(dataset.test_labels) == len(expected)
    assert run.prepare_for(dataset.test_images) is None  # already the model's input: nothing blown up


def test_a_file_that_is_no_image_is_named_in_one_line(reference, capsys, tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo", encoding="utf-8")
    status, _, err = cli(capsys, reference[0], "classify", "--pretrained", reference[0], notes, "--labels", "cat")
    assert status == 2 and err.startswith(f"miniclip classify: error: cannot read {notes} as an image")


SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "make_cifar10_bin.py"


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="needs ../shared/data (CIFAR-10 as JPEGs and its rebuilder)")
def test_eval_pretrained_on_cifar10_rebuilt_from_the_shared_data(reference, capsys, tmp_path):
    """The whole path on real CIFAR-10 images (a JPEG re-encoding rebuilt in the official layout, about 20 s)."""
    import subprocess
    import sys

    subprocess.run([sys.executable, str(SHARED_CIFAR), str(tmp_path)], check=True, capture_output=True)
    folder, _, _ = reference
    out = tmp_path / "eval"
    status, printed, _ = cli(
        capsys, folder, "eval", "--pretrained", folder, "--data-dir", tmp_path, "--n-test", 200, "--out", out,
        "--no-progress",
    )  # fmt: skip
    assert status == 0 and f"{folder}: 200 test images of cifar10, 10 classes" in printed
    assert load_dataset("cifar10", tmp_path, download=False).class_names == CLASSES  # the rebuilt layout, read back
    report = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    ensemble = report["zero_shot"]["CLIP 18 templates"]
    assert len(ensemble["per_class"]) == 10 and 0 <= ensemble["top1"] <= ensemble["top5"] <= 1
