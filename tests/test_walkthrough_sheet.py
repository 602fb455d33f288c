"""The walkthrough's sheet shows the printout's numbers: grid by grid, cell by cell, in the figure and in its files.

The numbers are read back from what was drawn (the figure's text artists, and the ``<text>``
elements of the SVG) and compared with the lines ``miniclip walkthrough`` prints, parsed from
the printout's text; the titles likewise. The command refuses a bad file name or place in one
line, before it prints or draws anything.
"""

from __future__ import annotations

import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from miniclip.cli import main
from miniclip.teaching.walkthrough import build_walkthrough
from miniclip.teaching.walkthrough_sheet import (
    DPI,
    NUMBER_PT,
    PAD,
    TITLE_PT,
    draw_sheet,
    lay_out,
    show_in_notebook,
    text_width,
)

SVG = "{http://www.w3.org/2000/svg}"
Drawn = dict[str, dict[str, object]]  # key → {"title": str, "cells": {(i, j): str}, "rows": {i: str}, "columns": ...}


def drawn_from_gids(pairs: list[tuple[str, str]]) -> Drawn:
    """Group ``(gid, text)`` pairs — ``cell:KEY:I:J``, ``row:KEY:I``, ``column:KEY:J``, ``title:KEY`` — by grid."""
    drawn: Drawn = {}
    for gid, text in pairs:
        kind, _, rest = gid.partition(":")
        if kind not in ("cell", "row", "column", "title"):
            continue
        if kind == "title":
            drawn.setdefault(rest, {})["title"] = " ".join(text.split())
            continue
        parts = rest.split(":")
        key, where = ":".join(parts[: -2 if kind == "cell" else -1]), parts[-2:] if kind == "cell" else parts[-1:]
        grid = drawn.setdefault(key, {})
        grid.setdefault(kind, {})[tuple(int(p) for p in where) if kind == "cell" else int(where[0])] = text
    return drawn


def drawn_in_figure(fig) -> Drawn:
    """Every grid's texts, read from the figure's text artists."""
    return drawn_from_gids([(t.get_gid(), t.get_text()) for ax in fig.axes for t in ax.texts if t.get_gid()])


def drawn_in_svg(path: Path) -> Drawn:
    """Every grid's texts, read from the SVG's ``<text>`` elements (a title's lines joined by spaces)."""
    root = ET.parse(path).getroot()
    pairs = []
    for group in root.iter(f"{SVG}g"):
        gid = group.get("id", "")
        if gid.split(":")[0] in ("cell", "row", "column", "title"):
            pairs.append((gid, " ".join(t.text or "" for t in group.iter(f"{SVG}text"))))
    return drawn_from_gids(pairs)


def is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def printed_table(lines: list[str], heading: str) -> tuple[list[str] | None, list[str]]:
    """The column labels (None where none are printed) and the row lines printed for the sheet's grid ``heading``."""
    part, name = heading.split(" · ", 1)
    title = heading if part.startswith("Step") else name  # outside the 13 steps the printout has a heading instead
    pattern = re.compile(re.escape(title) + r"( \([^()]*\))?   \(([\d, ]*)\)$")  # an optional remark, the shape
    found = [(k, m) for k, line in enumerate(lines) if (m := pattern.match(line))]
    assert len(found) == 1, f"{heading!r} is printed {len(found)} times"
    k, match = found[0]
    shape = [int(n) for n in match[2].split(",") if n.strip()]
    rows = math.prod(shape[:-1])  # 1-D prints as one row, (N, L, D) as N·L rows
    header = re.split(r"\s{2,}", lines[k + 1].strip())  # cells and labels are two spaces apart or more
    if any(is_number(t) for t in header):
        return None, lines[k + 1 : k + 1 + rows]
    return header, lines[k + 2 : k + 2 + rows]


def check_against_printout(drawn: Drawn, printout: str) -> int:
    """Each grid's title, labels and numbers are those of its block in the printout; returns the grids checked."""
    lines = printout.splitlines()
    checked = 0
    for key, grid in drawn.items():
        if grid["title"].startswith("Step 1 ·"):
            continue  # the batch: check_the_batch
        columns, body = printed_table(lines, grid["title"])
        cells: dict[tuple[int, int], str] = grid["cell"]
        n_rows, n_cols = 1 + max(i for i, _ in cells), 1 + max(j for _, j in cells)
        assert len(body) == n_rows, (key, body)
        if "column" in grid:
            assert columns == [grid["column"][j] for j in range(n_cols)], key
        for i, line in enumerate(body):
            numbers = [cells[i, j] for j in range(n_cols) if (i, j) in cells]  # a blank cell prints as spaces
            label = grid.get("row", {}).get(i)
            if label is None:  # no label drawn: the printed numbers end the line
                assert line.split()[len(line.split()) - len(numbers) :] == numbers, (key, i, line, numbers)
            else:
                assert line.startswith(f"  {label}  "), (key, i, label, line)
                assert line[len(label) + 2 :].split() == numbers, (key, i, line, numbers)
        checked += 1
    return checked


def check_the_batch(drawn: Drawn, printout: str) -> None:
    """Step 1: the pixels of each image are the printout's rows (its "|" marks the same cut)."""
    lines = printout.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("Step 1 ·"))
    pixel_rows = [line.replace("image", "").split() for line in lines[start + 2 : start + 4]]  # "0 1 | 2 2 ..."
    for k in range(3):
        cells = drawn[f"image {k + 1}"]["cell"]
        for y in range(2):
            printed = [v for v in pixel_rows[y][5 * k : 5 * k + 5] if v != "|"]
            assert [cells[y, x] for x in range(4)] == printed, (k, y)
    words = drawn["captions"]["cell"]
    assert [f"{words[i, 0]} {words[i, 1]}" for i in range(3)] == ["big table", "small dog", "red car"]


@pytest.fixture(scope="module")
def walk3():
    return build_walkthrough(base=3.0, lr=0.1)


@pytest.fixture(scope="module")
def sheet3(walk3):
    return draw_sheet(walk3)


def test_every_printed_matrix_is_a_grid_with_the_printed_numbers(walk3, sheet3) -> None:
    drawn = drawn_in_figure(sheet3)
    assert set(drawn) == set(walk3.matrices()) | {"captions", "image 1", "image 2", "image 3"}
    assert check_against_printout(drawn, walk3.text()) == len(walk3.matrices())
    check_the_batch(drawn, walk3.text())
    assert drawn["text_hidden"]["title"] == "Step 4 · Text encoder: ReLU"
    assert drawn["power"]["title"] == "Step 10 · Exponentiate: 3^x" and "exp" in drawn  # e^x beside, for comparison
    assert drawn["power"]["cell"][0, 2] == "0.111" and drawn["p_rows"]["cell"][0, 0] == "0.730"
    assert (3, 3) not in drawn["sums"]["cell"]  # the corner of the sums table stays blank, as printed


def test_each_side_has_its_colour_family(walk3) -> None:
    sides = {box.grid.key: box.grid.side for box in lay_out(walk3).boxes}
    assert sides["words"] == sides["text_hidden"] == sides["T"] == sides["dT"] == "text"
    assert sides["patches"] == sides["image_hidden"] == sides["I"] == sides["dI"] == "image"
    assert sides["logits"] == sides["p_rows"] == sides["grad_cols"] == sides["dlogits"] == "shared"


def test_layout_keeps_every_grid_apart_and_every_number_inside_its_cell(walk3) -> None:
    sheet = lay_out(walk3)
    rects = [(b.left, b.top, b.left + b.width, b.y + b.cells_h, b.grid.key) for b in sheet.boxes]
    for k, (x0, y0, x1, y1, key) in enumerate(rects):
        assert x0 > 0 and y0 > 0 and x1 <= sheet.width and y1 <= sheet.height, key
        for a0, b0, a1, b1, other in rects[k + 1 :]:
            assert x1 <= a0 or a1 <= x0 or y1 <= b0 or b1 <= y0, (key, other)
    for t in (b for b in sheet.boxes if b.grid.side == "text"):  # side by side, the text side is on the left
        for i in (
            b for b in sheet.boxes if b.grid.side == "image" and b.top < t.y + t.cells_h and t.top < b.y + b.cells_h
        ):
            assert t.left + t.width < i.left, (t.grid.key, i.grid.key)
    for box in sheet.boxes:
        assert all(text_width(c, NUMBER_PT) + 2 * PAD <= box.cell_w for row in box.grid.cells for c in row), (
            box.grid.key
        )
        assert text_width(box.title, TITLE_PT, bold=True) <= box.width, box.grid.key
    assert NUMBER_PT * DPI / 72 >= 14  # numbers at least 14 pixels high in the PNG


def test_command_draws_png_and_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png, svg = tmp_path / "sheet.png", tmp_path / "deeper" / "sheet.svg"
    assert main(["walkthrough", "--figure", str(png)]) == 0
    out = capsys.readouterr().out
    assert "Step 13 ·" in out and out.rstrip().endswith(f"saved the sheet: {png}")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png.read_bytes()[16:20], "big")  # the IHDR chunk's width
    assert width > 1200

    assert main(["walkthrough", "--base", "e", "--lr", "0.05", "--figure", str(svg)]) == 0
    printout = capsys.readouterr().out.rsplit("saved the sheet:", 1)[0]
    assert printout == build_walkthrough(base=math.e, lr=0.05).text() + "\n"
    drawn = drawn_in_svg(svg)
    assert check_against_printout(drawn, printout) == len(build_walkthrough(base=math.e, lr=0.05).matrices())
    check_the_batch(drawn, printout)
    assert drawn["power"]["title"] == "Step 10 · Exponentiate: e^x" and "exp" not in drawn
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["sheet.png", "sheet.svg"]  # nothing else left


@pytest.mark.parametrize("name", ["sheet.pdf", "sheet", "sheet.png.txt"])
def test_command_refuses_a_bad_suffix_before_any_work(name: str, tmp_path: Path, capsys) -> None:
    assert main(["walkthrough", "--figure", str(tmp_path / name)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the printout
    assert captured.err.count("\n") == 1 and "must end in .png or .svg" in captured.err
    assert list(tmp_path.iterdir()) == []


def test_command_refuses_a_place_under_a_file_or_a_folder_before_any_work(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("a file\n")
    (tmp_path / "folder.png").mkdir()
    for place, words in ((tmp_path / "notes.txt" / "sheet.png", "is a file"), (tmp_path / "folder.png", "a folder")):
        assert main(["walkthrough", "--figure", str(place)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1, captured.err
        assert words in captured.err and "--figure" in captured.err and "--out" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.png", "notes.txt"]


def test_a_plain_run_shows_nothing_inline(sheet3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert show_in_notebook(sheet3) is False
