"""Named training configurations: what ``miniclip train --config NAME`` starts from.

A :class:`TrainConfig` holds everything a run needs besides the model sizes, plain values with
a comment on each; its ``model`` entry overrides :class:`~miniclip.model.config.ModelConfig`
fields. :data:`CONFIGS` names a few starting points and :func:`named_config` copies one with
some fields replaced::

    cpu     CIFAR-10 on a laptop CPU (residual CNN + bag of words), about twelve minutes
    gpu     CIFAR-10 on one GPU (a wider CNN + a text transformer)
    shapes  the synthetic shapes, no download, about a minute
    tiny    the shapes in seconds: the lessons' run and the training tests' model

This module imports nothing heavier than the standard library, so the command line can list
the names without loading the trainer.

A run can also start from released weights (``init_from``: ``miniclip train --init-from``): the
configuration then gives the data and the schedule, the pretrained folder the model.

Lesson 09 trains the ``tiny`` configuration and gives the commands for the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

TARGETS = ("label_aware", "identity")
NAMED_DATASETS = ("cifar10", "shapes")  # the datasets known by name; any other ``data`` is a folder of images
# Fine-tuning a released CLIP (``init_from``): its weights are already good, and the from-scratch rates (3e-3)
# would wreck them in a few steps; ``miniclip train --init-from`` peaks at this rate unless --lr is given. Its
# evaluation sees one view of each image, as CLIP's does (and `eval --pretrained`): no flip averaging.
FINETUNE_LR = 1e-5
FINETUNE = {"lr": FINETUNE_LR, "flip_average": False}


@dataclass
class TrainConfig:
    """Everything a run needs besides the model sizes (``model`` overrides :class:`ModelConfig` fields)."""

    data: str = "cifar10"  # "cifar10", "shapes", or a folder with one sub-folder of images per class
    data_dir: str | None = None  # where datasets live (default: $MINICLIP_DATA or ./datasets)
    out_dir: str = "runs/cifar10-cpu"  # checkpoint, metrics.jsonl and plots go here
    epochs: int = 8
    batch_size: int = 256
    lr: float = 3e-3  # peak learning rate, after linear warm-up, before cosine decay
    min_lr: float = 0.0  # learning rate at the end of the cosine decay
    warmup: float = 0.05  # fraction of all steps spent warming up
    weight_decay: float = 0.05  # AdamW's decoupled decay, on weight matrices only
    grad_clip: float = 1.0  # clip the global gradient norm to this (0: no clipping)
    targets: str = "label_aware"  # "label_aware": same class counts as a match; "identity": CLIP's
    augment: bool = True  # random crop (4 px of padding) and horizontal flip
    seed: int = 0
    context_length: int = 16  # tokens per caption, <start> and <end> included
    eval_images: int = 0  # test images for the evaluation after each epoch but the last (0: all); the last uses all
    flip_average: bool = False  # evaluation: average each test image's embedding with its mirror image's
    n_train: int | None = None  # training images: shapes draws this many (None: 4000); CIFAR-10 and folders keep a
    # seeded subset of their training split (None: all of it)
    n_test: int | None = None  # test images, likewise (shapes' None: 1000)
    test_fraction: float = 0.2  # a folder: the share of each class held out for testing
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields
    init_from: str | None = None  # fine-tune a released CLIP: its folder, or the Hub name it was fetched as; the
    # model, its sizes and its byte-pair tokenizer then come from there (``model`` stays empty)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field."""
        if self.targets not in TARGETS:
            raise ValueError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        for name in ("epochs", "batch_size", "context_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ValueError(f"need 0 <= min_lr <= lr and lr > 0, got lr={self.lr}, min_lr={self.min_lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if self.batch_size < 2:
            raise ValueError(f"a contrastive batch needs at least 2 pairs, got batch_size={self.batch_size}")
        for name in ("n_train", "n_test"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (or None: the whole split), got {getattr(self, name)}")
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise ValueError(f"init_from must name a pretrained model folder or Hub name, got {self.init_from!r}")
        if self.init_from is not None and self.model:
            raise ValueError(
                f"a run that starts from {self.init_from} takes its model from there: model must be empty, "
                f"got {sorted(self.model)}"
            )
        if not 0 < self.test_fraction < 1:
            raise ValueError(
                f"test_fraction is the share of a folder's images held out, in (0, 1), got {self.test_fraction}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training configuration keys {unknown}")
        if "test_fraction" not in values and values.get("data", "cifar10") != "shapes":
            # Saved before split sizes applied to every dataset: n_train and n_test then meant the
            # shapes only, and were ignored (stored as 4000 and 1000) for CIFAR-10 and folders.
            values = {**values, "n_train": None, "n_test": None}
        return cls(**values)


# Named configurations: a starting point each, every field can be overridden on the command line.
CONFIGS: dict[str, TrainConfig] = {
    # CIFAR-10 on a laptop CPU inside a quarter of an hour (12 min on 2 cores): a residual CNN with a 2×2 patchify
    # stem, and the walkthrough's bag-of-words text encoder (ten class names need no attention).
    # 12 epochs: the channels-last engine runs a step about twice as fast as the first one did,
    # and the time went into epochs (6 → 12: 72.9 % → 79 % before flip averaging, see README).
    "cpu": TrainConfig(
        out_dir="runs/cifar10-cpu",
        epochs=12,
        batch_size=256,
        lr=3e-3,
        context_length=12,
        eval_images=2000,
        flip_average=True,
        model={
            "image_encoder": "cnn",
            "cnn_channels": [32, 64, 128],
            "cnn_stem_patch": 2,
            "text_encoder": "bag_of_words",
            "text_width": 128,
            "embed_dim": 128,
        },
    ),
    # CIFAR-10 on one GPU: a wider CNN at full resolution and a deeper text transformer.
    "gpu": TrainConfig(
        out_dir="runs/cifar10-gpu",
        epochs=30,
        batch_size=512,
        lr=3e-3,
        flip_average=True,
        model={
            "image_encoder": "cnn",
            "cnn_channels": [64, 128, 256],
            "cnn_blocks": 2,
            "cnn_stem_patch": 1,
            "text_encoder": "transformer",
            "text_width": 256,
            "text_depth": 2,
            "text_heads": 4,
            "embed_dim": 256,
        },
    ),
    # The synthetic shapes: no download, about two minutes on a CPU.
    "shapes": TrainConfig(
        data="shapes",
        out_dir="runs/shapes",
        epochs=8,
        batch_size=128,
        lr=3e-3,
        augment=False,
        model={
            "image_encoder": "cnn",
            "cnn_channels": [32, 64, 128],
            "cnn_stem_patch": 2,
            "text_encoder": "transformer",
            "text_width": 64,
            "text_depth": 1,
            "text_heads": 4,
            "embed_dim": 64,
        },
    ),
    # Trains in seconds on a CPU: the lessons' run (lessons 09 and 10), and the model of the training tests.
    "tiny": TrainConfig(
        data="shapes",
        out_dir="runs/tiny",
        epochs=4,
        batch_size=64,
        lr=4e-3,
        augment=False,
        n_train=2048,
        n_test=480,
        model={
            "image_encoder": "cnn",
            "cnn_channels": [8, 16],
            "cnn_stem_patch": 2,
            "text_encoder": "transformer",
            "text_width": 32,
            "text_depth": 1,
            "text_heads": 2,
            "embed_dim": 32,
        },
    ),
}


def named_config(name: str, **overrides: Any) -> TrainConfig:
    """A copy of ``CONFIGS[name]`` with some fields replaced (``model`` entries are merged).

    A configuration's split sizes (``n_train``, ``n_test``: ``tiny`` draws 2,048 and 480 shapes)
    were chosen for the dataset it names: with another ``data`` they fall back to that dataset's
    own defaults (all of CIFAR-10 or a folder), unless they are given too. With ``init_from`` (a
    released CLIP to fine-tune) the configuration's model is dropped — the architecture, and the
    context length the trainer sets, are the pretrained model's — and ``lr`` and ``flip_average``
    are :data:`FINETUNE`'s unless they are given too.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown configuration {name!r}; choose from {sorted(CONFIGS)}")
    base = CONFIGS[name].to_dict()
    if overrides.get("data", base["data"]) != base["data"]:  # another dataset: its own default sizes
        overrides = {"n_train": None, "n_test": None, **overrides}
    model = {**base.pop("model"), **overrides.pop("model", {})}
    if overrides.get("init_from"):  # a released model brings its own architecture: the configuration's is not used
        model = {}
        overrides = {**FINETUNE, **overrides}  # its weights want a gentle rate, its evaluation one view
    cfg = TrainConfig.from_dict({**base, **overrides, "model": model})
    cfg.validate()
    return cfg
