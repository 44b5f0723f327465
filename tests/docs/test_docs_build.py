"""The documentation site builds with ``mkdocs build --strict`` and its links resolve.

Strict mode already turns mkdocs' own link and anchor validation into errors; the
check below reads the built HTML as a browser would (every ``href``/``src``, the
theme's included) so a link produced by a hook, a docstring or the theme cannot
point at a missing page or anchor either. External links are not fetched.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None,
    reason='mkdocs is not installed (pip install -e ".[docs]")',
)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.links.append(value)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _target(site: Path, page: Path, url: str) -> Path:
    path = unquote(urlsplit(url).path)
    base = site if path.startswith("/") else page.parent
    target = (base / path.lstrip("/")).resolve() if path else page
    return target / "index.html" if target.is_dir() else target


def broken_links(site: Path) -> list[str]:
    """``page: link (reason)`` for every internal link or anchor that does not resolve."""
    pages = {p.resolve(): _parse(p) for p in site.rglob("*.html")}
    broken = []
    for path, page in pages.items():
        for url in page.links:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                continue  # external (http, mailto, data, ...): not fetched
            target = _target(site, path, url)
            if not target.exists():
                broken.append(f"{path.relative_to(site)}: {url} (no such file)")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if fragment not in ids:
                    broken.append(f"{path.relative_to(site)}: {url} (no anchor)")
    return broken


def test_mkdocs_build_strict_and_links(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    p = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert (site / "index.html").exists()
    # the hook reference is generated from fpattr/hookspecs.py, one entry per hook
    import fpattr.hookspecs as specs

    hooks = [n for n in dir(specs) if n.startswith("fpattr_register_")]
    reference = (site / "hooks" / "index.html").read_text(encoding="utf-8")
    assert hooks and all(f'id="fpattr.hookspecs.{h}"' in reference for h in hooks)
    # docs/performance.md is generated whole by benchmarks/performance.py: no placeholder left
    assert "fpattr:speed-table" not in (site / "performance" / "index.html").read_text()
    assert broken_links(site) == []


def test_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text(
        '<h2 id="here">x</h2><a href="a/">ok</a><a href="#here">ok</a>'
        '<a href="https://example.org/x">external</a><a href="a/#nope">bad anchor</a>'
        '<img src="missing.png">'
    )
    (tmp_path / "a" / "index.html").write_text('<a href="../#here">ok</a>')
    assert broken_links(tmp_path) == [
        "index.html: a/#nope (no anchor)",
        "index.html: missing.png (no such file)",
    ]
