"""Training throughput of miniclip, in images per second, beside the same model in PyTorch.

One training step, exactly as ``miniclip train`` takes it (on a fixed batch, no augmentation)::

    zero the gradients → forward (both encoders, L2 normalise, e^s · T Iᵀ, symmetric
    cross-entropy against label-aware targets) → backward → clip the global gradient norm
    to 1 → AdamW step → clamp the temperature

timed after a few warm-up steps; the figure is ``batch size / median step time``.

When PyTorch imports, the same network written in PyTorch (below; a measuring stick, never
part of miniclip) is timed the same way, on the CPU with ``torch.set_num_threads(cores)``
(or on CUDA with ``--device gpu`` when PyTorch sees a GPU), and the ratio is printed.

    python benchmarks/throughput.py                       # CPU configuration, batch 256
    python benchmarks/throughput.py --device gpu --config gpu --batch-size 512
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from miniclip import backend
from miniclip.data.augment import CIFAR10_MEAN, CIFAR10_STD, normalize
from miniclip.data.captions import TRAIN_TEMPLATES, fill
from miniclip.layers.logit_scale import INIT, MAX
from miniclip.model_config import ModelConfig, build_clip
from miniclip.optim import AdamW, clip_grad_norm
from miniclip.targets import label_aware_targets
from miniclip.tokenizer import END, PAD, START, words
from miniclip.train import CONFIGS, TrainConfig

VOCAB = 64  # token ids are random, so the vocabulary size only sets the embedding table
CLASSES = 10  # labels drawn from 0..9, as in CIFAR-10


# -- the batch ------------------------------------------------------------------------------------


def make_batch(batch: int, context_length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Host arrays of one batch: normalised images, token ids with a padding mask, labels, targets.

    Each caption is as long as a real training caption ("<start> a photo of a cat . <end>"):
    its length comes from a random training template, its words are random token ids.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, 3, 32, 32), dtype=np.uint8)  # (B, 3, 32, 32)
    lengths = [min(len(words(fill(t, "cat"))) + 2, context_length) for t in TRAIN_TEMPLATES]
    length = rng.choice(lengths, batch)  # (B,) real tokens per caption, start and end included
    ids = np.full((batch, context_length), PAD, dtype=np.int64)  # (B, L)
    mask = np.zeros((batch, context_length), dtype=np.float32)  # (B, L)
    for n, count in enumerate(length):
        ids[n, 0], ids[n, count - 1] = START, END
        ids[n, 1 : count - 1] = rng.integers(END + 1, VOCAB, count - 2)
        mask[n, :count] = 1
    labels = rng.integers(0, CLASSES, batch)  # (B,)
    return {
        "images": normalize(images, CIFAR10_MEAN, CIFAR10_STD),  # (B, 3, 32, 32) float32
        "ids": ids,
        "mask": mask,
        "labels": labels,
        "targets": label_aware_targets(labels, np.float32),  # (B, B)
    }


def model_config(cfg: TrainConfig) -> ModelConfig:
    sizes = {"vocab_size": VOCAB, "context_length": cfg.context_length, "image_size": 32, "channels": 3}
    return ModelConfig.from_dict({**cfg.model, **sizes})


def time_steps(step: Callable[[], Any], sync: Callable[[], None], warmup: int, steps: int) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step`` after ``warmup`` untimed ones (``sync`` waits for the device)."""
    for _ in range(warmup):
        step()
    sync()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds


# -- miniclip -------------------------------------------------------------------------------------


def miniclip_step(cfg: TrainConfig, batch: dict[str, np.ndarray]) -> tuple[Callable[[], Any], int]:
    """A function taking one miniclip training step on ``batch``, and the model's parameter count."""
    model = build_clip(model_config(cfg), rng=np.random.default_rng(0))
    params = model.parameters()
    optimizer = AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ids, images, mask, targets = (backend.to_device(batch[k]) for k in ("ids", "images", "mask", "targets"))

    def step() -> Any:
        model.zero_grad()
        loss = model(ids, images, mask, targets)
        model.backward()
        clip_grad_norm(params, cfg.grad_clip)
        optimizer.step()
        model.clamp_temperature()
        return loss

    return step, sum(int(p.data.size) for p in params.values())


# -- the same model in PyTorch (a measuring stick only) ---------------------------------------------


def torch_clip(torch: Any, mc: ModelConfig) -> Any:
    """miniclip's CNN + text transformer (or bag-of-words) CLIP, layer for layer, as a ``torch.nn.Module``."""
    nn, F = torch.nn, torch.nn.functional

    class ResidualBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Identity()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            main = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(main + self.shortcut(x))

    class CNNEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            channels, p = mc.cnn_channels, mc.cnn_stem_patch
            stem = (
                nn.Conv2d(mc.channels, channels[0], 3, 1, 1, bias=False)
                if p == 1
                else nn.Conv2d(mc.channels, channels[0], p, p, 0, bias=False)
            )
            layers: list[Any] = [stem, nn.BatchNorm2d(channels[0]), nn.ReLU()]
            previous = channels[0]
            for stage, width in enumerate(channels):
                for b in range(mc.cnn_blocks):
                    layers.append(ResidualBlock(previous, width, 2 if stage > 0 and b == 0 else 1))
                    previous = width
            self.body = nn.Sequential(*layers)
            self.project = nn.Linear(previous, mc.embed_dim, bias=False)

        def forward(self, images: Any) -> Any:
            return self.project(self.body(images).mean(dim=(2, 3)))  # global average pool, then project

    class Block(nn.Module):  # pre-norm: x + attn(ln1(x)), then + mlp(ln2(·))
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.heads = mc.text_heads
            self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            hidden = mc.mlp_ratio * dim
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))

        def forward(self, x: Any, keep: Any) -> Any:
            n, length, dim = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (N, H, L, Dh); keep (N, 1, 1, L)
            h = x + self.out(o.transpose(1, 2).reshape(n, length, dim))
            return h + self.mlp(self.ln2(h))

    class TextTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = mc.text_width
            self.lookup = nn.Embedding(mc.vocab_size, width)
            self.positions = nn.Parameter(0.02 * torch.randn(mc.context_length, width))
            self.blocks = nn.ModuleList(Block(width) for _ in range(mc.text_depth))
            self.norm = nn.LayerNorm(width)
            self.project = nn.Linear(width, mc.embed_dim, bias=False)

        def forward(self, ids: Any, mask: Any) -> Any:
            x = self.lookup(ids) + self.positions[: ids.shape[1]]  # (N, L, D)
            keep = (mask != 0)[:, None, None, :]  # (N, 1, 1, L) True on real tokens
            for block in self.blocks:
                x = block(x, keep)
            x = self.norm(x)
            if mc.text_pool == "end":
                pooled = x[torch.arange(x.shape[0]), mask.sum(dim=1).long() - 1]  # (N, D) at the end token
            else:
                pooled = (x * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)  # (N, D)
            return self.project(pooled)

    class BagOfWords(nn.Module):  # the walkthrough's text encoder: lookup → linear + ReLU → masked mean → project
        def __init__(self) -> None:
            super().__init__()
            width = mc.text_width
            self.lookup = nn.Embedding(mc.vocab_size, width)
            self.encode = nn.Linear(width, width)
            self.project = nn.Linear(width, mc.embed_dim, bias=False)

        def forward(self, ids: Any, mask: Any) -> Any:
            hidden = F.relu(self.encode(self.lookup(ids)))  # (N, L, D)
            pooled = (hidden * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1)  # (N, D)
            return self.project(pooled)

    class CLIP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.image = CNNEncoder()
            self.text = TextTransformer() if mc.text_encoder == "transformer" else BagOfWords()
            self.logit_scale = nn.Parameter(torch.tensor(INIT))

        def forward(self, ids: Any, images: Any, mask: Any, targets: Any) -> Any:
            t = F.normalize(self.text(ids, mask), dim=-1)  # (N, d)
            i = F.normalize(self.image(images), dim=-1)  # (N, d)
            logits = self.logit_scale.exp() * t @ i.T  # (N, N)
            return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T)) / 2

    return CLIP()


def torch_step(torch: Any, cfg: TrainConfig, batch: dict[str, np.ndarray], device: str) -> tuple[Callable, int]:
    """A function taking one PyTorch training step on ``batch``, and the model's parameter count."""
    model = torch_clip(torch, model_config(cfg)).to(device)
    named = list(model.named_parameters())
    decays = {name: name.endswith("weight") and p.ndim >= 2 and name != "text.lookup.weight" for name, p in named}
    decay = [p for name, p in named if decays[name]]  # miniclip's rule: matrices and kernels, not the token table
    rest = [p for name, p in named if not decays[name]]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    ids, images, mask, targets = (torch.from_numpy(batch[k]).to(device) for k in ("ids", "images", "mask", "targets"))

    def step() -> Any:
        optimizer.zero_grad()
        loss = model(ids, images, mask, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, MAX)
        return loss

    return step, sum(p.numel() for p in model.parameters())


# -- the report -----------------------------------------------------------------------------------


def blas_info() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict form
        return "unknown"


def describe_machine(device: str) -> list[str]:
    threads = {
        k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
    }
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"python {platform.python_version()}, numpy {np.__version__} (BLAS: {blas_info()})",
        f"thread limits in the environment: {threads or 'none'}",
    ]
    if device == "gpu":
        cupy = backend.get_array_module()  # the device is already set to the GPU
        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
        lines.append(f"gpu: {name}, cupy {cupy.__version__}")
    return lines


def report(label: str, seconds: list[float], batch: int) -> float:
    """Print one line and return images per second (from the median step)."""
    median = statistics.median(seconds)
    print(
        f"{label:<34} {batch / median:8.0f} images/s   median {median * 1000:7.1f} ms/step "
        f"(min {min(seconds) * 1000:.1f}, max {max(seconds) * 1000:.1f}, {len(seconds)} steps)"
    )
    return batch / median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu", help="named configuration (default cpu)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per step (default 256)")
    parser.add_argument("--device", choices=backend.DEVICES, default="cpu", help="NumPy (cpu) or CuPy (gpu)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count() or 1, help="default: every core")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    args = parser.parse_args(argv)
    if args.batch_size < 2 or args.steps < 1 or args.warmup < 0:
        parser.error("need --batch-size >= 2, --steps >= 1 and --warmup >= 0")
    try:
        backend.set_device(args.device)
    except backend.DeviceUnavailableError as exc:
        print(f"throughput: error: {exc}", file=sys.stderr)
        return 2

    cfg = CONFIGS[args.config]
    mc = model_config(cfg)
    batch = make_batch(args.batch_size, cfg.context_length)
    print("\n".join(describe_machine(args.device)))
    print(f"configuration {args.config!r}: {cfg.model}")
    print(f"batch {args.batch_size}, float32, {args.warmup} warm-up + {args.steps} timed steps\n")

    xp = backend.get_array_module()
    sync = xp.cuda.Device().synchronize if args.device == "gpu" else lambda: None  # GPU work is asynchronous
    step, ours_count = miniclip_step(cfg, batch)
    ours = report(f"miniclip ({args.device})", time_steps(step, sync, args.warmup, args.steps), args.batch_size)

    if args.no_torch:
        return 0
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: no comparison")
        return 0
    if mc.image_encoder != "cnn" or mc.dropout:
        print("the PyTorch model is written for the cnn image encoder without dropout: no comparison")
        return 0
    device = "cpu"
    if args.device == "gpu":
        if not torch.cuda.is_available():
            print(f"PyTorch {torch.__version__} sees no GPU: no comparison")
            return 0
        device = "cuda"
    torch.manual_seed(0)
    torch.set_num_threads(args.torch_threads)
    step, theirs_count = torch_step(torch, cfg, batch, device)
    torch_sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    label = f"pytorch {torch.__version__} ({device}, {torch.get_num_threads()} threads)"
    theirs = report(label, time_steps(step, torch_sync, args.warmup, args.steps), args.batch_size)
    print(f"\nratio miniclip / pytorch: {ours / theirs:.2f}")
    same = "the same" if ours_count == theirs_count else "DIFFERENT"
    print(f"parameters: miniclip {ours_count:,}, pytorch {theirs_count:,} ({same})")
    return 0 if ours_count == theirs_count else 1


if __name__ == "__main__":
    raise SystemExit(main())
