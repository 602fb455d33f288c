"""A trained run read back: its checkpoint, and what that says about how the run was trained.

``miniclip eval``, ``classify`` and ``search`` all need the same three things from a
checkpoint written by ``miniclip train``: the model, the per-channel mean and standard
deviation its images were normalised with (measured on the training images, or CIFAR-10's
published values), and the dataset of its test split (shapes and image folders depend on the
run's seed and sizes). A checkpoint without that record — one saved by hand with
:func:`~miniclip.training.checkpoint.save_checkpoint` and no training configuration — is refused with
one message, because any normalisation guessed for it would quietly give wrong embeddings.

Released CLIP weights are a run too (:func:`pretrained_run`): the model read from its folder
(:func:`~miniclip.pretrained.load.load_pretrained`) with its byte-pair tokenizer, CLIP's own mean and
standard deviation, and a configuration that names only the dataset to evaluate on. A folder of
photos is read for such a model — released weights, or a run fine-tuned from them — at its
input size, each file as CLIP's preprocessing reads it, as the trainer reads it
(:func:`load_photos_for_clip`). Wherever a run's dataset images are still not the size its
model takes (CIFAR-10's fixed 32 × 32 arrays for a 224 × 224 CLIP), each batch is brought to
that size on the host by CLIP's preprocessing before it is moved (:meth:`TrainedRun.prepare_for`);
a run trained at its dataset's size is encoded exactly as before. Images and captions are
encoded a bounded number at a time (:attr:`TrainedRun.encode_batch`, :attr:`TrainedRun.text_batch`):
a ViT-B/32 keeps tens of megabytes of activations for each.

Lesson 11 first reads a run back with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from miniclip.data import ImageTextDataset, load_dataset, load_folder
from miniclip.data.augment import normalize
from miniclip.evaluation.zeroshot import encode_batch_size, encode_images, image_features, text_batch_size
from miniclip.model.predictive import NO_TEXT_ENCODER
from miniclip.pretrained.load import load_pretrained, pretrained_folder
from miniclip.pretrained.preprocess import CLIP_MEAN, CLIP_STD, prepare_batch
from miniclip.training.checkpoint import Checkpoint, checkpoint_file, load_checkpoint
from miniclip.training.configs import NAMED_DATASETS, TrainConfig


@dataclass
class TrainedRun:
    """A checkpoint with its training configuration and the normalisation of its images."""

    checkpoint: Checkpoint  # its model already in evaluation mode
    config: TrainConfig  # as the run was trained
    mean: list[float]  # (C,) per-channel mean of the training pixels, in [0, 1]
    std: list[float]  # (C,) per-channel standard deviation
    pretrained: bool = False  # released weights (pretrained_run): image files are read the CLIP way

    @property
    def encode_batch(self) -> int:
        """Images per encode batch (not the training batch, ``config.batch_size``): 500 at 32 × 32, 10 at 224 × 224."""
        return encode_batch_size(self.checkpoint.model_config.image_size)

    @property
    def text_batch(self) -> int:
        """Captions per encode batch: 500 for the small text encoders, 25 for CLIP's 77 tokens × 512."""
        cfg = self.checkpoint.model_config
        return text_batch_size(cfg.context_length, cfg.text_width)

    @property
    def released_weights(self) -> bool:
        """Whether released CLIP weights are at the run's root (they are its weights, or it was fine-tuned from them).

        Such a model reads image files as CLIP's preprocessing does (:func:`~miniclip.data.folder.clip_image`),
        as it saw them in training: a folder dataset (:func:`load_photos_for_clip`) and ``miniclip classify``'s
        files alike.
        """
        return self.pretrained or self.config.init_from is not None

    def prepare_for(self, images: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
        """The host step each batch of ``images`` (N, C, H, W) takes before it is moved, or None when none is needed.

        None when the images already are the model's input, (channels, S, S); otherwise CLIP's
        preprocessing (:func:`~miniclip.pretrained.preprocess.prepare_batch`: shortest side to S by
        bicubic resampling, centre crop, RGB), as for CIFAR-10's 32 × 32 images and a 224 × 224 model.
        Decided by the sizes alone, so a run fine-tuned from released weights is encoded as they are.
        """
        cfg = self.checkpoint.model_config
        if tuple(images.shape[1:]) == (cfg.channels, cfg.image_size, cfg.image_size):
            return None
        return partial(prepare_batch, size=cfg.image_size)

    def embed_images(self, images: np.ndarray, *, features: bool = False, flip_average: bool | None = None) -> Any:
        """Host uint8 ``images`` (N, C, H, W) through the run's model as it evaluates them, on the device.

        Brought to the model's size (:meth:`prepare_for`), normalised as in training, :attr:`encode_batch`
        at a time, flip-averaged as the run was evaluated unless ``flip_average`` says otherwise:
        unit-length embeddings (N, d), or with ``features`` the image encoder's output (N, D).
        """
        flip = self.config.flip_average if flip_average is None else flip_average
        encode = image_features if features else encode_images
        model, prepare = self.checkpoint.model, self.prepare_for(images)
        return encode(model, images, self.normalize, self.encode_batch, flip_average=flip, prepare=prepare)

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
        name = data or cfg.data
        clip_size = self.checkpoint.model_config.image_size if self.released_weights else None
        photos = load_photos_for_clip(name, clip_size, seed=cfg.seed, **sizes)  # a folder, as training read it
        if photos is not None:
            return photos
        return load_dataset(name, data_dir or cfg.data_dir, download=False, seed=cfg.seed, **sizes)


def load_photos_for_clip(
    name: str,
    clip_size: int | None,
    *,
    seed: int,
    n_train: int | None = None,
    n_test: int | None = None,
    test_fraction: float = 0.2,
) -> ImageTextDataset | None:
    """The folder of photos ``name`` as a model on released CLIP weights sees it; None where ``name`` loads as usual.

    ``clip_size``: that model's input size (None: a model trained from scratch). Each file is read at
    that size as CLIP's preprocessing reads it (:func:`~miniclip.data.folder.clip_image`), rather than
    shrunk to 32 × 32 and blown up again; then the split sizes apply as in
    :func:`~miniclip.data.load_dataset`. None for CIFAR-10 and the shapes too: fixed 32 × 32 arrays,
    brought to the model's size later (:meth:`TrainedRun.prepare_for`). The trainer
    (``train --init-from``) and :meth:`TrainedRun.dataset` both ask it first, so both see the same pixels.
    """
    if clip_size is None or name in NAMED_DATASETS or not Path(name).is_dir():
        return None
    return load_folder(name, clip_size, test_fraction, seed, clip_preprocessing=True).subset(n_train, n_test, seed)


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


def pretrained_run(
    source: str | os.PathLike[str],
    *,
    data: str = "cifar10",
    data_dir: str | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
) -> TrainedRun:
    """Released CLIP weights as a run: the model ``source`` names (a folder or a fetched Hub name), on ``data``.

    Its checkpoint holds the model (evaluation mode), its configuration and its byte-pair tokenizer,
    no optimiser state and no training record, and its path is the model folder; its mean and std
    are CLIP's; its configuration names the dataset (``data``, ``data_dir``), the seeded subsets
    of it to use (``n_train``, ``n_test``: None, the whole split) and no flip averaging (CLIP
    evaluates one view). Every argument is checked, and the folder found
    (:func:`~miniclip.pretrained.load.pretrained_folder`), before anything is read.
    """
    folder = pretrained_folder(source)
    if not isinstance(data, str) or (data not in NAMED_DATASETS and not Path(data).is_dir()):
        raise ValueError(
            f"unknown dataset {data!r}: choose {' or '.join(map(repr, NAMED_DATASETS))} or the path of a folder of "
            "images with one sub-folder per class"
        )
    whole = lambda value: isinstance(value, int) and not isinstance(value, bool)  # noqa: E731
    if not (all(n is None or whole(n) for n in (n_train, n_test)) and whole(seed) and seed >= 0):
        raise ValueError(
            "n_train and n_test must be whole numbers (or None: the whole split) and seed a whole number >= 0, "
            f"got n_train={n_train!r}, n_test={n_test!r}, seed={seed!r}"
        )
    config = TrainConfig(data=data, data_dir=data_dir, seed=seed, n_train=n_train, n_test=n_test, flip_average=False)
    config.validate()  # n_train and n_test at least 1
    loaded = load_pretrained(folder)
    checkpoint = Checkpoint(
        model=loaded.model,
        model_config=loaded.config,
        tokenizer=loaded.tokenizer,  # CLIP's byte pairs: evaluation takes either kind of tokenizer
        optimizer_state=None,
        train_config={},
        progress={},
        rng_state=None,
        metrics=[],
        path=loaded.folder,
    )
    return TrainedRun(checkpoint, config, list(CLIP_MEAN), list(CLIP_STD), pretrained=True)


def outside_model_folder(out: str | os.PathLike[str], folder: Path, option: str = "--out") -> str | os.PathLike[str]:
    """``out`` itself, unless it is, or lies in, the model folder ``folder``: a ``ValueError`` then.

    A model folder is a download cache: files written there would be taken for the model's own
    (or vanish when it is fetched again), so no command writes into it.
    """
    where, model = Path(os.path.abspath(out)).resolve(), folder.resolve()
    if where == model or model in where.parents:
        raise ValueError(
            f"{option} {out} {'is' if where == model else 'lies inside'} the model folder {folder}, which is never "
            "written to (it is the downloaded model): give a place of its own"
        )
    return out


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
