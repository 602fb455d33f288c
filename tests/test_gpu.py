"""CuPy backend: the same model with the same seed gives the same numbers on the GPU as on the CPU.

Every test here is marked ``gpu``; conftest.py skips them when CuPy or a GPU is missing. The
gradient checks on the GPU are ``test_check_passes[...-gpu]`` in test_gradcheck.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL

from miniclip import backend
from miniclip.data import load_dataset
from miniclip.data.augment import normalize
from miniclip.evaluation.report import evaluate_run
from miniclip.evaluation.zeroshot import class_embeddings, encode_images, encode_texts
from miniclip.layers import Embedding
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig
from miniclip.training.checkpoint import load_checkpoint
from miniclip.training.configs import named_config
from miniclip.training.loop import Trainer

pytestmark = pytest.mark.gpu


def _inputs(cfg: WalkthroughConfig, dtype):
    rng = np.random.default_rng(100)
    n, length = 4, 5
    ids = rng.integers(0, cfg.vocab_size, size=(n, length))
    ids[0, :2] = ids[2, 1] = 1  # a repeated word
    images = rng.standard_normal((n, cfg.channels, 4, 6)).astype(dtype)
    mask = (np.arange(length)[None, :] < np.array([5, 2, 1, 4])[:, None]).astype(dtype)
    return ids, images, mask


def _run(cfg: WalkthroughConfig, dtype, device: str):
    """Build the model from seed 7 on ``device``; return (initial weights, loss, grads, image grad) on the host."""
    with backend.using(device):
        model = WalkthroughCLIP(cfg, rng=np.random.default_rng(7), dtype=dtype)
        initial = model.state()
        ids, images, mask = (backend.to_device(a) for a in _inputs(cfg, dtype))
        loss = model(ids, images, mask)
        dimages = model.backward()
        assert backend.get_array_module(loss) is backend.get_array_module()
        grads = {name: backend.to_host(p.grad) for name, p in model.parameters().items()}
        return initial, backend.to_float(loss), grads, backend.to_host(dimages), loss.dtype


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-5), (np.float32, 1e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("base", [np.e, 3.0], ids=["base e", "base 3"])
def test_gpu_matches_cpu(dtype, rtol, base):
    cfg = WalkthroughConfig(vocab_size=7, channels=2, base=base)
    cpu = _run(cfg, dtype, "cpu")
    gpu = _run(cfg, dtype, "gpu")
    for name in cpu[0]:
        np.testing.assert_array_equal(gpu[0][name], cpu[0][name], err_msg=f"initial {name}")
    assert gpu[1] == pytest.approx(cpu[1], rel=rtol)
    atol = 1e-6 if dtype == np.float32 else 1e-12
    for name in cpu[2]:
        np.testing.assert_allclose(gpu[2][name], cpu[2][name], rtol=rtol, atol=atol, err_msg=name)
        assert gpu[2][name].dtype == dtype
    np.testing.assert_allclose(gpu[3], cpu[3], rtol=rtol, atol=atol)
    assert gpu[4] == dtype
    assert backend.get_device() == "cpu"  # using() put the device back


def test_embedding_repeated_ids_accumulate_on_gpu():
    with backend.using("gpu"):
        lookup = Embedding(3, 2, rng=np.random.default_rng(0), dtype=np.float64)
        ids = backend.to_device(np.array([[1, 1, 2]]))
        lookup(ids)
        lookup.backward(backend.to_device(np.array([[[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]]])))
        grad = backend.to_host(lookup.table.grad)
    np.testing.assert_array_equal(grad, [[0.0, 0.0], [11.0, 22.0], [100.0, 200.0]])


@pytest.mark.parametrize("bad", [3, -1], ids=["too large", "negative"])
def test_out_of_range_host_ids_raise_before_they_reach_the_gpu_table(bad):
    # Ids already on the device are not checked by Embedding (that would wait for the GPU every
    # step); host ids are, before they are moved.
    with backend.using("gpu"):
        lookup = Embedding(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
        with pytest.raises(ValueError, match=r"token ids must lie in \[0, 2\]"):
            lookup(np.array([[0, bad]]))


def test_encode_texts_checks_ids_against_a_gpu_model_on_the_host():
    from miniclip.model.config import ModelConfig, build_clip
    from miniclip.model.tokenizer import Tokenizer

    tokenizer = Tokenizer.build(["a photo of a red ship", "a blurry photo of a cat"])
    cfg = ModelConfig(image_encoder="patch_mlp", text_encoder="bag_of_words", vocab_size=5, context_length=8)
    with backend.using("gpu"):
        model = build_clip(cfg, rng=np.random.default_rng(0))
        with pytest.raises(ValueError, match=r"token ids must lie in \[0, 4\] for a table of 5 rows"):
            encode_texts(model, tokenizer, ["a blurry photo of a red ship"], 8)


def test_seed_seeds_cupy_when_the_gpu_was_chosen_by_the_environment(monkeypatch):
    import cupy

    cupy.random.seed(5)
    expected = cupy.random.random(4).get()
    cupy.random.seed(99)  # move the generator elsewhere
    monkeypatch.setattr(backend, "_device", None)
    monkeypatch.setenv("MINICLIP_DEVICE", "gpu")
    backend.seed(5)  # the first call that needs the device: it reads MINICLIP_DEVICE
    assert backend._device == "gpu"
    np.testing.assert_array_equal(cupy.random.random(4).get(), expected)


# ---------------------------------------------------------------- a whole run, CPU against GPU


def _tiny_run(tmp_path, name):
    """One epoch (6 steps of 32) of the shapes run, with crops and flips: small enough for a test."""
    options = {"n_train": 192, "n_test": 96, "epochs": 1, "batch_size": 32, "augment": True}
    return named_config("shapes", out_dir=str(tmp_path / name), model=TINY_TRAIN_MODEL, **options)


def _step_losses(trainer, steps):
    """Losses of the first ``steps`` steps of the first epoch (a host float each, read after every step)."""
    order = trainer.order_rng.permutation(len(trainer.dataset.train_labels))
    size = trainer.cfg.batch_size
    return [backend.to_float(trainer.step(order[i * size : (i + 1) * size], i)) for i in range(steps)]


def test_training_steps_on_the_gpu_match_the_cpu(tmp_path):
    import cupy

    cpu = Trainer(_tiny_run(tmp_path, "cpu"), show_progress=False)
    start = cpu.model.state()
    cpu_losses = _step_losses(cpu, 4)
    with backend.using("gpu"):
        gpu = Trainer(_tiny_run(tmp_path, "gpu"), show_progress=False)
        assert isinstance(gpu.model.logit_scale.log_scale.data, cupy.ndarray)
        assert isinstance(gpu.caption_ids, cupy.ndarray) and isinstance(gpu.train_images, cupy.ndarray)
        for name, value in gpu.model.state().items():
            np.testing.assert_array_equal(value, start[name], err_msg=f"initial {name}")  # drawn on the host
        gpu_losses = _step_losses(gpu, 4)
    # Same seed, same host draws (batches, crops, flips, templates): only the order of float32
    # additions differs, so the losses agree to about 1e-6 relative; allow a little more.
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-4)
    assert gpu.augment_rng.bit_generator.state == cpu.augment_rng.bit_generator.state
    cpu_end, gpu_end = cpu.model.state(), gpu.model.state()
    for name, value in cpu_end.items():
        # AdamW moves every weight by about lr (3e-3) a step whatever the size of its gradient, so a
        # gradient that is zero up to rounding (the attention's key bias, which softmax ignores)
        # can move differently on the two devices: an absolute tolerance well below one step.
        np.testing.assert_allclose(gpu_end[name], value, rtol=1e-3, atol=1e-3, err_msg=name)
        moved_cpu, moved_gpu = value - start[name], gpu_end[name] - start[name]
        if np.abs(moved_cpu).max() > 0:  # and what moved, moved alike
            assert np.linalg.norm(moved_gpu - moved_cpu) <= 0.1 * np.linalg.norm(moved_cpu), name


def test_a_training_run_and_its_evaluation_on_the_gpu_match_the_cpu(tmp_path):
    cpu_metrics = Trainer(_tiny_run(tmp_path, "cpu"), show_progress=False).run()
    with backend.using("gpu"):
        gpu_metrics = Trainer(_tiny_run(tmp_path, "gpu"), show_progress=False).run()  # losses read every 20 steps
    assert gpu_metrics[0]["train_loss"] == pytest.approx(cpu_metrics[0]["train_loss"], rel=1e-4)
    assert gpu_metrics[0]["logit_scale"] == pytest.approx(cpu_metrics[0]["logit_scale"], rel=1e-4)

    # The CPU run's checkpoint, evaluated on each device.
    run = tmp_path / "cpu"
    evaluate_run(str(run), out_dir=str(tmp_path / "eval-cpu"))
    with backend.using("gpu"):
        evaluate_run(str(run), out_dir=str(tmp_path / "eval-gpu"))
    cpu_eval = json.loads((tmp_path / "eval-cpu" / "eval.json").read_text())
    gpu_eval = json.loads((tmp_path / "eval-gpu" / "eval.json").read_text())
    n = 96  # test images
    for name, cpu_result in cpu_eval["zero_shot"].items():
        for key in ("top1", "top5"):
            # The embeddings agree to float32 rounding; an image could change class only where two
            # classes score within that rounding of each other, so allow at most one such image.
            assert abs(gpu_eval["zero_shot"][name][key] - cpu_result[key]) <= 1 / n + 1e-9, (name, key)
    for direction, values in cpu_eval["recall"].items():
        for k, value in values.items():
            assert abs(gpu_eval["recall"][direction][k] - value) <= 1 / n + 1e-9, (direction, k)

    # The embeddings themselves, from the same checkpoint on both devices.
    data = load_dataset("shapes", seed=0, n_train=192, n_test=96)
    embeddings = {}
    for device in ("cpu", "gpu"):
        with backend.using(device):
            ckpt = load_checkpoint(run)
            mean, std = ckpt.train_config["state"]["mean_std"]
            length = ckpt.model_config.context_length
            images = encode_images(ckpt.model, data.test_images, lambda x, m=mean, s=std: normalize(x, m, s))
            classes = class_embeddings(ckpt.model, ckpt.tokenizer, data.class_names, data.train_templates, length)
            embeddings[device] = backend.to_host(images), backend.to_host(classes)  # (N, d), (K, d)
    for cpu_side, gpu_side in zip(embeddings["cpu"], embeddings["gpu"], strict=True):
        np.testing.assert_allclose(gpu_side, cpu_side, atol=1e-4)


def test_host_ids_are_moved_to_the_gpu_table():
    with backend.using("gpu"):
        lookup = Embedding(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
        vectors = lookup(np.array([[0, 2]]))
        assert backend.get_array_module(vectors) is backend.get_array_module()
