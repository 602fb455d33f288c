"""``miniclip search``: the test images that best match a sentence, saved as a grid (lesson 10)."""

from __future__ import annotations

import argparse

from miniclip.cli.options import (
    add_pretrained,
    dataset_arguments,
    positive_int,
    refuse_subset_without_pretrained,
    subset_arguments,
    warner,
)


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "search",
        parents=[device, dataset_arguments(), subset_arguments()],
        help="find the test images that best match a text query and save them as a grid",
        description="Text→image search over the test split of the checkpoint's dataset; saves a PNG grid. With "
        "--pretrained, released CLIP weights instead of a run, over the test split of --data (CIFAR-10 by default; "
        "--n-test takes a subset): the best matches are printed, and the grid saved only where --out says, never "
        "into the model folder.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("checkpoint", nargs="?", help="a run folder or its checkpoint.npz")
    add_pretrained(which, "a checkpoint")
    p.add_argument("query", help='e.g. "a photo of a ship"')
    p.add_argument("--top", type=positive_int, default=16, help="images to show (default 16)")
    p.add_argument(
        "--out",
        help="PNG file to write, its name ending in .png (default: search.png in the run folder; with --pretrained, "
        "none: the matches are only printed)",
    )
    p.set_defaults(run=run, usage_error=p.error)


def run(args: argparse.Namespace) -> int:
    from miniclip.atomic import check_output_file
    from miniclip.evaluation.classify_and_search import search_images, shorten
    from miniclip.evaluation.report import run_folder
    from miniclip.evaluation.trained_run import load_run, outside_model_folder, pretrained_run
    from miniclip.plots import plot_image_grid
    from miniclip.pretrained.load import pretrained_folder

    refuse_subset_without_pretrained(args)
    if args.pretrained is not None:  # the model found first, then where to write, before anything is read
        folder = pretrained_folder(args.pretrained)
        out = None if args.out is None else check_output_file(outside_model_folder(args.out, folder), ".png")
        run = pretrained_run(folder, data=args.data or "cifar10", data_dir=args.data_dir, n_test=args.n_test)
    else:
        out = check_output_file(args.out or run_folder(args.checkpoint) / "search.png", ".png")  # before any loading
        run = load_run(args.checkpoint)  # refuses a checkpoint that does not say how its images were normalised
    run.require_text_encoder("searching images by a text query (the query is embedded)")
    ckpt = run.checkpoint
    dataset = run.dataset(args.data, args.data_dir)  # the run's own test split: shapes depend on its seed and sizes
    indices, scores = search_images(
        ckpt.model,
        ckpt.tokenizer,
        args.query,
        dataset.test_images,
        run.normalize,
        ckpt.model_config.context_length,
        top=args.top,
        on_warning=warner("search"),
        prepare=run.prepare_for(dataset.test_images),
        batch_size=run.encode_batch,
    )
    titles = [f"{dataset.class_names[dataset.test_labels[i]]} {s:.2f}" for i, s in zip(indices, scores, strict=True)]
    if out is not None:
        plot_image_grid(dataset.test_images[indices], titles, out, ncols=min(8, len(indices)))
    print(f"best {len(indices)} test images for {shorten(args.query)!r}: {', '.join(titles)}")
    print(f"saved {out}" if out is not None else "no grid saved: give --out FILE.png for one")
    return 0
