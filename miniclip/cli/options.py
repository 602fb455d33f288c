"""What several commands' arguments share: the kinds of value they accept, and the parents they add.

An argparse ``type`` here turns the text of a flag into a value or into one line saying what
was expected; argparse prefixes the flag's name (``argument --seed: expected a whole number
>= 0, got '-1'``). Everything here is plain Python, so building the parser stays light.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from miniclip import backend
from miniclip.training.configs import CONFIGS


def positive(text: str) -> float:
    """A number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def whole_number(least: int) -> Callable[[str], int]:
    """A whole number no smaller than ``least``."""
    wanted = "a positive whole number" if least == 1 else f"a whole number >= {least}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


positive_int = whole_number(1)
non_negative_int = whole_number(0)


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def config_default(field_name: str) -> str:
    """``default: the configuration's, 12 for cpu; 30 for gpu; ...``, read from ``CONFIGS`` (``model.X`` too)."""

    def value(cfg: object, name: str) -> object:
        if name.startswith("model."):
            return cfg.model.get(name.removeprefix("model."), "?")  # type: ignore[attr-defined]
        return getattr(cfg, name)

    names: dict[str, list[str]] = {}  # value → the configurations that have it, in CONFIGS' order
    for name, cfg in CONFIGS.items():
        names.setdefault(str(value(cfg, field_name)), []).append(name)
    if len(names) == 1:
        return f"default: the configuration's, {next(iter(names))} in each"
    each = "; ".join(f"{v} for {', '.join(group)}" for v, group in names.items())
    return f"default: the configuration's, {each}"


def device_arguments() -> argparse.ArgumentParser:
    """``--device``, which every command takes (and the top level too)."""
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument(
        "--device",
        choices=backend.DEVICES,
        default=argparse.SUPPRESS,
        help="run on the CPU (NumPy) or the GPU (CuPy); default: $MINICLIP_DEVICE or cpu",
    )
    return device


def dataset_arguments() -> argparse.ArgumentParser:
    """``--data`` and ``--data-dir`` of the commands that read a run's dataset (eval, search, probe)."""
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data",
        help="the dataset: cifar10, shapes, or a folder with one sub-folder per class (default: the one trained on, "
        "cifar10 with --pretrained; give it when the run's folder has moved or was given as a relative path from "
        "another directory)",
    )
    data.add_argument(
        "--data-dir",
        help="where CIFAR-10 is kept (default: as in training; with --pretrained, $MINICLIP_DATA or ./datasets)",
    )
    return data


def add_pretrained(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, instead_of: str) -> None:
    """``--pretrained NAME|DIR``: released CLIP weights, used instead of ``instead_of`` (a run)."""
    parser.add_argument(
        "--pretrained",
        metavar="NAME|DIR",
        help=f"released CLIP weights instead of {instead_of}: a model folder (config.json, model.safetensors, "
        "vocab.json, merges.txt) or a Hub name fetched with `miniclip pretrained fetch`, e.g. "
        "openai/clip-vit-base-patch32 (default: none, a trained run)",
    )


def subset_arguments(*, train: bool = False) -> argparse.ArgumentParser:
    """``--n-test`` (and with ``train``, ``--n-train``): how many of the dataset's images a ``--pretrained`` model sees.

    A run is evaluated on its own test split; released weights on any dataset, whose splits may
    be far more than a CPU can encode in a while (ViT-B/32: about 4.4 G multiply-adds an image).
    """
    subset = argparse.ArgumentParser(add_help=False)
    splits = (("train", "training images the linear probe (--linear-probe) is fitted on"),) if train else ()
    for split, what in (*splits, ("test", "test images")):
        subset.add_argument(
            f"--n-{split}",
            type=positive_int,
            metavar="N",
            help=f"with --pretrained: {what}, a seeded subset of the split (default: all of it)",
        )
    return subset


def refuse_subset_without_pretrained(args: argparse.Namespace) -> None:
    """A usage error when ``--n-train``/``--n-test`` are given with a run, whose test split is its own."""
    given = [f"--n-{s}" for s in ("train", "test") if getattr(args, f"n_{s}", None) is not None]
    if given and args.pretrained is None:
        args.usage_error(
            f"{' and '.join(given)} {'choose' if len(given) > 1 else 'chooses'} the images a --pretrained model "
            "sees; a run is evaluated on its own splits"
        )


def warner(command: str) -> Callable[[str], None]:
    """Print a warning for ``command`` on stderr, one line, so that stdout stays the result."""
    return lambda message: print(f"miniclip {command}: warning: {message}", file=sys.stderr)
