"""``miniclip eval``: everything worth knowing about a trained run; several runs, a model ensemble (lessons 10, 14)."""

from __future__ import annotations

import argparse
import sys

from miniclip.cli.options import (
    add_pretrained,
    dataset_arguments,
    positive_int,
    refuse_subset_without_pretrained,
    subset_arguments,
)


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "eval",
        parents=[device, dataset_arguments(), subset_arguments(train=True)],
        help="zero-shot accuracy, confusion matrix, similarity heatmap, retrieval recall, linear probe, ensembles",
        description="Evaluate a trained checkpoint on its dataset's test split: zero-shot top-1/top-5 with the bare "
        "class name, 'a photo of a {}.', the prompt ensemble and unseen templates; per-class accuracy and a "
        "confusion-matrix plot; an image-caption similarity heatmap; class-aware text→image / image→text "
        "recall@1/5/10 (the heatmap and recall are skipped for a predictive run, which has no text encoder); with "
        "--linear-probe, a linear probe on the image encoder's features beside zero-shot. Several runs: a model "
        "ensemble (the members' class probabilities averaged), each member's and the ensemble's top-1/top-5 and "
        "the ensemble's confusion matrix. Writes eval.json beside the plots. With --pretrained, released CLIP "
        "weights instead of a run, on --data (CIFAR-10 by default, each image brought to the model's input size by "
        "CLIP's preprocessing; --n-test and --n-train take a subset): the report is printed, and written only into "
        "--out when given, never into the model folder.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "checkpoints",
        nargs="*",
        default=[],
        metavar="checkpoint",
        help="a run folder or its checkpoint.npz; several: an ensemble of runs on the same dataset and test split",
    )
    add_pretrained(which, "a checkpoint")
    p.add_argument(
        "--out",
        help="folder for the plots and eval.json (default: the run folder; required for an ensemble, which is no "
        "single run's; with --pretrained, none: the report is only printed)",
    )
    p.add_argument("--pairs", type=positive_int, default=5, help="images in the similarity heatmap (default 5)")
    p.add_argument(
        "--linear-probe",
        action="store_true",
        help="also fit a linear probe on the image encoder's features of the training images (all of them, and "
        "1, 4 and 16 per class) and report its test top-1 beside zero-shot's (one run only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress lines for the linear probe on stderr")
    p.set_defaults(run=run, usage_error=p.error)


def run(args: argparse.Namespace) -> int:
    from miniclip.evaluation.ensemble import evaluate_ensemble
    from miniclip.evaluation.report import evaluate_pretrained, evaluate_run

    refuse_subset_without_pretrained(args)
    if args.n_train is not None and not args.linear_probe:
        args.usage_error("--n-train chooses the training images the linear probe is fitted on: add --linear-probe")
    progress = None if args.no_progress else lambda line: print(f"miniclip eval: {line}", file=sys.stderr)
    if args.pretrained is not None:
        report = evaluate_pretrained(
            args.pretrained,
            out_dir=args.out,
            data=args.data or "cifar10",
            data_dir=args.data_dir,
            n_train=args.n_train,
            n_test=args.n_test,
            pairs=args.pairs,
            linear_probe=args.linear_probe,
            progress=progress,
        )
    elif len(args.checkpoints) > 1:  # a model ensemble: checked before anything is loaded
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
            progress=progress,
        )
    print(report)
    return 0
