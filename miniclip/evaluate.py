"""``miniclip eval``: everything worth knowing about a trained checkpoint, in numbers and pictures.

On the test split of the dataset the run was trained on:

* zero-shot top-1 and top-5 with one template, with the prompt ensemble (each template's text
  embedding normalised, averaged over templates, renormalised), and with templates never used
  in training, so the gap between seen and unseen phrasing is visible;
* per-class accuracy and a confusion-matrix plot (``confusion.png``);
* an N×N image–caption cosine-similarity heatmap (``similarity.png``) for the first images of
  different classes;
* text→image and image→text recall@1/5/10, each test image paired with the caption "a photo of
  a {its class}.": the plain recall (its own image must rank in the top k) and the class-aware
  one (any image of the right class counts) — with a thousand images per caption, only the
  second is meaningful on CIFAR-10.

The numbers also go to ``eval.json`` beside the plots.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from miniclip.checkpoint import load_checkpoint, write_atomically
from miniclip.data import load_dataset
from miniclip.data.augment import normalize
from miniclip.data.captions import fill
from miniclip.plots import plot_confusion, plot_similarity
from miniclip.retrieval import recall_at_k
from miniclip.train import eval_templates
from miniclip.zeroshot import encode_images, encode_texts, evaluate_zero_shot


def _first_of_each_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first test image of each of the first ``n`` classes that occur."""
    _, first = np.unique(labels, return_index=True)
    return np.sort(first)[:n]


def evaluate_run(path: str, *, out_dir: str | None = None, data_dir: str | None = None, pairs: int = 5) -> str:
    """Evaluate the checkpoint at ``path``; write plots and ``eval.json``; return a readable report."""
    ckpt = load_checkpoint(path)
    cfg = ckpt.train_config.get("config")
    if not cfg or "mean_std" not in ckpt.train_config.get("state", {}):
        raise ValueError(
            f"{ckpt.path} holds no training configuration (it was not written by `miniclip train`), "
            "so the dataset and normalisation to evaluate with are unknown"
        )
    mean, std = ckpt.train_config["state"]["mean_std"]
    out = Path(out_dir) if out_dir else ckpt.path.parent
    dataset = load_dataset(
        cfg.get("data", "cifar10"),
        data_dir or cfg.get("data_dir"),
        download=False,
        seed=cfg.get("seed", 0),
        n_train=cfg.get("n_train", 4000),
        n_test=cfg.get("n_test", 1000),
    )
    model, tokenizer, length = ckpt.model.eval(), ckpt.tokenizer, ckpt.model_config.context_length

    def normalize_fn(images: Any) -> Any:
        return normalize(images, mean, std)

    flip_average = bool(cfg.get("flip_average", False))  # as the run was evaluated while it trained
    results = evaluate_zero_shot(
        model, tokenizer, dataset, normalize_fn, length, eval_templates(dataset), flip_average=flip_average
    )
    lines = [
        f"{ckpt.path}: {len(dataset.test_labels)} test images of {dataset.name}, {dataset.num_classes} classes",
        "",
    ]
    lines.append(f"{'zero-shot':<22} {'top-1':>7} {'top-5':>7}")
    for name, r in results.items():
        extra = ""
        if "heldout" in r:
            extra = f"   held-out combinations {r['heldout']['top1']:.1%}, seen {r['seen']['top1']:.1%}"
        lines.append(f"{name:<22} {r['top1']:7.1%} {r['top5']:7.1%}{extra}")
    ensemble_name = list(results)[1]
    best = results[ensemble_name]
    lines += ["", f"per-class top-1 ({ensemble_name}):"]
    lines += [f"  {c:<24} {a:6.1%}" for c, a in zip(dataset.class_names, best["per_class"], strict=True)]
    plot_confusion(
        best["confusion"], dataset.class_names, out / "confusion.png", title=f"zero-shot confusion ({ensemble_name})"
    )

    # The similarity heatmap: one image of each of the first `pairs` classes against its caption.
    chosen = _first_of_each_class(dataset.test_labels, pairs)
    captions = [fill(dataset.train_templates[0], dataset.class_names[dataset.test_labels[i]]) for i in chosen]
    plot_similarity(
        encode_images(model, dataset.test_images[chosen], normalize_fn),
        encode_texts(model, tokenizer, captions, length),
        dataset.test_images[chosen],
        captions,
        out / "similarity.png",
    )

    # Retrieval: every test image paired with the caption of its class.
    image_embs = encode_images(model, dataset.test_images, normalize_fn)
    class_texts = encode_texts(
        model, tokenizer, [fill(dataset.train_templates[0], c) for c in dataset.class_names], length
    )
    text_embs = class_texts[dataset.test_labels]  # (N, d): row i is the caption of image i
    recall = recall_at_k(image_embs, text_embs, labels=dataset.test_labels)
    lines += ["", "retrieval (each image with the caption of its class):"]
    for direction, values in recall.items():
        lines.append(f"  {direction:<22} " + "  ".join(f"{k} {v:.1%}" for k, v in values.items()))
    lines += ["", f"plots: {out / 'confusion.png'}, {out / 'similarity.png'}"]

    summary = {
        "checkpoint": str(ckpt.path),
        "zero_shot": {
            name: {k: r[k] for k in ("top1", "top5")} | {"per_class": r["per_class"]} for name, r in results.items()
        },
        "recall": recall,
    }
    text = json.dumps(summary, indent=2, default=float) + "\n"
    write_atomically(out / "eval.json", lambda f: f.write(text.encode("utf-8")))
    return "\n".join(lines)
