"""``miniclip compare``: learning curves of several runs, and the efficiency ratio (lesson 13)."""

from __future__ import annotations

import argparse


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "compare",
        parents=[device],
        help="learning curves of several runs: zero-shot top-1 against images seen, and the efficiency ratio",
        description="Draw each run's zero-shot top-1 (its prompt ensemble, as logged every epoch) against the "
        "training images seen, on a log axis, and print how many times more images the slower of each run and "
        "the first one needed to reach the accuracy both reach (e.g. a contrastive and a predictive run).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders or their checkpoint.npz")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--label", nargs="+", help="one name per run for the legend (default: the run folders' names)")
    p.add_argument("--templates", help="the logged template set to compare (default: the dataset's prompt ensemble)")
    p.add_argument("--title", help="the figure's title")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from miniclip.atomic import check_output_file
    from miniclip.evaluation.compare import format_comparison, load_curves, plot_learning_curves

    out = check_output_file(args.out, ".png")  # before any run is read
    curves = load_curves(args.runs, args.label, args.templates)  # refuses runs that do not compare, before drawing
    print(format_comparison(curves))
    print(f"saved {plot_learning_curves(curves, out, title=args.title or '')}")
    return 0
