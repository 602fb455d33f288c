"""The by-hand walkthrough: 3 text–image pairs through the walkthrough model, every number printed.

The inputs and weights below are small integers, chosen so that every number of the forward
pass can be checked with a pencil: the encoders, the pooling and the projections give
integers, and the logits lie in [−2, 3] so that ``3^x`` is one of 1/9, 1/3, 1, 3, 9, 27. The
two words of every caption, and the two patches of every image, leave their encoder as
different vectors, so the mean pooling of step 6 visibly averages.

Pairs are counted from 1 in the printout ("image 1" is paired with "big table"); array
indices in code are 0-based, so image 1 is row 0.

The two softmax directions are named *query→what it ranks*, as everywhere in miniclip (see
:mod:`miniclip.layers.contrastive_loss`): the rows of T·Iᵀ are **text→image** (for each
caption, a distribution over the images), the columns **image→text** (for each image, one
over the captions). Step 11 of the printout says how the by-hand walkthrough's own labels
map onto these.

Forward (13 steps, N = 3 pairs, L = 2 words or patches per item)::

    1  batch          3 captions of 2 words, 3 one-channel 2×4 images
    2  lookup         words = table[ids]                              (N, L, 3)
    3  patchify       two 2×2 patches per image, flattened            (N, L, 4)
    4  text encoder   h_t = ReLU(words · W_t + b_t)                   (N, L, 3)
    5  image encoder  h_i = ReLU(patches · W_i + b_i)                 (N, L, 4)
    6  mean pooling   pooled = (h[:, 0] + h[:, 1]) / 2                (N, 3) and (N, 4)
    7  projection     T = pooled_t · P_t,  I = pooled_i · P_i         (N, 2) each
    8  copy           T and Iᵀ
    9  MatMul         logits = T · Iᵀ                                 (N, N)
    10 exponentiate   b^logits (b = 3 by hand, e in CLIP)
    11 sums           by rows (text→image) and by columns (image→text)
    12 divide         P_rows = b^x / row sum,  P_cols = b^x / column sum
    13 targets        Y = identity; each direction's gradient is P − Y

Backward (from the model's own backward)::

    d(logits) = ((P_rows − Y) + (P_cols − Y)) / (2N)
    dT = d(logits) · I,   dI = d(logits)ᵀ · T,   then down each encoder to its weights and biases

and one SGD step ``w ← w − lr · dw``, after which the diagonal share of probability (how much
the model gives each caption's own image, and each image's own caption) has grown.

The forward below calls the model's layers one at a time (the same calls, in the same order,
as ``WalkthroughCLIP.forward``) so that every intermediate can be printed; the loss and all
gradients come from the model itself.

Lesson 01 takes its steps one at a time.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from miniclip.backend import to_device, to_host
from miniclip.optim import SGD
from miniclip.teaching.walkthrough_model import WalkthroughCLIP, WalkthroughConfig

# ---- the fixed inputs ------------------------------------------------------------------
VOCAB = ("big", "table", "small", "dog", "red", "car")  # the 6-word vocabulary
CAPTIONS = ("big table", "small dog", "red car")  # the 3 captions, 2 words each
TOKEN_IDS = tuple(tuple(VOCAB.index(word) for word in caption.split()) for caption in CAPTIONS)  # (N, L)

WORD_VECTORS = (  # (6, 3): row v is the vector of VOCAB[v], like a word2vec table
    (0, 1, 2),  # big
    (2, 1, 2),  # table
    (0, 2, 0),  # small
    (2, 2, 1),  # dog
    (2, 0, 0),  # red
    (2, 2, 0),  # car
)

IMAGES = (  # (N, 2, 4): three one-channel images, 2 rows × 4 columns = two 2×2 patches each
    ((0, 1, 2, 2), (2, 0, 1, 0)),  # image 1, paired with "big table"
    ((0, 2, 2, 0), (0, 0, 0, 0)),  # image 2, paired with "small dog"
    ((0, 2, 2, 1), (2, 2, 1, 2)),  # image 3, paired with "red car"
)

# ---- the fixed weights (W is stored (D_in, D_out): a row vector times W) ----------------
TEXT_WEIGHT = ((1, 1, 0), (-1, 0, 1), (1, 0, 0))  # (3, 3) text encoder
TEXT_BIAS = (1, 1, 1)  # (3,)
TEXT_PROJECTION = ((1, 0), (0, 1), (-1, -1))  # (3, 2) into the shared 2-D space
IMAGE_WEIGHT = ((-1, 0, -1, 1), (1, 0, -1, -1), (1, 0, 1, -1), (-1, -1, 1, 1))  # (4, 4) image encoder
IMAGE_BIAS = (0, 1, 1, 0)  # (4,)
IMAGE_PROJECTION = ((1, 0), (0, -1), (-1, 1), (-1, -1))  # (4, 2) into the shared 2-D space

LOGIT_RANGE = (-2, 3)  # the smallest and the largest of the walkthrough's logits (step 9; tested)
# Steps 10-11 print b^x and its row and column sums, each a sum of N powers of at most b^3: all of
# them stay finite in float64 up to this base (about 3.9e102).
MAX_BASE = (sys.float_info.max / len(CAPTIONS)) ** (1 / LOGIT_RANGE[1])

PARAMETER_NAMES = (  # every parameter of WalkthroughCLIP, in model.parameters() order
    "text.lookup.table",
    "text.encode.weight",
    "text.encode.bias",
    "text.project.weight",
    "image.encode.weight",
    "image.encode.bias",
    "image.project.weight",
)


def walkthrough_state() -> dict[str, np.ndarray]:
    """The fixed weights by parameter name, ready for ``model.load_state``."""
    values = (WORD_VECTORS, TEXT_WEIGHT, TEXT_BIAS, TEXT_PROJECTION, IMAGE_WEIGHT, IMAGE_BIAS, IMAGE_PROJECTION)
    return {name: np.array(v, dtype=np.float64) for name, v in zip(PARAMETER_NAMES, values, strict=True)}


def walkthrough_batch() -> tuple[np.ndarray, np.ndarray]:
    """The 3 pairs as arrays: token ids (N, L) and images (N, 1, 2, 4)."""
    return np.array(TOKEN_IDS, dtype=np.int64), np.array(IMAGES, dtype=np.float64)[:, None]


def diagonal_share(p_rows: np.ndarray, p_cols: np.ndarray) -> float:
    """Mean probability given to the right partner, over both directions: (tr P_rows + tr P_cols) / 2N."""
    return float(np.trace(p_rows) + np.trace(p_cols)) / (2 * p_rows.shape[0])


def check_base(base: float) -> float:
    """``base`` if it is a usable softmax base: finite, greater than 1 and at most ``MAX_BASE``."""
    if not math.isfinite(base) or base <= 1:
        raise ValueError(f"base must be a finite number greater than 1, got {base!r}")
    if base > MAX_BASE:
        raise ValueError(
            f"base must be at most {MAX_BASE:.3g}: the walkthrough's logits reach {LOGIT_RANGE[1]} and "
            f"{base:g}^{LOGIT_RANGE[1]} summed over {len(CAPTIONS)} images overflows float64"
        )
    return base


def compute_walkthrough(base: float = 3.0, lr: float = 0.1) -> dict[str, np.ndarray]:
    """Run the walkthrough on the real layers and return every intermediate, by name (host arrays).

    Parameter values are stored under their name, gradients under ``d(name)`` and the values
    after the SGD step under ``name (after)``. A base outside (1, ``MAX_BASE``] is a ``ValueError``, and so
    is an ``lr`` so large that the logits after the step are no longer finite.
    """
    check_base(base)
    model = WalkthroughCLIP(WalkthroughConfig(base=base), rng=np.random.default_rng(0), dtype=np.float64)
    model.load_state(walkthrough_state())
    host_ids, host_images = walkthrough_batch()
    ids, images = to_device(host_ids), to_device(host_images)
    r: dict[str, np.ndarray] = {"token_ids": host_ids, "images": host_images}
    r.update({name: to_host(p.data).copy() for name, p in model.parameters().items()})

    # Forward, one layer at a time (exactly WalkthroughCLIP.forward, unrolled).
    text, image = model.text, model.image
    words = text.lookup(ids)  # (N, L, 3)  step 2
    patches = image.patchify(images)  # (N, L, 4)  step 3
    text_pre = text.encode(words)  # (N, L, 3)  step 4
    text_hidden = text.relu(text_pre)  # (N, L, 3)
    image_pre = image.encode(patches)  # (N, L, 4)  step 5
    image_hidden = image.relu(image_pre)  # (N, L, 4)
    text_pooled = text.pool(text_hidden)  # (N, 3)  step 6
    image_pooled = image.pool(image_hidden)  # (N, 4)
    t = text.project(text_pooled)  # (N, 2)  step 7
    i = image.project(image_pooled)  # (N, 2)
    logits = model.similarity(t, i)  # (N, N)  step 9
    loss = model.loss(logits)  # both softmaxes and the cross-entropies
    for key, value in {
        "words": words,
        "patches": patches,
        "text_pre": text_pre,
        "text_hidden": text_hidden,
        "image_pre": image_pre,
        "image_hidden": image_hidden,
        "text_pooled": text_pooled,
        "image_pooled": image_pooled,
        "T": t,
        "I": i,
        "logits": logits,
        "loss": loss,
        "p_rows": model.loss.p_rows,
        "p_cols": model.loss.p_cols,
        "targets": model.loss.targets,
    }.items():
        r[key] = to_host(value).copy()

    # Steps 10–12 spelled out on the host, as on paper (the layer's softmax gives the same P).
    r["power"] = base ** r["logits"]  # (N, N)  b^x
    r["exp"] = np.exp(r["logits"])  # (N, N)  e^x, for comparison
    r["row_sums"] = r["power"].sum(axis=1)  # (N,)  one per text: text→image
    r["col_sums"] = r["power"].sum(axis=0)  # (N,)  one per image: image→text
    r["grad_rows"] = r["p_rows"] - r["targets"]  # (N, N)  P_rows − Y
    r["grad_cols"] = r["p_cols"] - r["targets"]  # (N, N)  P_cols − Y

    # Backward: the model's own, which fills every parameter's gradient.
    model.zero_grad()
    model.backward()
    dlogits = model.loss.backward()  # the head has no parameters: asking again changes nothing
    dt, di = model.similarity.backward(dlogits)
    r["dlogits"], r["dT"], r["dI"] = to_host(dlogits).copy(), to_host(dt).copy(), to_host(di).copy()
    r.update({f"d({name})": to_host(p.grad).copy() for name, p in model.parameters().items()})

    # One SGD step, then the forward again.
    SGD(model.parameters(), lr=lr).step()
    with np.errstate(over="ignore", invalid="ignore"):  # a huge lr overflows: said below in one line
        r["loss_after"] = to_host(model.forward(ids, images)).copy()
    if not (np.isfinite(r["loss_after"]) and np.isfinite(to_host(model.logits)).all()):
        raise ValueError(f"lr {lr:g} is too large: after the SGD step the logits overflow float64; try the default 0.1")
    r["logits_after"] = to_host(model.logits).copy()
    r["p_rows_after"] = to_host(model.loss.p_rows).copy()
    r["p_cols_after"] = to_host(model.loss.p_cols).copy()
    r.update({f"{name} (after)": to_host(p.data).copy() for name, p in model.parameters().items()})
    r["diagonal_share_before"] = np.array(diagonal_share(r["p_rows"], r["p_cols"]))
    r["diagonal_share_after"] = np.array(diagonal_share(r["p_rows_after"], r["p_cols_after"]))
    return r


# ---- printing --------------------------------------------------------------------------
def _number(v: float, decimals: int) -> str:
    """An integer as an integer, anything else with ``decimals`` decimals, NaN as a blank."""
    if math.isnan(v):
        return ""
    if abs(v - round(v)) < 1e-9:
        return str(int(round(v)))
    text = f"{v:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.000"


def format_matrix(
    name: str,
    array: np.ndarray,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    decimals: int = 3,
) -> str:
    """A titled, right-aligned table of numbers; 1-D arrays print as one row, (N, L, D) as N·L rows."""
    a = np.asarray(array, dtype=np.float64)
    a = a.reshape(1, -1) if a.ndim < 2 else a.reshape(-1, a.shape[-1])  # (rows, cols)
    cells = [[_number(float(v), decimals) for v in row] for row in a]
    labels = row_labels or [""] * len(cells)
    width = max(len(c) for c in [*sum(cells, []), *(col_labels or [])])
    left = max(len(s) for s in labels)
    lines = [f"{name}   {tuple(np.shape(array))}"]
    if col_labels:
        lines.append("  " + " " * left + "".join(f"  {c:>{width}}" for c in col_labels))
    for label, row in zip(labels, cells, strict=True):
        lines.append("  " + f"{label:<{left}}" + "".join(f"  {c:>{width}}" for c in row))
    return "\n".join(line.rstrip() for line in lines)


def _base_name(base: float) -> str:
    return "e" if math.isclose(base, math.e) else f"{base:g}"


def format_walkthrough(base: float = 3.0, lr: float = 0.1) -> str:
    """The walkthrough as text: 13 numbered forward steps, the backward, and one SGD update."""
    r = compute_walkthrough(base=base, lr=lr)
    b = _base_name(base)
    n = len(CAPTIONS)
    texts = list(CAPTIONS)
    imgs = [f"image {j + 1}" for j in range(n)]
    items = [f"{c} · {w}" for c in CAPTIONS for w in c.split()]
    pieces = [f"image {j + 1} · patch {k + 1}" for j in range(n) for k in range(2)]
    out: list[str] = [f"miniclip walkthrough: 3 text–image pairs by hand (softmax base {b}, lr {lr:g})", ""]

    def add(*blocks: str) -> None:
        out.extend(blocks)
        out.append("")

    # Step 1: each caption over its image; "|" marks the cut between the two 2×2 patches.
    def pixels(row: tuple[int, ...]) -> str:
        return " ".join(map(str, row[:2])) + " | " + " ".join(map(str, row[2:]))

    quoted = [f'"{c}"' for c in CAPTIONS]
    rows = ["  caption  " + "".join(f"{q:<14}" for q in quoted).rstrip()]
    rows += [
        ("  image    " if y == 0 else " " * 11) + "".join(f"{pixels(img[y]):<14}" for img in IMAGES).rstrip()
        for y in range(2)
    ]
    add("Step 1 · A mini-batch of 3 text–image pairs (pair i = caption i with image i)", *rows)

    add(
        format_matrix(
            "Step 2 · Lookup table: one 3-D vector per word (like word2vec)", r["text.lookup.table"], list(VOCAB)
        ),
        format_matrix("Step 2 · Word vectors of each caption", r["words"], items),
    )
    add(format_matrix("Step 3 · Patches: each 2×2 patch flattened row by row into 4 numbers", r["patches"], pieces))
    add(
        format_matrix("Step 4 · Text encoder weight W_t (3→3)", r["text.encode.weight"]),
        format_matrix("Step 4 · Text encoder bias b_t", r["text.encode.bias"]),
        format_matrix("Step 4 · Text encoder: x·W_t + b_t", r["text_pre"], items),
        format_matrix("Step 4 · Text encoder: ReLU (negatives → 0)", r["text_hidden"], items),
    )
    add(
        format_matrix("Step 5 · Image encoder weight W_i (4→4)", r["image.encode.weight"]),
        format_matrix("Step 5 · Image encoder bias b_i", r["image.encode.bias"]),
        format_matrix("Step 5 · Image encoder: x·W_i + b_i", r["image_pre"], pieces),
        format_matrix("Step 5 · Image encoder: ReLU (negatives → 0)", r["image_hidden"], pieces),
    )
    add(
        format_matrix("Step 6 · Mean pooling: (word 1 + word 2) / 2", r["text_pooled"], texts),
        format_matrix("Step 6 · Mean pooling: (patch 1 + patch 2) / 2", r["image_pooled"], imgs),
    )
    add(
        format_matrix("Step 7 · Text projection P_t (3→2, no bias)", r["text.project.weight"]),
        format_matrix("Step 7 · Image projection P_i (4→2, no bias)", r["image.project.weight"]),
        format_matrix("Step 7 · Projection into the shared 2-D space: T = pooled_t·P_t", r["T"], texts),
        format_matrix("Step 7 · Projection into the shared 2-D space: I = pooled_i·P_i", r["I"], imgs),
    )
    add(
        format_matrix("Step 8 · Copy T", r["T"], texts),
        format_matrix("Step 8 · Copy Iᵀ (one column per image)", r["I"].T, None, imgs),
    )
    add(format_matrix("Step 9 · MatMul: logits = T·Iᵀ (every text·image dot product)", r["logits"], texts, imgs))
    exp_blocks = [format_matrix(f"Step 10 · Exponentiate: {b}^x", r["power"], texts, imgs)]
    if b != "e":
        exp_blocks.append(format_matrix("Step 10 · (for comparison, exact e^x)", r["exp"], texts, imgs))
    if b == "3":
        exp_blocks.insert(1, "  by hand: 3^-2 = 1/9 ≈ 0.111, 3^-1 = 1/3 ≈ 0.333, 3^0 = 1, 3^1 = 3, 3^2 = 9, 3^3 = 27")
    add(*exp_blocks)
    table = np.full((n + 1, n + 1), np.nan)
    table[:n, :n], table[:n, n], table[n, :n] = r["power"], r["row_sums"], r["col_sums"]
    add(
        format_matrix(
            f"Step 11 · Sums of {b}^x: by rows (text→image) and by columns (image→text)",
            table,
            [*texts, "column sum"],
            [*imgs, "row sum"],
        ),
        "  A direction is named query→what it ranks: text→image = each caption (a row) over the images,",
        "  image→text = each image (a column) over the captions. (The by-hand walkthrough this follows",
        '  labels its row sums "image→text" and its column sums "text→image": the same sums, named the',
        "  other way round.)",
    )
    add(
        format_matrix(
            "Step 12 · Divide by the row sums: P_rows (text→image, each row sums to 1)", r["p_rows"], texts, imgs
        ),
        format_matrix(
            "Step 12 · Divide by the column sums: P_cols (image→text, each column sums to 1)", r["p_cols"], texts, imgs
        ),
    )
    add(
        format_matrix(
            "Step 13 · Targets Y: the identity (pair i is caption i with image i)", r["targets"], texts, imgs
        ),
        format_matrix("Step 13 · Gradient of the text→image direction: P_rows − Y", r["grad_rows"], texts, imgs),
        format_matrix("Step 13 · Gradient of the image→text direction: P_cols − Y", r["grad_cols"], texts, imgs),
        f"  loss = (L_rows + L_cols) / 2 = {float(r['loss']):.4f}   (cross-entropy, log base {b})",
    )

    out += ["Backward", "--------", ""]
    add(
        f"  Each direction's loss is averaged over the N = {n} pairs (÷N) and the CLIP loss is the mean",
        "  of the two directions (÷2), so d(logits) = ((P_rows − Y) + (P_cols − Y)) / (2N).",
        format_matrix("d(logits)", r["dlogits"], texts, imgs),
        format_matrix("dT = d(logits)·I", r["dT"], texts),
        format_matrix("dI = d(logits)ᵀ·T", r["dI"], imgs),
    )
    add(
        "  Then down through the projections, the mean pooling (each word or patch gets half), the ReLU",
        "  (only where its input was > 0) and the encoders, into every weight and bias:",
    )
    for name in PARAMETER_NAMES:
        add(format_matrix(f"d({name})", r[f"d({name})"], list(VOCAB) if name == "text.lookup.table" else None))

    title = f"One SGD update (lr={lr:g}): w ← w − lr·dw for every parameter"
    out += [title, "-" * len(title), ""]
    add(
        format_matrix("logits after the update", r["logits_after"], texts, imgs),
        format_matrix("P_rows after the update", r["p_rows_after"], texts, imgs),
        format_matrix("P_cols after the update", r["p_cols_after"], texts, imgs),
        f"  loss: {float(r['loss']):.4f} → {float(r['loss_after']):.4f}",
        f"  diagonal share of probability (mean of the diagonals of P_rows and P_cols): "
        f"{float(r['diagonal_share_before']):.3f} → {float(r['diagonal_share_after']):.3f}",
    )
    return "\n".join(out).rstrip() + "\n"
