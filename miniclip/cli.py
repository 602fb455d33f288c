"""The ``miniclip`` command: one sub-command per job, each with ``--help``.

    miniclip walkthrough            the 3-pair walkthrough, every number printed (13 steps)
    miniclip gradcheck              finite-difference check of every hand-written backward
    miniclip train                  train a CLIP (CIFAR-10, shapes, or your own image folders)
    miniclip eval CKPT [CKPT...]    zero-shot with four prompt sets, confusion, heatmap, recall@k, linear probe;
                                    several checkpoints: a model ensemble
    miniclip classify CKPT IMG...   classify image files zero-shot with any --labels
    miniclip search CKPT "QUERY"    the test images that best match a caption, as a grid
    miniclip bench                  images/s of a training step, GFLOP/s, PyTorch beside it, time per layer
    miniclip probe CKPT             maps, similarity matrices, blur robustness, subspace angles, persistence
    miniclip compare RUN RUN...     zero-shot accuracy against images seen, and the efficiency ratio

``--device cpu|gpu`` (or ``MINICLIP_DEVICE``) picks NumPy or CuPy. Errors a user can fix
(a missing GPU, a bad value) end with a one-line message and a non-zero exit, not a traceback.

Building the parser needs only plain values (the named configurations, the encoder names);
each command imports its own code when it runs, so ``miniclip gradcheck`` and ``miniclip
walkthrough`` never load the trainer, tqdm, Matplotlib or Pillow.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from miniclip import backend
from miniclip.model.config import IMAGE_ENCODERS, OBJECTIVES, TEXT_ENCODERS
from miniclip.training.configs import CONFIGS, NAMED_DATASETS, TARGETS, named_config


def _base(text: str) -> float:
    """Parse a softmax base: a finite number greater than 1 (and small enough for the walkthrough), or ``e``."""
    if text.strip().lower() == "e":
        return math.e
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"base must be a number greater than 1 or 'e', got {text!r}") from None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"base must be greater than 1, got {text!r}")
    from miniclip.teaching.walkthrough import check_base  # imported here: building the parser stays light

    try:
        return check_base(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def cmd_walkthrough(args: argparse.Namespace) -> int:
    from miniclip.teaching.walkthrough import format_walkthrough

    print(format_walkthrough(base=args.base, lr=args.lr))
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from miniclip.teaching.gradient_cases import CASES, format_table, run_checks

    names = None
    if args.only:
        names = [n for n in CASES if any(word.lower() in n.lower() for word in args.only)]
        if not names:
            print(f"miniclip gradcheck: no check matches {args.only}; available: {', '.join(CASES)}", file=sys.stderr)
            return 2
    results = run_checks(names, seed=args.seed)
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1


def _whole_number(least: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number no smaller than ``least``, or a one-line error saying so."""
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


_positive_int = _whole_number(1)


def _fraction(text: str) -> float:
    """An argparse ``type``: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


_non_negative_int = _whole_number(0)


def _config_default(field_name: str) -> str:
    """``default: the configuration's, 12 for cpu, 30 for gpu, ...``, read from :data:`CONFIGS` (``model.X`` too)."""

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


def _refuse_ignored_flags(args: argparse.Namespace, objective: str, data: str) -> None:
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


def _preset_sizes(field_name: str) -> str:
    """``; 2048 with --config tiny``: the named configurations that set a split size of the shapes."""
    return "".join(
        f"; {getattr(c, field_name)} with --config {n}" for n, c in CONFIGS.items() if getattr(c, field_name)
    )


def cmd_train(args: argparse.Namespace) -> int:
    from miniclip.training.loop import Trainer, TrainingDivergedError, resume_config

    name = args.config or ("shapes" if args.data == "shapes" else "gpu" if backend.get_device() == "gpu" else "cpu")
    overrides: dict = {"model": {}}
    # What the user typed, field → (flag, value): with --resume each must match the saved run. The
    # flags' defaults are None (or False), so a flag left out is not typed; --config types all its fields
    # (its split sizes only for the dataset it names: see named_config).
    typed: dict = {}
    if args.config:
        preset = named_config(args.config, **({"data": args.data} if args.data else {})).to_dict()
        typed |= {f"model.{k}": (f"--config {args.config}", v) for k, v in preset.pop("model").items()}
        typed |= {k: (f"--config {args.config}", v) for k, v in preset.items() if k not in ("out_dir", "data_dir")}
    for field_name in (
        "data",
        "data_dir",
        "epochs",
        "batch_size",
        "lr",
        "seed",
        "targets",
        "n_train",
        "n_test",
        "test_fraction",
    ):
        if getattr(args, field_name) is not None:
            overrides[field_name] = getattr(args, field_name)
            typed[field_name] = ("--" + field_name.replace("_", "-"), overrides[field_name])
    if args.out is not None:
        overrides["out_dir"] = args.out
    elif args.data not in (None, *NAMED_DATASETS):
        overrides["out_dir"] = f"runs/{Path(args.data).name or 'images'}"
    if args.no_augment:
        overrides["augment"] = False
        typed["augment"] = ("--no-augment", False)
    if args.image_encoder is not None:
        overrides["model"]["image_encoder"] = args.image_encoder
        typed["model.image_encoder"] = ("--image-encoder", args.image_encoder)
    if args.text_encoder is not None:
        overrides["model"]["text_encoder"] = args.text_encoder
        typed["model.text_encoder"] = ("--text-encoder", args.text_encoder)
    if args.objective is not None:
        overrides["model"]["objective"] = args.objective
        typed["model.objective"] = ("--objective", args.objective)
    cfg = named_config(name, **overrides)
    if args.resume:
        cfg, notes = resume_config(cfg.out_dir, typed)  # the configuration the run was started with
        start = f"resuming {cfg.out_dir} on {backend.get_device()}, as configured when it started"
    else:
        notes, start = [], f"configuration {name!r} on {backend.get_device()}, writing to {cfg.out_dir}"
    _refuse_ignored_flags(args, cfg.model.get("objective", "contrastive"), cfg.data)
    print(f"miniclip train: {start}")
    for note in notes:
        print(f"miniclip train: {note}")
    trainer = Trainer(cfg, resume=args.resume)  # checks the output folder, then loads the data
    ds = trainer.dataset
    n_train, n_test = len(ds.train_labels), len(ds.test_labels)
    print(
        f"miniclip train: data {cfg.data}: {n_train:,} training and {n_test:,} test image{'s' * (n_test != 1)}, "
        f"{ds.num_classes} classes"
    )
    try:
        metrics = trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint saved in {cfg.out_dir}; continue with the same command and --resume")
        return 130
    except TrainingDivergedError as exc:
        print(f"miniclip train: error: {exc}", file=sys.stderr)
        return 1
    last = metrics[-1] if metrics else {}
    for set_name, acc in last.get("zero_shot", {}).items():
        print(f"zero-shot top-1 ({set_name}): {acc['top1']:.2%}   top-5: {acc['top5']:.2%}")
    print(f"checkpoint, metrics.jsonl and curves.png in {cfg.out_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from miniclip.evaluation.ensemble import evaluate_ensemble
    from miniclip.evaluation.report import evaluate_run

    if len(args.checkpoints) > 1:  # a model ensemble: checked before anything is loaded
        if args.out is None:
            raise ValueError(
                f"an ensemble of {len(args.checkpoints)} runs needs --out, a folder of its own "
                "(no member's run folder is the ensemble's)"
            )
        if args.linear_probe:
            raise ValueError("--linear-probe evaluates one run: give one checkpoint (once per member)")
        report = evaluate_ensemble(args.checkpoints, out_dir=args.out, data=args.data, data_dir=args.data_dir)
    else:
        report = evaluate_run(
            args.checkpoints[0],
            out_dir=args.out,
            data=args.data,
            data_dir=args.data_dir,
            pairs=args.pairs,
            linear_probe=args.linear_probe,
            progress=None if args.no_progress else lambda line: print(f"miniclip eval: {line}", file=sys.stderr),
        )
    print(report)
    return 0


def _warner(command: str) -> Callable[[str], None]:
    """Print a warning for ``command`` on stderr, one line, so that stdout stays the result."""
    return lambda message: print(f"miniclip {command}: warning: {message}", file=sys.stderr)


def cmd_classify(args: argparse.Namespace) -> int:
    from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES
    from miniclip.evaluation.classify_and_search import NOT_KNOWN, classify_images, unknown_words
    from miniclip.evaluation.trained_run import load_run

    run = load_run(args.checkpoint)  # refuses a checkpoint that does not say how its images were normalised
    run.require_text_encoder("classifying with any labels (their prompts are embedded)")
    ckpt = run.checkpoint
    warn = _warner("classify")
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


def cmd_search(args: argparse.Namespace) -> int:
    from miniclip.atomic import check_output_file
    from miniclip.evaluation.classify_and_search import search_images, shorten
    from miniclip.evaluation.report import run_folder
    from miniclip.evaluation.trained_run import load_run
    from miniclip.plots import plot_image_grid

    out = check_output_file(args.out or run_folder(args.checkpoint) / "search.png", ".png")  # before any loading
    run = load_run(args.checkpoint)  # refuses a checkpoint that does not say how its images were normalised
    run.require_text_encoder("searching images by a text query (the query is embedded)")
    ckpt = run.checkpoint
    dataset = run.dataset(args.data, args.data_dir)  # the run's own test split: shapes depend on its seed and sizes
    indices, scores = search_images(
        ckpt.model,
        ckpt.tokenizer,
        args.query,
        dataset.test_images,
        run.normalize,
        ckpt.model_config.context_length,
        top=args.top,
        on_warning=_warner("search"),
    )
    titles = [f"{dataset.class_names[dataset.test_labels[i]]} {s:.2f}" for i, s in zip(indices, scores, strict=True)]
    plot_image_grid(dataset.test_images[indices], titles, out, ncols=min(8, len(indices)))
    print(f"best {len(indices)} test images for {shorten(args.query)!r}: {', '.join(titles)}")
    print(f"saved {out}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from miniclip.atomic import check_output_folder
    from miniclip.evaluation.report import run_folder
    from miniclip.probe.report import measure, write_report

    out = check_output_folder(args.out or run_folder(args.checkpoint) / "probe")  # before minutes of work
    probe = measure(
        args.checkpoint,
        sigmas=args.blur,
        points=args.points,
        rank=args.rank,
        seed=args.seed,
        data=args.data,
        data_dir=args.data_dir,
        progress=not args.no_progress,
    )
    write_report(probe, out)
    print((out / "summary.md").read_text(encoding="utf-8"), end="")
    print(f"figures, summary.json and summary.md in {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from miniclip.atomic import check_output_file
    from miniclip.evaluation.compare import format_comparison, load_curves, plot_learning_curves

    out = check_output_file(args.out, ".png")  # before any run is read
    curves = load_curves(args.runs, args.label, args.templates)  # refuses runs that do not compare, before drawing
    print(format_comparison(curves))
    print(f"saved {plot_learning_curves(curves, out, title=args.title or '')}")
    return 0


def _dataset_arguments() -> argparse.ArgumentParser:
    """``--data`` and ``--data-dir`` of the commands that read a run's dataset (eval, search), defined once."""
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data",
        help="the dataset: cifar10, shapes, or a folder with one sub-folder per class (default: the one trained on; "
        "give it when the run's folder has moved or was given as a relative path from another directory)",
    )
    data.add_argument("--data-dir", help="where CIFAR-10 is kept (default: as in training)")
    return data


def cmd_bench(args: argparse.Namespace) -> int:
    from miniclip.measure.bench import run_bench

    result = run_bench(
        args.config,
        image_encoder=args.image_encoder,
        text_encoder=args.text_encoder,
        batch_size=args.batch_size,
        warmup=args.warmup,
        steps=args.steps,
        compare_torch=not args.no_torch,
        torch_threads=args.torch_threads,
        layers=args.layers,
        layer_steps=args.layer_steps,
        gemm_size=args.gemm_size,
        show=print,
    )
    return 1 if result["torch"].get("same_loss") is False else 0  # PyTorch computed another loss: a bug somewhere


def build_parser() -> argparse.ArgumentParser:
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument(
        "--device",
        choices=backend.DEVICES,
        default=argparse.SUPPRESS,
        help="run on the CPU (NumPy) or the GPU (CuPy); default: $MINICLIP_DEVICE or cpu",
    )
    parser = argparse.ArgumentParser(
        prog="miniclip",
        description="CLIP rebuilt from scratch in NumPy: every forward and backward pass by hand.",
        parents=[device],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data = _dataset_arguments()

    p = sub.add_parser(
        "walkthrough",
        parents=[device],
        help="print the 13-step walkthrough for 3 text-image pairs, every number checkable by hand",
        description="The 3-pair walkthrough: lookup, patches, encoders, pooling, projection, similarity, "
        "softmax both ways (3^x by hand beside e^x), gradients, and one SGD update.",
    )
    p.add_argument("--base", type=_base, default=3.0, help="softmax base: 3 (by hand, default) or e")
    p.add_argument("--lr", type=_positive, default=0.1, help="learning rate of the one SGD update (default 0.1)")
    p.set_defaults(func=cmd_walkthrough)

    p = sub.add_parser(
        "gradcheck",
        parents=[device],
        help="check every hand-written backward against finite differences (float64)",
        description="Central finite differences in float64 against a random upstream gradient, for every "
        "layer, the contrastive head and the whole model. Exits 1 if any check fails.",
    )
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only checks whose name contains one of these words")
    p.add_argument(
        "--seed", type=_non_negative_int, default=0, help="seed for weights, inputs and upstream gradients (default 0)"
    )
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser(
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
        help=f"cifar10, shapes, or a folder with one sub-folder per class ({_config_default('data')}; "
        "without --config: cifar10)",
    )
    p.add_argument("--data-dir", help="where datasets are kept (default: $MINICLIP_DATA or ./datasets)")
    p.add_argument(
        "--out",
        help=f"output folder for checkpoint, metrics and plots ({_config_default('out_dir')}; "
        "runs/<folder name> for --data FOLDER)",
    )
    p.add_argument("--epochs", type=_positive_int, help=f"epochs to train ({_config_default('epochs')})")
    p.add_argument(
        "--batch-size", type=_positive_int, help=f"image-caption pairs per step ({_config_default('batch_size')})"
    )
    p.add_argument("--lr", type=_positive, help=f"peak learning rate ({_config_default('lr')})")
    p.add_argument(
        "--seed",
        type=_non_negative_int,
        help=f"seed of weights, shuffling and augmentation ({_config_default('seed')})",
    )
    p.add_argument(
        "--image-encoder",
        choices=IMAGE_ENCODERS,
        help=f"the image encoder ({_config_default('model.image_encoder')})",
    )
    p.add_argument(
        "--text-encoder",
        choices=TEXT_ENCODERS,
        help=f"the text encoder ({_config_default('model.text_encoder')})",
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
        type=_positive_int,
        help=f"training images: shapes draws this many (default 4000{_preset_sizes('n_train')}); CIFAR-10 and "
        "folders keep a seeded subset of their training split (default: all of it); a configuration's sizes apply "
        "only to the dataset it names",
    )
    p.add_argument(
        "--n-test",
        type=_positive_int,
        help=f"test images, likewise (shapes' default 1000{_preset_sizes('n_test')}; others: all)",
    )
    p.add_argument(
        "--test-fraction",
        type=_fraction,
        help="a folder of your own images: the share of each class held out for testing (default 0.2); "
        "cifar10 and shapes come with their test split",
    )
    p.add_argument("--no-augment", action="store_true", help="no random crops and flips")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in the output folder with the configuration it was started with; "
        "flags given as well must match it, except --epochs (more epochs than trained: the schedule is recomputed)",
    )
    p.set_defaults(func=cmd_train, memory_hint="give a smaller --batch-size or --n-train")

    p = sub.add_parser(
        "eval",
        parents=[device, data],  # --data, --data-dir
        help="zero-shot accuracy, confusion matrix, similarity heatmap, retrieval recall, linear probe, ensembles",
        description="Evaluate a trained checkpoint on its dataset's test split: zero-shot top-1/top-5 with the bare "
        "class name, 'a photo of a {}.', the prompt ensemble and unseen templates; per-class accuracy and a "
        "confusion-matrix plot; an image-caption similarity heatmap; class-aware text→image / image→text "
        "recall@1/5/10 (the heatmap and recall are skipped for a predictive run, which has no text encoder); with "
        "--linear-probe, a linear probe on the image encoder's features beside zero-shot. Several runs: a model "
        "ensemble (the members' class probabilities averaged), each member's and the ensemble's top-1/top-5 and "
        "the ensemble's confusion matrix. Writes eval.json beside the plots.",
    )
    p.add_argument(
        "checkpoints",
        nargs="+",
        metavar="checkpoint",
        help="a run folder or its checkpoint.npz; several: an ensemble of runs on the same dataset and test split",
    )
    p.add_argument(
        "--out",
        help="folder for the plots and eval.json (default: the run folder; required for an ensemble, which is no "
        "single run's)",
    )
    p.add_argument("--pairs", type=_positive_int, default=5, help="images in the similarity heatmap (default 5)")
    p.add_argument(
        "--linear-probe",
        action="store_true",
        help="also fit a linear probe on the image encoder's features of the training images (all of them, and "
        "1, 4 and 16 per class) and report its test top-1 beside zero-shot's (one run only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress lines for the linear probe on stderr")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
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
    p.add_argument("--top", type=_positive_int, default=5, help="labels to print per image (default 5)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "search",
        parents=[device, data],  # --data, --data-dir
        help="find the test images that best match a text query and save them as a grid",
        description="Text→image search over the test split of the checkpoint's dataset; saves a PNG grid.",
    )
    p.add_argument("checkpoint", help="a run folder or its checkpoint.npz")
    p.add_argument("query", help='e.g. "a photo of a ship"')
    p.add_argument("--top", type=_positive_int, default=16, help="images to show (default 16)")
    p.add_argument("--out", help="PNG file to write, its name ending in .png (default: search.png in the run folder)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "bench",
        parents=[device],
        help="time a training step: images/s, GFLOP/s against a GEMM, PyTorch beside it, time per layer",
        description="Time miniclip.training.loop.train_step (the step miniclip train takes) on a fixed random "
        "batch and print images/s and ms/step (median, min, max); achieved GFLOP/s (counted forward FLOPs x 3) "
        "against the float32 GEMM of the same array library; the same model in PyTorch when it imports "
        "(same first loss, speed ratio); and, from a separate pass, the forward and backward time of every layer. "
        "Measure on an otherwise idle machine.",
    )
    p.add_argument("--config", choices=sorted(CONFIGS), default="cpu", help="named configuration (default cpu)")
    p.add_argument("--image-encoder", choices=IMAGE_ENCODERS, help="replace the configuration's image encoder")
    p.add_argument("--text-encoder", choices=TEXT_ENCODERS, help="replace the configuration's text encoder")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="images per step, at least 2 (default 256)")
    p.add_argument("--warmup", type=_non_negative_int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--steps", type=_positive_int, default=10, help="timed steps (default 10)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--torch-threads", type=_positive_int, help="PyTorch's CPU threads (default: every core)")
    p.add_argument(
        "--layers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time every layer in a separate pass (default: on)",
    )
    p.add_argument("--layer-steps", type=_positive_int, default=3, help="steps of the per-layer pass (default 3)")
    p.add_argument("--gemm-size", type=_positive_int, help="side of the square GEMM (default 2048; 4096 on the GPU)")
    p.set_defaults(func=cmd_bench, memory_hint="give a smaller --batch-size or --gemm-size")

    p = sub.add_parser(
        "compare",
        parents=[device],
        help="learning curves of several runs: zero-shot top-1 against images seen, and the efficiency ratio",
        description="Draw each run's zero-shot top-1 (its prompt ensemble, as logged every epoch) against the "
        "training images seen, on a log axis, and print how many times more images the slower of each run and "
        "the first one needed to reach the accuracy both reach (e.g. a contrastive and a predictive run).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders or their checkpoint.npz")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--label", nargs="+", help="one name per run for the legend (default: the run folders' names)")
    p.add_argument("--templates", help="the logged template set to compare (default: the dataset's prompt ensemble)")
    p.add_argument("--title", help="the figure's title")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "probe",
        parents=[device, data],  # --data, --data-dir
        help="look inside a trained run: maps, similarity matrices, blur robustness, subspace angles, persistence",
        description="Probe the embedding space of a trained run on its test split: t-SNE and PCA maps of the images "
        "(alone and with the class captions) and the gap between the two clouds; cosine similarity matrices of the "
        "class means; zero-shot accuracy per class with every test image blurred by each sigma, and the clean-blurred "
        "cosine; principal angles between class subspaces and between each class's clean and blurred subspaces; "
        "H0/H1 persistence diagrams per class and their Wasserstein distance clean to blurred. Writes the figures, "
        "summary.json and summary.md.",
    )
    p.add_argument("checkpoint", help="a run folder or its checkpoint.npz")
    p.add_argument(
        "--blur",
        nargs="+",
        type=_positive,
        default=[1.0, 2.0, 3.0, 4.0, 5.0],
        metavar="SIGMA",
        help="standard deviations of the Gaussian blur, in pixels (default: 1 2 3 4 5)",
    )
    p.add_argument(
        "--points",
        type=_positive_int,
        help="test images per class in the maps and the persistence diagrams (default: 100, or the smallest class)",
    )
    p.add_argument("--rank", type=_positive_int, default=5, help="dimensions of each class's subspace (default 5)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the subsample and of t-SNE (default 0)")
    p.add_argument("--out", help="folder for the figures and the summary (default: probe/ in the run folder)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_probe, memory_hint="give fewer --points or --blur values")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP, handled as Ctrl-C: a ``KeyboardInterrupt``, so every clean-up on the way out runs."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _command_context(command: str) -> Iterator[None]:
    """While a command runs: SIGTERM/SIGHUP interrupt like Ctrl-C, and warnings print as one line, no source."""

    def show(message: Warning | str, *rest: object, **kwargs: object) -> None:
        print(f"miniclip {command}: warning: {message}", file=sys.stderr)

    signals = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _interrupt) for sig in signals} if main_thread else {}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show  # type: ignore[assignment]  # restored by catch_warnings
            yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miniclip`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _command_context(args.command):
            if "device" in args:
                backend.set_device(args.device)
            else:
                backend.environment_device()  # a bad MINICLIP_DEVICE is named now, not inside some later step
            status = int(args.func(args))
            sys.stdout.flush()  # a reader that left shows up here, inside the handlers below, not at exit
        return status
    except backend.DeviceUnavailableError as exc:
        print(f"miniclip: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # before OSError, its base class: `miniclip walkthrough | head` is a normal exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at interpreter exit
        return 0
    except (ValueError, OSError) as exc:  # bad values, missing or corrupt files, failed downloads
        print(f"miniclip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # NumPy's message says how much; CuPy's OutOfMemoryError is a MemoryError too
        detail = f" ({exc})" if str(exc) else ""
        hint = getattr(args, "memory_hint", "close other programs, or use a machine with more memory")
        print(f"miniclip {args.command}: error: out of memory{detail}; {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"miniclip: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
