"""A trained run read back: its checkpoint, and what that says about how the run was trained.

``miniclip eval``, ``classify`` and ``search`` all need the same three things from a
checkpoint written by ``miniclip train``: the model, the per-channel mean and standard
deviation its images were normalised with (measured on the training images, or CIFAR-10's
published values), and the dataset of its test split (shapes and image folders depend on the
run's seed and sizes). A checkpoint without that record — one saved by hand with
:func:`~miniclip.training.checkpoint.save_checkpoint` and no training configuration — is refused with
one message, because any normalisation guessed for it would quietly give wrong embeddings.

Lesson 11 first reads a run back with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from miniclip.data import ImageTextDataset, load_dataset
from miniclip.data.augment import normalize
from miniclip.model.predictive import NO_TEXT_ENCODER
from miniclip.training.checkpoint import Checkpoint, checkpoint_file, load_checkpoint
from miniclip.training.configs import NAMED_DATASETS, TrainConfig


@dataclass
class TrainedRun:
    """A checkpoint with its training configuration and the normalisation of its images."""

    checkpoint: Checkpoint  # its model already in evaluation mode
    config: TrainConfig  # as the run was trained
    mean: list[float]  # (C,) per-channel mean of the training pixels, in [0, 1]
    std: list[float]  # (C,) per-channel standard deviation

    def require_text_encoder(self, needs: str) -> None:
        """A ``ValueError`` saying what cannot be done (``needs``: what for) when the run has no text encoder."""
        if self.checkpoint.model.objective == "predictive":
            raise ValueError(
                f"{self.checkpoint.path}: {needs} needs a text encoder, but {NO_TEXT_ENCODER}; "
                "`miniclip eval` reports its zero-shot accuracy"
            )

    def normalize(self, images: Any) -> Any:
        """uint8 images (N, C, H, W) → floats, normalised as in training."""
        return normalize(images, self.mean, self.std)

    def dataset(self, data: str | None = None, data_dir: str | None = None) -> ImageTextDataset:
        """The dataset the run was trained on (or ``data``), built as in training, never downloaded.

        A folder the run was trained on that cannot be found from here (it moved, or it was given
        as a relative path from another directory) is a ``ValueError`` that suggests ``--data``.
        The run's split sizes (``n_train``, ``n_test``, ``test_fraction``) apply when ``data`` is
        the same kind of dataset — the same named one, or a folder for a folder (one that moved) —
        and not when it is another kind, whose splits they were never meant for.
        """
        cfg = self.config
        if data is None and cfg.data not in NAMED_DATASETS and not Path(cfg.data).is_dir():
            relative = "" if Path(cfg.data).is_absolute() else f" (a relative path, here {Path(cfg.data).absolute()})"
            raise ValueError(
                f"the run was trained on the image folder {cfg.data!r}, which does not exist from here{relative}: "
                "it has moved, or the run was trained from another directory; give the folder with --data"
            )
        same_kind = data is None or data == cfg.data or (data not in NAMED_DATASETS and cfg.data not in NAMED_DATASETS)
        sizes = {"n_train": cfg.n_train, "n_test": cfg.n_test, "test_fraction": cfg.test_fraction} if same_kind else {}
        return load_dataset(data or cfg.data, data_dir or cfg.data_dir, download=False, seed=cfg.seed, **sizes)


def repeated_run(paths: Sequence[str | os.PathLike[str]]) -> tuple[int, int] | None:
    """The first two of ``paths`` naming one checkpoint (a folder and its ``.npz``, a link), or None; nothing loaded."""
    files = [checkpoint_file(path).resolve() for path in paths]
    return next(((i, j) for i, j in combinations(range(len(files)), 2) if files[i] == files[j]), None)


def load_run(path: str | os.PathLike[str]) -> TrainedRun:
    """Read the checkpoint at ``path`` (a run folder or its ``.npz``); ``ValueError`` if it holds no training record."""
    ckpt = load_checkpoint(path)
    config, state = ckpt.train_config.get("config"), ckpt.train_config.get("state") or {}
    if not config or "mean_std" not in state:
        raise ValueError(
            f"{ckpt.path} holds no training configuration (it was not written by `miniclip train`), "
            "so the normalisation of its images and the dataset it was trained on are unknown"
        )
    mean, std = _mean_std(ckpt.path, state["mean_std"], ckpt.model_config.channels)
    ckpt.model.eval()
    return TrainedRun(ckpt, TrainConfig.from_dict(config), mean, std)


def _mean_std(file: Path, value: Any, channels: int) -> tuple[list[float], list[float]]:
    """The stored ``mean_std`` as two lists of ``channels`` finite numbers, every std > 0; else ``ValueError``."""
    where = f"{file}: the stored normalisation (training state 'mean_std')"
    try:
        mean, std = ([float(x) for x in v] for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be [mean, std], two lists of numbers, got {value!r}") from None
    for name, v in (("mean", mean), ("std", std)):
        if len(v) != channels:
            raise ValueError(f"{where}: {name} has {len(v)} values for the model's {channels} channels")
        if not all(math.isfinite(x) for x in v):
            raise ValueError(f"{where}: {name} {v} is not finite")
    if not all(s > 0 for s in std):
        raise ValueError(f"{where}: std {std} must be positive in every channel (dividing by it gives inf or NaN)")
    return mean, std
