"""``miniclip bench``: time a training step — images/s, GFLOP/s against a GEMM, PyTorch beside it (lesson 07).

``miniclip bench --clip ViT-B/32`` times OpenAI's image tower instead: a forward pass at its real
size (random weights), beside the same tower in PyTorch (lesson 16).
"""

from __future__ import annotations

import argparse

from miniclip.cli.options import non_negative_int, positive_int
from miniclip.encoders.registry import names
from miniclip.model.openai import ARCHITECTURES
from miniclip.training.configs import CONFIGS

# Flags for timing a training step, refused beside --clip (which times OpenAI's image tower alone).
TRAINING_ONLY = ("config", "image_encoder", "text_encoder", "layers", "layer_steps", "gemm_size", "memory")


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "bench",
        parents=[device],
        help="time a training step: images/s, GFLOP/s against a GEMM, PyTorch beside it, time per layer",
        description="Time miniclip.training.step.train_step (the step miniclip train takes) on a fixed random "
        "batch and print images/s and ms/step (median, min, max); achieved GFLOP/s (counted forward FLOPs x 3) "
        "against the float32 GEMM of the same array library; the same model in PyTorch when it imports "
        "(same first loss, speed ratio); and, from a separate pass, the forward and backward time of every layer. "
        "With --clip ARCH: the forward pass of OpenAI's image tower instead (random weights, 224x224 images), "
        "beside the same tower in PyTorch (same output, speed ratio). Measure on an otherwise idle machine.",
    )
    p.add_argument("--config", choices=sorted(CONFIGS), help="named configuration (default cpu)")
    p.add_argument(
        "--clip",
        choices=tuple(ARCHITECTURES),
        metavar="ARCH",
        help=f"time the forward pass of OpenAI's image tower of this architecture ({', '.join(ARCHITECTURES)}), "
        "random weights, beside PyTorch, instead of a training step",
    )
    p.add_argument("--image-encoder", choices=names("image"), help="replace the configuration's image encoder")
    p.add_argument("--text-encoder", choices=names("text"), help="replace the configuration's text encoder")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        help="images per step, at least 2 (default 256); with --clip, images per forward pass (default 8; 64 on the "
        "GPU)",
    )
    p.add_argument("--warmup", type=non_negative_int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--steps", type=positive_int, default=10, help="timed steps (default 10)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--torch-threads", type=positive_int, help="PyTorch's CPU threads (default: every core)")
    p.add_argument(
        "--layers",
        action=argparse.BooleanOptionalAction,
        help="time every layer in a separate pass (default: on)",
    )
    p.add_argument("--layer-steps", type=positive_int, help="steps of the per-layer pass (default 3)")
    p.add_argument("--gemm-size", type=positive_int, help="side of the square GEMM (default 2048; 4096 on the GPU)")
    p.add_argument(
        "--memory",
        action="store_true",
        default=None,  # None when not given, like the other training-only flags
        help="only print the memory a training step of this configuration and batch needs, on the CPU and on a GPU "
        "(estimated on the host, no GPU needed), and stop",
    )
    p.set_defaults(run=run, memory_hint="give a smaller --batch-size or --gemm-size")


def run(args: argparse.Namespace) -> int:
    from miniclip.measure.bench import memory_report, run_bench, run_clip_bench

    if args.clip is not None:
        for name in TRAINING_ONLY:
            if getattr(args, name) is not None:
                flag = "--" + name.replace("_", "-")
                raise ValueError(
                    f"{flag} is for timing a training step; --clip {args.clip} times OpenAI's image tower alone "
                    f"(its architecture fixed): leave {flag} out"
                )
        result = run_clip_bench(
            args.clip,
            batch_size=args.batch_size,
            warmup=args.warmup,
            steps=args.steps,
            compare_torch=not args.no_torch,
            torch_threads=args.torch_threads,
            show=print,
        )
        return 1 if result["torch"].get("same_output") is False else 0  # PyTorch computed another output: a bug
    if args.memory:
        batch = 256 if args.batch_size is None else args.batch_size
        print(memory_report(args.config or "cpu", args.image_encoder, args.text_encoder, batch))
        return 0
    result = run_bench(
        args.config or "cpu",
        image_encoder=args.image_encoder,
        text_encoder=args.text_encoder,
        batch_size=256 if args.batch_size is None else args.batch_size,
        warmup=args.warmup,
        steps=args.steps,
        compare_torch=not args.no_torch,
        torch_threads=args.torch_threads,
        layers=args.layers is not False,
        layer_steps=3 if args.layer_steps is None else args.layer_steps,
        gemm_size=args.gemm_size,
        show=print,
    )
    return 1 if result["torch"].get("same_loss") is False else 0  # PyTorch computed another loss: a bug somewhere
