"""``miniclip probe``: maps, similarity matrices, blur robustness, subspace angles, persistence (lessons 11, 12)."""

from __future__ import annotations

import argparse

from miniclip.cli.options import (
    add_pretrained,
    dataset_arguments,
    non_negative_int,
    positive,
    positive_int,
    refuse_subset_without_pretrained,
    subset_arguments,
)


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "probe",
        parents=[device, dataset_arguments(), subset_arguments()],
        help="look inside a trained run: maps, similarity matrices, blur robustness, subspace angles, persistence",
        description="Probe the embedding space of a trained run on its test split: t-SNE and PCA maps of the images "
        "(alone and with the class captions) and the gap between the two clouds; cosine similarity matrices of the "
        "class means; zero-shot accuracy per class with every test image blurred by each sigma, and the clean-blurred "
        "cosine; principal angles between class subspaces and between each class's clean and blurred subspaces; "
        "H0/H1 persistence diagrams per class and their Wasserstein distance clean to blurred. Writes the figures, "
        "summary.json and summary.md. With --pretrained, released CLIP weights instead of a run, on the test split "
        "of --data (CIFAR-10 by default; --n-test takes a subset), each image blurred in its own pixels and then "
        "brought to the model's input size by CLIP's preprocessing; --out is required then (the model folder is "
        "never written to).",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("checkpoint", nargs="?", help="a run folder or its checkpoint.npz")
    add_pretrained(which, "a checkpoint")
    p.add_argument(
        "--blur",
        nargs="+",
        type=positive,
        default=[1.0, 2.0, 3.0, 4.0, 5.0],
        metavar="SIGMA",
        help="standard deviations of the Gaussian blur, in pixels (default: 1 2 3 4 5)",
    )
    p.add_argument(
        "--points",
        type=positive_int,
        help="test images per class in the maps and the persistence diagrams (default: 100, or the smallest class)",
    )
    p.add_argument("--rank", type=positive_int, default=5, help="dimensions of each class's subspace (default 5)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the subsample and of t-SNE (default 0)")
    p.add_argument(
        "--out",
        help="folder for the figures and the summary (default: probe/ in the run folder; required with --pretrained)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run, usage_error=p.error, memory_hint="give fewer --points or --blur values")


def run(args: argparse.Namespace) -> int:
    from miniclip.atomic import check_output_folder
    from miniclip.evaluation.report import run_folder
    from miniclip.evaluation.trained_run import outside_model_folder, pretrained_run
    from miniclip.pretrained.load import pretrained_folder
    from miniclip.probe.report import measure, write_report

    refuse_subset_without_pretrained(args)
    if args.pretrained is not None:
        if args.out is None:
            args.usage_error("--pretrained needs --out, a folder for the figures and the summary")
        folder = pretrained_folder(args.pretrained)  # the model first, then where to write, before minutes of work
        out = check_output_folder(outside_model_folder(args.out, folder))
        source = pretrained_run(folder, data=args.data or "cifar10", data_dir=args.data_dir, n_test=args.n_test)
    else:
        out = check_output_folder(args.out or run_folder(args.checkpoint) / "probe")  # before minutes of work
        source = args.checkpoint
    probe = measure(
        source,
        sigmas=args.blur,
        points=args.points,
        rank=args.rank,
        seed=args.seed,
        data=args.data,
        data_dir=args.data_dir,
        progress=not args.no_progress,
    )
    write_report(probe, out)
    print((out / "summary.md").read_text(encoding="utf-8"), end="")
    print(f"figures, summary.json and summary.md in {out}")
    return 0
