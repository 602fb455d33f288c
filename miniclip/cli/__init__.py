"""The ``miniclip`` command: one sub-command per job, each with ``--help``, each in a module of its own.

    miniclip walkthrough            the 3-pair walkthrough, every number printed (13 steps)
    miniclip gradcheck              finite-difference check of every hand-written backward
    miniclip train                  train a CLIP (CIFAR-10, shapes, or your own image folders)
    miniclip eval CKPT [CKPT...]    zero-shot with four prompt sets, confusion, heatmap, recall@k, linear probe;
                                    several checkpoints: a model ensemble
    miniclip classify CKPT IMG...   classify image files zero-shot with any --labels
    miniclip search CKPT "QUERY"    the test images that best match a caption, as a grid
    miniclip bench                  images/s of a training step, GFLOP/s, PyTorch beside it, time per layer
    miniclip compare RUN RUN...     zero-shot accuracy against images seen, and the efficiency ratio
    miniclip probe CKPT             maps, similarity matrices, blur robustness, subspace angles, persistence
    miniclip pretrained fetch NAME  download released CLIP weights from the Hugging Face Hub; ``list``: those fetched

Each command's module holds its arguments (``add``) beside what it does (``run``), as pip's
``commands/`` do. This module assembles the parser and runs a command under one set of rules:
``--device cpu|gpu`` (or ``MINICLIP_DEVICE``) picks NumPy or CuPy; SIGTERM and SIGHUP stop a
command the way Ctrl-C does; warnings print as one line; and the errors a user can fix (a
missing GPU, a bad value or file, too little memory) end with one line and a non-zero exit,
not a traceback.

Building the parser reads the named configurations and the encoder registry (which loads the
layers and encoders, NumPy only); each command imports the rest of its code when it runs, so
``miniclip gradcheck`` and ``miniclip walkthrough`` never load the trainer, tqdm, Matplotlib or
Pillow.

Lesson 09 gives the commands that train and evaluate the CIFAR-10 runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence

from miniclip import backend
from miniclip.atomic import STOP_SIGNALS, interrupt_now
from miniclip.cli import bench, classify, compare, evaluate, gradcheck, pretrained, probe, search, train, walkthrough
from miniclip.cli.options import device_arguments, warner

COMMANDS = (walkthrough, gradcheck, train, evaluate, classify, search, bench, compare, probe, pretrained)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, in the order ``miniclip --help`` lists them."""
    device = device_arguments()
    parser = argparse.ArgumentParser(
        prog="miniclip",
        description="CLIP rebuilt from scratch in NumPy: every forward and backward pass by hand.",
        parents=[device],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add(commands, device)
    return parser


@contextlib.contextmanager
def _command_context(command: str) -> Iterator[None]:
    """While a command runs: SIGTERM/SIGHUP interrupt like Ctrl-C, and warnings print as one line, no source."""

    warn = warner(command)
    signals = [sig for sig in STOP_SIGNALS if sig != signal.SIGINT]  # Ctrl-C raises KeyboardInterrupt already
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, interrupt_now) for sig in signals} if main_thread else {}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *rest, **kwargs: warn(str(message))  # type: ignore[assignment]
            yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miniclip`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    backend.keep_freed_memory()  # each step frees and remakes the same arrays: no page faults to take them back
    try:
        with _command_context(args.command):
            if "device" in args:
                backend.set_device(args.device)
            else:
                backend.environment_device()  # a bad MINICLIP_DEVICE is named now, not inside some later step
            status = int(args.run(args))
            sys.stdout.flush()  # a reader that left shows up here, inside the handlers below, not at exit
        return status
    except backend.DeviceUnavailableError as exc:
        print(f"miniclip: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # before OSError, its base class: `miniclip walkthrough | head` is a normal exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at interpreter exit
        return 0
    except (ValueError, OSError) as exc:  # bad values, missing or corrupt files, failed downloads
        print(f"miniclip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # NumPy's message says how much; CuPy's OutOfMemoryError is a MemoryError too
        detail = f" ({exc})" if str(exc) else ""
        hint = getattr(args, "memory_hint", "close other programs, or use a machine with more memory")
        print(f"miniclip {args.command}: error: out of memory{detail}; {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"miniclip: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return 130


__all__ = ["build_parser", "main"]
