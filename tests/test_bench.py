"""``miniclip bench``: it runs end to end, its per-layer timing leaves the model as it was, and the
PyTorch copy of the model computes the same losses. No test here asserts a speed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import TINY_TRAIN_MODEL

import miniclip.training.step as train_module
from miniclip import cli
from miniclip.encoders.registry import names
from miniclip.measure.bench import bench_model_config, make_batch, run_bench
from miniclip.measure.layer_timing import ROOT, timed_layers
from miniclip.measure.torch_twin import unsupported
from miniclip.model.config import ModelConfig, build_clip
from miniclip.module import named_modules
from miniclip.optim import AdamW
from miniclip.training.configs import named_config
from miniclip.training.step import train_step

QUICK = ["--warmup", "1", "--steps", "1", "--layer-steps", "1", "--gemm-size", "64"]


def _setup(batch: int = 6, **model):
    """A tiny CLIP of the cpu configuration, its optimiser, a batch, and one training step on it."""
    cfg = named_config("cpu", model={**TINY_TRAIN_MODEL, **model}, batch_size=batch)
    clip = build_clip(bench_model_config(cfg), rng=np.random.default_rng(0))
    optimizer = AdamW(clip.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    b = make_batch(batch, cfg.context_length)

    def step() -> float:
        return float(train_step(clip, optimizer, b["ids"], b["images"], b["mask"], b["targets"], grad_clip=1.0))

    return cfg, clip, optimizer, b, step


def test_bench_command_prints_every_section(capsys) -> None:
    assert cli.main(["bench", "--config", "shapes", "--batch-size", "4", "--no-torch", *QUICK]) == 0
    out = capsys.readouterr().out
    for text in (
        "BLAS threads:",
        "memory for a training step at batch 4 on the CPU: about",
        "configuration 'shapes': image encoder cnn, text encoder transformer",
        "training FLOPs per image",
        "× 3 for forward + backward",
        "images/s",
        "ms/step (min",
        "float32 GEMM 64×64",
        "PyTorch comparison skipped: --no-torch",
        "where the time goes",
        "outside: optimiser (AdamW)",
        "outside: gradient clipping",
    ):
        assert text in out, text
    table = out[out.index("where the time goes") :]
    for layer in ("image.stem_conv", "image.blocks.0.conv1", "image.blocks.0.bn1", "text.lookup", "text.blocks.0.attn"):
        assert f"\n{layer} " in table, layer


def test_run_bench_returns_the_figures() -> None:
    result = run_bench(
        "cpu", model=TINY_TRAIN_MODEL, batch_size=4, warmup=0, steps=2, compare_torch=False, gemm_size=32
    )
    speed = result["miniclip"]
    assert len(speed["seconds"]) == 2 and speed["min_ms"] <= speed["median_ms"] <= speed["max_ms"]
    assert speed["images_per_second"] == pytest.approx(4000 / speed["median_ms"])
    assert speed["gflops"] == pytest.approx(speed["images_per_second"] * result["cost"].training_flops / 1e9)
    assert np.isfinite(speed["loss0"]) and result["gemm"]["gflops"] > 0
    rows = {r["name"]: r for r in result["layers"]["rows"]}
    assert list(rows)[0] == ROOT and "loss" in rows
    assert rows["image.stem_conv"]["gflops"] is not None and rows["image.stem_bn"]["gflops"] is None
    shares = (
        sum(r["share"] for r in rows.values())
        + sum(result["layers"]["outside_ms"].values()) / result["layers"]["step_ms"]
    )
    assert shares == pytest.approx(1.0)  # the layers and the rest make up the whole step


def test_timed_layers_time_every_module_and_leave_the_model_as_it_was() -> None:
    _, clip, optimizer, _, step = _setup()
    _, twin, _, _, twin_step = _setup()
    with timed_layers(clip, optimizer) as timer:
        timed = [step(), step()]
    untimed = [twin_step(), twin_step()]
    assert timed == untimed  # the wrappers change no number
    assert set(timer.layers) == {name or ROOT for name, _ in named_modules(clip)}
    conv = timer.layers["image.stem_conv"]
    assert conv.forward > 0 and conv.backward > 0
    assert set(timer.outside) == {"zero gradients", "gradient clipping", "optimiser (AdamW)", "temperature clamp"}
    for _, module in named_modules(clip):
        assert "forward" not in vars(module) and "backward" not in vars(module)
    assert "clamp_logit_scale" not in vars(clip) and not {"step", "zero_grad"} & set(vars(optimizer))
    assert train_module.clip_grad_norm.__name__ == "clip_grad_norm"
    assert step() == twin_step()  # a later step: the same loss as the model that was never wrapped


def test_timed_layers_unwrap_after_an_error() -> None:
    _, clip, optimizer, _, _ = _setup()
    with pytest.raises(RuntimeError, match="stop"), timed_layers(clip, optimizer):
        raise RuntimeError("stop")
    assert all("forward" not in vars(m) for _, m in named_modules(clip)) and "step" not in vars(optimizer)


def test_bench_memory_prints_the_estimate_for_both_devices_and_times_nothing(capsys) -> None:
    assert cli.main(["bench", "--config", "tiny", "--batch-size", "64", "--memory"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "memory for a training step at batch 64 on the CPU",
        "memory for a training step at batch 64 on the GPU",
    ]
    assert all("GiB" in line and "[configuration tiny]" in line for line in lines)


def test_bench_memory_is_not_for_the_clip_tower(capsys) -> None:
    assert cli.main(["bench", "--clip", "ViT-B/32", "--memory"]) == 2
    assert "--memory is for timing a training step" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "1"], "batch_size must be at least 2"),
        (["--steps", "0"], "expected a positive whole number, got '0'"),
        (["--warmup", "-1"], "expected a whole number >= 0, got '-1'"),
        (["--config", "tpu"], "invalid choice: 'tpu'"),
        (["--image-encoder", "resnet"], "invalid choice: 'resnet'"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_flags_exit_2_with_a_message(capsys, args, message) -> None:
    try:
        code = cli.main(["bench", *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.usefixtures("without_cupy")
def test_bench_without_a_gpu_says_so_in_one_line(capsys) -> None:
    assert cli.main(["bench", "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("miniclip: error:") and "CuPy" in err and err.count("\n") == 1


def test_dropout_is_not_compared() -> None:
    assert unsupported(ModelConfig(image_encoder="cnn", text_encoder="bag_of_words", dropout=0.1)) is None
    assert "dropout" in unsupported(ModelConfig(image_encoder="vit", dropout=0.1))


# -- PyTorch ------------------------------------------------------------------------------------------------------


@pytest.mark.torch
def test_cpu_config_loss_equals_pytorch(capsys) -> None:
    pytest.importorskip("torch")
    args = ["--batch-size", "8", "--no-layers", "--torch-threads", "1", *QUICK]
    assert cli.main(["bench", *args]) == 0  # the cpu configuration as it is: exit 1 if the losses differed
    out = capsys.readouterr().out
    assert "PyTorch 2" in out and ": equal" in out and "ratio miniclip / PyTorch" in out


@pytest.mark.torch
@pytest.mark.parametrize(("image_encoder", "text_encoder"), list(itertools.product(names("image"), names("text"))))
def test_pytorch_copy_trains_alike(image_encoder: str, text_encoder: str) -> None:
    """Every pairing: the same loss at step 0 and after AdamW steps (clipping and the clamp included)."""
    pytest.importorskip("torch")
    from miniclip.measure.torch_twin import torch_step

    sizes = {"image_width": 16, "image_depth": 1, "image_heads": 2, "text_depth": 1, "cnn_blocks": 2}
    cfg, clip, _, batch, step = _setup(image_encoder=image_encoder, text_encoder=text_encoder, **sizes)
    theirs, _, _ = torch_step(clip, bench_model_config(cfg), batch, lr=cfg.lr, weight_decay=0.05, grad_clip=1.0)
    ours = [step() for _ in range(3)]
    np.testing.assert_allclose(ours, [theirs().item() for _ in range(3)], rtol=1e-5)
    assert ours[2] < ours[0]  # it trains: the comparison is not between two frozen models


@pytest.mark.torch
def test_weight_copy_fails_loudly_on_a_mismatch() -> None:
    pytest.importorskip("torch")
    from miniclip.measure.torch_twin import copy_weights, torch_clip

    cfg, clip, _, _, _ = _setup()
    mc = bench_model_config(cfg)
    with pytest.raises(ValueError, match="missing .*text.blocks.0.attn.qkv.weight"):
        copy_weights(clip, torch_clip(ModelConfig.from_dict({**mc.to_dict(), "text_encoder": "bag_of_words"})))
    with pytest.raises(ValueError, match="image.stem_conv.weight: miniclip"):
        copy_weights(clip, torch_clip(ModelConfig.from_dict({**mc.to_dict(), "cnn_stem_patch": 4})))


def test_machine_info_names_the_blas_kernels() -> None:
    """Which OpenBLAS kernel family ran is part of every figure: the report says it when it can be asked."""
    from miniclip.measure.bench import blas_info, format_machine, machine_info

    info = blas_info()
    assert "kernels" in info and "kernels_forced" in info
    if info["kernels"] is not None:  # a scipy-openblas NumPy on Linux answers
        assert info["kernels"] and f"OpenBLAS kernels: {info['kernels']}" in format_machine(machine_info())
