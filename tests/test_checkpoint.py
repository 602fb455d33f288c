"""Checkpoints: a full round trip, atomic writes, and clear errors for every kind of bad file."""

import json
import os
import re

import numpy as np
import pytest

from miniclip import backend
from miniclip.model.config import build_clip
from miniclip.model.tokenizer import Tokenizer
from miniclip.optim import AdamW
from miniclip.teaching.gradient_cases.clip import tiny_config
from miniclip.training.checkpoint import FILENAME, VERSION, checkpoint_file, load_checkpoint, save_checkpoint

CAPTIONS = ["a red cat", "a blue dog", "red dog", "a cat"]  # 5 words: vocabulary of 9


def _trained(dtype=np.float32, seed=0):
    """A tiny CNN + transformer CLIP after two AdamW steps (batch-norm statistics moved), with its tokenizer."""
    rng = np.random.default_rng(seed)
    tokenizer = Tokenizer.build(CAPTIONS)
    cfg = tiny_config("cnn", "transformer", vocab_size=tokenizer.vocab_size)
    model = build_clip(cfg, rng=rng, dtype=dtype)
    optimizer = AdamW(model.parameters(), lr=1e-2)
    ids, mask = tokenizer.encode_batch(CAPTIONS, cfg.context_length)
    images = rng.normal(1.0, 2.0, (4, cfg.channels, cfg.image_size, cfg.image_size)).astype(dtype)
    for _ in range(2):
        optimizer.zero_grad()
        model(ids, images, mask)
        model.backward()
        optimizer.step()
    return model, cfg, tokenizer, optimizer, (ids, mask, images)


def _save(path, model, cfg, tokenizer, optimizer=None, **extra):
    return save_checkpoint(path, model=model, model_config=cfg, tokenizer=tokenizer, optimizer=optimizer, **extra)


def test_round_trip_restores_everything(tmp_path):
    model, cfg, tokenizer, optimizer, (ids, mask, images) = _trained()
    generator = np.random.default_rng(123)
    generator.random(5)  # somewhere in the middle of its stream
    metrics = [{"epoch": 0, "loss": np.float32(2.5), "accuracy": 0.25}, {"epoch": 1, "loss": 1.75, "accuracy": 0.5}]
    written = _save(
        tmp_path / "run",
        model,
        cfg,
        tokenizer,
        optimizer,
        train_config={"lr": 1e-2, "batch_size": 4, "targets": "label_aware"},
        progress={"epoch": 2, "step": 7},
        rng_state={"data": generator.bit_generator.state},
        metrics=metrics,
    )
    assert written == tmp_path / "run" / FILENAME
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.npz", "config.json", "tokenizer.json"]
    next_numbers = generator.random(4)

    ck = load_checkpoint(tmp_path / "run")  # the run folder ...
    assert load_checkpoint(written).progress == ck.progress  # ... or the file itself
    assert ck.path == written and ck.model_config == cfg and ck.tokenizer.tokens == tokenizer.tokens
    assert ck.train_config == {"lr": 1e-2, "batch_size": 4, "targets": "label_aware"}
    assert ck.progress == {"epoch": 2, "step": 7}
    assert ck.metrics == [{"epoch": 0, "loss": 2.5, "accuracy": 0.25}, {"epoch": 1, "loss": 1.75, "accuracy": 0.5}]

    saved, loaded = model.state(), ck.model.state()
    assert saved.keys() == loaded.keys()
    for name in saved:
        assert loaded[name].dtype == saved[name].dtype == np.float32, name
        np.testing.assert_array_equal(loaded[name], saved[name], err_msg=name)
    assert not np.allclose(loaded["image.stem_bn.running_mean"], 0)  # the statistics moved, and came back

    restored = np.random.default_rng()
    restored.bit_generator.state = ck.rng_state["data"]  # big Python ints survive JSON
    np.testing.assert_array_equal(restored.random(4), next_numbers)

    model.eval(), ck.model.eval()
    np.testing.assert_array_equal(ck.model.encode_image(images), model.encode_image(images))
    np.testing.assert_array_equal(ck.model.encode_text(ids, mask), model.encode_text(ids, mask))

    # the optimiser resumes exactly: one more step from each gives identical weights
    resumed = AdamW(ck.model.parameters(), lr=1e-2)
    resumed.load_state(ck.optimizer_state)
    assert resumed.t == optimizer.t == 2
    model.train(), ck.model.train()
    for m, opt in ((model, optimizer), (ck.model, resumed)):
        opt.zero_grad()
        m(ids, images, mask)
        m.backward()
        opt.step()
    for name, p in model.parameters().items():
        np.testing.assert_array_equal(ck.model.parameters()[name].data, p.data, err_msg=name)

    # the readable files beside it
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert config == {"model": cfg.to_dict(), "train": ck.train_config}
    assert Tokenizer.load(tmp_path / "run" / "tokenizer.json").tokens == tokenizer.tokens


def test_file_layout_is_plain_arrays(tmp_path):
    model, cfg, tokenizer, optimizer, _ = _trained()
    file = _save(tmp_path / "ck.npz", model, cfg, tokenizer, optimizer)
    assert file == tmp_path / "ck.npz" == checkpoint_file(tmp_path / "ck.npz")
    with np.load(file, allow_pickle=False) as npz:
        keys = set(npz.files)
        meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
        assert npz["meta"].dtype == np.uint8
    assert {"model/image.stem_bn.running_var", "model/logit_scale.log_scale", "optim/step"} <= keys
    assert {"optim/m.text.lookup.table", "optim/v.text.lookup.table"} <= keys
    assert meta["format"] == "miniclip-checkpoint" and meta["version"] == VERSION and meta["optimizer"] == "AdamW"


def test_a_checkpoint_saved_under_the_old_temperature_name_loads_and_resumes(tmp_path):
    """Before CLIP.logit_scale it was CLIP.temperature: the weight and its AdamW moments carried the old name."""
    model, cfg, tokenizer, optimizer, _ = _trained()
    file = _save(tmp_path / "new", model, cfg, tokenizer, optimizer)
    with np.load(file, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    old = {key.replace("logit_scale.log_scale", "temperature.logit_scale"): a for key, a in arrays.items()}
    assert {
        "model/temperature.logit_scale",
        "optim/m.temperature.logit_scale",
        "optim/v.temperature.logit_scale",
    } <= set(old)
    assert not any("log_scale" in key for key in old)
    np.savez(tmp_path / "old.npz", **old)

    ck = load_checkpoint(tmp_path / "old.npz")
    saved, loaded = model.state(), ck.model.state()
    assert saved.keys() == loaded.keys()
    for name in saved:
        np.testing.assert_array_equal(loaded[name], saved[name], err_msg=name)
    assert float(ck.model.logit_scale.log_scale.data) == float(model.logit_scale.log_scale.data)
    resumed = AdamW(ck.model.parameters(), lr=1e-2)
    resumed.load_state(ck.optimizer_state)  # the moments found their parameter under its new name
    for key, moment in optimizer.state().items():
        np.testing.assert_array_equal(resumed.state()[key], moment, err_msg=key)


def test_defaults_and_dtype(tmp_path):
    model, cfg, tokenizer, _, (ids, mask, images) = _trained(dtype=np.float64)
    _save(tmp_path, model, cfg, tokenizer)  # no optimiser, nothing else
    ck = load_checkpoint(tmp_path)
    assert ck.optimizer_state is None and ck.rng_state is None
    assert ck.train_config == {} and ck.progress == {} and ck.metrics == []
    assert all(p.data.dtype == np.float64 for p in ck.model.parameters().values())  # rebuilt as saved
    as_f32 = load_checkpoint(tmp_path, dtype=np.float32)
    assert all(a.dtype == np.float32 for a in as_f32.model.state().values())
    model.eval(), as_f32.model.eval()
    np.testing.assert_allclose(as_f32.model.encode_image(images.astype(np.float32)), model.encode_image(images), 1e-5)


def test_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model, cfg, tokenizer, optimizer, _ = _trained()
    _save(tmp_path, model, cfg, tokenizer, optimizer, progress={"epoch": 1, "step": 10})
    before = sorted(os.listdir(tmp_path))

    def savez_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    model.parameters()["logit_scale.log_scale"].data[...] = 0.5
    with pytest.raises(OSError, match="No space left"):
        _save(tmp_path, model, cfg, tokenizer, optimizer, progress={"epoch": 2, "step": 20})
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == before  # no temporary file left behind
    ck = load_checkpoint(tmp_path)
    assert ck.progress == {"epoch": 1, "step": 10}
    assert float(ck.model.parameters()["logit_scale.log_scale"].data) != 0.5

    with pytest.raises(ValueError, match="JSON-serialisable"):  # refused before anything is written
        _save(tmp_path, model, cfg, tokenizer, train_config={"augment": object()})
    assert sorted(os.listdir(tmp_path)) == before
    assert load_checkpoint(tmp_path).progress == {"epoch": 1, "step": 10}


def test_truncated_file_is_reported(tmp_path):
    model, cfg, tokenizer, optimizer, _ = _trained()
    file = _save(tmp_path, model, cfg, tokenizer, optimizer)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"checkpoint.npz is truncated or corrupt; delete it or resume from another"):
        load_checkpoint(tmp_path)


def test_garbage_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"garbage.npz is not a miniclip checkpoint"):
        load_checkpoint(garbage)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty/checkpoint.npz"):
        load_checkpoint(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"nope.npz"):
        load_checkpoint(tmp_path / "nope.npz")


def test_object_arrays_are_refused(tmp_path):
    file = tmp_path / "pickled.npz"
    np.savez(file, meta=np.array([{"format": "miniclip-checkpoint"}], dtype=object))  # pickled inside
    with pytest.raises(ValueError, match=r"pickled.npz holds Python objects .* never contain pickles"):
        load_checkpoint(file)


def _rewrite_meta(file, **changes):
    with np.load(file, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    for key, value in changes.items():
        meta[key] = meta[key] | value if isinstance(value, dict) else value
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(file, **arrays)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": VERSION + 1}, "written by a newer miniclip"),
        ({"format": "someone-else"}, "is not a miniclip checkpoint"),
        ({"model_config": {"embed_dim": 8}}, r"checkpoint.npz: .*expected shape"),
        ({"model_config": {"depth": 3}}, r"checkpoint.npz: unknown model configuration keys \['depth'\]"),
    ],
)
def test_bad_metadata_is_reported(tmp_path, changes, message):
    model, cfg, tokenizer, _, _ = _trained()
    file = _save(tmp_path, model, cfg, tokenizer)
    _rewrite_meta(file, **changes)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(tmp_path)


def test_an_npz_without_metadata_is_not_a_checkpoint(tmp_path):
    file = tmp_path / "weights.npz"
    np.savez(file, weight=np.ones((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"weights.npz is not a miniclip checkpoint \(no 'meta'"):
        load_checkpoint(file)


@pytest.mark.gpu
def test_gpu_checkpoint_loads_on_either_device(tmp_path):
    import cupy

    _, cfg, tokenizer, _, (ids, mask, images) = _trained()
    with backend.using("gpu"):
        model = build_clip(cfg, rng=np.random.default_rng(5), dtype=np.float32)
        optimizer = AdamW(model.parameters())
        _save(tmp_path, model, cfg, tokenizer, optimizer)
        on_gpu = load_checkpoint(tmp_path)
        assert all(isinstance(p.data, cupy.ndarray) for p in on_gpu.model.parameters().values())
        AdamW(on_gpu.model.parameters()).load_state(on_gpu.optimizer_state)
        on_gpu.model.eval()
        gpu_embeddings = cupy.asnumpy(on_gpu.model.encode_image(cupy.asarray(images)))
    on_cpu = load_checkpoint(tmp_path)
    assert all(isinstance(p.data, np.ndarray) for p in on_cpu.model.parameters().values())
    on_cpu.model.eval()
    np.testing.assert_allclose(on_cpu.model.encode_image(images), gpu_embeddings, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "value"),
    [("text.lookup.table", np.nan), ("image.stem_bn.running_var", np.inf), ("logit_scale.log_scale", -np.inf)],
)
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, name, value):
    """A NaN or infinite weight or buffer would load and print nan% everywhere: refuse it on load."""
    model, cfg, tokenizer, optimizer, _ = _trained()
    file = _save(tmp_path, model, cfg, tokenizer, optimizer)
    with np.load(file, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays[f"model/{name}"] = arrays[f"model/{name}"].copy()
    arrays[f"model/{name}"].reshape(-1)[0] = value
    np.savez(file, **arrays)
    with pytest.raises(ValueError, match=rf"checkpoint.npz: model/{re.escape(name)} holds 1 NaN or infinite value"):
        load_checkpoint(tmp_path)


def test_non_finite_optimiser_moments_are_refused(tmp_path):
    model, cfg, tokenizer, optimizer, _ = _trained()
    file = _save(tmp_path, model, cfg, tokenizer, optimizer)
    with np.load(file, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["optim/v.text.lookup.table"] = np.full_like(arrays["optim/v.text.lookup.table"], np.nan)
    np.savez(file, **arrays)
    with pytest.raises(ValueError, match=r"optim/v\.text\.lookup\.table holds \d+ NaN or infinite values"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("drop", [1, 3])
def test_a_tokenizer_that_does_not_match_the_models_vocabulary_is_refused(tmp_path, drop):
    model, cfg, tokenizer, _, _ = _trained()
    file = _save(tmp_path, model, cfg, tokenizer)
    smaller = Tokenizer(tokenizer.tokens[:-drop])
    _rewrite_meta(file, tokenizer=smaller.to_dict())
    message = rf"its tokenizer has {9 - drop} tokens but the model's vocab_size is 9"
    with pytest.raises(ValueError, match=message):
        load_checkpoint(tmp_path)
