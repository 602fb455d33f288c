"""``miniclip classify``: your own image files, zero-shot, with any labels (lesson 10)."""

from __future__ import annotations

import argparse

from miniclip.cli.options import positive_int, warner


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "classify",
        parents=[device],
        help="classify your own image files zero-shot, with any labels",
        description="Zero-shot classification of image files: each label becomes prompts ('a photo of a {}.', ...), "
        "and the probabilities over the labels are printed.",
    )
    p.add_argument("checkpoint", help="a run folder or its checkpoint.npz")
    p.add_argument("images", nargs="+", help="image files (any format Pillow reads)")
    p.add_argument(
        "--labels",
        nargs="+",
        required=True,
        help="candidate labels, e.g. --labels cat dog ship; words the run never saw are named in a warning, and a "
        "label made only of such words cannot be scored and is dropped, with a message (an empty label is refused)",
    )
    p.add_argument("--template", help="one prompt template with {} (default: the CLIP ensemble of 18)")
    p.add_argument("--top", type=positive_int, default=5, help="labels to print per image (default 5)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES
    from miniclip.evaluation.classify_and_search import NOT_KNOWN, classify_images, unknown_words
    from miniclip.evaluation.trained_run import load_run

    run = load_run(args.checkpoint)  # refuses a checkpoint that does not say how its images were normalised
    run.require_text_encoder("classifying with any labels (their prompts are embedded)")
    ckpt = run.checkpoint
    warn = warner("classify")
    templates = CLIP_CIFAR10_TEMPLATES if args.template is None else [args.template]  # "" is refused, not the default
    if args.template and (unknown := unknown_words(ckpt.tokenizer, args.template.replace("{}", " "))):
        warn(f"{', '.join(map(repr, unknown))} in the template {'is' if len(unknown) == 1 else 'are'} {NOT_KNOWN}")
    results = classify_images(
        ckpt.model,
        ckpt.tokenizer,
        args.images,
        args.labels,
        templates,
        ckpt.model_config.image_size,
        run.normalize,
        ckpt.model_config.context_length,
        on_warning=warn,
    )
    for path, ranked in zip(args.images, results, strict=True):
        print(path)
        for label, prob in ranked[: args.top]:
            print(f"  {prob:7.2%}  {label}")
    return 0
