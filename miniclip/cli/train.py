"""``miniclip train``: train a CLIP on CIFAR-10, the synthetic shapes, or a folder of your own images (lesson 09).

``--init-from NAME|DIR`` fine-tunes a released CLIP instead (lesson 16): the model and its tokenizer
come from the pretrained folder, the rest of the run (data, schedule, checkpoints) is as any run's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from miniclip import backend
from miniclip.cli.options import config_default, fraction, non_negative_int, positive, positive_int
from miniclip.encoders.registry import names
from miniclip.model.config import OBJECTIVES
from miniclip.training.configs import CONFIGS, FINETUNE_LR, NAMED_DATASETS, TARGETS, named_config

SETTINGS = ("data", "data_dir", "epochs", "batch_size", "lr", "seed", "targets", "n_train", "n_test", "test_fraction")
MODEL_SETTINGS = ("image_encoder", "text_encoder", "objective")


def preset_sizes(field_name: str) -> str:
    """``; 2048 with --config tiny``: the named configurations that set a split size of the shapes."""
    sizes = {name: getattr(cfg, field_name) for name, cfg in CONFIGS.items()}
    return "".join(f"; {size} with --config {name}" for name, size in sizes.items() if size is not None)


def add(commands: argparse._SubParsersAction, device: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "train",
        parents=[device],
        help="train a CLIP on CIFAR-10, the synthetic shapes, or a folder of your own images",
        description="Train a CLIP with a progress bar; evaluate zero-shot every epoch; write metrics.jsonl, "
        "curves.png and an atomic checkpoint to the output folder. Ctrl-C saves; --resume continues.",
    )
    p.add_argument(
        "--config",
        choices=sorted(CONFIGS),
        help="named configuration (default: cpu; gpu with --device gpu; shapes with --data shapes)",
    )
    p.add_argument(
        "--data",
        help=f"cifar10, shapes, or a folder with one sub-folder per class ({config_default('data')}; "
        "without --config: cifar10)",
    )
    p.add_argument("--data-dir", help="where datasets are kept (default: $MINICLIP_DATA or ./datasets)")
    p.add_argument(
        "--out",
        help=f"output folder for checkpoint, metrics and plots ({config_default('out_dir')}; "
        "runs/<folder name> for --data FOLDER)",
    )
    p.add_argument("--epochs", type=positive_int, help=f"epochs to train ({config_default('epochs')})")
    p.add_argument(
        "--batch-size", type=positive_int, help=f"image-caption pairs per step ({config_default('batch_size')})"
    )
    p.add_argument("--lr", type=positive, help=f"peak learning rate ({config_default('lr')})")
    p.add_argument(
        "--seed", type=non_negative_int, help=f"seed of weights, shuffling and augmentation ({config_default('seed')})"
    )
    p.add_argument(
        "--image-encoder", choices=names("image"), help=f"the image encoder ({config_default('model.image_encoder')})"
    )
    p.add_argument(
        "--text-encoder", choices=names("text"), help=f"the text encoder ({config_default('model.text_encoder')})"
    )
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        help="contrastive (CLIP, the default) or predictive (the image encoder predicts the caption's bag of words, "
        "the CLIP paper's baseline; no text encoder)",
    )
    p.add_argument(
        "--targets",
        choices=TARGETS,
        help="label_aware (same class = match) or identity (CLIP's); the contrastive objective's only",
    )
    p.add_argument(
        "--n-train",
        type=positive_int,
        help=f"training images: shapes draws this many (default 4000{preset_sizes('n_train')}); CIFAR-10 and "
        "folders keep a seeded subset of their training split (default: all of it); a configuration's sizes apply "
        "only to the dataset it names",
    )
    p.add_argument(
        "--n-test",
        type=positive_int,
        help=f"test images, likewise (shapes' default 1000{preset_sizes('n_test')}; others: all)",
    )
    p.add_argument(
        "--test-fraction",
        type=fraction,
        help="a folder of your own images: the share of each class held out for testing (default 0.2); "
        "cifar10 and shapes come with their test split",
    )
    p.add_argument("--no-augment", action="store_true", help="no random crops and flips")
    p.add_argument(
        "--init-from",
        metavar="NAME|DIR",
        help="fine-tune a released CLIP: a folder holding config.json, model.safetensors, vocab.json and merges.txt, "
        "or a Hub name fetched with `miniclip pretrained fetch` (e.g. openai/clip-vit-base-patch32). The model, its "
        "sizes and its byte-pair tokenizer come from there (no --image-encoder, --text-encoder or --objective; "
        "--config gives only the data and the schedule); images are resized to its input (224×224: mind "
        f"--n-train) and normalised with CLIP's mean and std; --lr defaults to {FINETUNE_LR:g}; its evaluation sees "
        "one view of each image (no flip averaging, as CLIP's); --out defaults to "
        "runs/finetune-<model name>",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in the output folder with the configuration it was started with; "
        "flags given as well must match it, except --epochs (more epochs than trained: the schedule is recomputed)",
    )
    p.set_defaults(run=run, memory_hint="give a smaller --batch-size or --n-train")


def refuse_ignored_flags(args: argparse.Namespace, objective: str, data: str) -> None:
    """Flags that would change nothing for this run are refused, naming why, rather than silently ignored."""
    if objective == "predictive":
        for flag, value in (("--targets", args.targets), ("--text-encoder", args.text_encoder)):
            if value is not None:
                raise ValueError(
                    f"{flag} {value}: the predictive objective has no text encoder and no contrastive targets "
                    f"(the image encoder predicts each caption's words), so {flag} would change nothing: leave it out"
                )
    if args.test_fraction is not None and data in NAMED_DATASETS:
        raise ValueError(
            f"--test-fraction is for a folder of your own images; {data} comes with its test split "
            "(choose its size with --n-test)"
        )


def refuse_model_flags(args: argparse.Namespace) -> None:
    """With ``--init-from`` the pretrained folder fixes the model: a flag that would choose another is refused."""
    for name in MODEL_SETTINGS:
        if getattr(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise ValueError(
                f"{flag} {getattr(args, name)}: the model of --init-from {args.init_from} is the one in its folder "
                f"(its config.json), so {flag} cannot change it: leave {flag} out, or train from scratch without "
                "--init-from"
            )


def run(args: argparse.Namespace) -> int:
    from miniclip.distributed.world import launched_world

    world = launched_world()  # one process, unless mpiexec started several
    if world.size == 1:
        return _train(*_prepare(args, world), world)
    # Many ranks. Setting up (flags, data, model) talks to no other rank. Rank 0 sets up first, so a
    # download or an unpack happens once, then the others read what it prepared; after each turn the
    # ranks agree on who failed, the first of them says why, and every rank returns.
    prepared: Any = None
    for turn in (world.rank == 0, world.rank != 0):
        failure: BaseException | None = None
        if turn:
            try:
                prepared = _prepare(args, world)
            except BaseException as exc:  # held until every rank knows
                failure = exc
        world.barrier()  # the ranks whose turn it is not wait here asleep, not spinning
        failed = np.zeros(world.size)
        failed[world.rank] = failure is not None
        failed = world.all_reduce(failed)
        if failed.any():
            if failure is not None and world.rank == int(np.argmax(failed)):
                raise failure  # said once, as one process would say it
            return 130 if isinstance(failure, KeyboardInterrupt) else 2
    # Training talks to every rank at every step: an error on one of them must end all of them, or the
    # others would wait for it forever.
    try:
        return _train(*prepared, world)
    except BaseException as exc:  # every rank ends, with the message of the one that failed
        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {exc}"
        print(f"\nminiclip train (rank {world.rank} of {world.size}): {what}", file=sys.stderr)  # below the bars
        world.abort(130 if isinstance(exc, KeyboardInterrupt) else 1)
        raise  # not reached: the abort ends this process


def _speaker(world: Any) -> Any:
    """``print`` on rank 0, which speaks for all; nothing on the other ranks."""
    return print if world.rank == 0 else (lambda *_, **__: None)


def _prepare(args: argparse.Namespace, world: Any) -> tuple[Any, Any]:
    """Everything before the first step: the configuration, then the trainer (output folder, data, model)."""
    from miniclip.training.loop import Trainer
    from miniclip.training.resume import resume_config, typed_settings

    say = _speaker(world)
    given = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    if args.no_augment:
        given["augment"] = False
    model = {name: getattr(args, name) for name in MODEL_SETTINGS if getattr(args, name) is not None}
    if args.init_from is not None:
        refuse_model_flags(args)
        if not args.resume:  # a missing or incomplete model folder: one line, before anything is printed or loaded
            from miniclip.pretrained.load import pretrained_folder

            pretrained_folder(args.init_from)
        given["init_from"] = args.init_from
    name = args.config or ("shapes" if args.data == "shapes" else "gpu" if backend.get_device() == "gpu" else "cpu")
    out = args.out
    if out is None and args.init_from is not None:  # runs/finetune-clip-vit-base-patch32
        out = f"runs/finetune-{Path(args.init_from.rstrip('/')).name or 'clip'}"
    elif out is None and args.data not in (None, *NAMED_DATASETS):  # a folder of your own: runs/<its name>
        out = f"runs/{Path(args.data).name or 'images'}"
    cfg = named_config(name, **given, **({"out_dir": out} if out else {}), model=model)
    if args.resume:
        cfg, notes = resume_config(cfg.out_dir, typed_settings(args.config, given, model))
        start = f"resuming {cfg.out_dir} on {backend.get_device()}, as configured when it started"
    else:
        notes, start = [], f"configuration {name!r} on {backend.get_device()}, writing to {cfg.out_dir}"
        if cfg.init_from is not None:
            start = f"fine-tuning {cfg.init_from} with {start}"
    refuse_ignored_flags(args, cfg.model.get("objective", "contrastive"), cfg.data)
    say(f"miniclip train: {start}")
    for note in notes:
        say(f"miniclip train: {note}")
    trainer = Trainer(cfg, resume=args.resume, world=world)  # checks the output folder, then loads the data
    if world.size > 1:
        from miniclip.distributed.data_parallel import traffic_per_step

        sent = traffic_per_step(trainer.model, trainer.model_config.embed_dim, cfg.batch_size, world.size)
        say(
            f"miniclip train: {world.size} processes, {cfg.batch_size // world.size} pairs of each batch apiece; "
            "each receives per step " + ", ".join(f"{k.replace('_', '-')} {v / 1e3:,.1f} kB" for k, v in sent.items())
        )
    ds = trainer.dataset
    n_train, n_test = len(ds.train_labels), len(ds.test_labels)
    say(
        f"miniclip train: data {cfg.data}: {n_train:,} training and {n_test:,} test image{'s' * (n_test != 1)}, "
        f"{ds.num_classes} classes"
    )
    return cfg, trainer


def _train(cfg: Any, trainer: Any, world: Any) -> int:
    """Run the trainer to its last epoch; what is said at the end (rank 0 alone)."""
    from miniclip.training.loop import TrainingDivergedError

    say = _speaker(world)
    try:
        metrics = trainer.run()
    except KeyboardInterrupt:
        say(f"\ninterrupted: checkpoint saved in {cfg.out_dir}; continue with the same command and --resume")
        return 130
    except TrainingDivergedError as exc:  # a run that failed, not a bad input: exit 1, as a failed gradient check
        if world.size > 1:
            raise  # every rank ends: run() says it once and aborts
        print(f"miniclip train: error: {exc}", file=sys.stderr)
        return 1
    last = metrics[-1] if metrics else {}
    for set_name, acc in last.get("zero_shot", {}).items():
        say(f"zero-shot top-1 ({set_name}): {acc['top1']:.2%}   top-5: {acc['top5']:.2%}")
    say(f"checkpoint, metrics.jsonl and curves.png in {cfg.out_dir}")
    return 0
