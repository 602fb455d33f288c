"""``miniclip eval``: everything worth knowing about a trained run; several runs, a model ensemble (lessons 10, 14)."""

from __future__ import annotations

import argparse
import sys

from miniclip.cli.options import dataset_arguments, positive_int


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "eval",
        parents=[device, dataset_arguments()],
        help="zero-shot accuracy, confusion matrix, similarity heatmap, retrieval recall, linear probe, ensembles",
        description="Evaluate a trained checkpoint on its dataset's test split: zero-shot top-1/top-5 with the bare "
        "class name, 'a photo of a {}.', the prompt ensemble and unseen templates; per-class accuracy and a "
        "confusion-matrix plot; an image-caption similarity heatmap; class-aware text→image / image→text "
        "recall@1/5/10 (the heatmap and recall are skipped for a predictive run, which has no text encoder); with "
        "--linear-probe, a linear probe on the image encoder's features beside zero-shot. Several runs: a model "
        "ensemble (the members' class probabilities averaged), each member's and the ensemble's top-1/top-5 and "
        "the ensemble's confusion matrix. Writes eval.json beside the plots.",
    )
    p.add_argument(
        "checkpoints",
        nargs="+",
        metavar="checkpoint",
        help="a run folder or its checkpoint.npz; several: an ensemble of runs on the same dataset and test split",
    )
    p.add_argument(
        "--out",
        help="folder for the plots and eval.json (default: the run folder; required for an ensemble, which is no "
        "single run's)",
    )
    p.add_argument("--pairs", type=positive_int, default=5, help="images in the similarity heatmap (default 5)")
    p.add_argument(
        "--linear-probe",
        action="store_true",
        help="also fit a linear probe on the image encoder's features of the training images (all of them, and "
        "1, 4 and 16 per class) and report its test top-1 beside zero-shot's (one run only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress lines for the linear probe on stderr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from miniclip.evaluation.ensemble import evaluate_ensemble
    from miniclip.evaluation.report import evaluate_run

    if len(args.checkpoints) > 1:  # a model ensemble: checked before anything is loaded
        if args.out is None:
            raise ValueError(
                f"an ensemble of {len(args.checkpoints)} runs needs --out, a folder of its own "
                "(no member's run folder is the ensemble's)"
            )
        if args.linear_probe:
            raise ValueError("--linear-probe evaluates one run: give one checkpoint (once per member)")
        report = evaluate_ensemble(args.checkpoints, out_dir=args.out, data=args.data, data_dir=args.data_dir)
    else:
        report = evaluate_run(
            args.checkpoints[0],
            out_dir=args.out,
            data=args.data,
            data_dir=args.data_dir,
            pairs=args.pairs,
            linear_probe=args.linear_probe,
            progress=None if args.no_progress else lambda line: print(f"miniclip eval: {line}", file=sys.stderr),
        )
    print(report)
    return 0
