"""``miniclip gradcheck``: every hand-written backward against central finite differences (float64).

Lesson 02 derives the central difference it uses.
"""

from __future__ import annotations

import argparse

from miniclip.cli.options import non_negative_int


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "gradcheck",
        parents=[device],
        help="check every hand-written backward against finite differences (float64)",
        description="Central finite differences in float64 against a random upstream gradient, for every "
        "layer, the contrastive head and the whole model. Exits 1 if any check fails.",
    )
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only checks whose name contains one of these words")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed for weights, inputs and upstream gradients (default 0)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from miniclip.teaching.gradient_cases import CASES, format_table, run_checks

    names = None
    if args.only:
        names = [n for n in CASES if any(word.lower() in n.lower() for word in args.only)]
        if not names:
            raise ValueError(f"no check matches {args.only}; available: {', '.join(CASES)}")
    results = run_checks(names, seed=args.seed)
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1
