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

Every test image is encoded once — averaged with its mirror image when the run was evaluated
that way while it trained (``flip_average``) — and that one embedding serves all three. The
model, the normalisation and the test split come from the checkpoint
(:func:`miniclip.trained_run.load_run`). The numbers also go to ``eval.json`` beside the plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from miniclip.atomic import write_atomically
from miniclip.data.captions import ensemble_name, eval_templates, fill
from miniclip.plots import plot_confusion, plot_similarity
from miniclip.retrieval import recall_at_k
from miniclip.trained_run import load_run
from miniclip.zeroshot import encode_images, encode_texts, evaluate_zero_shot


def _first_of_each_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first test image of each of the first ``n`` classes that occur."""
    _, first = np.unique(labels, return_index=True)
    return np.sort(first)[:n]


def evaluate_run(
    path: str, *, out_dir: str | None = None, data: str | None = None, data_dir: str | None = None, pairs: int = 5
) -> str:
    """Evaluate the checkpoint at ``path``; write plots and ``eval.json``; return a readable report.

    ``data`` and ``data_dir`` replace the dataset and CIFAR-10 folder the run was trained with
    (a folder dataset that has moved, or was given as a relative path from another directory).
    """
    run = load_run(path)
    ckpt, normalize_fn = run.checkpoint, run.normalize
    out = Path(out_dir) if out_dir else ckpt.path.parent
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file: the plots and eval.json need a folder (give another --out)")
    dataset = run.dataset(data, data_dir)
    model, tokenizer, length = ckpt.model, ckpt.tokenizer, ckpt.model_config.context_length

    # Every test image is encoded once, as the run was evaluated while it trained (flip_average),
    # and that one embedding serves the zero-shot table, the heatmap and retrieval.
    image_embs = encode_images(model, dataset.test_images, normalize_fn, flip_average=run.config.flip_average)  # (N, d)
    results = evaluate_zero_shot(
        model, tokenizer, dataset, normalize_fn, length, eval_templates(dataset), image_embeddings=image_embs
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
    ensemble = ensemble_name(dataset)
    best = results[ensemble]
    lines += ["", f"per-class top-1 ({ensemble}):"]
    lines += [f"  {c:<24} {a:6.1%}" for c, a in zip(dataset.class_names, best["per_class"], strict=True)]
    plot_confusion(
        best["confusion"], dataset.class_names, out / "confusion.png", title=f"zero-shot confusion ({ensemble})"
    )

    # The similarity heatmap: one image of each of the first `pairs` classes against its caption.
    chosen = _first_of_each_class(dataset.test_labels, pairs)
    captions = [fill(dataset.train_templates[0], dataset.class_names[dataset.test_labels[i]]) for i in chosen]
    plot_similarity(
        image_embs[chosen],
        encode_texts(model, tokenizer, captions, length),
        dataset.test_images[chosen],
        captions,
        out / "similarity.png",
    )

    # Retrieval: every test image paired with the caption of its class.
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
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "eval.json", lambda f: f.write(text.encode("utf-8")))
    return "\n".join(lines)
