"""The walkthrough as one picture: every matrix of the printout as a coloured grid, every number in its cell.

The hand-drawn spreadsheet this walkthrough mirrors shows the 3-pair example as coloured
matrices on one sheet; :func:`draw_sheet` draws it the same way, from the very
:class:`~miniclip.teaching.walkthrough.Matrix` objects the printout prints (same values, same
rounding, each grid titled with its step and name as printed)::

    Step 1        captions (text)                          images 1–3 (pixels)
    Steps 2–7     lookup, word vectors → encoder → ReLU     patches → encoder → ReLU
                  → mean pooling, projection → T            → mean pooling, projection → I
    Steps 8–11               T │ T·Iᵀ under Iᵀ,  b^x,  sums by rows and by columns
    Steps 12–13              P_rows, P_cols,  Y,  P_rows − Y,  P_cols − Y,  the loss
    Backward      dT, d(text weights)      d(logits)      dI, d(image weights)
    SGD update               logits, P_rows and P_cols after one step, loss and diagonal share

The text side is drawn in blues on the left, the image side in oranges on the right, and
what they share, from the similarity matrix on, in purples between them. Within a grid the
shade follows the value (lightest = smallest), in the light half of the family's colour map
so that every number stays black on a light cell.

The sheet is one matplotlib Axes counting inches from the top-left corner; every artist of a
grid carries the grid's key in its ``gid``: ``grid:KEY`` its cells' colours, ``cell:KEY:ROW:COLUMN``
the text of each cell, ``row:KEY:ROW`` and ``column:KEY:COLUMN`` the labels, ``title:KEY`` the
title. A test, or a reader of the SVG (which keeps its text as text), finds every number again.

Lesson 01 shows the sheet; ``miniclip walkthrough --figure FILE`` writes it.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from miniclip.atomic import check_output_file, write_atomically
from miniclip.teaching.walkthrough import BATCH, Matrix, Walkthrough, as_table, update_heading

SUFFIXES = (".png", ".svg")  # the formats the sheet is written in, chosen by the file's suffix
FAMILIES = {"text": "Blues", "image": "Oranges", "shared": "Purples"}  # one colour family per side
LIGHT = (0.06, 0.5)  # the part of each colour map the cells use: light enough for black numbers

# Sizes, in inches and points. A cell is at least CELL_W wide (wider when its longest number needs it).
CELL_W, CELL_H = 0.56, 0.34
TITLE_W = 1.9  # a box is at least this wide, so that its title wraps into few lines
NUMBER_PT, LABEL_PT, TITLE_PT, REMARK_PT, NOTE_PT, SIDE_PT, HEADING_PT = 11, 9, 9.5, 8.5, 9.5, 11.5, 14
LINE = 1.3  # line height, as a multiple of the font size
PAD = 0.08  # between a label and its grid, and around a number in its cell
GAP_IN_RUN, GAP_RUNS, GAP_STACK, GAP_BANDS, MARGIN = 0.14, 0.55, 0.22, 0.45, 0.4
DPI = 100


# ---- what is drawn ---------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """One grid of the sheet: its title, the text and shade of every cell, its labels and colour family."""

    key: str
    title: str  # "Step 4 · Text encoder: ReLU"
    remark: str  # drawn small under the title: "negatives → 0"
    cells: list[list[str]]  # (rows, columns) texts, as printed
    shade: np.ndarray  # (rows, columns) values that set each cell's shade; NaN: a blank white cell
    rows: tuple[str, ...] | None
    columns: tuple[str, ...] | None
    side: str  # "text", "image" or "shared"
    cut: int | None = None  # a thick line before this column (the cut between an image's two patches)


def grid_of(matrix: Matrix) -> Grid:
    """The grid of one printed matrix: its heading as title, its printed cells, its values as shades."""
    return Grid(
        matrix.key,
        matrix.heading,
        matrix.remark,
        matrix.cells(),
        as_table(matrix.values),
        matrix.rows,
        matrix.columns,
        matrix.side,
    )


def step1_grids(w: Walkthrough) -> list[Grid]:
    """Step 1, the batch: the captions word by word, and each image's pixels (its two patches cut apart)."""
    ids, images = w.values["token_ids"], w.values["images"]  # (N, L), (N, 1, 2, 4)
    vocab = w.matrices()["text.lookup.table"].rows or ()
    words = [[vocab[i] for i in row] for row in ids.tolist()]
    n, length = ids.shape
    grids = [
        Grid(
            "captions",
            f"{BATCH[0]} · {BATCH[1]}",
            BATCH[2],
            words,
            np.zeros(ids.shape),
            tuple(f"caption {k + 1}" for k in range(n)),
            tuple(f"word {k + 1}" for k in range(length)),
            "text",
        )
    ]
    for k, image in enumerate(images[:, 0]):  # (2, 4) pixels
        half = image.shape[1] // 2
        grids.append(
            Grid(f"image {k + 1}", f"{BATCH[0]} · image {k + 1}", "", as_cells(image), image, None, None, "image", half)
        )
    return grids


def as_cells(values: np.ndarray) -> list[list[str]]:
    """Whole numbers as text, cell by cell (the pixels of step 1)."""
    return [[str(int(v)) for v in row] for row in values]


# ---- the plan: bands top to bottom, runs left to right, columns of stacked grids ---------
@dataclass(frozen=True)
class Run:
    """Grids side by side, close together: a tuple of columns, each a tuple of keys stacked top to bottom.

    A grid whose row labels are those of the grid just left of it in the run leaves them out (the
    spreadsheet's way), and so does one whose column labels are those of the grid just above it.
    With ``bottom`` the columns are aligned at their last grid's bottom (T beside T·Iᵀ, Iᵀ above it).
    """

    columns: tuple[tuple[str, ...], ...]
    bottom: bool = False


@dataclass(frozen=True)
class Band:
    """One row of the sheet: its runs, laid out text side left, image side right, shared ones between."""

    runs: tuple[Run, ...]
    heading: str = ""  # a heading across the sheet above the band
    notes: tuple[str, ...] = ()  # keys whose paragraph's lines of text are written under the band


def _run(*columns: str | tuple[str, ...], bottom: bool = False) -> Run:
    return Run(tuple(c if isinstance(c, tuple) else (c,) for c in columns), bottom)


def plan(w: Walkthrough) -> tuple[Band, ...]:
    """Where every grid goes: the forward's two sides, where they meet, the backward and the SGD update."""
    weights = tuple(f"d({name})" for name in ("text.encode.weight", "text.encode.bias"))
    image_weights = tuple(f"d({name})" for name in ("image.encode.weight", "image.encode.bias"))
    return (
        Band((_run("captions"), _run("image 1", "image 2", "image 3"))),
        Band((_run("text.lookup.table"), _run("words"), _run("patches"))),
        Band(
            (
                _run(("text.encode.weight", "text.encode.bias")),
                _run("text_pre", "text_hidden"),
                _run(("image.encode.weight", "image.encode.bias")),
                _run("image_pre", "image_hidden"),
            )
        ),
        Band(
            (
                _run("text_pooled"),
                _run("text.project.weight"),
                _run("T"),
                _run("image_pooled"),
                _run("image.project.weight"),
                _run("I"),
            )
        ),
        Band(
            (_run("T (copy)", ("Iᵀ", "logits"), bottom=True), _run("power", "exp"), _run("sums")),
            heading="Where the two sides meet: the similarity matrix, and the softmax both ways",
            notes=("power", "sums"),
        ),
        Band((_run("p_rows", "p_cols"), _run("targets", "grad_rows", "grad_cols")), notes=("targets",)),
        Band((_run("dT"), _run("dlogits"), _run("dI")), heading="Backward", notes=("dlogits",)),
        Band(
            (
                _run("d(text.lookup.table)"),
                _run(weights),
                _run("d(text.project.weight)"),
                _run(image_weights),
                _run("d(image.project.weight)"),
            )
        ),
        Band(
            (_run("logits_after", "p_rows_after", "p_cols_after"),),
            heading=update_heading(w.lr),
            notes=("logits_after",),
        ),
    )


# ---- sizes and places -------------------------------------------------------------------
_MEASURE = FigureCanvasAgg(Figure(dpi=72)).get_renderer()  # 72 dpi: one pixel is one point


def text_width(text: str, points: float, bold: bool = False) -> float:
    """How wide ``text`` is drawn at ``points``, in inches (its widest line)."""
    prop = FontProperties(size=points, weight="bold" if bold else "normal")
    return max(_MEASURE.get_text_width_height_descent(s, prop, ismath=False)[0] for s in text.split("\n")) / 72


def lines_height(lines: int, points: float) -> float:
    """The height of ``lines`` lines of text at ``points``, in inches."""
    return lines * points * LINE / 72


def wrap(text: str, width: float, points: float, bold: bool = False) -> str:
    """``text`` broken at spaces into lines no wider than ``width`` inches (a longer word keeps its own line).

    A lone sign stays with a neighbour: ``·`` (which follows the step) with the word before it, any
    other (``−``, ``=``, ``+``, ``/``) with the word after it, so no line ends in ``P_cols −``.
    """
    words: list[str] = []
    for word in text.split(" "):
        if words and (word == "·" or len(words[-1]) == 1 and not words[-1].isalnum() and words[-1] != "·"):
            words[-1] += f" {word}"
        else:
            words.append(word)
    lines: list[str] = []
    for word in words:
        if lines and text_width(f"{lines[-1]} {word}", points, bold) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


@dataclass
class Box:
    """A grid with its size and place: the cells, the row labels left of them, the header above them.

    The header holds, top to bottom, the title (wrapped to the box's width), the remark and the
    column labels. ``x`` and ``y`` are the top-left corner of the cells, in inches from the
    sheet's top-left corner.
    """

    grid: Grid
    row_labels: bool  # False where the grid to the left shows the same ones
    column_labels: bool  # False where the grid above shows the same ones
    x: float = 0.0
    y: float = 0.0
    cell_w: float = field(init=False)  # each cell's width: the widest number or column label fits
    label_w: float = field(init=False)  # the row labels' width (0 without)
    width: float = field(init=False)  # labels and cells, or the title where it is wider
    title: str = field(init=False)  # the grid's title, wrapped to the width
    title_h: float = field(init=False)
    remark_h: float = field(init=False)
    columns_h: float = field(init=False)
    header: float = field(init=False)  # title, remark and column labels together
    cells_w: float = field(init=False)
    cells_h: float = field(init=False)

    def __post_init__(self) -> None:
        g = self.grid
        texts = [c for row in g.cells for c in row] + list(g.columns or ())
        self.cell_w = max(CELL_W, max(text_width(t, NUMBER_PT) for t in texts) + 2 * PAD)
        self.label_w = max(text_width(t, LABEL_PT) for t in g.rows) + PAD if self.row_labels and g.rows else 0.0
        self.width = max(self.label_w + self.cell_w * len(g.cells[0]), TITLE_W)
        self.title = wrap(g.title, self.width - GAP_IN_RUN, TITLE_PT, bold=True)
        self.width = max(self.width, text_width(self.title, TITLE_PT, bold=True) + GAP_IN_RUN)  # a long word
        self.title_h = lines_height(self.title.count("\n") + 1, TITLE_PT)
        self.remark_h = lines_height(1, REMARK_PT) if g.remark else 0.0
        self.columns_h = lines_height(1, LABEL_PT) if self.column_labels and g.columns else 0.0
        self.header = self.title_h + self.remark_h + self.columns_h + 0.05
        self.cells_w = self.cell_w * len(g.cells[0])
        self.cells_h = CELL_H * len(g.cells)

    @property
    def left(self) -> float:
        """The left edge of the box: its row labels, its title."""
        return self.x - self.label_w

    @property
    def top(self) -> float:
        """The top edge of the box: its title."""
        return self.y - self.header


def _boxes(run: Run, grids: dict[str, Grid]) -> list[list[Box]]:
    """The run's columns as boxes, leaving out labels a neighbour already shows; missing keys are skipped."""
    columns = [column for keys in run.columns if (column := [grids[k] for k in keys if k in grids])]
    boxes: list[list[Box]] = []
    for c, column in enumerate(columns):
        beside = None if c == 0 else columns[c - 1][-1 if run.bottom else 0]  # level with ours, to the left
        level = len(column) - 1 if run.bottom else 0
        boxes.append([])
        for k, g in enumerate(column):
            same_rows = k == level and beside is not None and (beside.rows, len(beside.cells)) == (g.rows, len(g.cells))
            same_columns = k > 0 and column[k - 1].columns == g.columns
            boxes[-1].append(Box(g, row_labels=not same_rows, column_labels=not same_columns))
    return boxes


def _side(columns: list[list[Box]]) -> str:
    """The run's side: that of all its grids, or "shared" where they are of several."""
    sides = {b.grid.side for column in columns for b in column}
    return sides.pop() if len(sides) == 1 else "shared"


def _stack_height(column: list[Box]) -> float:
    """From the top of the first grid's cells to the bottom of the last's."""
    return column[0].cells_h + sum(GAP_STACK + b.header + b.cells_h for b in column[1:])


def _run_width(columns: list[list[Box]]) -> float:
    return sum(max(b.width for b in column) for column in columns) + GAP_IN_RUN * (len(columns) - 1)


def _place_run(columns: list[list[Box]], x: float, top: float, bottom: bool) -> None:
    """Put the run's columns side by side from ``x``, their first cells at ``top`` (or their last ones level)."""
    deepest = max(_stack_height(c) for c in columns)
    for column in columns:
        y = top + (deepest - _stack_height(column) if bottom else 0.0)
        labels = max(b.label_w for b in column)
        for k, box in enumerate(column):
            y += GAP_STACK + box.header if k else 0.0
            box.x, box.y = x + labels, y
            y += box.cells_h
        x += max(b.width for b in column) + GAP_IN_RUN


@dataclass
class Sheet:
    """The laid-out sheet: every grid's box in place, the headings and notes, the size (inches)."""

    title: str
    boxes: list[Box]
    headings: list[tuple[float, str]]  # (top, text), across the sheet
    notes: list[tuple[float, float, str]]  # (left, top, lines)
    width: float
    height: float


def lay_out(w: Walkthrough) -> Sheet:
    """Place every grid of :func:`plan`: text runs from the left, image runs from the right, shared between."""
    grids = {g.key: g for g in step1_grids(w)} | {key: grid_of(m) for key, m in w.matrices().items()}
    bands = [(band, [(run, c) for run in band.runs if (c := _boxes(run, grids))]) for band in plan(w)]
    width = 2 * MARGIN + max(sum(_run_width(c) for _, c in runs) + GAP_RUNS * (len(runs) - 1) for _, runs in bands)
    y = MARGIN + lines_height(1, HEADING_PT) + lines_height(1, SIDE_PT) + 0.2  # the sheet's title, the sides' names
    boxes: list[Box] = []
    headings: list[tuple[float, str]] = []
    notes: list[tuple[float, float, str]] = []
    for band, runs in bands:
        if band.heading:
            headings.append((y + 0.1, band.heading))
            y += 0.1 + lines_height(1, HEADING_PT) + 0.15
        top = y + max(column[0].header for _, columns in runs for column in columns)  # the first cells' top
        left, right = MARGIN, width - MARGIN
        for run, columns in runs:
            if _side(columns) == "text":
                _place_run(columns, left, top, run.bottom)
                left += _run_width(columns) + GAP_RUNS
        for run, columns in reversed(runs):
            if _side(columns) == "image":
                right -= _run_width(columns)
                _place_run(columns, right, top, run.bottom)
                right -= GAP_RUNS
        shared = [(run, columns) for run, columns in runs if _side(columns) == "shared"]
        middle = sum(_run_width(c) for _, c in shared) + GAP_RUNS * (len(shared) - 1)
        x = min(max((width - middle) / 2, left), right + GAP_RUNS - middle)  # centred, between the sides
        for run, columns in shared:
            _place_run(columns, x, top, run.bottom)
            x += _run_width(columns) + GAP_RUNS
        placed = [box for _, columns in runs for column in columns for box in column]
        boxes += placed
        y = max(b.y + b.cells_h for b in placed) + 0.2
        lines = [line for key in band.notes if key in grids for line in w.notes(key)]
        if lines:
            notes.append((min(b.left for b in placed), y, "\n".join(lines)))
            y += lines_height(len(lines), NOTE_PT)
        y += GAP_BANDS
    missing = set(grids) - {b.grid.key for b in boxes}
    if missing:
        raise AssertionError(f"the sheet's plan leaves out {sorted(missing)}")
    return Sheet(w.title, boxes, headings, notes, width, y - GAP_BANDS + MARGIN)


# ---- drawing ---------------------------------------------------------------------------
def _family(side: str, at: float) -> tuple[float, float, float, float]:
    """The colour at ``at`` (0 light … 1 dark) of the side's family."""
    return matplotlib.colormaps[FAMILIES[side]](at)


def _draw_grid(ax: Axes, box: Box) -> None:
    """One grid at its place: shaded cells, every number, labels, title and remark (the axes count inches)."""
    g, x, y = box.grid, box.x, box.y
    rows, cols = len(g.cells), len(g.cells[0])
    shade = np.asarray(g.shade, dtype=np.float64)
    finite = shade[np.isfinite(shade)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    spread = (shade - low) / (high - low) if high > low else np.where(np.isfinite(shade), 0.3, np.nan)
    light = ListedColormap(matplotlib.colormaps[FAMILIES[g.side]](np.linspace(*LIGHT, 256)))
    xs, ys = x + box.cell_w * np.arange(cols + 1), y + CELL_H * np.arange(rows + 1)
    mesh = ax.pcolormesh(xs, ys, np.ma.masked_invalid(spread), cmap=light, vmin=0, vmax=1, edgecolors="white")
    mesh.set(linewidth=1.2, gid=f"grid:{g.key}")
    for i, row in enumerate(g.cells):
        for j, text in enumerate(row):
            if text:
                cx, cy = x + (j + 0.5) * box.cell_w, y + (i + 0.5) * CELL_H
                ax.text(
                    cx, cy, text, ha="center", va="center_baseline", fontsize=NUMBER_PT, gid=f"cell:{g.key}:{i}:{j}"
                )
    if g.cut is not None:
        ax.plot([x + g.cut * box.cell_w] * 2, [y, y + box.cells_h], color=_family(g.side, 0.9), linewidth=2.5)
    if box.row_labels and g.rows:
        for i, label in enumerate(g.rows):
            ax.text(
                x - PAD,
                y + (i + 0.5) * CELL_H,
                label,
                ha="right",
                va="center_baseline",
                fontsize=LABEL_PT,
                gid=f"row:{g.key}:{i}",
            )
    if box.column_labels and g.columns:
        for j, label in enumerate(g.columns):
            ax.text(
                x + (j + 0.5) * box.cell_w,
                y - 0.04,
                label,
                ha="center",
                va="bottom",
                fontsize=LABEL_PT,
                gid=f"column:{g.key}:{j}",
            )
    ax.text(
        box.left,
        box.top,
        box.title,
        fontsize=TITLE_PT,
        weight="bold",
        color=_family(g.side, 0.95),
        va="top",
        linespacing=LINE * 0.9,
        gid=f"title:{g.key}",
    )
    if g.remark:
        ax.text(box.left, box.top + box.title_h, f"({g.remark})", fontsize=REMARK_PT, color="dimgray", va="top")


def draw_sheet(w: Walkthrough) -> Figure:
    """The whole walkthrough as one figure (Agg, off-screen): every matrix of the printout, every number in its cell."""
    sheet = lay_out(w)
    fig = Figure(figsize=(sheet.width, sheet.height), dpi=DPI)
    FigureCanvasAgg(fig)  # render off-screen with Agg
    ax = fig.add_axes((0, 0, 1, 1))  # one axes over the whole sheet, counting inches from the top-left corner
    ax.set_xlim(0, sheet.width)
    ax.set_ylim(sheet.height, 0)
    ax.axis("off")
    ax.text(MARGIN, MARGIN, sheet.title, fontsize=HEADING_PT, weight="bold", va="top")
    below = MARGIN + lines_height(1, HEADING_PT) + 0.05
    ax.text(MARGIN, below, "text side", fontsize=SIDE_PT, color=_family("text", 0.9), va="top")
    ax.text(
        sheet.width - MARGIN, below, "image side", fontsize=SIDE_PT, color=_family("image", 0.9), va="top", ha="right"
    )
    for top, text in sheet.headings:
        ax.plot([MARGIN, sheet.width - MARGIN], [top - 0.05] * 2, color=_family("shared", 0.4), linewidth=0.8)
        ax.text(
            sheet.width / 2,
            top,
            text,
            fontsize=HEADING_PT - 2,
            weight="bold",
            color=_family("shared", 0.95),
            ha="center",
            va="top",
        )
    for left, top, text in sheet.notes:
        ax.text(left, top, text, fontsize=NOTE_PT, va="top", linespacing=LINE * 0.95)
    for box in sheet.boxes:
        _draw_grid(ax, box)
    return fig


# ---- writing ---------------------------------------------------------------------------
def check_sheet_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as an absolute Path if the sheet can be written there: a .png or .svg name in a writable place.

    Refused in one line (``ValueError``) before any drawing: another suffix, a folder, a place under a file.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"--figure {path}: the sheet is written as PNG or SVG, chosen by the suffix, so the name must end in "
            f"{' or '.join(SUFFIXES)}"
        )
    try:
        return check_output_file(path, suffix)
    except ValueError as exc:  # its words name --out, the flag most commands write with
        raise ValueError(str(exc).replace("--out", "--figure")) from None


def figure_bytes(fig: Figure, suffix: str) -> bytes:
    """``fig`` as a PNG or SVG file's bytes; the SVG keeps its text as text (searchable, and read back by tests)."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "miniclip"}):
        fig.savefig(buffer, format=suffix.removeprefix("."), dpi=DPI, metadata=_metadata(suffix))
    return buffer.getvalue()


def _metadata(suffix: str) -> dict[str, str | None]:
    """No date in the file, so that the same sheet is the same bytes."""
    return {"Date": None} if suffix == ".svg" else {"Software": None}


def write_sheet(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write a drawn sheet to ``path``, PNG or SVG by its suffix, atomically; returns the path written."""
    path = check_sheet_path(path)
    data = figure_bytes(fig, path.suffix.lower())
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda f: f.write(data))


def save_sheet(w: Walkthrough, path: str | os.PathLike[str]) -> Path:
    """Draw the walkthrough's sheet and write it to ``path`` (PNG or SVG by its suffix), atomically."""
    return write_sheet(draw_sheet(w), path)


def show_in_notebook(fig: Figure) -> bool:
    """Show ``fig`` inline when running in Jupyter or IPython; in a plain script run do nothing. True if shown."""
    ipython = sys.modules.get("IPython")  # imported by IPython itself, never by a plain script run
    if ipython is None or ipython.get_ipython() is None:
        return False
    from IPython.display import Image, display

    display(Image(figure_bytes(fig, ".png")))
    return True
