"""``miniclip walkthrough``: the 3-pair walkthrough, every number printed, and drawn as one sheet (lesson 01)."""

from __future__ import annotations

import argparse
import math

from miniclip.cli.options import positive


def softmax_base(text: str) -> float:
    """A softmax base: a finite number greater than 1 (and small enough for the walkthrough), or ``e``."""
    if text.strip().lower() == "e":
        return math.e
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"base must be a number greater than 1 or 'e', got {text!r}") from None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"base must be greater than 1, got {text!r}")
    from miniclip.teaching.walkthrough import check_base  # imported here: building the parser stays light

    try:
        return check_base(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "walkthrough",
        parents=[device],
        help="print the 13-step walkthrough for 3 text-image pairs, every number checkable by hand",
        description="The 3-pair walkthrough: lookup, patches, encoders, pooling, projection, similarity, "
        "softmax both ways (3^x by hand beside e^x), gradients, and one SGD update. With --figure, also drawn "
        "as one sheet of coloured matrices, every number in its cell, the way the hand-drawn spreadsheet it "
        "mirrors draws it.",
    )
    p.add_argument("--base", type=softmax_base, default=3.0, help="softmax base: 3 (by hand, default) or e")
    p.add_argument("--lr", type=positive, default=0.1, help="learning rate of the one SGD update (default 0.1)")
    p.add_argument(
        "--figure",
        metavar="FILE",
        help="also draw the walkthrough as one sheet of coloured matrices into FILE, PNG or SVG by its suffix",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from miniclip.teaching.walkthrough import build_walkthrough

    figure = None
    if args.figure is not None:
        from miniclip.teaching.walkthrough_sheet import check_sheet_path, save_sheet  # Matplotlib only for a figure

        figure = check_sheet_path(args.figure)  # a bad name or place is refused before any work
    walkthrough = build_walkthrough(base=args.base, lr=args.lr)
    print(walkthrough.text())
    if figure is not None:
        print(f"saved the sheet: {save_sheet(walkthrough, figure)}")
    return 0
