"""``miniclip classify``: your own image files, zero-shot, with any labels (lesson 10)."""

from __future__ import annotations

import argparse
from pathlib import Path

from miniclip.cli.options import add_pretrained, positive_int, warner


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "classify",
        parents=[device],
        help="classify your own image files zero-shot, with any labels",
        description="Zero-shot classification of image files: each label becomes prompts ('a photo of a {}.', ...), "
        "and the probabilities over the labels are printed. With --pretrained, released CLIP weights instead of a "
        "run: the files are read exactly as CLIP's preprocessing reads them (as they are for a run fine-tuned from "
        "such weights), and every word is in the model's byte-pair vocabulary.",
    )
    p.add_argument("checkpoint", nargs="?", help="a run folder or its checkpoint.npz (or --pretrained instead)")
    p.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    add_pretrained(p, "a checkpoint")
    p.add_argument(
        "--labels",
        nargs="+",
        required=True,
        help="candidate labels, e.g. --labels cat dog ship; words the run never saw are named in a warning, and a "
        "label made only of such words cannot be scored and is dropped, with a message (an empty label is refused); "
        "with --pretrained no word is unknown",
    )
    p.add_argument("--template", help="one prompt template with {} (default: the CLIP ensemble of 18)")
    p.add_argument("--top", type=positive_int, default=5, help="labels to print per image (default 5)")
    p.set_defaults(run=run, usage_error=p.error)


def _run_and_images(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The checkpoint (None with --pretrained) and the image files; a usage error for both, or neither, of the two.

    Without a checkpoint the first image file fills the optional ``checkpoint`` slot, so with
    ``--pretrained`` it is an image, unless it names a run (a folder, an ``.npz``): then both were given.
    """
    if args.pretrained is None:
        if args.checkpoint is None:
            args.usage_error("one of the arguments checkpoint --pretrained is required")
        return args.checkpoint, list(args.images)
    if args.checkpoint is None:
        return None, list(args.images)
    if Path(args.checkpoint).is_dir() or Path(args.checkpoint).suffix == ".npz":
        args.usage_error("argument --pretrained: not allowed with argument checkpoint")
    return None, [args.checkpoint, *args.images]


def run(args: argparse.Namespace) -> int:
    from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES
    from miniclip.evaluation.classify_and_search import NOT_KNOWN, classify_images, unknown_words
    from miniclip.evaluation.trained_run import load_run, pretrained_run

    checkpoint, images = _run_and_images(args)
    # a run must say how its images were normalised; released weights come with CLIP's numbers
    run = load_run(checkpoint) if checkpoint is not None else pretrained_run(args.pretrained)
    run.require_text_encoder("classifying with any labels (their prompts are embedded)")
    ckpt = run.checkpoint
    warn = warner("classify")
    templates = CLIP_CIFAR10_TEMPLATES if args.template is None else [args.template]  # "" is refused, not the default
    if args.template and (unknown := unknown_words(ckpt.tokenizer, args.template.replace("{}", " "))):
        warn(f"{', '.join(map(repr, unknown))} in the template {'is' if len(unknown) == 1 else 'are'} {NOT_KNOWN}")
    results = classify_images(
        ckpt.model,
        ckpt.tokenizer,
        images,
        args.labels,
        templates,
        ckpt.model_config.image_size,
        run.normalize,
        ckpt.model_config.context_length,
        on_warning=warn,
        clip_preprocessing=run.released_weights,  # read as the weights were trained: CLIP's way for released ones
        batch_size=run.encode_batch,
        text_batch=run.text_batch,
    )
    for path, ranked in zip(images, results, strict=True):
        print(path)
        for label, prob in ranked[: args.top]:
            print(f"  {prob:7.2%}  {label}")
    return 0
