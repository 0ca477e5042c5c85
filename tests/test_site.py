"""The website: built by tools/build_site.py (Sphinx, warnings as errors), then read as a person would.

The build runs once per module into a temp folder, from the committed notebooks, with a
repository configured so the Binder links are built too. The static checks read every built page
(internal links and anchors resolve; nothing is loaded from another host); the browser test opens
the landing page and example 1 in Debian's Chromium with every request routed: anything that is
not the loopback site server fails the test. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
CORE = [p for p in LESSONS if p.name.startswith("0")]
DEEP = [p for p in LESSONS if p.name.startswith("1")]
REPOSITORY = "example-owner/mlflow-400-lab"
BINDER = f"https://mybinder.org/v2/gh/{REPOSITORY}/HEAD?urlpath=lab/tree/"
EXAMPLE_1 = "01_"  # the article's example 1
LIVE_ANSWER = "Content-Type header is missing"
# Attributes that make a browser fetch something when the page loads (links are not fetched).
LOADS = {("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"), ("video", "src"),
         ("audio", "src"), ("embed", "src"), ("object", "data"), ("input", "src")}
LOADING_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "prefetch", "manifest",
                "apple-touch-icon", "preconnect", "dns-prefetch"}


class Page(HTMLParser):
    """The parts of a built page the checks need: ids, links, loaded resources, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.loads: list[str] = []
        self.imgs: list[str] = []
        self.chunks: list[str] = []
        self.cells: list[str] = []  # text of each table cell
        self.empty_headers: list[str] = []  # <th> cells with no text and no aria-label
        self.icons: list[str] = []  # <link rel="icon"> targets
        self._header_label = ""
        self._cell: list[str] | None = None
        self._skip = 0
        self.feed(text)
        self.text = re.sub(r"\s+", " ", "".join(self.chunks))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for key in ("id", "name"):
            if a.get(key) and (key == "id" or tag == "a"):
                self.ids.add(a[key])
        if tag in ("script", "style"):
            self._skip += 1
        if tag in ("td", "th"):
            self._cell = []
            self._header_label = a.get("aria-label", "")
        if tag == "link" and "icon" in a.get("rel", "").lower().split():
            self.icons.append(a.get("href", ""))
        if "href" in a:
            rels = set(a.get("rel", "").lower().split())
            (self.loads if tag == "link" and rels & LOADING_RELS else self.links).append(a["href"])
        for t, attr in LOADS:
            if tag == t and a.get(attr):
                self.loads.append(a[attr])
        if tag == "img":
            self.imgs.append(a.get("src", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            if tag == "th" and not self.cells[-1] and not self._header_label:
                self.empty_headers.append(f"cell {len(self.cells)}")
            self._cell = None

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)
            if self._cell is not None:
                self._cell.append(data)


def _no_network_prefix() -> list[str]:
    """`unshare -n`: run the build in a network namespace with no interface but loopback."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def offline() -> bool:
    return bool(_no_network_prefix())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, offline: bool) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    started = time.monotonic()
    result = subprocess.run([*_no_network_prefix(), sys.executable, str(ROOT / "tools" / "build_site.py"),
                             "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "SITE_REPOSITORY": REPOSITORY})
    print(f"site built in {time.monotonic() - started:.1f} s ({'no network' if offline else 'network'})")
    assert result.returncode == 0, f"the site build failed:\n{result.stdout}\n{result.stderr}"
    assert (out / "index.html").is_file()
    return out


def test_the_build_needs_no_network(site: Path, offline: bool) -> None:
    """The fixture built the site with no network at all whenever this machine allows it (root)."""
    if not offline:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: `unshare -n` must work to prove the build is offline")
        pytest.skip("`unshare -n` is not permitted here (needs root): the build ran with the network")
    assert (site / "index.html").is_file()


@functools.cache
def _parse(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def _pages(site: Path) -> list[Path]:
    """Built pages (the theme also copies its Jinja macros into _static/ as .html)."""
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def _lesson_page(site: Path, notebook: Path) -> Path:
    return site / "notebooks" / f"{notebook.stem}.html"


def _markdown(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def test_every_lesson_and_reference_page_is_built(site: Path) -> None:
    assert LESSONS, "no notebooks found"
    expected = [_lesson_page(site, nb) for nb in LESSONS]
    expected += [site / "field_guide.html", site / "versions" / "README.html"]
    missing = [str(p.relative_to(site)) for p in expected if not p.is_file()]
    assert not missing, f"pages not built: {missing}"


def test_navigation_is_core_path_then_deep_dives_in_file_order(site: Path) -> None:
    index = site / "index.html"
    order = [unquote(urlsplit(h).path) for h in _parse(index).links]
    lessons = [Path(h).stem for h in order if h.startswith("notebooks/") and h.endswith(".html")]
    first_seen = list(dict.fromkeys(lessons))
    assert first_seen == [p.stem for p in CORE + DEEP]
    text = _parse(index).text
    assert "Core path" in text
    assert ("Optional deep dives" in text) == bool(DEEP)


def test_internal_links_and_anchors_resolve(site: Path) -> None:
    broken = []
    for page in _pages(site):
        parsed = _parse(page)
        for url in parsed.links + parsed.loads:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)} → {url}"
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{where}: no such file")
            elif parts.fragment and target.suffix == ".html" and parts.fragment not in _parse(target).ids:
                broken.append(f"{where}: no such anchor")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_every_page_names_the_kits_favicon(site: Path) -> None:
    """Without one, every page makes the browser ask for /favicon.ico and get a 404."""
    missing = []
    for page in _pages(site):
        icons = _parse(page).icons
        if not icons or not all((page.parent / unquote(urlsplit(i).path)).is_file() for i in icons):
            missing.append(str(page.relative_to(site)))
    assert not missing, f"pages without a favicon that exists: {missing}"
    assert (site / "_static" / "favicon.svg").is_file()


def test_no_empty_table_headers(site: Path) -> None:
    """A header cell needs text (axe-core's empty-table-header): the kit's tables (helpers'
    Table in notebook outputs, the README's verdict table) render an empty corner as <td>."""
    empty = [f"{page.relative_to(site)}: {where}" for page in _pages(site)
             for where in _parse(page).empty_headers]
    assert not empty, "empty <th> cells:\n" + "\n".join(empty)


def test_no_page_or_stylesheet_loads_anything_from_another_host(site: Path) -> None:
    external = []
    for page in _pages(site):
        for url in _parse(page).loads:
            if urlsplit(url).scheme in ("http", "https") or url.startswith("//"):
                external.append(f"{page.relative_to(site)}: {url}")
    for css in site.rglob("*.css"):
        for found in re.finditer(r"(url\(\s*['\"]?|@import\s+['\"])((https?:)?//[^'\")\s]+)",
                                 css.read_text(encoding="utf-8", errors="replace")):
            external.append(f"{css.relative_to(site)}: {found.group(2)}")
    assert not external, "resources from other hosts (the site must work offline):\n" + "\n".join(external)


def _readme_verdict_table() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- verdict-table:start -->(.*?)<!-- verdict-table:end -->", readme, re.S)
    assert found, "README.md has no verdict-table markers"
    rows = [line.strip().strip("|").split("|") for line in found.group(1).splitlines()
            if line.strip().startswith("|") and not re.fullmatch(r"[\s|:-]+", line)]
    assert rows, "no table between the verdict-table markers"
    return [[_rendered(cell) for cell in row] for row in rows]


def _rendered(markdown: str) -> str:
    """The text a reader sees for a table cell: links by their text, no code or emphasis marks."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"`|\*\*?|(?<!\w)_|_(?!\w)", "", text)
    return re.sub(r"\s+", " ", text).strip()


def test_landing_page_has_the_verdict_table_from_the_readme_and_the_learners_command(site: Path) -> None:
    index = _parse(site / "index.html")
    missing = [cell for row in _readme_verdict_table() for cell in row if cell not in index.cells]
    assert not missing, f"verdict table cells missing from the landing page: {missing}"
    assert "make lab" in index.text  # the learner's command; make test is named for contributors


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.stem)
def test_each_lesson_shows_time_prerequisites_and_how_to_open_it(site: Path, notebook: Path) -> None:
    text = _parse(_lesson_page(site, notebook)).text
    stated = re.search(r"About (\d+) minutes", _markdown(notebook))
    shown = re.search(r"About (\d+) minutes( \(estimated from its length\))? · (core path|optional)", text)
    assert shown, "no time in the lesson header"
    if stated:
        assert shown.group(1) == stated.group(1), "the header's time differs from the notebook's"
    else:
        assert "estimated from its length" in text
    assert "Prerequisites" in text  # the notebook's own prerequisites, rendered
    path = f"notebooks/{notebook.name}"
    assert f"make lab in the kit's folder, then open {path}" in text
    assert f"{BINDER}{path}" in _parse(_lesson_page(site, notebook)).links
    place = "core path, lesson" if notebook in CORE else "optional deep dive"
    assert place in text


def test_widget_outputs_show_their_text_not_a_dead_widget(site: Path) -> None:
    checked = 0
    for notebook in LESSONS:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        html = _lesson_page(site, notebook).read_text(encoding="utf-8")
        text = _parse(_lesson_page(site, notebook)).text
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "application/vnd.jupyter.widget-view+json" in data:
                    checked += 1
                    fallback = re.sub(r"\s+", " ", "".join(data["text/plain"])).strip("'\" ")
                    assert fallback in text, f"{notebook.name}: widget's text fallback missing"
        assert "application/vnd.jupyter.widget-view+json" not in html, notebook.name
    print(f"{checked} widget outputs shown as text")


def test_markdown_images_are_on_their_pages(site: Path) -> None:
    for notebook in LESSONS:
        for ref in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", _markdown(notebook)):
            if urlsplit(ref).scheme:
                continue
            imgs = _parse(_lesson_page(site, notebook)).imgs
            assert any(unquote(src).endswith(Path(ref).name) for src in imgs), (
                f"{notebook.name}: image {ref} not on its page")


def test_landing_page_shows_the_lab_picture_when_the_kit_has_one(site: Path) -> None:
    picture = ROOT / "notebooks" / "images" / "request_lab.png"
    imgs = _parse(site / "index.html").imgs
    assert any(src.endswith("request_lab.png") for src in imgs) == picture.is_file()


def test_field_guide_page_repeats_the_generated_guide(site: Path) -> None:
    text = _parse(site / "field_guide.html").text
    assert "Field guide" in text
    guides = []
    for notebook in LESSONS:
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code" and "field_guide(" in "".join(cell["source"]):
                guides += ["".join(o["data"]["text/html"]) for o in cell.get("outputs", [])
                           if "text/html" in o.get("data", {})]
    assert guides, "no committed field_guide(...) output found in the notebooks"
    committed = Page(guides[-1]).cells
    shown = set(_parse(site / "field_guide.html").cells)
    assert committed and not [c for c in committed if c not in shown], "field-guide cells missing"


def test_version_record_page_has_the_matrix(site: Path) -> None:
    text = _parse(site / "versions" / "README.html").text
    record = (ROOT / "versions" / "README.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1].strip() for line in record.splitlines()
            if re.match(r"\| c\d+ ", line)]
    assert rows and all(row in text for row in rows)


# --- in a real browser ----------------------------------------------------------------------


# True when the text is on the page and, once scrolled to, fully on screen: not cut off by the
# page's width or by a box that scrolls sideways.
IN_VIEW = """needle => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, at = node.data.indexOf(needle);
    if (at < 0) continue;
    node.parentElement.scrollIntoView({block: "center"});
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + needle.length);
    let box = node.parentElement;
    while (box && getComputedStyle(box).overflowX === "visible") box = box.parentElement;
    const clip = box ? box.getBoundingClientRect() : {left: 0, right: innerWidth};
    const rects = [...range.getClientRects()];
    return rects.length > 0 && rects.every(r => r.left >= Math.max(clip.left, 0) - 1
      && r.right <= Math.min(clip.right, innerWidth) + 1 && r.top >= 0 && r.bottom <= innerHeight);
  }
  return false;
}"""


def _images_not_loaded(page) -> list[str]:
    return page.evaluate("[...document.images].filter(i => !i.complete || !i.naturalWidth).map(i => i.src)")


#: axe-core rules off by default that the site is held to: the theme's search button broke
#: label-content-name-mismatch (site/_templates/search-button-field.html works around it).
AXE_OPTIONS = {"rules": {"label-content-name-mismatch": {"enabled": True}}}
#: Pages audited with axe-core, whole (the theme's chrome included): the landing page, example 1
#: and the field guide (the kit's generated table), ~2-3 s each. Notebook 15's long page takes
#: ~17 s; its table is held by test_no_empty_table_headers, which reads every page.
AXE_PAGES = ("index.html", "notebooks/{example}.html", "field_guide.html")


def _axe_serious(page) -> list[str]:
    """axe-core's critical and serious violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS)
    return [f"{v['impact']} {v['id']}: {n['target']} {n['html'][:160]}"
            for v in results.response["violations"] if v["impact"] in ("critical", "serious")
            for n in v["nodes"]]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site_url(site: Path) -> Iterator[str]:
    """The built site served on 127.0.0.1, as the README's preview command does."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.browser
def test_site_in_chromium_offline_and_without_console_errors(site_url: str) -> None:
    _require_browser()
    from playwright.sync_api import sync_playwright

    example = next(nb for nb in CORE if nb.name.startswith(EXAMPLE_1))
    ARTIFACTS.mkdir(exist_ok=True)
    outside: list[str] = []
    errors: list[str] = []

    def route(r) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in ("data", "blob", "about") or (
                parts.scheme in ("http", "https", "file") and parts.hostname in ("127.0.0.1", None)):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", route)
            page = context.new_page()
            auditing = [False]  # axe-core's own fetches are not the site's
            page.on("console", lambda m: m.type == "error" and not auditing[0] and errors.append(
                f"console: {m.text}"))
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: r.url not in outside and errors.append(
                f"request failed: {r.url}"))
            page.on("response", lambda r: r.status >= 400 and not auditing[0] and errors.append(
                f"{r.status}: {r.url}"))  # e.g. /favicon.ico when a page names no icon

            page.goto(f"{site_url}/index.html", wait_until="networkidle")
            assert page.title().startswith("MLflow 400 Lab")
            page.get_by_role("heading", name=re.compile("verdict", re.I)).first.wait_for()
            assert page.locator("nav a[href*='notebooks/']").first.is_visible()
            assert _images_not_loaded(page) == []
            page.screenshot(path=str(ARTIFACTS / "site_index.png"))

            page.goto(f"{site_url}/notebooks/{example.stem}.html", wait_until="networkidle")
            page.get_by_text(re.compile(r"About \d+ minutes")).first.wait_for()
            assert page.evaluate(IN_VIEW, LIVE_ANSWER), (
                f"the live answer {LIVE_ANSWER!r} is not on the page, or not readable on screen")
            assert _images_not_loaded(page) == []
            page.screenshot(path=str(ARTIFACTS / "site_example_1.png"))

            for notebook in LESSONS:  # the pages with pictures (the Request Lab's among them)
                if re.search(r"!\[[^\]]*\]\(", _markdown(notebook)):
                    page.goto(f"{site_url}/notebooks/{notebook.stem}.html", wait_until="networkidle")
                    assert _images_not_loaded(page) == [], notebook.name

            # axe-core last: it fetches each stylesheet again, and resolves the theme's
            # `@import "../basic.css"` against the page, not the sheet (a 404 of its own).
            auditing[0] = True
            violations = []
            for name in (n.format(example=example.stem) for n in AXE_PAGES):
                page.goto(f"{site_url}/{name}", wait_until="networkidle")
                violations += [f"{name}: {v}" for v in _axe_serious(page)]
        finally:
            browser.close()
    assert not outside, f"requests that would leave the machine: {outside}"
    assert not errors, "\n".join(errors)
    assert not violations, "axe-core, critical or serious:\n" + "\n".join(violations)
