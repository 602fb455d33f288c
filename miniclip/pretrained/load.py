"""Released CLIP weights on miniclip's layers: a Hugging Face CLIP folder read into a miniclip CLIP.

A model folder, as ``huggingface_hub`` downloads it (or ``CLIPModel.save_pretrained`` plus
``CLIPTokenizer.save_pretrained`` writes it), holds four files miniclip reads::

    config.json         the sizes                       → :mod:`miniclip.pretrained.hf_config`
    model.safetensors   the weights, no pickle          → :mod:`miniclip.pretrained.safetensors`
    vocab.json          BPE tokens → ids                → :mod:`miniclip.model.bpe`
    merges.txt          BPE merges, by rank

:func:`load_pretrained` builds the CLIP ``config.json`` describes from miniclip's own blocks,
translates every tensor by the name table (:mod:`miniclip.pretrained.names`) and loads it, so
the model that runs is the hand-written, gradient-checked one: it can be evaluated, probed and
fine-tuned like any run miniclip trained. A ``pytorch_model.bin`` (or any ``.bin``, ``.pt``) is
never opened: those are pickles, which run code when read.

Where to find the folder (:func:`pretrained_folder`): a path to it; or a Hugging Face name such
as ``openai/clip-vit-base-patch32``, which ``miniclip pretrained fetch`` (:mod:`.fetch`) put in
the pretrained folder (``$MINICLIP_PRETRAINED``, else ``~/.cache/miniclip/pretrained``). Nothing
here touches the network.

Lesson 16 loads a random-weight stand-in and, where the files are present, OpenAI's model.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from miniclip.model.bpe import BPETokenizer
from miniclip.model.clip import CLIP
from miniclip.model.config import ModelConfig, build_clip
from miniclip.pretrained.hf_config import read_hf_config, read_json
from miniclip.pretrained.names import hf_to_miniclip
from miniclip.pretrained.safetensors import PICKLE_SUFFIXES, read_safetensors, refuse_pickle

FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt")  # what a model folder must hold
SHARDED = "model.safetensors.index.json"  # large models split the weights; the index maps each tensor to its file
HUB_NAME = re.compile(r"[\w.-]+/[\w.-]+")  # owner/name, as on huggingface.co


def pretrained_home() -> Path:
    """Where ``miniclip pretrained fetch`` puts models: ``$MINICLIP_PRETRAINED`` or ``~/.cache/miniclip/pretrained``."""
    return Path(os.environ.get("MINICLIP_PRETRAINED") or Path.home() / ".cache" / "miniclip" / "pretrained")


def fetched_folder(name: str) -> Path:
    """The folder ``miniclip pretrained fetch name`` fills: ``owner--name`` in :func:`pretrained_home`."""
    return pretrained_home() / name.replace("/", "--")


def pretrained_folder(source: str | os.PathLike[str]) -> Path:
    """The model folder ``source`` names (a folder, a file in it, or a fetched Hub name); ``ValueError`` if none.

    Checked before anything is read: the folder exists, holds the four files, and offers no pickle instead.
    """
    path = Path(source)
    if path.is_file() or path.suffix.lower() in PICKLE_SUFFIXES:
        refuse_pickle(path)  # a pickle: refused, naming the safetensors layout
        path = path.parent  # model.safetensors or config.json given: its folder
    elif not path.is_dir():
        if not HUB_NAME.fullmatch(str(source)):
            raise ValueError(f"{source}: no such model folder (give a folder holding {', '.join(FILES)})")
        path = fetched_folder(str(source))
        if not path.is_dir():
            raise ValueError(
                f"{source} has not been fetched: `miniclip pretrained fetch {source}` downloads it into {path} "
                f"(or give a folder holding {', '.join(FILES)})"
            )
    missing = [f for f in FILES if not (path / f).is_file() and not (f == FILES[1] and (path / SHARDED).is_file())]
    if FILES[1] in missing:
        for pickle in ("pytorch_model.bin", "model.pt"):
            if (path / pickle).is_file():
                refuse_pickle(path / pickle)
    if missing:
        raise ValueError(
            f"{path} is not a CLIP model folder: it lacks {', '.join(missing)} (it needs {', '.join(FILES)})"
        )
    return path


def read_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of ``folder``'s weights, float32: ``model.safetensors``, or the shards its index names."""
    if (folder / FILES[1]).is_file():
        return read_safetensors(folder / FILES[1])
    index = read_json(folder / SHARDED).get("weight_map")
    if not isinstance(index, dict) or not all(isinstance(f, str) and "/" not in f for f in index.values()):
        raise ValueError(f"{folder / SHARDED}: 'weight_map' must map tensor names to file names in the folder")
    tensors: dict[str, np.ndarray] = {}
    for shard in sorted(set(index.values())):
        tensors.update(read_safetensors(folder / shard))
    return tensors


@dataclass
class Pretrained:
    """A released CLIP on miniclip's layers: the model (evaluation mode), its sizes, its tokenizer, its folder."""

    model: CLIP
    config: ModelConfig
    tokenizer: BPETokenizer
    folder: Path


def load_pretrained(source: str | os.PathLike[str], *, dtype: Any = np.float32) -> Pretrained:
    """The CLIP in the model folder ``source`` names (:func:`pretrained_folder`), weights loaded, on the device.

    Every tensor is checked (:func:`~miniclip.pretrained.names.hf_to_miniclip`) before any is
    loaded; float16 and bfloat16 files become float32 (or ``dtype``).
    """
    folder = pretrained_folder(source)
    cfg = read_hf_config(folder)
    tokenizer = BPETokenizer.from_hf_folder(folder)
    if tokenizer.vocab_size != cfg.vocab_size:
        raise ValueError(
            f"{folder}: vocab.json holds {tokenizer.vocab_size} tokens but config.json's text tower "
            f"has {cfg.vocab_size}"
        )
    model = build_clip(cfg, rng=np.random.default_rng(0), dtype=dtype)
    shapes = {name: tuple(a.shape) for name, a in model.arrays().items()}
    model.load_state(hf_to_miniclip(read_weights(folder), cfg, shapes, str(folder)))
    model.eval()
    return Pretrained(model, cfg, tokenizer, folder)
