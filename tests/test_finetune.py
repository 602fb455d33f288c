"""``miniclip train --init-from``: fine-tuning released CLIP weights with the hand-written backward.

The released model is the offline stand-in of :mod:`reference_clip` (a small random-weight
``transformers.CLIPModel`` saved as users download one), the data a tiny CIFAR-10 in the official
layout (:mod:`test_data`). The first step's loss must be the loss ``CLIPModel(..., return_loss=True)``
computes on the same pixels and token ids; the run must save and resume with its byte-pair tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from miniclip import backend, cli
from miniclip.backend import to_host
from miniclip.evaluation import classify_and_search
from miniclip.evaluation.trained_run import load_run
from miniclip.model.bpe import BPETokenizer
from miniclip.pretrained.load import load_pretrained
from miniclip.pretrained.preprocess import CLIP_MEAN, CLIP_STD
from miniclip.training import loop
from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.configs import TrainConfig

torch = pytest.importorskip("torch", reason="the reference CLIPModel is PyTorch")
pytest.importorskip("transformers", reason="the reference is transformers.CLIPModel")

from reference_clip import SMALL, learned_tokenizer, save_reference_clip  # noqa: E402
from test_data import cifar_files, write_cifar  # noqa: E402
from test_pretrained_cli import _recording, assert_read_the_clip_way, photo_folder  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A small released CLIP (64×64 images, 16 wide), the transformers model it was saved from, and a tiny CIFAR."""
    root = tmp_path_factory.mktemp("finetune")
    model = save_reference_clip(root / "model", SMALL, learned_tokenizer())
    write_cifar(root / "data", cifar_files(np.random.default_rng(0), per_file=10))  # 50 training, 10 test
    return root, model


def _train(root: Path, out: Path, *extra: str) -> int:
    common = ["--data", "cifar10", "--data-dir", str(root / "data"), "--out", str(out)]
    return cli.main(["train", *common, *extra])


def _first_step(monkeypatch) -> dict:
    """Record the arguments and the loss of the first call of ``train_step``, on the host."""
    seen: dict = {}
    original = loop.train_step

    def recording(model, optimizer, token_ids, images, mask, targets, *, grad_clip, world=None):
        if not seen:
            seen.update(ids=to_host(token_ids), images=to_host(images), mask=to_host(mask), targets=targets)
        loss = original(model, optimizer, token_ids, images, mask, targets, grad_clip=grad_clip, world=world)
        seen.setdefault("loss", backend.to_float(loss))
        seen["model"] = model
        return loss

    monkeypatch.setattr(loop, "train_step", recording)
    return seen


def test_finetune_first_loss_is_transformers_and_the_run_saves_and_resumes(released, tmp_path, monkeypatch):
    root, reference = released
    out = tmp_path / "run"
    seen = _first_step(monkeypatch)
    args = ["--init-from", str(root / "model"), "--n-train", "16", "--epochs", "1", "--batch-size", "8"]
    assert _train(root, out, *args, "--targets", "identity", "--no-augment", "--lr", "1e-3") == 0

    # The first step: CLIP's input (77 byte-pair tokens, 64×64 images normalised with CLIP's numbers) ...
    assert seen["ids"].shape == (8, 77) and seen["images"].shape == (8, 3, 64, 64) and seen["targets"] is None
    with torch.no_grad():
        theirs = reference(
            input_ids=torch.from_numpy(seen["ids"]),
            attention_mask=torch.from_numpy(seen["mask"].astype(np.int64)),
            pixel_values=torch.from_numpy(seen["images"]),
            return_loss=True,
        ).loss.item()
    # ... and the loss transformers computes on the very same batch.
    assert np.isfinite(seen["loss"])
    assert seen["loss"] == pytest.approx(theirs, rel=1e-5)

    saved = load_checkpoint(out)
    assert isinstance(saved.tokenizer, BPETokenizer)
    assert saved.tokenizer.tokens == learned_tokenizer().tokens
    trained = {k: to_host(v) for k, v in seen["model"].state().items()}
    assert saved.model.state().keys() == trained.keys()
    for name, value in saved.model.state().items():
        np.testing.assert_array_equal(value, trained[name], err_msg=name)  # the checkpoint holds the trained weights
    start = load_pretrained(root / "model").model.state()
    assert any(not np.array_equal(start[k], v) for k, v in trained.items())  # and they moved
    config = TrainConfig.from_dict(saved.train_config["config"])
    assert config.init_from == str((root / "model").resolve()) and config.context_length == 77
    assert config.model == {} and config.lr == 1e-3
    np.testing.assert_allclose(saved.train_config["state"]["mean_std"], [CLIP_MEAN, CLIP_STD])
    assert json.loads((out / "tokenizer.json").read_text())["format"] == "miniclip-bpe-tokenizer"

    # --resume continues the run (its tokenizer and model from the checkpoint, the init folder not read again).
    assert _train(root, out, "--resume", "--epochs", "2", "--init-from", str(root / "model")) == 0
    resumed = load_checkpoint(out)
    assert [m["epoch"] for m in resumed.metrics] == [1, 2] and isinstance(resumed.tokenizer, BPETokenizer)
    assert all(np.isfinite(m["train_loss"]) for m in resumed.metrics)


def test_finetune_defaults_and_augmentation_at_the_model_size(released, tmp_path):
    root, _ = released
    out = tmp_path / "run"
    assert (
        _train(root, out, "--init-from", str(root / "model"), "--n-train", "8", "--epochs", "1", "--batch-size", "4")
        == 0
    )
    saved = load_checkpoint(out)
    config = TrainConfig.from_dict(saved.train_config["config"])
    assert config.lr == 1e-5 and config.augment  # the gentle fine-tuning rate; crops and flips at 64×64
    assert not config.flip_average  # evaluated on one view of each image, as CLIP is
    assert saved.model_config.image_size == 64 and saved.model_config.image_pool == "class"
    # --config types its schedule and data, never its model or context length, on resume as on a start
    assert _train(root, out, "--resume", "--config", "cpu", "--batch-size", "4", "--n-train", "8", "--epochs", "2") == 0


def test_a_trainer_in_code_resumes_a_finetuned_run(released, tmp_path):
    root, _ = released
    cfg = TrainConfig(
        data="cifar10", data_dir=str(root / "data"), out_dir=str(tmp_path / "run"), epochs=1, batch_size=4,
        n_train=8, init_from=str(root / "model"), lr=1e-4,
    )  # fmt: skip
    loop.train(cfg, show_progress=False)
    metrics = loop.train(TrainConfig(**{**cfg.to_dict(), "epochs": 2}), resume=True, show_progress=False)
    assert [m["epoch"] for m in metrics] == [1, 2]  # its context length (16 here, 77 saved) is the model's


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--image-encoder", "cnn"], "--image-encoder cnn: the model of --init-from"),
        (["--objective", "predictive"], "leave --objective out"),
        (["--text-encoder", "bag_of_words"], "leave --text-encoder out"),
    ],
)
def test_model_flags_beside_init_from_are_refused(released, tmp_path, capsys, flags, message):
    root, _ = released
    assert _train(root, tmp_path / "run", "--init-from", str(root / "model"), *flags) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_bad_init_from_is_one_line_before_any_work(released, tmp_path, capsys, monkeypatch):
    root, _ = released
    monkeypatch.setenv("MINICLIP_PRETRAINED", str(tmp_path / "home"))
    for source, message in [
        (str(tmp_path / "missing"), "no such model folder"),
        (str(root / "data"), "is not a CLIP model folder"),
        ("someone/unfetched", "miniclip pretrained fetch someone/unfetched"),
    ]:
        assert _train(root, tmp_path / "run", "--init-from", source) == 2
        captured = capsys.readouterr()
        assert message in captured.err and len(captured.err.strip().splitlines()) == 1
        assert "miniclip train:" not in captured.out  # refused before the run started
    assert not (tmp_path / "run").exists()


def test_too_many_images_for_memory_say_lower_n_train(released, tmp_path, capsys, monkeypatch):
    root, _ = released
    monkeypatch.setattr(backend, "memory_bytes", lambda: 100_000)  # 26 images of 3×64×64 need 320 kB
    assert _train(root, tmp_path / "run", "--init-from", str(root / "model"), "--n-train", "16") == 2
    err = capsys.readouterr().err
    assert "lower --n-train" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before the output folder was made


def test_resume_with_another_init_from_is_refused(released, tmp_path, capsys):
    root, _ = released
    out = tmp_path / "run"
    assert (
        _train(root, out, "--init-from", str(root / "model"), "--n-train", "8", "--batch-size", "4", "--epochs", "1")
        == 0
    )
    capsys.readouterr()
    assert _train(root, out, "--resume", "--epochs", "2", "--init-from", str(root / "data")) == 2
    err = capsys.readouterr().err
    assert f"--init-from names the weights {str(root / 'data')!r}, but the run was fine-tuned from " in err
    assert repr(str((root / "model").resolve())) in err
    # and a run trained from scratch cannot be resumed as a fine-tuning
    scratch = tmp_path / "scratch"
    tiny = ["--n-train", "8", "--batch-size", "4", "--epochs", "1", "--config", "tiny", "--no-augment"]
    assert _train(root, scratch, *tiny) == 0
    capsys.readouterr()
    assert _train(root, scratch, "--resume", "--init-from", str(root / "model"), "--epochs", "2") == 2
    assert f"--init-from names the weights {str(root / 'model')!r}, but the run was trained from scratch; " in (
        capsys.readouterr().err
    )


def test_a_checkpoint_tokenizer_of_an_unknown_kind_is_named():
    from miniclip.training.checkpoint import tokenizer_from_dict

    with pytest.raises(ValueError, match="its format 'sentencepiece' is none of"):
        tokenizer_from_dict({"format": "sentencepiece"}, source="run/checkpoint.npz (tokenizer)")
    bpe = learned_tokenizer()
    assert tokenizer_from_dict(bpe.to_dict()).tokens == bpe.tokens


def test_the_evaluation_after_an_epoch_encodes_as_many_at_a_time_as_the_rules_say(released, tmp_path, monkeypatch):
    root, _ = released
    batches: dict[str, list] = {"images": [], "texts": [], "image_rule": [], "text_rule": []}
    _recording(monkeypatch, loop, batches)
    cfg = TrainConfig(
        data="cifar10", data_dir=str(root / "data"), out_dir=str(tmp_path / "run"), batch_size=4, n_train=8,
        init_from=str(root / "model"), flip_average=True,
    )  # fmt: skip
    results = loop.Trainer(cfg, show_progress=False).evaluate()
    assert set(batches["image_rule"]) == {64} and set(batches["text_rule"]) == {(77, 16)}  # the model's sizes
    assert max(batches["images"]) == 3 and sum(batches["images"]) == 2 * 10  # 10 test images and their mirrors
    assert max(batches["texts"]) == 7 and all(0 <= r["top1"] <= 1 for r in results.values())


def test_a_run_finetuned_on_photos_reads_them_the_clip_way_everywhere(released, tmp_path, monkeypatch, capsys):
    """Training, the run read back (eval), its resumption and ``classify RUN``: each file as CLIP reads it."""
    root, _ = released
    expected = photo_folder(tmp_path / "photos", per_class=5)  # 80 × 120 PNGs: 8 training, 2 test images
    cfg = TrainConfig(
        data=str(tmp_path / "photos"), out_dir=str(tmp_path / "run"), epochs=1, batch_size=4,
        init_from=str(root / "model"), lr=1e-4,
    )  # fmt: skip
    trainer = loop.Trainer(cfg, show_progress=False)
    trained = trainer.dataset
    assert_read_the_clip_way(np.concatenate([trained.train_images, trained.test_images]), expected)
    trainer.run()
    run = load_run(tmp_path / "run")
    again = run.dataset()
    np.testing.assert_array_equal(again.test_images, trained.test_images)  # eval sees the pixels training saw
    assert run.released_weights and run.prepare_for(again.test_images) is None
    resumed = loop.Trainer(TrainConfig(**{**cfg.to_dict(), "epochs": 2}), resume=True, show_progress=False).dataset
    np.testing.assert_array_equal(resumed.train_images, trained.train_images)

    read: list[Path] = []
    monkeypatch.setattr(classify_and_search, "load_image", lambda *a: pytest.fail("read by load_image"))
    monkeypatch.setattr(classify_and_search, "clip_image", lambda path, size: read.append(path) or expected[path])
    photo = next(iter(expected))
    assert cli.main(["classify", str(tmp_path / "run"), str(photo), "--labels", "tabby cat", "red car"]) == 0
    assert read == [photo] and "tabby cat" in capsys.readouterr().out
