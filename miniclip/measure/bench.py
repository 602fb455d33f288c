"""``miniclip bench``: how fast a training step runs, how close to the machine's limit, and where the time goes.

The step timed is :func:`miniclip.training.step.train_step`, the very function the :class:`Trainer` calls::

    zero the gradients → forward (both encoders, the contrastive head against label-aware
    targets) → backward → clip the global gradient norm → AdamW → clamp the temperature

on one fixed batch (random normalised 32×32 images, random token ids padded like real captions,
random labels 0–9). After ``warmup`` untimed steps, ``steps`` steps are timed one by one; the
headline is ``batch / median step time`` in images per second. Beside it:

* achieved GFLOP/s: the FLOPs per trained image counted by :mod:`miniclip.measure.cost` (forward
  multiply-adds × 2 FLOPs × 3 for forward + backward, the usual estimate) × images per second;
* the same machine's float32 matrix product (NumPy's BLAS, or CuPy's cuBLAS on the GPU) in
  GFLOP/s, and the step's share of it — a GEMM is the fastest thing the array library does;
* the same model in PyTorch (:mod:`miniclip.measure.torch_twin`) started from the same weights: both
  first losses, checked equal to float32 tolerance, and the speed ratio miniclip / PyTorch;
* "where the time goes": a separate pass with every layer timed (:mod:`miniclip.measure.layer_timing`),
  forward and backward, by module path, and what lies outside the layers (optimiser, clipping).

``miniclip bench --clip ViT-B/32`` (:func:`run_clip_bench`) times something else: the forward pass
of OpenAI's image tower at its real size (:func:`~miniclip.model.openai.openai_config`, random
weights: nothing is downloaded) on a batch of 224 × 224 images, in images per second, beside the
same tower in PyTorch with the same weights in the same run — both embeddings checked equal, the
speed given as the ratio miniclip / PyTorch. It is what using a released CLIP costs: encoding a
photo collection for search or zero-shot classification.

Measure on an otherwise idle machine: with other work running, BLAS and PyTorch thread pools
wait for busy cores and their figures can collapse. ``OPENBLAS_NUM_THREADS=1`` with
``--torch-threads 1`` compares the two on one core each.

Lesson 07 runs it on a small batch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from miniclip import backend
from miniclip.data.augment import CIFAR10_MEAN, CIFAR10_STD, normalize
from miniclip.data.captions import TRAIN_TEMPLATES, fill
from miniclip.measure.cost import ModelCost, clip_cost, image_encoder_cost
from miniclip.measure.layer_timing import timed_layers
from miniclip.measure.torch_twin import torch_image_encoder, torch_step, torch_version, unsupported
from miniclip.model.config import ModelConfig, build_clip, build_image_encoder
from miniclip.model.openai import openai_config
from miniclip.model.targets import label_aware_targets
from miniclip.model.tokenizer import END, PAD, START, words
from miniclip.optim import AdamW
from miniclip.pretrained.preprocess import CLIP_MEAN, CLIP_STD
from miniclip.training.configs import TrainConfig, named_config
from miniclip.training.memory import estimate_step_memory, refuse_unless_it_fits
from miniclip.training.step import train_step

VOCAB = 64  # token ids are random, so the vocabulary size only sets the embedding table
CLASSES = 10  # labels drawn from 0..9, as in CIFAR-10
LOSS_RTOL = 1e-4  # float32: miniclip's and PyTorch's first losses agree to about 1e-6 relative
EMBED_RTOL = 1e-4  # float32: the image towers' outputs agree to about 1e-6 of their largest value
CLIP_BATCH = {"cpu": 8, "gpu": 64}  # --clip's default batch: a few seconds a pass on a laptop CPU
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# -- the batch and the step -----------------------------------------------------------------------


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
    images = normalize(images, CIFAR10_MEAN, CIFAR10_STD)  # (B, 3, 32, 32) float32
    targets = label_aware_targets(labels, np.float32)  # (B, B)
    return {"images": images, "ids": ids, "mask": mask, "labels": labels, "targets": targets}


def bench_config(
    config: str, image_encoder: str | None, text_encoder: str | None, model: dict[str, Any] | None, batch_size: int
) -> TrainConfig:
    """The named configuration ``config`` with the encoders and model fields given replaced, at ``batch_size``."""
    overrides = dict(model or {})
    overrides.update({k: v for k, v in (("image_encoder", image_encoder), ("text_encoder", text_encoder)) if v})
    return named_config(config, model=overrides, batch_size=batch_size)


def bench_model_config(cfg: TrainConfig) -> ModelConfig:
    """The model of ``cfg`` for the benchmark's batches: 32×32 colour images, a vocabulary of ``VOCAB``."""
    sizes = {"vocab_size": VOCAB, "context_length": cfg.context_length, "image_size": 32, "channels": 3}
    return ModelConfig.from_dict({**cfg.model, **sizes})


def time_steps(step: Callable[[], Any], sync: Callable[[], None], warmup: int, steps: int) -> tuple[list[float], Any]:
    """Seconds of each of ``steps`` calls of ``step`` after ``warmup`` untimed ones, and the first call's result."""
    first, seconds = None, []
    for i in range(warmup + steps):
        if i == warmup:
            sync()  # the warm-up's work done before the first timed step starts
        start = time.perf_counter()
        result = step()
        if i >= warmup:
            sync()
            seconds.append(time.perf_counter() - start)
        first = result if first is None else first
    return seconds, first


def _speed(seconds: list[float], batch: int, flops_per_image: int) -> dict[str, Any]:
    """Timings of one batch of ``batch`` images, with the rate of ``flops_per_image`` (a step's, or a forward's)."""
    median = statistics.median(seconds)
    return {
        "seconds": seconds,
        "median_ms": 1000 * median,
        "min_ms": 1000 * min(seconds),
        "max_ms": 1000 * max(seconds),
        "images_per_second": batch / median,
        "gflops": batch * flops_per_image / median / 1e9,
    }


# -- the machine ----------------------------------------------------------------------------------


def gemm_gflops(size: int, repeats: int, sync: Callable[[], None]) -> float:
    """GFLOP/s of one float32 (size × size) @ (size × size) product on the current device, median of ``repeats``."""
    rng = np.random.default_rng(0)
    a, b = (backend.to_device(rng.standard_normal((size, size)), dtype=np.float32) for _ in range(2))
    seconds, _ = time_steps(lambda: a @ b, sync, 1, repeats)  # one warm-up: threads started, kernels chosen
    return 2 * size**3 / statistics.median(seconds) / 1e9


def blas_info() -> dict[str, Any]:
    """NumPy's BLAS (name, version) and the threads it will use, read from the environment (a best guess)."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name, version = str(blas.get("name", "unknown")), str(blas.get("version", ""))
    except Exception:  # an older NumPy has no dict form
        name, version = "unknown", ""
    env = {k: os.environ[k] for k in THREAD_VARIABLES if os.environ.get(k)}
    own = "MKL_NUM_THREADS" if "mkl" in name.lower() else "OPENBLAS_NUM_THREADS"
    chosen = next((k for k in (own, "OMP_NUM_THREADS") if k in env), None)
    threads = int(env[chosen]) if chosen and env[chosen].isdigit() else os.cpu_count() or 1
    return {
        "name": name,
        "version": version,
        "threads": threads,
        "threads_source": f"from {chosen}" if chosen else "the BLAS default: one per core",
        "environment": env,
        "kernels": openblas_kernels(),
        "kernels_forced": os.environ.get("OPENBLAS_CORETYPE"),
    }


def openblas_kernels() -> str | None:
    """The kernel family the loaded OpenBLAS runs (e.g. ``"Haswell"``: AVX2, ``"SkylakeX"``: AVX-512), or None.

    OpenBLAS picks its inner loops once, when NumPy loads it, from the processor — or from
    ``OPENBLAS_CORETYPE`` when that is set. Matrix products are most of a step, so the family
    changes every figure: say which one was measured. (Linux only: the library is found
    among the process's mapped files and asked by name.)
    """
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            getter = getattr(lib, name, None)
            if getter is not None:
                getter.restype = ctypes.c_char_p
                return getter().decode()
    return None


def machine_info() -> dict[str, Any]:
    """What the figures depend on: processor, cores, Python, NumPy and its BLAS, the GPU if in use."""
    info: dict[str, Any] = {
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "device": backend.get_device(),
    }
    if info["device"] == "gpu":
        cupy = backend.get_array_module()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        info["gpu"] = {"name": props["name"].decode(), "cupy": cupy.__version__}
    return info


# -- the benchmark --------------------------------------------------------------------------------


def run_bench(
    config: str = "cpu",
    *,
    image_encoder: str | None = None,
    text_encoder: str | None = None,
    model: dict[str, Any] | None = None,
    batch_size: int = 256,
    warmup: int = 5,
    steps: int = 10,
    compare_torch: bool = True,
    torch_threads: int | None = None,
    layers: bool = True,
    layer_steps: int = 3,
    gemm_size: int | None = None,
    show: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Benchmark one training step of configuration ``config`` on the current device; return every figure.

    ``image_encoder``, ``text_encoder`` and ``model`` (any :class:`ModelConfig` fields) override
    the configuration's model. ``gemm_size`` defaults to 2048 (4096 on the GPU). ``show``, when
    given, receives each section of the report as soon as it is measured (the CLI passes ``print``).
    """
    gemm_side = 1 if gemm_size is None else gemm_size
    limits = [("batch_size", batch_size, 2), ("steps", steps, 1), ("warmup", warmup, 0)]
    for name, value, least in [*limits, ("layer_steps", layer_steps, 1), ("gemm_size", gemm_side, 1)]:
        if value < least:
            why = " (a contrastive batch needs two pairs)" if name == "batch_size" else ""
            raise ValueError(f"{name} must be at least {least}{why}, got {value}")
    # Lower bounds of what the batch (uint8 and float32 images, B × B targets) and the GEMM (two float64
    # matrices drawn, their float32 copies, the product) take: absurd sizes stop here, before any allocation.
    backend.check_memory(batch_size * 3 * 32 * 32 * 5 + 4 * batch_size**2, f"--batch-size {batch_size:,}")
    backend.check_memory(28 * (gemm_size or 0) ** 2, f"--gemm-size {gemm_size or 0:,}")
    show = show or (lambda text: None)
    cfg = bench_config(config, image_encoder, text_encoder, model, batch_size)
    mc = bench_model_config(cfg)
    gpu = backend.get_device() == "gpu"
    sync = backend.get_array_module().cuda.Device().synchronize if gpu else (lambda: None)
    result: dict[str, Any] = {"config": config, "model": mc.to_dict(), "batch_size": batch_size}
    result["machine"] = machine_info()
    show(format_machine(result["machine"]))

    memory = estimate_step_memory(mc, batch_size, on_gpu=gpu)  # said, and on a GPU checked, before any work
    result["memory"] = dataclasses.asdict(memory) | {"total": memory.total}
    show(memory.describe("GPU" if gpu else "CPU"))
    free = backend.gpu_free_bytes()  # None on the CPU; the model is not on the device yet, so its weights count too
    refuse_unless_it_fits(memory, None if free is None else free - memory.weights)
    clip = build_clip(mc, rng=backend.seed(0))
    optimizer = AdamW(clip.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    cost = clip_cost(mc, batch_size)
    result["cost"] = cost
    show(format_model(config, mc, cost, batch_size, warmup, steps))

    batch = make_batch(batch_size, cfg.context_length)
    reference = _prepare_torch(clip, mc, cfg, batch, torch_threads) if compare_torch else {"skipped": "--no-torch"}

    on_device = [backend.to_device(batch[k]) for k in ("ids", "images", "mask", "targets")]
    step = partial(train_step, clip, optimizer, *on_device, grad_clip=cfg.grad_clip)
    seconds, loss = time_steps(step, sync, warmup, steps)
    result["miniclip"] = {**_speed(seconds, batch_size, cost.training_flops), "loss0": backend.to_float(loss)}
    size = gemm_size or (4096 if gpu else 2048)
    gemm = gemm_gflops(size, 10 if gpu else 3, sync)
    result["gemm"] = {"size": size, "gflops": gemm, "utilisation": result["miniclip"]["gflops"] / gemm}
    show(format_speed(result))

    if "step" in reference:
        try:
            theirs, loss = time_steps(reference.pop("step"), reference.pop("sync"), warmup, steps)
        finally:
            reference.pop("restore")()  # PyTorch's thread count and TF32 switches are process-wide: put them back
        reference.update(_speed(theirs, batch_size, cost.training_flops), loss0=float(loss.item()))
        reference["same_loss"] = math.isclose(result["miniclip"]["loss0"], reference["loss0"], rel_tol=LOSS_RTOL)
        reference["ratio"] = result["miniclip"]["images_per_second"] / reference["images_per_second"]
    result["torch"] = reference
    show(format_torch(result))

    if layers:
        result["layers"] = layer_table(clip, optimizer, step, sync, layer_steps, cost, batch_size)
        show(format_layers(result["layers"]))
    return result


def memory_report(config: str, image_encoder: str | None, text_encoder: str | None, batch_size: int) -> str:
    """The memory estimate of a training step of ``config`` at ``batch_size``, for the CPU and for a GPU: two lines.

    Measured on the host whatever the device (:mod:`miniclip.training.memory`); the two differ only
    in the convolutions' workspace, whose chunks are cache-sized on the CPU and larger on a GPU.
    """
    mc = bench_model_config(bench_config(config, image_encoder, text_encoder, None, batch_size))
    lines = [
        estimate_step_memory(mc, batch_size, on_gpu=gpu).describe(where)
        for gpu, where in ((False, "CPU"), (True, "GPU"))
    ]
    return "\n".join(f"{line} [configuration {config}]" for line in lines)


def plain_float32(torch: Any, threads: int | None) -> Callable[[], None]:
    """Set PyTorch up for a fair comparison; return what puts its process-wide settings back.

    Its thread count (``threads``, default every core), and TF32 off: on CUDA, PyTorch by default
    lets cuDNN convolutions (and may let matrix products) round their inputs to TF32's 10-bit
    mantissa, which is faster and less exact than the plain float32 miniclip computes in — the
    two would then neither time the same arithmetic nor give the same step-0 loss.
    """
    before = (torch.get_num_threads(), torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    def restore() -> None:
        torch.set_num_threads(before[0])
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before[1:]

    return restore


def _prepare_torch(
    clip: Any, mc: ModelConfig, cfg: TrainConfig, batch: dict[str, np.ndarray], threads: int | None
) -> dict[str, Any]:
    """The PyTorch step with ``clip``'s weights (taken now, before miniclip trains), or why there is none."""
    if reason := _no_torch_reference(mc):
        return {"skipped": reason}
    import torch

    restore = plain_float32(torch, threads)
    step, _, device = torch_step(clip, mc, batch, lr=cfg.lr, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip)
    return _torch_reference(device, restore, step=step)


def _no_torch_reference(mc: ModelConfig) -> str | None:
    """Why PyTorch cannot be the reference for ``mc`` here (not installed, no twin, no GPU it sees), or None."""
    version = torch_version()
    if version is None:
        return "PyTorch is not installed"
    import torch

    no_gpu = backend.get_device() == "gpu" and not torch.cuda.is_available()
    return unsupported(mc) or (f"PyTorch {version} sees no GPU" if no_gpu else None)


def _torch_reference(device: str, restore: Callable[[], None], **run: Callable[[], Any]) -> dict[str, Any]:
    """What the timing needs of the PyTorch side: ``run`` (its step or forward), how to wait for it, what it used."""
    import torch

    return {
        **run,
        "sync": torch.cuda.synchronize if device == "cuda" else (lambda: None),
        "restore": restore,
        "version": torch_version(),
        "device": device,
        "threads": torch.get_num_threads(),
    }


def layer_table(
    clip: Any,
    optimizer: Any,
    step: Callable[[], Any],
    sync: Callable[[], None],
    steps: int,
    cost: ModelCost,
    batch: int,
) -> dict[str, Any]:
    """Mean milliseconds per step of every layer (forward, backward) and of the rest of the step, over ``steps``."""
    with timed_layers(clip, optimizer, sync) as timer:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        total = (time.perf_counter() - start) / steps
    costs = cost.by_name()
    rows = []
    for name, t in timer.layers.items():
        macs = costs[name].multiply_adds if name in costs else 0
        seconds = (t.forward + t.backward) / steps
        rows.append(
            {
                "name": name,
                "forward_ms": 1000 * t.forward / steps,
                "backward_ms": 1000 * t.backward / steps,
                "share": seconds / total,
                "gflops": 6 * macs * batch / seconds / 1e9 if macs and seconds > 0 else None,
            }
        )
    outside = {name: 1000 * s / steps for name, s in timer.outside.items()}
    in_layers = sum(r["forward_ms"] + r["backward_ms"] for r in rows)
    outside["the rest (loss check, Python between calls)"] = 1000 * total - in_layers - sum(outside.values())
    return {"rows": rows, "outside_ms": outside, "step_ms": 1000 * total, "steps": steps}


# -- the report -----------------------------------------------------------------------------------


def format_machine(info: dict[str, Any]) -> str:
    blas = info["blas"]
    lines = [
        f"machine: {info['processor']}, {info['cores']} cores, {info['platform']}",
        f"python {info['python']}, numpy {info['numpy']}, BLAS {blas['name']} {blas['version']}".rstrip(),
        f"BLAS threads: {blas['threads']} ({blas['threads_source']}; "
        f"{', '.join(f'{k}={v}' for k, v in blas['environment'].items()) or 'no thread variable set'})",
    ]
    if blas["kernels"]:
        forced = f"OPENBLAS_CORETYPE={blas['kernels_forced']}" if blas["kernels_forced"] else "chosen by OpenBLAS"
        lines.append(f"OpenBLAS kernels: {blas['kernels']} ({forced})")
    if "gpu" in info:
        lines.append(f"gpu: {info['gpu']['name']}, cupy {info['gpu']['cupy']}")
    return "\n".join(lines) + "\n"


def format_model(config: str, mc: ModelConfig, cost: ModelCost, batch: int, warmup: int, steps: int) -> str:
    image, text, head = cost.part("image."), cost.part("text."), cost.multiply_adds
    head -= image.multiply_adds + text.multiply_adds
    return (
        f"configuration {config!r}: image encoder {mc.image_encoder}, text encoder {mc.text_encoder}, "
        f"{cost.parameters:,} parameters\n"
        f"forward multiply-adds per image: {cost.multiply_adds / 1e6:.2f} M (image {image.multiply_adds / 1e6:.2f} M, "
        f"text {text.multiply_adds / 1e6:.2f} M, head {head / 1e6:.3f} M)\n"
        f"training FLOPs per image: {cost.training_flops / 1e9:.3f} G (2 FLOPs per multiply-add, "
        f"× 3 for forward + backward: the usual estimate)\n"
        f"batch {batch}, float32, {warmup} warm-up + {steps} timed steps of miniclip.training.step.train_step\n"
    )


def _speed_line(label: str, s: dict[str, Any], per: str = "step") -> str:
    return (
        f"{label:<36} {s['images_per_second']:8.0f} images/s   {s['median_ms']:8.1f} ms/{per} "
        f"(min {s['min_ms']:.1f}, max {s['max_ms']:.1f})   {s['gflops']:7.1f} GFLOP/s"
    )


def format_speed(result: dict[str, Any]) -> str:
    gemm, device = result["gemm"], result["machine"]["device"]
    library = "CuPy (cuBLAS)" if device == "gpu" else f"NumPy ({result['machine']['blas']['name']})"
    return (
        _speed_line(f"miniclip ({device})", result["miniclip"])
        + f"\n{library} float32 GEMM {gemm['size']}×{gemm['size']}: {gemm['gflops']:.1f} GFLOP/s, "
        f"so the step runs at {gemm['utilisation']:.1%} of it\n"
    )


def format_torch(result: dict[str, Any]) -> str:
    t = result["torch"]
    if "skipped" in t:
        return f"PyTorch comparison skipped: {t['skipped']}\n"
    same = "equal" if t["same_loss"] else f"DIFFERENT (beyond rtol {LOSS_RTOL:g})"
    return (
        _speed_line(f"PyTorch {t['version']} ({t['device']}, {t['threads']} threads)", t)
        + f"\nstep-0 loss: miniclip {result['miniclip']['loss0']:.6f}, PyTorch {t['loss0']:.6f}: {same}"
        + "\nboth in plain float32 (PyTorch's TF32 switched off for the comparison)"
        + f"\nratio miniclip / PyTorch: {t['ratio']:.2f}\n"
    )


def format_layers(table: dict[str, Any]) -> str:
    step = table["step_ms"]
    lines = [
        f"where the time goes (a separate pass with every layer timed, mean of {table['steps']} steps: "
        f"{step:.1f} ms/step)",
        f"{'layer':<34} {'forward ms':>10} {'backward ms':>11} {'% of step':>9} {'GFLOP/s':>8}",
    ]
    for r in table["rows"]:
        gflops = f"{r['gflops']:8.1f}" if r["gflops"] is not None else ""
        row = f"{r['name']:<34} {r['forward_ms']:10.2f} {r['backward_ms']:11.2f} {r['share']:9.1%} {gflops:>8}"
        lines.append(row.rstrip())
    in_layers = sum(r["forward_ms"] + r["backward_ms"] for r in table["rows"])
    lines.append(f"{'all layers':<57} {in_layers / step:9.1%}   {in_layers:.1f} ms")
    for name, ms in table["outside_ms"].items():
        lines.append(f"{'outside: ' + name:<57} {ms / step:9.1%}   {ms:.1f} ms")
    lines.append("(each layer's own time: a container's row excludes its sub-layers, e.g. attn is Q Kᵀ, softmax, P V)")
    return "\n".join(lines)


# -- a released architecture's image tower, forward only ----------------------------------------------


def run_clip_bench(
    architecture: str = "ViT-B/32",
    *,
    batch_size: int | None = None,
    warmup: int = 5,
    steps: int = 10,
    compare_torch: bool = True,
    torch_threads: int | None = None,
    show: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Images per second of OpenAI's ``architecture`` image tower (random weights), forward only, and PyTorch's.

    One fixed batch of random 224 × 224 images, normalised as CLIP normalises; ``warmup`` untimed
    passes, then ``steps`` timed ones, for miniclip and then for its PyTorch twin
    (:func:`~miniclip.measure.torch_twin.torch_image_encoder`, the same weights). The two outputs
    must agree to :data:`EMBED_RTOL` of the largest value (``result["torch"]["same_output"]``).
    ``batch_size`` defaults to :data:`CLIP_BATCH` of the device. ``show`` receives each section.
    """
    gpu = backend.get_device() == "gpu"
    batch = CLIP_BATCH["gpu" if gpu else "cpu"] if batch_size is None else batch_size
    for name, value, least in [("batch_size", batch, 1), ("steps", steps, 1), ("warmup", warmup, 0)]:
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    mc = openai_config(architecture)
    cost = ModelCost(image_encoder_cost(mc))
    tokens = (mc.image_size // mc.patch_size) ** 2 + 1
    # A lower bound, asked before anything is allocated: the weights twice (miniclip's, PyTorch's copy), the images
    # (uint8 and float32), and per image the residual stream of every block kept for the backward, about 8 copies.
    weights = 4 * cost.parameters * (2 if compare_torch else 1)
    per_image = 5 * mc.channels * mc.image_size**2 + 4 * 8 * mc.image_depth * tokens * mc.image_width
    backend.check_memory(weights + batch * per_image, f"--clip {architecture} with --batch-size {batch:,}")
    show = show or (lambda text: None)
    sync = backend.get_array_module().cuda.Device().synchronize if gpu else (lambda: None)
    result: dict[str, Any] = {"architecture": architecture, "model": mc.to_dict(), "batch_size": batch}
    result["machine"] = machine_info()
    show(format_machine(result["machine"]))
    show(
        f"CLIP {architecture} image tower (OpenAI's architecture, random weights): {cost.parameters:,} parameters, "
        f"{cost.multiply_adds / 1e9:.2f} G multiply-adds per {mc.image_size}×{mc.image_size} image\n"
        f"batch {batch}, float32, {warmup} warm-up + {steps} timed forward passes\n"
    )

    encoder = build_image_encoder(mc, rng=backend.seed(0), dtype=np.float32).eval()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (batch, mc.channels, mc.image_size, mc.image_size), dtype=np.uint8)
    images = normalize(pixels, CLIP_MEAN, CLIP_STD)  # (B, 3, 224, 224) float32, as CLIP sees a photo
    reference = _torch_encoder(encoder, mc, images, torch_threads) if compare_torch else {"skipped": "--no-torch"}

    on_device = backend.to_device(images)
    seconds, ours = time_steps(lambda: encoder(on_device), sync, warmup, steps)
    result["miniclip"] = _speed(seconds, batch, cost.flops)
    show(_speed_line(f"miniclip ({backend.get_device()})", result["miniclip"], per="batch"))
    if "forward" in reference:
        try:
            theirs, output = time_steps(reference.pop("forward"), reference.pop("sync"), warmup, steps)
        finally:
            reference.pop("restore")()
        reference.update(_speed(theirs, batch, cost.flops))
        ours, output = backend.to_host(ours), output.cpu().numpy()
        reference["difference"] = float(np.abs(ours - output).max() / np.abs(output).max())
        reference["same_output"] = reference["difference"] <= EMBED_RTOL
        reference["ratio"] = result["miniclip"]["images_per_second"] / reference["images_per_second"]
    result["torch"] = reference
    show(format_clip_torch(result))
    return result


def _torch_encoder(encoder: Any, mc: ModelConfig, images: np.ndarray, threads: int | None) -> dict[str, Any]:
    """The PyTorch forward of ``encoder``'s twin on ``images`` (no gradients), or why there is none."""
    if reason := _no_torch_reference(mc):
        return {"skipped": reason}
    import torch

    device = "cuda" if backend.get_device() == "gpu" else "cpu"
    restore = plain_float32(torch, threads)
    twin = torch_image_encoder(encoder, mc).to(device)
    batch = torch.from_numpy(images).to(device)

    def forward() -> Any:
        with torch.no_grad():
            return twin(batch)

    return _torch_reference(device, restore, forward=forward)


def format_clip_torch(result: dict[str, Any]) -> str:
    t = result["torch"]
    if "skipped" in t:
        return f"PyTorch comparison skipped: {t['skipped']}\n"
    same = "agree" if t["same_output"] else f"DIFFER (beyond {EMBED_RTOL:g})"
    return (
        _speed_line(f"PyTorch {t['version']} ({t['device']}, {t['threads']} threads)", t, per="batch")
        + f"\nimage embeddings: miniclip and PyTorch {same} (largest difference {t['difference']:.1e} of the "
        f"largest value)\nratio miniclip / PyTorch: {t['ratio']:.2f}\n"
    )
