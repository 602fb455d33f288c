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
over the captions). Step 11 of the printout says how the hand-drawn 3-pair spreadsheet this
walkthrough mirrors labels them.

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

The printout is built as a list of paragraphs of titled :class:`Matrix` objects and lines of
text (:func:`build_walkthrough`); :mod:`miniclip.teaching.walkthrough_sheet` draws the very same
objects as one sheet of coloured grids, so the picture and the printout have one source of
numbers and one rounding.

Lesson 01 takes its steps one at a time.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

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

BATCH = ("Step 1", "A mini-batch of 3 text–image pairs", "pair i = caption i with image i")  # part, name, remark

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


# ---- the printout: one list of titled matrices, which the sheet draws too ----------------
def as_table(array: np.ndarray) -> np.ndarray:
    """``array`` as the (rows, columns) table the printout shows: 1-D as one row, (N, L, D) as N·L rows."""
    a = np.asarray(array, dtype=np.float64)
    return a.reshape(1, -1) if a.ndim < 2 else a.reshape(-1, a.shape[-1])


def _number(v: float, decimals: int) -> str:
    """An integer as an integer, anything else with ``decimals`` decimals, NaN as a blank."""
    if math.isnan(v):
        return ""
    if abs(v - round(v)) < 1e-9:
        return str(int(round(v)))
    text = f"{v:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.000"


def matrix_cells(array: np.ndarray, decimals: int = 3) -> list[list[str]]:
    """The text of every cell of :func:`as_table` ``(array)``, rounded as the printout rounds it."""
    return [[_number(float(v), decimals) for v in row] for row in as_table(array)]


def format_matrix(
    name: str,
    array: np.ndarray,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    decimals: int = 3,
) -> str:
    """A titled, right-aligned table of numbers; 1-D arrays print as one row, (N, L, D) as N·L rows."""
    cells = matrix_cells(array, decimals)
    labels = list(row_labels or [""] * len(cells))
    width = max(len(c) for c in [*sum(cells, []), *(col_labels or [])])
    left = max(len(s) for s in labels)
    lines = [f"{name}   {tuple(np.shape(array))}"]
    if col_labels:
        lines.append("  " + " " * left + "".join(f"  {c:>{width}}" for c in col_labels))
    for label, row in zip(labels, cells, strict=True):
        lines.append("  " + f"{label:<{left}}" + "".join(f"  {c:>{width}}" for c in row))
    return "\n".join(line.rstrip() for line in lines)


@dataclass(frozen=True)
class Matrix:
    """One titled matrix of the walkthrough: the printout prints it and the sheet draws it, from one array."""

    key: str  # unique among the walkthrough's matrices: "text_hidden", "Iᵀ", "d(text.encode.weight)"
    part: str  # "Step 4"; outside the 13 steps "Backward" or "SGD update", which the printout says in a heading
    name: str  # "Text encoder: ReLU"
    values: np.ndarray  # any shape: printed and drawn as as_table(values)
    rows: tuple[str, ...] | None = None  # row labels
    columns: tuple[str, ...] | None = None  # column labels
    side: str = "shared"  # "text", "image", or "shared" where the two meet: the sheet's colour family
    remark: str = ""  # printed after the name, in brackets: "negatives → 0"

    @property
    def heading(self) -> str:
        """The part and the name: ``Step 4 · Text encoder: ReLU`` (the sheet's title of the grid)."""
        return f"{self.part} · {self.name}"

    @property
    def title(self) -> str:
        """The printed title: the heading (the name alone outside the 13 steps), then the remark in brackets."""
        head = self.heading if self.part.startswith("Step") else self.name
        return f"{head} ({self.remark})" if self.remark else head

    def cells(self) -> list[list[str]]:
        """The text of every cell, as printed."""
        return matrix_cells(self.values)

    def text(self) -> str:
        """The matrix as the printout prints it."""
        return format_matrix(self.title, self.values, self.rows, self.columns)


Paragraph = tuple[Matrix | str, ...]  # printed one item after the other; a blank line between paragraphs


@dataclass(frozen=True)
class Walkthrough:
    """The walkthrough as the printout tells it: paragraphs of matrices and lines of text, and the values behind."""

    base: float
    lr: float
    values: dict[str, np.ndarray]  # compute_walkthrough(base, lr)
    paragraphs: tuple[Paragraph, ...]

    @property
    def title(self) -> str:
        """The printout's first line."""
        return str(self.paragraphs[0][0])

    def matrices(self) -> dict[str, Matrix]:
        """Every matrix of the printout by its key, in printing order."""
        return {m.key: m for paragraph in self.paragraphs for m in paragraph if isinstance(m, Matrix)}

    def notes(self, key: str) -> list[str]:
        """The lines of text printed in the same paragraph as the matrix ``key``, without their indent."""
        for paragraph in self.paragraphs:
            if any(isinstance(m, Matrix) and m.key == key for m in paragraph):
                return [line.strip() for line in paragraph if isinstance(line, str)]
        raise KeyError(key)

    def text(self) -> str:
        """The printout."""
        blocks = ["\n".join(i if isinstance(i, str) else i.text() for i in paragraph) for paragraph in self.paragraphs]
        return "\n\n".join(blocks).rstrip() + "\n"


def update_heading(lr: float) -> str:
    """The heading of the printout's last part, the SGD step."""
    return f"One SGD update (lr={lr:g}): w ← w − lr·dw for every parameter"


def base_name(base: float) -> str:
    """``e`` for Euler's number, else the base as a short number: ``3``, ``2.5``."""
    return "e" if math.isclose(base, math.e) else f"{base:g}"


def build_walkthrough(base: float = 3.0, lr: float = 0.1) -> Walkthrough:
    """The walkthrough's printout, item by item: 13 numbered forward steps, the backward, and one SGD update."""
    r = compute_walkthrough(base=base, lr=lr)
    b = base_name(base)
    n = len(CAPTIONS)
    texts = tuple(CAPTIONS)
    imgs = tuple(f"image {j + 1}" for j in range(n))
    items = tuple(f"{c} · {w}" for c in CAPTIONS for w in c.split())
    pieces = tuple(f"image {j + 1} · patch {k + 1}" for j in range(n) for k in range(2))
    paragraphs: list[Paragraph] = [(f"miniclip walkthrough: 3 text–image pairs by hand (softmax base {b}, lr {lr:g})",)]

    def add(*paragraph: Matrix | str) -> None:
        paragraphs.append(paragraph)

    def text_side(
        key: str, part: str, name: str, values: np.ndarray, *labels: tuple[str, ...] | None, remark: str = ""
    ) -> Matrix:
        return Matrix(key, part, name, values, *labels, side="text", remark=remark)

    def image_side(
        key: str, part: str, name: str, values: np.ndarray, *labels: tuple[str, ...] | None, remark: str = ""
    ) -> Matrix:
        return Matrix(key, part, name, values, *labels, side="image", remark=remark)

    # Step 1: each caption over its image; "|" marks the cut between the two 2×2 patches.
    def pixels(row: tuple[int, ...]) -> str:
        return " ".join(map(str, row[:2])) + " | " + " ".join(map(str, row[2:]))

    quoted = [f'"{c}"' for c in CAPTIONS]
    rows = ["  caption  " + "".join(f"{q:<14}" for q in quoted).rstrip()]
    rows += [
        ("  image    " if y == 0 else " " * 11) + "".join(f"{pixels(img[y]):<14}" for img in IMAGES).rstrip()
        for y in range(2)
    ]
    add(f"{BATCH[0]} · {BATCH[1]} ({BATCH[2]})", *rows)

    vocab, table = tuple(VOCAB), r["text.lookup.table"]
    word2vec, flattened = "like word2vec", "flattened row by row into 4 numbers"
    add(
        text_side(
            "text.lookup.table", "Step 2", "Lookup table: one 3-D vector per word", table, vocab, remark=word2vec
        ),
        text_side("words", "Step 2", "Word vectors of each caption", r["words"], items),
    )
    add(image_side("patches", "Step 3", f"Patches: each 2×2 patch {flattened}", r["patches"], pieces))
    add(
        text_side("text.encode.weight", "Step 4", "Text encoder weight W_t", r["text.encode.weight"], remark="3→3"),
        text_side("text.encode.bias", "Step 4", "Text encoder bias b_t", r["text.encode.bias"]),
        text_side("text_pre", "Step 4", "Text encoder: x·W_t + b_t", r["text_pre"], items),
        text_side("text_hidden", "Step 4", "Text encoder: ReLU", r["text_hidden"], items, remark="negatives → 0"),
    )
    add(
        image_side("image.encode.weight", "Step 5", "Image encoder weight W_i", r["image.encode.weight"], remark="4→4"),
        image_side("image.encode.bias", "Step 5", "Image encoder bias b_i", r["image.encode.bias"]),
        image_side("image_pre", "Step 5", "Image encoder: x·W_i + b_i", r["image_pre"], pieces),
        image_side("image_hidden", "Step 5", "Image encoder: ReLU", r["image_hidden"], pieces, remark="negatives → 0"),
    )
    add(
        text_side("text_pooled", "Step 6", "Mean pooling: (word 1 + word 2) / 2", r["text_pooled"], texts),
        image_side("image_pooled", "Step 6", "Mean pooling: (patch 1 + patch 2) / 2", r["image_pooled"], imgs),
    )
    shared, no_bias = "Projection into the shared 2-D space", ("3→2, no bias", "4→2, no bias")
    add(
        text_side("text.project.weight", "Step 7", "Text projection P_t", r["text.project.weight"], remark=no_bias[0]),
        image_side(
            "image.project.weight", "Step 7", "Image projection P_i", r["image.project.weight"], remark=no_bias[1]
        ),
        text_side("T", "Step 7", f"{shared}: T = pooled_t·P_t", r["T"], texts),
        image_side("I", "Step 7", f"{shared}: I = pooled_i·P_i", r["I"], imgs),
    )
    add(
        text_side("T (copy)", "Step 8", "Copy T", r["T"], texts),
        image_side("Iᵀ", "Step 8", "Copy Iᵀ", r["I"].T, None, imgs, remark="one column per image"),
    )
    dot_products = "every text·image dot product"
    add(Matrix("logits", "Step 9", "MatMul: logits = T·Iᵀ", r["logits"], texts, imgs, remark=dot_products))
    exp_items: list[Matrix | str] = [Matrix("power", "Step 10", f"Exponentiate: {b}^x", r["power"], texts, imgs)]
    if b != "e":
        exp_items.append(Matrix("exp", "Step 10", "(for comparison, exact e^x)", r["exp"], texts, imgs))
    if b == "3":
        exp_items.insert(1, "  by hand: 3^-2 = 1/9 ≈ 0.111, 3^-1 = 1/3 ≈ 0.333, 3^0 = 1, 3^1 = 3, 3^2 = 9, 3^3 = 27")
    add(*exp_items)
    sums = np.full((n + 1, n + 1), np.nan)
    sums[:n, :n], sums[:n, n], sums[n, :n] = r["power"], r["row_sums"], r["col_sums"]
    add(
        Matrix(
            "sums",
            "Step 11",
            f"Sums of {b}^x: by rows (text→image) and by columns (image→text)",
            sums,
            (*texts, "column sum"),
            (*imgs, "row sum"),
        ),
        "  A direction is named query→what it ranks: text→image = each caption (a row) over the images,",
        "  image→text = each image (a column) over the captions. (The hand-drawn 3-pair spreadsheet this",
        '  walkthrough mirrors labels its row sums "image→text" and its column sums "text→image": the',
        "  same sums, named the other way round.)",
    )
    each_row, each_col = "text→image, each row sums to 1", "image→text, each column sums to 1"
    add(
        Matrix("p_rows", "Step 12", "Divide by the row sums: P_rows", r["p_rows"], texts, imgs, remark=each_row),
        Matrix("p_cols", "Step 12", "Divide by the column sums: P_cols", r["p_cols"], texts, imgs, remark=each_col),
    )
    pairs, gradient = "pair i is caption i with image i", "Gradient of the {} direction: {} − Y"
    add(
        Matrix("targets", "Step 13", "Targets Y: the identity", r["targets"], texts, imgs, remark=pairs),
        Matrix("grad_rows", "Step 13", gradient.format("text→image", "P_rows"), r["grad_rows"], texts, imgs),
        Matrix("grad_cols", "Step 13", gradient.format("image→text", "P_cols"), r["grad_cols"], texts, imgs),
        f"  loss = (L_rows + L_cols) / 2 = {float(r['loss']):.4f}   (cross-entropy, log base {b})",
    )

    add("Backward", "--------")
    add(
        f"  Each direction's loss is averaged over the N = {n} pairs (÷N) and the CLIP loss is the mean",
        "  of the two directions (÷2), so d(logits) = ((P_rows − Y) + (P_cols − Y)) / (2N).",
        Matrix("dlogits", "Backward", "d(logits)", r["dlogits"], texts, imgs),
        text_side("dT", "Backward", "dT = d(logits)·I", r["dT"], texts),
        image_side("dI", "Backward", "dI = d(logits)ᵀ·T", r["dI"], imgs),
    )
    add(
        "  Then down through the projections, the mean pooling (each word or patch gets half), the ReLU",
        "  (only where its input was > 0) and the encoders, into every weight and bias:",
    )
    table_name = PARAMETER_NAMES[0]  # the lookup table: one row per word
    for name in PARAMETER_NAMES:
        side = text_side if name.startswith("text.") else image_side
        add(side(f"d({name})", "Backward", f"d({name})", r[f"d({name})"], vocab if name == table_name else None))

    add(update_heading(lr), "-" * len(update_heading(lr)))
    add(
        Matrix("logits_after", "SGD update", "logits after the update", r["logits_after"], texts, imgs),
        Matrix("p_rows_after", "SGD update", "P_rows after the update", r["p_rows_after"], texts, imgs),
        Matrix("p_cols_after", "SGD update", "P_cols after the update", r["p_cols_after"], texts, imgs),
        f"  loss: {float(r['loss']):.4f} → {float(r['loss_after']):.4f}",
        f"  diagonal share of probability (mean of the diagonals of P_rows and P_cols): "
        f"{float(r['diagonal_share_before']):.3f} → {float(r['diagonal_share_after']):.3f}",
    )
    return Walkthrough(base=base, lr=lr, values=r, paragraphs=tuple(paragraphs))


def format_walkthrough(base: float = 3.0, lr: float = 0.1) -> str:
    """The walkthrough as text: 13 numbered forward steps, the backward, and one SGD update."""
    return build_walkthrough(base=base, lr=lr).text()
