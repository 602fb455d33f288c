"""Build the lessons into a static website: each lesson executed as a notebook, one HTML page per lesson.

``python book/build.py --out site`` reads every ``lessons/NN_*.py`` (jupytext's *percent* format),
executes it in a fresh ``python3`` kernel (working directory a temporary folder,
``$MINICLIP_LESSON_OUT`` a temporary folder of its own, one BLAS thread) and writes:

* ``site/index.html`` — the repository's README, its images copied beside it;
* ``site/lessons/index.html`` — ``lessons/README.md``, its links to ``NN_*.py`` pointing at the pages;
* ``site/lessons/NN_*.html`` — the lesson: its text, its code highlighted, every output and figure
  inline (figures as data URIs), printouts longer than 30 lines folded, previous/next links;
* ``site/book.css`` — the one stylesheet.

Maths written ``$…$`` or ``$$…$$`` in the text is converted to MathML at build time
(``latex2mathml``), which browsers render natively, so the site loads nothing from the network
and opens from the disk. The site mirrors the repository's layout, so a relative link in a
README or a lesson keeps working: a link to a lesson becomes a link to its page, a link to any
other file of the repository copies that file into the site.

Needs the ``book`` extra (``pip install -e ".[book]"``); no GPU, no download. The tests import
this file by its path (it is not part of the installed package) for :func:`execute_lesson` and
:func:`build_site`.
"""

from __future__ import annotations

import argparse
import copy
import html
import multiprocessing
import os
import posixpath
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import jupytext
import nbformat
from jinja2 import pass_context
from latex2mathml.converter import convert as latex_to_mathml
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbformat import NotebookNode
from pygments.formatters import HtmlFormatter

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "lessons"
BOOK_DIR = Path(__file__).resolve().parent
TEMPLATES = BOOK_DIR / "templates"
STYLESHEET = BOOK_DIR / "book.css"
LESSON_FILE = re.compile(r"(\d\d)([a-z]?)_[A-Za-z0-9_]+\.py")  # 06_attention_by_hand.py, 06a_...
OUT_VARIABLE = "MINICLIP_LESSON_OUT"  # as miniclip.teaching.lesson_output reads it
FOLD_LINES = 30  # a printout longer than this is folded into a <details>
CELL_TIMEOUT = 600  # seconds one cell may run; the longest lessons train for well under a minute
FRONT_PAGE = "index.html"
CONTENTS_PAGE = "lessons/index.html"


def lesson_paths(lessons_dir: Path = LESSONS_DIR) -> list[Path]:
    """The lessons in reading order: 01, 02, ..., 06, 06a, 06b, 07, ..."""
    return sorted(p for p in lessons_dir.glob("[0-9][0-9]*_*.py") if LESSON_FILE.fullmatch(p.name))


def read_lesson(path: Path) -> NotebookNode:
    """A lesson script (jupytext percent format) as an unexecuted notebook for the ``python3`` kernel."""
    notebook = jupytext.read(path)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def lesson_environment(out: Path) -> dict[str, str]:
    """The kernel's environment: figures saved under ``out``, the CPU, one BLAS thread, this checkout importable."""
    env = {
        **os.environ,
        OUT_VARIABLE: str(out),
        "MINICLIP_DEVICE": "cpu",
        # One BLAS thread: the lessons' tiny models gain nothing from more, and threads fighting over
        # the cores of a busy machine made a lesson that trains ten times slower.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # quiets the kernel's debugger warning about frozen modules
    }
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend, as a reader's notebook has it
    return env


def execute_lesson(path: Path, out: Path, *, workdir: Path, timeout: int = CELL_TIMEOUT) -> NotebookNode:
    """Execute the lesson at ``path`` as a notebook in a fresh kernel and return the executed notebook.

    The kernel runs in ``workdir`` with ``$MINICLIP_LESSON_OUT`` set to ``out`` (where the lesson's
    ``show()`` saves each figure it displays). A cell that raises stops the run with
    ``nbclient.exceptions.CellExecutionError``; the notebook passed in keeps the outputs up to it.
    """
    notebook = read_lesson(path)
    return execute_notebook(notebook, out, workdir=workdir, timeout=timeout)


def execute_notebook(notebook: NotebookNode, out: Path, *, workdir: Path, timeout: int = CELL_TIMEOUT) -> NotebookNode:
    """Execute ``notebook`` in place (see :func:`execute_lesson`) and return it."""
    out.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=lesson_environment(out))
    return notebook


def image_outputs(notebook: NotebookNode) -> int:
    """How many images the notebook's code cells display (one per ``display_data``/``execute_result`` image)."""
    return sum(
        any(kind.startswith("image/") for kind in output.get("data", {}))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type in ("display_data", "execute_result")
    )


def fold_long_outputs(notebook: NotebookNode, max_lines: int = FOLD_LINES) -> NotebookNode:
    """A copy of ``notebook`` whose long printouts are folded.

    Consecutive stream outputs of one cell (``stdout``, ``stderr``) are joined first, as Jupyter
    shows them; any longer than ``max_lines`` lines becomes an HTML ``<details>`` whose summary is
    its first line and its length.
    """
    folded = copy.deepcopy(notebook)
    for cell in folded.cells:
        if cell.cell_type != "code":
            continue
        outputs: list[NotebookNode] = []
        for output in cell.get("outputs", []):
            previous = outputs[-1] if outputs else None
            if (
                output.output_type == "stream"
                and previous is not None
                and previous.output_type == "stream"
                and previous.name == output.name
            ):
                previous.text += output.text
            else:
                outputs.append(output)
        cell.outputs = [_fold(output, max_lines) for output in outputs]
    return folded


def _fold(output: NotebookNode, max_lines: int) -> NotebookNode:
    if output.output_type != "stream":
        return output
    lines = output.text.rstrip("\n").split("\n")
    if len(lines) <= max_lines:
        return output
    first = lines[0].strip() or "output"
    summary = f"{html.escape(first[:100])} … ({len(lines)} lines)"
    body = html.escape("\n".join(lines))
    details = f'<details class="folded-{output.name}"><summary>{summary}</summary><pre>{body}</pre></details>'
    return nbformat.v4.new_output("display_data", data={"text/html": details})


def page_title(notebook: NotebookNode, fallback: str) -> str:
    """The text of the notebook's first level-1 heading, or ``fallback``."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+?)\s*#*\s*$", cell.source, flags=re.MULTILINE)
            if match:
                return match.group(1)
    return fallback


@dataclass
class SiteLinks:
    """Where each source file's page lands in the site, and the other repository files its pages link to.

    The site mirrors the repository: ``README.md`` → ``index.html``, ``lessons/README.md`` →
    ``lessons/index.html``, ``lessons/NN_x.py`` → ``lessons/NN_x.html``; a relative link to any
    other file of the repository keeps its address and the file is copied (``copies``).
    """

    root: Path
    pages: dict[str, str]  # repository path (posix) of a source → site path of its page
    copies: set[str] = field(default_factory=set)

    def rewrite(self, url: str, source: str) -> str:
        """``url`` as written in ``source`` (a repository path), made to point into the site."""
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path:
            return url  # the web, mail, or an anchor on this page
        here = posixpath.dirname(source)
        target = posixpath.normpath(posixpath.join(here, unquote(parts.path)))
        if target.startswith("../") or target == "..":
            return url  # outside the repository: left as written
        page = self.pages.get(target) or self.pages.get(posixpath.join(target, "README.md"))
        if page is not None:
            new = posixpath.relpath(page, here or ".")
        elif (self.root / target).is_file():
            self.copies.add(target)
            new = posixpath.relpath(target, here or ".")
        else:
            return url  # no such file: left for the link check to report
        return urlunsplit(("", "", new, parts.query, parts.fragment))


class BookRenderer(IPythonRenderer):
    """nbconvert's Markdown renderer with maths as MathML and links pointed into the site."""

    def __init__(self, *, links: SiteLinks, source: str, counts: dict[str, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.links = links
        self.source = source
        self.counts = counts

    def _maths(self, latex: str, display: str) -> str:
        try:
            mathml = latex_to_mathml(latex.strip(), display=display)
        except Exception as error:  # latex2mathml raises many kinds, all meaning "cannot convert this"
            raise ValueError(f"{self.source}: cannot convert the maths {latex!r} to MathML: {error}") from error
        self.counts["maths"] = self.counts.get("maths", 0) + 1
        return mathml

    def inline_math(self, body: str) -> str:
        """``$…$`` → inline MathML."""
        return self._maths(body, "inline")

    def block_math(self, body: str) -> str:
        """``$$…$$`` → display MathML."""
        return self._maths(body, "block")

    def latex_environment(self, name: str, body: str) -> str:
        r"""``\begin{name}…\end{name}`` → display MathML."""
        return self._maths(rf"\begin{{{name}}}{body}\end{{{name}}}", "block")

    def link(self, text: str, url: str, title: str | None = None) -> str:
        """A link, pointed at the page or copied file it names."""
        return super().link(text, self.links.rewrite(url, self.source), title)

    def image(self, text: str, url: str, title: str | None = None) -> str:
        """An image, its file copied into the site."""
        return super().image(text, self.links.rewrite(url, self.source), title)


class BookExporter(HTMLExporter):
    """``HTMLExporter`` with the book's template (nothing from the network) and :class:`BookRenderer`."""

    def __init__(self, links: SiteLinks, **kwargs: Any) -> None:
        super().__init__(
            template_name="miniclip",
            extra_template_basedirs=[str(TEMPLATES)],
            exclude_input_prompt=True,
            exclude_output_prompt=True,
            **kwargs,
        )
        self.links = links
        self.counts: dict[str, int] = {}  # what the page being exported holds: "maths" expressions

    def page(self, notebook: NotebookNode, book: dict[str, Any], folder: Path) -> tuple[str, int]:
        """One page's HTML (``book``: the template's title, stylesheet, links; ``folder``: the source's) and
        how many maths expressions it holds."""
        self.counts = {"maths": 0}
        body, _ = self.from_notebook_node(notebook, resources={"book": book, "metadata": {"path": str(folder)}})
        return body, self.counts["maths"]

    @pass_context
    def markdown2html(self, context: Any, source: str) -> str:  # the template's `markdown2html` filter
        """Markdown to HTML, maths to MathML, links into the site."""
        resources = context.get("resources", {})
        book = resources["book"]
        cell = context.get("cell", {})
        renderer = BookRenderer(
            links=self.links,
            source=book["source"],
            counts=self.counts,
            escape=False,
            attachments=cell.get("attachments", {}),
            embed_images=False,
            path=resources.get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
        )
        return MarkdownWithMath(renderer=renderer).render(source)


@dataclass(frozen=True)
class Page:
    """One page written: its source (repository path), its place in the site, title, maths and figures."""

    source: str
    href: str
    title: str
    maths: int
    images: int


def _markdown_notebook(text: str) -> NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])


def build_site(notebooks: Mapping[Path, NotebookNode], out: Path, *, root: Path = ROOT) -> list[Page]:
    """Write the site for the executed lesson ``notebooks`` (path of the lesson → notebook) into ``out``.

    Returns the pages written, front page first, then the contents, then the lessons in order.
    """
    lessons = sorted(notebooks, key=lambda p: p.name)
    readme, contents = root / "README.md", root / "lessons" / "README.md"
    sources = [readme, contents, *lessons]

    def repo(path: Path) -> str:
        return path.resolve().relative_to(root.resolve()).as_posix()

    def site_path(path: Path) -> str:
        if path == readme:
            return FRONT_PAGE
        if path == contents:
            return CONTENTS_PAGE
        return posixpath.splitext(repo(path))[0] + ".html"

    links = SiteLinks(root=root, pages={repo(p): site_path(p) for p in sources})
    exporter = BookExporter(links)
    titled = {readme: "miniclip", contents: "Lessons"}
    notebooks_by_source = {
        readme: _markdown_notebook(readme.read_text(encoding="utf-8")),
        contents: _markdown_notebook(contents.read_text(encoding="utf-8")),
        **{path: fold_long_outputs(notebooks[path]) for path in lessons},
    }
    titles = {path: titled.get(path) or page_title(notebooks_by_source[path], path.stem) for path in sources}

    out.mkdir(parents=True, exist_ok=True)
    pygments_css = HtmlFormatter(style="default").get_style_defs(".highlight")
    (out / "book.css").write_text(STYLESHEET.read_text(encoding="utf-8") + "\n" + pygments_css + "\n", "utf-8")

    def link(target: Path, here: str) -> dict[str, str]:
        return {"href": posixpath.relpath(site_path(target), here or "."), "title": titles[target]}

    pages = []
    for index, path in enumerate(sources):
        here = posixpath.dirname(site_path(path))
        book = {
            "source": repo(path),
            "title": titles[path] if path == readme else f"{titles[path]} · miniclip",
            "css": posixpath.relpath("book.css", here or "."),
            "prev": link(sources[index - 1], here) if index > 0 else None,
            "next": link(sources[index + 1], here) if index + 1 < len(sources) else None,
            "up": [link(readme, here), link(contents, here)],
        }
        notebook = notebooks_by_source[path]
        body, maths = exporter.page(notebook, book, path.parent)
        target = out / site_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
        pages.append(Page(repo(path), site_path(path), titles[path], maths, image_outputs(notebook)))

    for name in sorted(links.copies):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, out / name)
    return pages


def _execute_to_json(path: str) -> str:
    """Execute one lesson in temporary folders; the executed notebook as JSON (picklable across processes)."""
    with tempfile.TemporaryDirectory(prefix="miniclip-book-") as scratch:
        workdir, out = Path(scratch) / "work", Path(scratch) / "out"
        workdir.mkdir()
        started = time.perf_counter()
        notebook = execute_lesson(Path(path), out, workdir=workdir)
        print(f"  {Path(path).name}: {time.perf_counter() - started:.0f} s", flush=True)
        return nbformat.writes(notebook)


def execute_lessons(paths: Sequence[Path], jobs: int) -> dict[Path, NotebookNode]:
    """Execute ``paths`` as notebooks, ``jobs`` at a time (each in its own process and kernel)."""
    context = multiprocessing.get_context("spawn")
    last_first = list(reversed(paths))  # the later lessons train and take longest: start them first
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool:
        executed = dict(zip(last_first, pool.map(_execute_to_json, map(str, last_first)), strict=True))
    return {path: nbformat.reads(executed[path], as_version=4) for path in paths}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: execute the lessons and write the site."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "site", help="folder to write the site into (default: site/)"
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="lessons executed at once (default: one per core)"
    )
    parser.add_argument("lessons", nargs="*", help="only these lessons (file names or numbers such as 03 06a)")
    args = parser.parse_args(argv)

    paths = lesson_paths()
    if args.lessons:
        wanted = set(args.lessons)
        paths = [p for p in paths if p.name in wanted or p.name.split("_")[0] in wanted]
        if not paths:
            parser.error(f"no lesson matches {sorted(wanted)}")
    started = time.perf_counter()
    print(f"Executing {len(paths)} lessons, {args.jobs} at a time ...", flush=True)
    notebooks = execute_lessons(paths, args.jobs)
    pages = build_site(notebooks, args.out)
    elapsed = time.perf_counter() - started
    print(f"Wrote {len(pages)} pages to {args.out} in {elapsed:.0f} s; open {args.out / FRONT_PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
