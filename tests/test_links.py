"""No dead internal link in the built book: every relative href (and src) of every page of
_build/html names a file that exists, and a link to another page's #fragment names an element of
that page. A Markdown link the build does not resolve (``[text](06c_mechanism.ipynb)`` in a
notebook's Markdown output, rendered as CommonMark) reaches the HTML verbatim and is caught here.

``dead_links`` is also run on the book that tests/test_book.py builds, so that `make test` checks
a fresh build; the test below checks the HTML of the last `make html`, if there is one."""

import os
import re
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, data:, javascript: ...


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id", "name"):
            if attrs.get(name):
                self.ids.add(attrs[name])
        for name in ("href", "src"):
            if attrs.get(name) is not None:
                self.links.append((tag, attrs[name].strip()))


@lru_cache(maxsize=None)
def _parse(page: Path) -> _Page:
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parsed


def is_internal(link: str) -> bool:
    """A relative link: not a URL with a scheme, not protocol-relative, not a #fragment of this page."""
    return bool(link) and not SCHEME.match(link) and not link.startswith(("//", "#"))


def dead_links(html: Path) -> list:
    """'page: link (why)' for every relative link of a page of html/**/*.html whose target file is missing,
    or whose #fragment names no element of the other page it points to."""
    html = Path(html)
    _parse.cache_clear()
    dead = []
    for page in sorted(html.glob("**/*.html")):
        if page.relative_to(html).parts[0] in ("_static", "_sources"):
            continue  # the theme's Jinja macro files (webpack-macros.html) and copied sources: no page
        for tag, link in _parse(page).links:
            if not is_internal(link):
                continue
            parts = urlsplit(link)
            target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(html)}: <{tag}> {link}"
            if not target.is_file():
                dead.append(f"{where} (no file {os.path.relpath(target, html.resolve())})")
            elif parts.fragment and target.suffix == ".html" and target != page.resolve() \
                    and unquote(parts.fragment) not in _parse(target).ids:
                dead.append(f"{where} (no id {parts.fragment!r} in {target.name})")
    return dead


def test_the_checker_finds_a_missing_page_and_a_missing_anchor_and_nothing_else(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "style.css").write_text("")
    (tmp_path / "chapters" / "b.html").write_text('<h2 id="known">B</h2>')
    (tmp_path / "chapters" / "a.html").write_text(
        '<a href="b.html">ok</a> <a href="b.html#known">ok</a> <a href="#local">same page</a>'
        '<link href="../_static/style.css?v=1"> <a href="https://example.org/x.ipynb">external</a>'
        '<a href="mailto:a@b.c">mail</a> <a href="../">the book\'s index</a>'
        '<a href="06c_mechanism.ipynb">dead</a> <a href="b.html#unknown">dead anchor</a>')
    (tmp_path / "index.html").write_text('<a href="chapters/a.html">a</a>')
    assert dead_links(tmp_path) == [
        "chapters/a.html: <a> 06c_mechanism.ipynb (no file chapters/06c_mechanism.ipynb)",
        "chapters/a.html: <a> b.html#unknown (no id 'unknown' in b.html)"]


def test_the_built_book_has_no_dead_internal_link():
    html = ROOT / "_build" / "html"
    if not (html / "index.html").exists():
        pytest.skip("no built book in _build/html (`make html` builds it; tests/test_book.py checks a fresh build)")
    dead = dead_links(html)
    assert not dead, f"{len(dead)} dead internal links in _build/html:\n" + "\n".join(dead[:40])
