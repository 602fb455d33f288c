"""Training a CLIP: the loop behind ``miniclip train``.

One step, on a batch of B images and their labels::

    images ─random crop + flip─→ normalise ─→ image encoder ┐
    labels ─one caption each, from a random template──────→ text encoder ┤→ logits (B, B) → loss
                                                                            targets: identity, or
                                                                            label-aware (same class = match)
    backward → clip the global gradient norm → AdamW step → clamp the temperature

Every epoch ends with a zero-shot evaluation on the test split, a line in ``metrics.jsonl``,
the curves in ``curves.png`` and an atomically written checkpoint. All randomness comes from
two host generators whose states are saved in the checkpoint — ``order`` (the shuffling of
each epoch) and ``augment`` (crops, flips, caption templates) — so ``--resume`` continues
exactly where the run stopped, even in the middle of an epoch, and gives the same numbers as
a run that was never interrupted. Each epoch's shuffled batches are
:func:`miniclip.data.augment.batches` of the ``order`` generator, and each caption is drawn as
:func:`miniclip.data.captions.make_captions` draws it.

A run starts from a :class:`~miniclip.training.configs.TrainConfig`, usually one of the named
configurations of :mod:`miniclip.training.configs`. With ``init_from`` it fine-tunes a released
CLIP instead of training one from random weights: the model, its byte-pair tokenizer (captions of
77 tokens) and its sizes come from the pretrained folder (:mod:`miniclip.pretrained.load`), the
images are normalised with CLIP's mean and std, and they are brought to the model's input size
(224 × 224) once, before the first step (:meth:`Trainer._fit_images` says why there); a folder of
photos is read at that size in the first place, each file the CLIP way
(:func:`~miniclip.evaluation.trained_run.load_photos_for_clip`).

Under ``mpiexec -n W`` the same loop runs on every rank (``world``, :mod:`miniclip.distributed`):
every rank draws the whole batch alike and steps on its slice, the losses it reports are summed
over the ranks, all ranks stop together at a step boundary, and rank 0 alone shows progress,
evaluates and writes, while the others wait for it.

Lesson 09 takes one step by hand and checks it against :meth:`Trainer.step`; lesson 17 splits it
over ranks.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from miniclip import backend
from miniclip.atomic import STOP_SIGNALS, check_output_folder, interrupt_now, json_text, write_text
from miniclip.data import load_dataset
from miniclip.data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    batches,
    channel_stats,
    draw_crop_offsets,
    draw_flips,
    horizontal_flip,
    normalize,
    random_crop,
)
from miniclip.data.captions import caption_rows, caption_table, draw_templates, eval_templates
from miniclip.data.dataset import ImageTextDataset
from miniclip.distributed.data_parallel import check_data_parallel, make_data_parallel, own_slice
from miniclip.distributed.sharded_loss import local_targets
from miniclip.distributed.world import SingleProcess
from miniclip.evaluation.trained_run import load_photos_for_clip
from miniclip.evaluation.zeroshot import accuracy_table, encode_batch_size, evaluate_zero_shot, text_batch_size
from miniclip.model.config import ModelConfig, build_model
from miniclip.model.predictive import word_count_targets
from miniclip.model.targets import label_aware_targets
from miniclip.model.tokenizer import Tokenizer
from miniclip.optim import AdamW, warmup_cosine
from miniclip.plots import plot_curves
from miniclip.pretrained.hf_config import read_hf_config
from miniclip.pretrained.load import load_pretrained, pretrained_folder
from miniclip.pretrained.preprocess import CLIP_MEAN, CLIP_STD, prepare_batch
from miniclip.training.checkpoint import Checkpoint, checkpoint_file, load_checkpoint, save_checkpoint
from miniclip.training.configs import NAMED_DATASETS, TrainConfig
from miniclip.training.memory import estimate_step_memory, refuse_unless_it_fits
from miniclip.training.resume import check_classes, check_same_run, settings_of
from miniclip.training.rollback import StepSnapshot
from miniclip.training.step import TrainingDivergedError, train_step

CROP_PADDING = 4  # pixels: the random crop shifts each training image by up to 4 px
FLIP_P = 0.5  # probability of mirroring a training image


def check_splits(dataset: ImageTextDataset, data: str) -> None:
    """Refuse, before the first step, a dataset whose training or test split is empty (naming the sizes).

    A class with no test image is allowed (the others can still be measured) but named in a warning.
    """
    n_train, n_test = len(dataset.train_labels), len(dataset.test_labels)
    if n_train == 0 or n_test == 0:
        empty = "test" if n_train else "training"
        raise ValueError(
            f"the {empty} split of {data} is empty ({n_train} training images, {n_test} test images, "
            f"{len(dataset.class_names)} classes): every epoch ends with a zero-shot evaluation on the test "
            f"split, so each class needs enough images for both (a class's test share is rounded, "
            f"so a class of 2 images gives none)"
        )
    counts = np.bincount(dataset.test_labels, minlength=len(dataset.class_names))  # (K,) test images per class
    untested = [name for name, n in zip(dataset.class_names, counts, strict=True) if n == 0]
    if untested:
        shown = ", ".join(map(repr, untested[:5])) + (", ..." if len(untested) > 5 else "")
        why = (
            "a folder's class holds out round(test_fraction × its images), so a class of 2 images keeps both for "
            "training at 0.2: add images or raise --test-fraction"
            if data not in NAMED_DATASETS
            else f"the {n_test} test image{'s' * (n_test != 1)} miss them: give a larger --n-test"
        )
        warnings.warn(
            f"{len(untested)} of the {len(counts)} classes have no test images ({shown}): their zero-shot accuracy "
            f"cannot be measured and is reported as 'no test images' ({why})",
            stacklevel=2,
        )


def resolved_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with a folder dataset and ``data_dir`` as resolved absolute paths ("cifar10", "shapes" kept).

    A run stores its configuration in the checkpoint; a relative ``./my_folder`` would mean
    another folder (or none) to ``miniclip eval`` started from another directory. ``init_from``
    likewise, when it is a folder; a fetched Hub name (``openai/clip-vit-base-patch32``) is kept.
    """
    changes: dict[str, Any] = {}
    if cfg.data not in NAMED_DATASETS:
        changes["data"] = str(Path(cfg.data).resolve())
    if cfg.data_dir is not None:
        changes["data_dir"] = str(Path(cfg.data_dir).resolve())
    if cfg.init_from is not None and Path(cfg.init_from).exists():
        changes["init_from"] = str(Path(cfg.init_from).resolve())
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _normaliser(cfg: TrainConfig, dataset: ImageTextDataset) -> tuple[list[float], list[float]]:
    """Per-channel mean and std: CIFAR-10's published values, or measured on the training images."""
    if dataset.name == "cifar10":
        return list(CIFAR10_MEAN), list(CIFAR10_STD)
    mean, std = channel_stats(dataset.train_images)
    return list(mean), list(std)


def resized(images: np.ndarray, size: int, bar: Any = None) -> np.ndarray:
    """uint8 images (N, C, H, W) as CLIP sees them, (N, 3, size, size): :func:`prepare_batch`, 1,000 at a time."""
    out = np.empty((len(images), 3, size, size), dtype=np.uint8)
    for start in range(0, len(images), 1000):
        chunk = images[start : start + 1000]
        out[start : start + len(chunk)] = prepare_batch(chunk, size)
        if bar is not None:
            bar.update(len(chunk))
    return out


class Trainer:
    """A training run: its data, model, optimiser and generators, and the loop over epochs.

    The run's state, what a checkpoint saves and ``--resume`` restores, is set in one of two
    places with the same names — :meth:`_start` (a new run) or :meth:`_resume` (from the
    checkpoint in ``cfg.out_dir``)::

        tokenizer, model_config, model, optimizer    the model and AdamW (moments, step count)
        order_rng, augment_rng                      shuffling; crops, flips and caption templates
        _order_state                                the order generator as this epoch began (what is saved)
        epoch, batch, loss_sum                      where the run stands, inside an epoch too
        metrics, train_state                        each epoch's numbers; normalisation, classes, first loss
        saved_progress                              where the checkpoint on disk stands (None: none yet)

    Everything else is derived from the configuration and the data once, in ``__init__``.
    """

    def __init__(
        self, cfg: TrainConfig, *, resume: bool = False, show_progress: bool = True, world: Any = None
    ) -> None:
        cfg.validate()
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        # On many processes (mpiexec) every rank runs this same loop on its slice of each batch; rank 0
        # alone shows progress, evaluates and writes (distributed/data_parallel.py).
        self.world = world if world is not None else SingleProcess()
        self.lead = self.world.rank == 0
        self.show_progress = show_progress and self.lead
        if self.world.size > 1:
            objective, dropout = cfg.model.get("objective", "contrastive"), cfg.model.get("dropout", 0.0)
            check_data_parallel(cfg.batch_size, objective, dropout, self.world.size)
        # Everything that would otherwise fail only when the first epoch ends is checked now, before
        # the first step: the output folder (created, proven writable) and both splits of the data.
        # A folder that is a file or lies under one is refused before the data loads (a download
        # may take minutes); the folder is created only once the data has loaded, so a bad --data
        # leaves nothing behind.
        check_output_folder(self.out)
        fine_tune = cfg.init_from is not None and not resume
        saved = load_checkpoint(self.out) if resume else None  # read before the data: its model says how they load
        clip_size = None  # a model on released weights: its input size, at which a folder of photos is read
        if fine_tune:
            self._refuse_existing_run()  # (reading the data may take a minute: not before this refusal)
            pretrained = read_hf_config(pretrained_folder(cfg.init_from))  # a bad model folder: one line, first
            clip_size = pretrained.image_size
        elif saved is not None and saved.train_config["config"].get("init_from") is not None:
            clip_size = saved.model_config.image_size
        sizes = {"n_train": cfg.n_train, "n_test": cfg.n_test, "test_fraction": cfg.test_fraction}
        photos = load_photos_for_clip(cfg.data, clip_size, seed=cfg.seed, **sizes)
        self.dataset = photos if photos is not None else load_dataset(cfg.data, cfg.data_dir, seed=cfg.seed, **sizes)
        check_splits(self.dataset, cfg.data)
        # The folder that loaded, stored as an absolute path: `eval` from another directory finds it.
        self.cfg = cfg = resolved_paths(cfg)
        if fine_tune:  # the images to the pretrained model's size, memory checked first, before the folder is made
            self._fit_images(pretrained)
        if not resume:
            self.out.mkdir(parents=True, exist_ok=True)  # proven writable above, before the data loaded
        if len(self.dataset.train_labels) < cfg.batch_size:
            raise ValueError(
                f"batch size {cfg.batch_size} is larger than the {len(self.dataset.train_labels)} training images"
            )
        self.templates = self.dataset.train_templates
        self._pending: list[Any] = []  # losses of the last steps, still on the device
        self.steps_per_epoch = len(self.dataset.train_labels) // cfg.batch_size
        self.total_steps = cfg.epochs * self.steps_per_epoch

        # Every caption that can occur in training, row label·T + template: (classes × templates) of them.
        self.captions = caption_table(self.dataset.class_names, self.templates)
        if saved is not None:
            self._resume(saved)
        else:
            self._start()
        if self.world.size > 1:  # the sharded head and batch norm over all ranks: same parameters, same checkpoint
            make_data_parallel(self.model, self.world)
        self.mean_std = self.train_state["mean_std"]
        mean, std = (backend.to_device(np.asarray(v, dtype=np.float32)) for v in self.mean_std)  # (C,) each
        self.normalize_fn = lambda images: normalize(images, mean, std)  # moved once, not on every step
        ids, mask = self.tokenizer.encode_batch(self.captions, self.cfg.context_length)  # tokenised once: (K·T, L)
        # Checked here, once, on the host: on the GPU an id past the model's token table would wrap
        # silently, and checking inside the embedding would wait for the device on every step.
        if ids.max() >= self.model.vocab_size:
            raise ValueError(
                f"the tokenizer gives token ids up to {ids.max()} for the training captions, but the model's "
                f"token table has only {self.model.vocab_size} rows: the checkpoint's tokenizer and model disagree"
            )
        self.caption_ids, self.caption_mask = backend.to_device(ids), backend.to_device(mask)
        self.caption_words = None  # the predictive objective's targets: each caption's word distribution (K·T, V)
        if self.model_config.objective == "predictive":
            self.caption_words = word_count_targets(self.caption_ids, self.caption_mask, self.model.vocab_size)
        # The training images stay uint8 on the device (150 MB for CIFAR-10); batches are cut there.
        self.train_images = backend.to_device(self.dataset.train_images)
        self.train_labels = backend.to_device(self.dataset.train_labels)
        self.snapshot = StepSnapshot(self.model, self.optimizer, self.augment_rng)  # an interrupted step's roll-back
        if backend.get_device() == "gpu":
            self._check_gpu_memory()
        self.stop_requested = False  # set by the first Ctrl-C (SIGTERM, SIGHUP): stop at the next step boundary

    def _check_gpu_memory(self) -> None:
        """Say what a step will take on the GPU, and refuse a batch that cannot fit (training/memory.py).

        Called once everything else is on the device (model, optimiser, roll-back copies, images),
        so what is still free must hold the step's activations and workspace.
        """
        ranks = self.world.size  # on many GPUs each holds its share of the batch
        estimate = estimate_step_memory(self.model_config, self.cfg.batch_size // ranks, on_gpu=True)
        if self.show_progress:
            tqdm.write(estimate.describe("GPU" if ranks == 1 else f"each of the {ranks} GPUs"))
        refuse_unless_it_fits(estimate, backend.gpu_free_bytes(), ranks)

    def _refuse_existing_run(self) -> None:
        if checkpoint_file(self.out).exists():
            raise ValueError(
                f"{checkpoint_file(self.out)} already exists: pass --resume to continue that run, "
                f"or choose another --out directory"
            )

    def _start(self) -> None:
        cfg, ds = self.cfg, self.dataset
        self._refuse_existing_run()
        if cfg.init_from is not None:
            self._start_from_pretrained(cfg.init_from)
        else:
            self.tokenizer = Tokenizer.build(self.captions)  # only training words: anything else maps to <unk>
            c, h, w = ds.image_shape
            if h != w:
                raise ValueError(f"images must be square, got {h}x{w}")
            sizes = {
                "vocab_size": self.tokenizer.vocab_size,
                "context_length": cfg.context_length,
                "image_size": h,
                "channels": c,
            }
            self.model_config = ModelConfig.from_dict({**cfg.model, **sizes})
            rng = backend.seed(cfg.seed)  # weights drawn on the host, then moved: CPU and GPU start alike
            self.model = build_model(self.model_config, rng=rng)
        self.optimizer = AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.order_rng = np.random.default_rng([cfg.seed, 1])
        self.augment_rng = np.random.default_rng([cfg.seed, 2])
        self.epoch, self.batch = 0, 0
        self.loss_sum, self.metrics = 0.0, []
        self._order_state = self.order_rng.bit_generator.state
        mean_std = [list(CLIP_MEAN), list(CLIP_STD)] if cfg.init_from is not None else _normaliser(cfg, ds)
        self.train_state = {"mean_std": mean_std, "class_names": list(ds.class_names)}
        self.saved_progress: dict[str, Any] | None = None  # where the checkpoint on disk stands: none yet

    def _start_from_pretrained(self, source: str) -> None:
        """The model, its sizes and its byte-pair tokenizer from a released CLIP's folder."""
        pretrained = load_pretrained(source)  # the images were brought to its size in __init__
        self.tokenizer, self.model_config, self.model = pretrained.tokenizer, pretrained.config, pretrained.model
        self.model.train()  # load_pretrained hands it over in evaluation mode
        self.cfg = dataclasses.replace(self.cfg, context_length=self.model_config.context_length)  # 77 for CLIP

    def _fit_images(self, model_config: ModelConfig) -> None:
        """Bring the training and test images to the model's input size, once, on the host (CLIP's resize and crop).

        Only a run whose model was not sized from its data needs this: one fine-tuned from a
        released CLIP (``init_from``), which sees 224 × 224 images where CIFAR-10's are 32 × 32 (a
        folder of photos was read at the model's size already, by
        :func:`~miniclip.evaluation.trained_run.load_photos_for_clip`). The images are
        resized here, before the first step, rather than in every step: CLIP's preprocessing is
        PIL's bicubic filter (:func:`~miniclip.pretrained.preprocess.prepare_batch`, shortest side
        to the model's size, centre crop), which runs on the host one image at a time, so inside
        the step it would stall the device on every batch and redo each image every epoch. Done
        once, a step stays array arithmetic on the device as in any run, the augmentation (crop,
        flip) works at the model's size, and the evaluation sees the same pixels. The price is
        memory — 150 kB an image at 224, 7.5 GB for CIFAR-10's 50,000 training images — so it is
        checked first, and ``--n-train`` keeps a subset.
        """
        size, ds = model_config.image_size, self.dataset
        if ds.image_shape == (model_config.channels, size, size):
            return
        n_train, n_test = len(ds.train_labels), len(ds.test_labels)
        what = f"{n_train:,} training and {n_test:,} test images at the model's {size}×{size}"
        try:
            backend.check_memory((n_train + n_test) * 3 * size * size, what)  # uint8, on the host
        except ValueError as exc:
            raise ValueError(f"{exc} (lower --n-train, or --n-test)") from None
        desc, total = f"resizing to {size}×{size}", n_train + n_test
        with tqdm(total=total, desc=desc, unit="image", disable=not self.show_progress) as bar:
            train, test = (resized(images, size, bar) for images in (ds.train_images, ds.test_images))
        self.dataset = dataclasses.replace(ds, train_images=train, test_images=test)

    def _resume(self, ckpt: Checkpoint) -> None:
        saved = TrainConfig.from_dict(ckpt.train_config["config"])
        check_same_run(self.out, saved, ckpt.model_config, ckpt.progress["epoch"], settings_of(self.cfg))
        # The saved configuration, where it says the same: only where the run and its data are, and how long, differ.
        self.cfg = dataclasses.replace(
            saved, out_dir=self.cfg.out_dir, data=self.cfg.data, data_dir=self.cfg.data_dir, epochs=self.cfg.epochs
        )
        self.tokenizer, self.model_config, self.model = ckpt.tokenizer, ckpt.model_config, ckpt.model
        self.optimizer = AdamW(self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        if ckpt.optimizer_state is not None:
            self.optimizer.load_state(ckpt.optimizer_state)
        self.order_rng, self.augment_rng = np.random.default_rng(), np.random.default_rng()
        self.order_rng.bit_generator.state = self._order_state = ckpt.rng_state["order"]
        self.augment_rng.bit_generator.state = ckpt.rng_state["augment"]
        self.epoch, self.batch = ckpt.progress["epoch"], ckpt.progress["batch"]
        self.loss_sum, self.metrics = ckpt.progress["loss_sum"], ckpt.metrics
        self.train_state = ckpt.train_config["state"]
        check_classes(self.out, self.cfg.data, self.train_state.get("class_names"), self.dataset.class_names)
        if self.cfg.init_from is not None:
            self._fit_images(self.model_config)  # a fine-tuned run's images, to its model's size again
        self.saved_progress = dict(ckpt.progress)

    # -- one step -------------------------------------------------------------------------
    def step(self, idx: np.ndarray, step: int) -> Any:
        """One optimisation step on the training examples ``idx``; returns the loss (0-d, on the device)."""
        cfg, rng, b = self.cfg, self.augment_rng, len(idx)
        # All of this step's random numbers are drawn on the host, in a fixed order (crop offsets,
        # flips, templates), so a CPU and a GPU run with one seed draw alike and a checkpoint's
        # generator state resumes them exactly. Stacked under the batch indices they reach the
        # device in one copy rather than one per kind, and are unpacked by name.
        draws = {"index": idx}  # (B,) which training examples
        if cfg.augment:
            draws["dy"], draws["dx"] = draw_crop_offsets(rng, b, CROP_PADDING)  # (B,) each
            draws["flip"] = draw_flips(rng, b, FLIP_P)  # (B,)
        draws["template"] = draw_templates(rng, b, len(self.templates))  # (B,) template of each caption
        packed = backend.to_device(np.stack(list(draws.values())).astype(np.int64))  # (len(draws), B): one copy
        on_device = dict(zip(draws, packed, strict=True))
        all_labels = labels = self.train_labels[on_device["index"]]  # (B,): the targets pair every image and caption
        if self.world.size > 1:  # every rank drew the whole batch alike: each builds only its own pairs
            own = own_slice(self.world, b)
            on_device = {kind: values[own] for kind, values in on_device.items()}
            labels = all_labels[own]  # (n,)
        images = self.train_images[on_device["index"]]  # (n, C, H, W) uint8; n = B on one process
        if cfg.augment:
            images = random_crop(images, CROP_PADDING, offsets=(on_device["dy"], on_device["dx"]))  # (B, C, H, W)
            images = horizontal_flip(images, flips=on_device["flip"])
        caption = caption_rows(labels, on_device["template"], len(self.templates))  # (B,) rows of the caption table
        if self.caption_words is not None:  # predictive: predict each image's caption words
            targets = self.caption_words[caption]  # (B, V)
        else:  # contrastive: which captions match which images
            targets = label_aware_targets(all_labels, np.float32) if cfg.targets == "label_aware" else None
            if targets is not None and self.world.size > 1:
                targets = local_targets(targets, self.world.rank, len(labels))  # its rows and columns, (2n, B)
        self.optimizer.set_lr(
            warmup_cosine(step, self.total_steps, int(cfg.warmup * self.total_steps), cfg.lr, cfg.min_lr)
        )
        ids, mask = self.caption_ids[caption], self.caption_mask[caption]
        try:
            # A diverging run overflows long before its loss is NaN; NumPy's RuntimeWarnings about it
            # would flood the terminal and say nothing the guard below does not say better.
            with np.errstate(all="ignore"):
                return train_step(
                    self.model,
                    self.optimizer,
                    ids,
                    self.normalize_fn(images),
                    mask,
                    targets,
                    grad_clip=cfg.grad_clip,
                    world=self.world,
                )
        except TrainingDivergedError as exc:
            raise TrainingDivergedError(
                f"{exc} at step {step}: stopping; {self.what_is_kept()} (try a lower --lr)"
            ) from None

    def what_is_kept(self) -> str:
        """What a stopped run leaves to resume from, in words: the checkpoint on disk and where it stands, or none."""
        if self.saved_progress is None:
            return f"no checkpoint was written yet, so there is nothing in {self.out} to resume"
        epoch, batch = self.saved_progress["epoch"], self.saved_progress["batch"]
        where = f"after epoch {epoch}" if batch == 0 else f"in epoch {epoch + 1}, after batch {batch}"
        return f"the last good checkpoint, {checkpoint_file(self.out)} ({where}), is kept"

    # -- the loop -------------------------------------------------------------------------
    def run(self, on_step: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Train until ``cfg.epochs``; return the metrics of every epoch.

        Ctrl-C does not cut a step in half: the first one asks the loop to stop at the next step
        boundary, where it saves a checkpoint (with its position inside the epoch) and raises
        ``KeyboardInterrupt``; a second Ctrl-C stops at once. SIGTERM and SIGHUP (a ``kill``, a
        closed terminal, a batch system's time limit) do the same. ``on_step(step)`` is called at
        every boundary (tests raise ``KeyboardInterrupt`` from it to simulate Ctrl-C).
        """
        self.stop_requested = False
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self._request_stop) for sig in STOP_SIGNALS}
        try:
            while self.epoch < self.cfg.epochs:
                self._run_epoch(on_step)
        except KeyboardInterrupt:
            self._flush_losses()
            self.save()  # --resume continues from this very step
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.metrics

    def _request_stop(self, signum: int, frame: Any) -> None:
        self.stop_requested = True
        if self.world.size > 1:
            # Ranks cut at different points of a step would wait for each other forever: on many
            # processes every signal waits for the boundary, and mpiexec's own second Ctrl-C ends them all.
            return
        for sig in STOP_SIGNALS:  # a second signal interrupts at once
            signal.signal(sig, interrupt_now)

    def _flush_losses(self) -> list[float]:
        """Bring the losses of the last few steps to the host (one wait for the device), check them, sum them."""
        if not self._pending:
            return []
        xp = backend.get_array_module(self._pending[0])
        recent = backend.to_host(xp.stack(self._pending))  # one device → host copy for all of them
        self._pending = []
        recent = self.world.all_reduce(recent).tolist()  # on many ranks: each held its share of every loss
        if not all(math.isfinite(x) for x in recent):
            raise TrainingDivergedError(
                f"the loss became {next(x for x in recent if not math.isfinite(x))} in epoch {self.epoch + 1}: "
                f"stopping; {self.what_is_kept()} (try a lower --lr)"
            )
        if self.epoch == 0 and self.batch == len(recent):  # these began with step 0: the untrained model's loss
            self.train_state["first_loss"] = recent[0]  # (≈ ln N for N pairs: every caption equally likely)
        self.loss_sum += sum(recent)
        return recent

    def _run_epoch(self, on_step: Callable[[int], None] | None) -> None:
        cfg = self.cfg
        order_state = self.order_rng.bit_generator.state  # saved so a resumed epoch shuffles the same way
        epoch_batches = list(batches(len(self.dataset.train_labels), cfg.batch_size, self.order_rng))  # (B,) each
        self._order_state = order_state
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.batch,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not self.show_progress,
            leave=True,
        )
        check_every = 1 if backend.get_device() == "cpu" else 20  # a float() waits for the GPU: not every step
        start, done_before = time.perf_counter(), self.batch
        while self.batch < self.steps_per_epoch:
            step = self.epoch * self.steps_per_epoch + self.batch
            if on_step is not None:
                on_step(step)
            if self._stop_agreed():
                raise KeyboardInterrupt
            idx = epoch_batches[self.batch]  # a resumed epoch reshuffles alike and skips the batches done
            self.snapshot.take()  # what an interrupted step is rolled back to (training/rollback.py)
            pending, batch = len(self._pending), self.batch
            try:
                self._pending.append(self.step(idx, step))
                self.batch += 1  # the step counts from here: a KeyboardInterrupt after this keeps it
            except KeyboardInterrupt:
                if self.batch == batch:  # interrupted inside the step: back to the state before it
                    del self._pending[pending:]
                    self.snapshot.restore()
                raise
            bar.update(1)
            if len(self._pending) >= check_every or self.batch == self.steps_per_epoch:
                recent = self._flush_losses()
                rate = (self.batch - done_before) * cfg.batch_size / (time.perf_counter() - start)
                shown = {"loss": f"{recent[-1]:.3f}"}
                if (scale := self._logit_scale()) is not None:  # the contrastive head's learned e^s = 1/τ
                    shown["scale"] = f"{scale:.1f}"
                bar.set_postfix(**shown, img_s=f"{rate:.0f}")
        bar.close()
        seconds = time.perf_counter() - start
        self._end_epoch(seconds, (self.steps_per_epoch - done_before) * cfg.batch_size / seconds)

    def _stop_agreed(self) -> bool:
        """Whether to stop at this step boundary: on many ranks, when any rank was asked, all stop here together."""
        if self.world.size == 1:
            return self.stop_requested
        return bool(self.world.all_reduce(np.array([float(self.stop_requested)]))[0])

    def _logit_scale(self) -> float | None:
        """The contrastive head's logit scale e^s = 1/τ (one device read), or None: the predictive head has none."""
        return backend.to_float(self.model.logit_scale.scale) if self.model.objective == "contrastive" else None

    def _end_epoch(self, seconds: float, images_per_second: float) -> None:
        # Rank 0 evaluates and writes (on one process, the only rank); on many, the others wait for it, asleep.
        if self.lead:
            self.metrics.append(
                {
                    "epoch": self.epoch + 1,
                    "images_seen": (self.epoch + 1) * self.steps_per_epoch * self.cfg.batch_size,  # learning curves
                    "train_loss": self.loss_sum / self.steps_per_epoch,
                    **({"first_loss": self.train_state.get("first_loss")} if self.epoch == 0 else {}),
                    "logit_scale": self._logit_scale(),  # None for the predictive objective: no temperature
                    "zero_shot": accuracy_table(self.evaluate()),
                    "seconds": seconds,
                    "images_per_second": images_per_second,
                }
            )
        self.epoch, self.batch, self.loss_sum = self.epoch + 1, 0, 0.0
        self._order_state = self.order_rng.bit_generator.state
        self.save()  # rank 0 writes; the others note what it wrote
        if self.lead:
            write_text(self.out / "metrics.jsonl", "".join(json_text(m) + "\n" for m in self.metrics))
            plot_curves(self.metrics, self.out / "curves.png")
        if self.show_progress:
            accuracies = ", ".join(f"{name} {v['top1']:.1%}" for name, v in self.metrics[-1]["zero_shot"].items())
            tqdm.write(f"epoch {self.epoch}: loss {self.metrics[-1]['train_loss']:.3f}, zero-shot top-1: {accuracies}")
        self.world.barrier()

    def evaluate(self) -> dict[str, dict[str, Any]]:
        """Zero-shot accuracy on the test split for each template set (before the last epoch ends: ``eval_images``)."""
        ds = self.dataset
        if self.cfg.eval_images and self.epoch + 1 < self.cfg.epochs:
            n = self.cfg.eval_images
            ds = dataclasses.replace(ds, test_images=ds.test_images[:n], test_labels=ds.test_labels[:n])
        mc = self.model_config  # a bounded number at a time: a ViT-B/32 keeps tens of MB of activations for each
        return evaluate_zero_shot(
            self.model,
            self.tokenizer,
            ds,
            self.normalize_fn,
            self.cfg.context_length,
            eval_templates(self.dataset),
            batch_size=encode_batch_size(mc.image_size),
            flip_average=self.cfg.flip_average,
            text_batch=text_batch_size(mc.context_length, mc.text_width),
        )

    def save(self) -> Path:
        """Write the checkpoint atomically: weights, optimiser, generators, position and metrics.

        On many ranks only rank 0 writes (every rank holds the same state); the others note what it wrote.
        """
        progress = {"epoch": self.epoch, "batch": self.batch, "loss_sum": self.loss_sum}
        if not self.lead:
            self.saved_progress = progress
            return checkpoint_file(self.out)
        file = save_checkpoint(
            self.out,
            model=self.model,
            model_config=self.model_config,
            tokenizer=self.tokenizer,
            optimizer=self.optimizer,
            train_config={"config": self.cfg.to_dict(), "state": self.train_state},
            progress=progress,
            rng_state={"order": self._order_state, "augment": self.augment_rng.bit_generator.state},
            metrics=self.metrics,
        )
        self.saved_progress = progress
        return file


def train(
    cfg: TrainConfig, *, resume: bool = False, show_progress: bool = True, on_step: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    """Build (or resume) a run from ``cfg`` and train it; return the per-epoch metrics."""
    return Trainer(cfg, resume=resume, show_progress=show_progress).run(on_step)
