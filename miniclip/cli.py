"""The ``miniclip`` command: one sub-command per job, each with ``--help``.

    miniclip walkthrough            the 3-pair walkthrough, every number printed (13 steps)
    miniclip gradcheck              finite-difference check of every hand-written backward

``--device cpu|gpu`` (or ``MINICLIP_DEVICE``) picks NumPy or CuPy. Errors a user can fix
(a missing GPU, a bad value) end with a one-line message and a non-zero exit, not a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from miniclip import backend


def _base(text: str) -> float:
    """Parse a softmax base: a number greater than 1, or ``e``."""
    if text.strip().lower() == "e":
        return math.e
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"base must be a number greater than 1 or 'e', got {text!r}") from None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"base must be greater than 1, got {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def cmd_walkthrough(args: argparse.Namespace) -> int:
    from miniclip.walkthrough import format_walkthrough

    print(format_walkthrough(base=args.base, lr=args.lr))
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from miniclip.checks import CASES, format_table, run_checks

    names = None
    if args.only:
        names = [n for n in CASES if any(word.lower() in n.lower() for word in args.only)]
        if not names:
            print(f"miniclip gradcheck: no check matches {args.only}; available: {', '.join(CASES)}", file=sys.stderr)
            return 2
    results = run_checks(names, seed=args.seed)
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1


def build_parser() -> argparse.ArgumentParser:
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument(
        "--device",
        choices=backend.DEVICES,
        default=argparse.SUPPRESS,
        help="run on the CPU (NumPy) or the GPU (CuPy); default: $MINICLIP_DEVICE or cpu",
    )
    parser = argparse.ArgumentParser(
        prog="miniclip",
        description="CLIP rebuilt from scratch in NumPy: every forward and backward pass by hand.",
        parents=[device],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "walkthrough",
        parents=[device],
        help="print the 13-step walkthrough for 3 text-image pairs, every number checkable by hand",
        description="The 3-pair walkthrough: lookup, patches, encoders, pooling, projection, similarity, "
        "softmax both ways (3^x by hand beside e^x), gradients, and one SGD update.",
    )
    p.add_argument("--base", type=_base, default=3.0, help="softmax base: 3 (by hand, default) or e")
    p.add_argument("--lr", type=_positive, default=0.1, help="learning rate of the one SGD update (default 0.1)")
    p.set_defaults(func=cmd_walkthrough)

    p = sub.add_parser(
        "gradcheck",
        parents=[device],
        help="check every hand-written backward against finite differences (float64)",
        description="Central finite differences in float64 against a random upstream gradient, for every "
        "layer, the contrastive head and the whole model. Exits 1 if any check fails.",
    )
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only checks whose name contains one of these words")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, inputs and upstream gradients")
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miniclip`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if "device" in args:
            backend.set_device(args.device)
        return int(args.func(args))
    except backend.DeviceUnavailableError as exc:
        print(f"miniclip: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"miniclip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("miniclip: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `miniclip walkthrough | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at interpreter exit
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
