"""The book (``book/build.py``): the site's pages, links, folded printouts and maths, checked in a real browser.

The first tests build a small site from a made-up repository in a temporary folder (fast, no lesson runs).
The browser test builds the real site from the lessons ``tests/test_lessons.py`` executed (shared on disk;
a lesson no test has run yet is run here, once) and opens the front page, the index and every lesson page in
headless Chromium through Selenium: every image loaded, every internal link found in the site, the maths
rendered as MathML (no raw ``$`` left in the text outside code), no error in the console. It saves
screenshots of the index and of a lesson with a figure (and maths, where a lesson has some) in its
temporary folder. It skips, saying why, where Chromium, its driver or Selenium is missing.
"""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from test_lessons import LESSONS, book_tools_missing, load_build, run_lesson, shared_cache

if book_tools_missing():
    pytest.skip(
        f"the book needs the book extra; missing here: {', '.join(book_tools_missing())}", allow_module_level=True
    )

import nbformat  # noqa: E402  (the book extra installs it)

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"
LONG = 40  # lines of a printout the made-up lesson makes: more than the fold limit


@pytest.fixture(scope="module")
def build() -> ModuleType:
    return load_build()


def _png() -> str:
    """A 3×2 red PNG as base64 (what a notebook's image output holds)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (200, 30, 30)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory, build: ModuleType) -> tuple[Path, list[Any]]:
    """A made-up repository (README, lessons/README.md, two executed lessons) built into a site."""
    repo = tmp_path_factory.mktemp("repo")
    (repo / "docs").mkdir()
    (repo / "docs" / "sheet.png").write_bytes(base64.b64decode(_png()))
    (repo / "README.md").write_text(
        "# toy\n\nThe loss is $L = -\\frac{1}{N}\\sum_i \\log p_i$; `$HOME` stays code.\n\n"
        "![the sheet](docs/sheet.png)\n\n"
        "See [the lessons](lessons/README.md) and [lesson 2](lessons/02_two.py#end).\n\n"
        "```bash\necho $PATH $HOME\n```\n",
        encoding="utf-8",
    )
    (repo / "lessons").mkdir()
    (repo / "lessons" / "README.md").write_text(
        "# Lessons\n\n- [`01_one.py`](01_one.py) — one\n- [`02_two.py`](02_two.py) — two\n", encoding="utf-8"
    )
    new = nbformat.v4
    one = new.new_notebook(
        cells=[
            new.new_markdown_cell("# Lesson 01 — One\n\nDisplayed:\n\n$$\\sigma(x) = \\frac{1}{1 + e^{-x}}$$"),
            new.new_code_cell(
                "print(...)",
                outputs=[
                    new.new_output("stream", name="stdout", text="".join(f"line {i}\n" for i in range(LONG // 2))),
                    new.new_output(
                        "stream", name="stdout", text="".join(f"line {i}\n" for i in range(LONG // 2, LONG))
                    ),
                    new.new_output("stream", name="stderr", text="short\n"),
                ],
            ),
            new.new_code_cell("show(fig)", outputs=[new.new_output("display_data", data={"image/png": _png()})]),
        ]
    )
    two = new.new_notebook(cells=[new.new_markdown_cell("# Lesson 02 — Two\n\nBack to [one](01_one.py).")])
    for name in ("01_one.py", "02_two.py"):
        (repo / "lessons" / name).write_text("# %%\n", encoding="utf-8")
    site = tmp_path_factory.mktemp("small_site")
    pages = build.build_site(
        {repo / "lessons" / "01_one.py": one, repo / "lessons" / "02_two.py": two}, site, root=repo
    )
    return site, pages


def test_site_pages_and_navigation(small_site: tuple[Path, list[Any]]) -> None:
    site, pages = small_site
    assert [p.href for p in pages] == ["index.html", "lessons/index.html", "lessons/01_one.html", "lessons/02_two.html"]
    assert [p.title for p in pages] == ["miniclip", "Lessons", "Lesson 01 — One", "Lesson 02 — Two"]
    contents = (site / "lessons" / "index.html").read_text(encoding="utf-8")
    assert 'href="01_one.html"' in contents and 'href="02_two.html"' in contents  # the .py links point at pages
    one = (site / "lessons" / "01_one.html").read_text(encoding="utf-8")
    assert 'href="index.html" rel="prev"' in one and 'href="02_two.html" rel="next"' in one
    two = (site / "lessons" / "02_two.html").read_text(encoding="utf-8")
    assert 'href="01_one.html"' in two and 'rel="next"' not in two
    front = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="lessons/index.html"' in front and 'href="lessons/02_two.html#end"' in front
    assert (site / "docs" / "sheet.png").read_bytes() == base64.b64decode(_png())  # the README's image, copied


def test_site_loads_nothing_from_the_network(small_site: tuple[Path, list[Any]]) -> None:
    from bs4 import BeautifulSoup  # nbconvert's own HTML parser

    site, _ = small_site
    for page in site.rglob("*.html"):
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        assert soup.find("script") is None, f"{page.name} has a script"
        addresses = [tag.get("src") or tag.get("href") for tag in soup.find_all(["img", "link", "a", "iframe"])]
        web = [a for a in addresses if a and urlsplit(a).netloc]
        assert not web, f"{page.name} loads or links to the web: {web}"
    assert "data:image/png;base64," in (site / "lessons" / "01_one.html").read_text(encoding="utf-8")


def test_maths_becomes_mathml_and_code_keeps_its_dollars(small_site: tuple[Path, list[Any]]) -> None:
    site, pages = small_site
    assert [p.maths for p in pages] == [1, 0, 1, 0]
    front = (site / "index.html").read_text(encoding="utf-8")
    assert '<math display="inline"' in front and "<mfrac>" in front and "$L" not in front
    assert "<code>$HOME</code>" in front and "$PATH" in front  # code spans and blocks untouched
    assert '<math display="block"' in (site / "lessons" / "01_one.html").read_text(encoding="utf-8")


def test_long_printouts_fold(small_site: tuple[Path, list[Any]], build: ModuleType) -> None:
    site, _ = small_site
    one = (site / "lessons" / "01_one.html").read_text(encoding="utf-8")
    assert one.count("<details") == 1 and f"line 0 … ({LONG} lines)</summary>" in one  # two prints joined
    assert "short" in one  # a short stderr stays as it is

    def printed(lines: int) -> Any:
        text = "".join(f"{i}\n" for i in range(lines))
        cell = nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("stream", name="stdout", text=text)])
        return build.fold_long_outputs(nbformat.v4.new_notebook(cells=[cell])).cells[0].outputs[0]

    assert printed(build.FOLD_LINES).output_type == "stream"
    assert printed(build.FOLD_LINES + 1).output_type == "display_data"


# ---------------------------------------------------------------- the real site, in a browser


def _browser() -> Any:
    """Headless Chromium driven by Selenium, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="Selenium is not installed (pip install selenium)")
    binary = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if binary is None:
        pytest.skip("no Chromium here (apt-get install chromium chromium-driver)")
    driver = shutil.which(DRIVER)
    if driver is None:
        pytest.skip("no chromedriver here (apt-get install chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


@pytest.fixture(scope="module")
def browser() -> Any:
    driver = _browser()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def real_site(tmp_path_factory: pytest.TempPathFactory, build: ModuleType) -> tuple[Path, list[Any]]:
    """The site of every lesson, from the notebooks the lesson tests executed (running any not yet run)."""
    cache = shared_cache(tmp_path_factory)
    notebooks: dict[Path, Any] = {}
    for wait in (False, True):  # first the lessons no other worker is running, then wait for the rest
        for path in LESSONS:
            if path not in notebooks and (run := run_lesson(path, cache, wait=wait)) is not None:
                notebooks[path] = run.notebook
    site = tmp_path_factory.mktemp("site")
    return site, build.build_site(notebooks, site)


VISIBLE_TEXT = """
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const parts = [];
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  if (!node.parentElement.closest('code, pre, script, style, math')) parts.push(node.nodeValue);
}
return parts.join(' ');
"""
PAGE_FACTS = """
return {
  images: Array.from(document.images, i => ({src: i.src.slice(0, 80), ok: i.complete && i.naturalWidth > 0})),
  links: Array.from(document.querySelectorAll('a[href], link[href]'), a => a.getAttribute('href')),
  next: (document.querySelector('a[rel=next]') || {}).href || null,
  maths: Array.from(document.querySelectorAll('math'), m => m.getBoundingClientRect().width),
};
"""


def _check_page(driver: Any, site: Path, page: Any) -> dict[str, Any]:
    """Open one page and check images, links, maths and the console; returns the page's facts."""
    file = site / page.href
    driver.get(file.as_uri())
    facts = driver.execute_script(PAGE_FACTS)
    broken = [image["src"] for image in facts["images"] if not image["ok"]]
    assert not broken, f"{page.href}: images that did not load: {broken}"
    missing = []
    for href in facts["links"]:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path:
            continue  # data: icon, the web, an anchor on this page
        target = (file.parent / unquote(parts.path)).resolve()
        if not (target.is_file() and target.is_relative_to(site.resolve())):
            missing.append(href)
    assert not missing, f"{page.href}: links to nothing in the site: {missing}"
    text = driver.execute_script(VISIBLE_TEXT)
    assert "$" not in text, f"{page.href}: raw $ in the text: …{text[max(0, text.index('$') - 60) :][:120]}…"
    assert len(facts["maths"]) >= page.maths, f"{page.href}: {page.maths} maths converted, {len(facts['maths'])} shown"
    assert all(width > 0 for width in facts["maths"]), f"{page.href}: a MathML element rendered with no width"
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"{page.href}: console errors: {errors}"
    return facts


def test_small_site_in_the_browser(browser: Any, small_site: tuple[Path, list[Any]]) -> None:
    """Maths and images render in the browser even where no lesson has maths yet."""
    site, pages = small_site
    for page in pages:
        _check_page(browser, site, page)
    browser.get((site / "index.html").as_uri())
    assert browser.execute_script("return document.querySelectorAll('math').length") == 1


def test_the_book_in_the_browser(browser: Any, real_site: tuple[Path, list[Any]], tmp_path: Path) -> None:
    """Front page, index and every lesson page: images, links, maths, console; next links chain them in order."""
    site, pages = real_site
    assert [p.href for p in pages[2:]] == [f"lessons/{p.stem}.html" for p in LESSONS]
    for page, following in zip(pages, [*pages[1:], None], strict=True):
        facts = _check_page(browser, site, page)
        expected = (site / following.href).resolve().as_uri() if following else None
        assert facts["next"] == expected, f"{page.href}: next is {facts['next']}, not {expected}"

    browser.get((site / "lessons" / "index.html").as_uri())
    assert browser.save_screenshot(str(tmp_path / "index.png"))
    lesson = max(pages[2:], key=lambda p: (p.images > 0, p.maths, p.images))
    browser.get((site / lesson.href).as_uri())
    browser.execute_script(
        "const target = document.querySelector('.output_png img') || document.querySelector('math');"
        "if (target) target.scrollIntoView({block: 'center'});"
    )
    assert browser.save_screenshot(str(tmp_path / f"{Path(lesson.href).stem}.png"))
    print(f"screenshots in {tmp_path}: index.png, {Path(lesson.href).stem}.png")
