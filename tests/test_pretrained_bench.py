"""``miniclip bench --clip``: OpenAI's image tower timed beside the same tower in PyTorch, in one run.

A tiny architecture is patched in among OpenAI's, so the test builds in milliseconds; nothing is
timed against a bound (speed is a ratio the command prints, never an assertion): the lines must be
there and the two towers must compute the same embeddings.
"""

from __future__ import annotations

import pytest

from miniclip import backend, cli
from miniclip.measure.bench import CLIP_BATCH, run_clip_bench
from miniclip.measure.cost import ModelCost, image_encoder_cost
from miniclip.model import openai

TINY = {  # OpenAI's choices (class token, ln_pre, QuickGELU, no patch bias) at a toy size
    "vocab_size": 64,
    "context_length": 8,
    "text_width": 16,
    "text_depth": 1,
    "text_heads": 2,
    "image_size": 32,
    "channels": 3,
    "image_width": 32,
    "image_depth": 2,
    "image_heads": 4,
    "patch_size": 8,
    "embed_dim": 16,
}
QUICK = ["--warmup", "0", "--steps", "2", "--torch-threads", "1"]


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(openai.ARCHITECTURES, "ViT-T/8", TINY)
    return "ViT-T/8"


@pytest.mark.torch
def test_bench_clip_prints_both_speeds_and_the_ratio(tiny, capsys):
    pytest.importorskip("torch")
    assert cli.main(["bench", "--clip", tiny, "--batch-size", "3", *QUICK]) == 0
    out = capsys.readouterr().out
    for line in (
        "machine:",
        f"CLIP {tiny} image tower (OpenAI's architecture, random weights)",
        "batch 3, float32, 0 warm-up + 2 timed forward passes",
        "miniclip (cpu)",
        "ms/batch",
        "PyTorch ",
        "image embeddings: miniclip and PyTorch agree",
        "ratio miniclip / PyTorch: ",
    ):
        assert line in out, line


@pytest.mark.torch
def test_both_towers_compute_the_same_embeddings(tiny):
    pytest.importorskip("torch")
    result = run_clip_bench(tiny, batch_size=4, warmup=0, steps=1, torch_threads=1)
    assert result["torch"]["same_output"] and result["torch"]["difference"] < 1e-5
    assert result["batch_size"] == 4 and result["model"]["image_pool"] == "class"
    assert result["miniclip"]["images_per_second"] > 0 and result["torch"]["ratio"] > 0


def test_without_torch_the_comparison_is_skipped(tiny, capsys):
    assert cli.main(["bench", "--clip", tiny, "--no-torch", *QUICK[:4]]) == 0
    out = capsys.readouterr().out
    assert "PyTorch comparison skipped: --no-torch" in out and "miniclip (cpu)" in out


def test_the_default_batch_is_small_on_the_cpu(tiny):
    result = run_clip_bench(tiny, warmup=0, steps=1, compare_torch=False)
    assert result["batch_size"] == CLIP_BATCH["cpu"] == 8


def test_vit_b_32_is_openais_size():
    cost = ModelCost(image_encoder_cost(openai.openai_config("ViT-B/32")))
    assert cost.parameters == 87_849_216  # OpenAI's visual tower: conv1, class token, positions, 12 blocks, proj
    assert 4.3e9 < cost.multiply_adds < 4.5e9  # about 4.4 G multiply-adds per 224 × 224 image


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--config", "tiny"], "--config is for timing a training step; --clip ViT-B/32 times"),
        (["--image-encoder", "cnn"], "leave --image-encoder out"),
        (["--no-layers"], "leave --layers out"),
        (["--gemm-size", "64"], "leave --gemm-size out"),
    ],
)
def test_training_flags_beside_clip_are_refused(capsys, flags, message):
    assert cli.main(["bench", "--clip", "ViT-B/32", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_too_large_a_batch_is_refused_before_anything_is_built(capsys, monkeypatch):
    monkeypatch.setattr(backend, "memory_bytes", lambda: 2**30)  # 1 GiB: ViT-B/32's weights alone take 0.7 GiB
    assert cli.main(["bench", "--clip", "ViT-B/32", "--batch-size", "64"]) == 2
    err = capsys.readouterr().err
    assert "--clip ViT-B/32 with --batch-size 64 needs at least" in err and len(err.strip().splitlines()) == 1


def test_an_unknown_architecture_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["bench", "--clip", "ViT-H/14"])
    assert info.value.code == 2
    assert "invalid choice: 'ViT-H/14'" in capsys.readouterr().err


def test_the_pytorch_reference_runs_without_tf32_and_puts_every_setting_back():
    """TF32 off (on CUDA it would round convolution inputs to a 10-bit mantissa): a plain-float32 comparison."""
    torch = pytest.importorskip("torch")
    from miniclip.measure.bench import plain_float32

    before = (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default for convolutions
    try:
        restore = plain_float32(torch, 1)
        assert torch.get_num_threads() == 1
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        restore()
        assert torch.backends.cudnn.allow_tf32 and torch.get_num_threads() == before[0]
    finally:
        torch.set_num_threads(before[0])
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before[1:]
