"""``miniclip pretrained``: fetch released CLIP weights from the Hugging Face Hub, and list those fetched (lesson 16).

    miniclip pretrained fetch NAME [--to DIR]   download config.json, model.safetensors, vocab.json, merges.txt
    miniclip pretrained list                    the models fetched so far, with their folders and sizes

The download itself is :mod:`miniclip.pretrained.fetch`; this module parses and prints.
"""

from __future__ import annotations

import argparse

FILES = "config.json, model.safetensors, vocab.json and merges.txt"


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "pretrained",
        parents=[device],
        help="fetch released CLIP weights (Hugging Face Hub), list those fetched",
        description="Released CLIP models for miniclip train --init-from (and the commands that take "
        "--pretrained): `fetch` downloads one from the Hugging Face Hub (needs huggingface_hub: "
        "pip install -e '.[pretrained]'), `list` shows those fetched. They are kept in $MINICLIP_PRETRAINED "
        "(default ~/.cache/miniclip/pretrained), one folder owner--name each.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = actions.add_parser(
        "fetch",
        help="download a model's config, safetensors weights and tokenizer",
        description=f"Download exactly {FILES} of a Hugging Face CLIP model (never a pickled pytorch_model.bin) "
        "into the pretrained folder, or --to DIR. The files are staged in a hidden folder and moved in only once "
        "all four are there, so an interrupted or failed download leaves nothing that looks like a model. "
        "The only command of miniclip that uses the network.",
    )
    f.add_argument("name", metavar="NAME", help="owner/name on huggingface.co, e.g. openai/clip-vit-base-patch32")
    f.add_argument("--to", metavar="DIR", help="the folder to fill (default: owner--name in the pretrained folder)")
    f.set_defaults(run=run_fetch)
    listing = actions.add_parser(
        "list",
        help="the models fetched so far",
        description="List the complete model folders in the pretrained folder ($MINICLIP_PRETRAINED, default "
        "~/.cache/miniclip/pretrained), by the name that --init-from and --pretrained accept.",
    )
    listing.set_defaults(run=run_list)
    p.set_defaults(memory_hint="free some disk and memory")


def run_fetch(args: argparse.Namespace) -> int:
    from miniclip.pretrained.fetch import check_name, fetch, folder_bytes

    check_name(args.name)  # before anything is imported or created
    fetched = fetch(args.name, args.to)
    use = args.name if args.to is None else str(fetched.folder)
    size = f"{folder_bytes(fetched.folder) / 1e6:,.0f} MB"
    if fetched.already:
        print(f"{args.name} is already fetched in {fetched.folder} ({size}); remove that folder to fetch it again")
    else:
        print(f"fetched {args.name} into {fetched.folder} ({size})")
    print(f"use it with: miniclip train --init-from {use}   (or --pretrained {use})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from miniclip.pretrained.fetch import fetched_models, folder_bytes
    from miniclip.pretrained.load import pretrained_home

    models = fetched_models()
    if not models:
        print(f"no models fetched in {pretrained_home()}; fetch one with: miniclip pretrained fetch NAME")
        return 0
    width = max(len(name) for name, _ in models)
    for name, folder in models:
        print(f"{name:<{width}}  {folder_bytes(folder) / 1e6:8,.0f} MB  {folder}")
    return 0
