"""The HTML reports of ``attribute`` and ``verify`` in a real browser (headless Chromium).

String checks cannot see layout: a number hidden by CSS, a hash cut off by a narrow
cell, or a Content-Security-Policy hash that no longer matches the copy script (the
buttons would silently never appear). Here the reports are made through the CLI on tiny
generated images and opened in Chromium through Playwright, at desktop and phone widths.

Needs a Chromium executable (Debian: ``apt-get install -y chromium``; or point
``FPATTR_CHROMIUM`` at one) and Playwright's Python package (``dev`` extra); browsers
are never downloaded. ``FPATTR_UPDATE_SCREENSHOTS=1`` rewrites
docs/figures/report_attribute.png and report_verify.png.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fpattr.report import builtin
from fpattr.testing import run_cli, write_generator_images

FIGURES = Path(__file__).resolve().parents[2] / "docs" / "figures"
GENERATORS = ("nearest", "bilinear", "checker")


def _chromium() -> str | None:
    explicit = os.environ.get("FPATTR_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium executable (apt-get install -y chromium, or set FPATTR_CHROMIUM)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Chromium is present: a missing Playwright is a broken dev install, so fail, not skip
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """attribute (+ JSON results) and verify reports made by the CLI on tiny images."""
    root = tmp_path_factory.mktemp("browser")
    here = os.getcwd()
    os.chdir(root)  # relative paths: the screenshots show queries/x.png, not /tmp/pytest-...
    try:
        return _make_reports(root)
    finally:
        os.chdir(here)


def _make_reports(root: Path) -> dict[str, Path]:
    gallery = Path("gallery")
    for gen in GENERATORS:
        write_generator_images(Path("refs", gen), gen, n=5, size=64, seed=0)
        write_generator_images(Path("queries"), gen, n=2, size=64, seed=100, prefix=f"{gen}_")
        r = run_cli(
            ["gallery", "add", gen, Path("refs", gen), "-g", gallery, "-b", "spectrum", "-q"]
        )
        assert r.exit_code == 0, r.output
    out = {"attribute": root / "attribute.html", "json": root / "attribute.json"}
    r = run_cli(
        ["attribute", "queries", "-g", gallery, "-b", "spectrum", "-q"]
        + ["-o", out["json"], "--report", out["attribute"]]
    )
    assert r.exit_code == 0, r.output
    a, b = sorted(Path("queries").glob("checker_*.png"))
    out["verify"] = root / "verify.html"
    r = run_cli(
        ["verify", a, b, "-g", gallery, "-b", "spectrum", "-q", "--report", out["verify"]]
        + ["-o", "verify.json"]
    )
    assert r.exit_code in (0, 1), r.output
    return out


def _open(browser: Any, path: Path, width: int, *, js: bool = True) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, java_script_enabled=js, device_scale_factor=1
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(f"request {r.url}") if not _local(r.url) else None)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def _local(url: str) -> bool:
    return url.startswith(("file:", "data:", "about:"))


# Elements whose box is wider inside than outside: cut off or spilling out. Inline
# boxes have no scroll box (clientWidth 0) and are judged by their block container.
_CLIPPED_JS = """
(sel) => {
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    const st = getComputedStyle(el);
    if (st.display === 'inline' || st.display === 'none' || el.clientWidth === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1)
      out.push(`${el.tagName}.${el.className} ${el.scrollWidth}>${el.clientWidth}: `
               + el.textContent.slice(0, 60));
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth) out.push(`page ${doc.scrollWidth}>${window.innerWidth}`);
  return out;
}
"""
_CHECKED = (
    ".card, .card .body, .card .body *, .tile, .crow, .crow > *, table.kv th, table.kv td, "
    "table.grid td, .pair, .pair *, .prov, .prov *, details.run, summary"
)


def _visible_text(page: Any, selector: str) -> list[str]:
    loc = page.locator(selector)
    n = loc.count()
    assert n, f"nothing matches {selector}"
    for i in range(n):
        assert loc.nth(i).is_visible(), f"{selector} #{i} is not rendered"
    return [loc.nth(i).inner_text() for i in range(n)]


def _check_manifest(page: Any) -> None:
    manifest = page.locator("details#manifest")
    assert manifest.is_visible() and manifest.get_attribute("open") is not None
    text = manifest.inner_text().lower()  # headings are upper-cased by CSS
    for label in ("environment", "settings", "backbone", "gallery", "calibration", "python"):
        assert label in text, label
    # the manifest comes after the last card
    card_bottom = page.locator("article.card").last.bounding_box()
    box = manifest.bounding_box()
    assert box["y"] >= card_bottom["y"] + card_bottom["height"]
    # collapsible: one click folds it
    page.locator("details#manifest > summary").click()
    assert not page.locator("details#manifest .manifest").is_visible()
    page.locator("details#manifest > summary").click()


def _check_copy(page: Any, js: bool) -> None:
    codes = page.locator("article code.cp.hash")
    assert codes.count() and codes.first.is_visible()
    assert len(codes.first.inner_text().strip()) == 64  # the whole hash, as text
    buttons = page.locator("article button.cpb")
    if not js:  # no script: no dead buttons, the text stays selectable
        assert not buttons.first.is_visible()
        return
    assert buttons.first.is_visible(), "copy script blocked (CSP hash?) or not run"
    buttons.first.click()  # the clipboard promise settles asynchronously
    page.wait_for_function(
        "b => b.textContent === 'copied' || b.textContent === 'selected'",
        arg=buttons.first.element_handle(),
        timeout=5000,
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_attribute_report_in_chromium(browser, reports, width):
    page = _open(browser, reports["attribute"], width)
    n = len(json.loads(reports["json"].read_text())["results"])
    assert page.locator("article.card").count() == n
    # the answer is above the manifest and reachable without scrolling past it
    assert page.locator("#summary").bounding_box()["y"] < 900
    tiles = _visible_text(page, "#summary .tile")
    assert any("INPUTS" in t.upper() for t in tiles)
    _visible_text(page, "article.card .badge")
    for line in _visible_text(page, "article.card .meta.decision"):
        assert "P(" in line and "threshold" in line and "FAR" in line, line
    for values in _visible_text(page, "article.card ol.topk"):
        assert any(ch.isdigit() for ch in values)
    assert page.evaluate(_CLIPPED_JS, _CHECKED) == []
    if width == 1280 and os.environ.get("FPATTR_UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(FIGURES / "report_attribute.png"), full_page=True)
    _check_manifest(page)
    _check_copy(page, js=True)
    assert page.errors == []
    page.context.close()


def test_attribute_report_without_javascript(browser, reports):
    page = _open(browser, reports["attribute"], 1280, js=False)
    _check_copy(page, js=False)
    _visible_text(page, "article.card .meta.decision")
    page.context.close()


def test_verify_report_in_chromium(browser, reports):
    for width in (1280, 390):
        page = _open(browser, reports["verify"], width)
        assert page.locator("article.card").count() == 1
        _visible_text(page, "article.card .badge")
        (meta,) = _visible_text(page, "article.card .body > div.meta")
        assert "P(" in meta and "threshold" in meta, meta
        (sim,) = _visible_text(page, "article.card .sim")
        assert "similarity" in sim and any(ch.isdigit() for ch in sim)
        assert page.locator("article.card .thr").count() == 1  # the threshold tick
        assert len(_visible_text(page, "article.card .pair")) == 2
        assert page.evaluate(_CLIPPED_JS, _CHECKED) == []
        if width == 1280 and os.environ.get("FPATTR_UPDATE_SCREENSHOTS") == "1":
            page.screenshot(path=str(FIGURES / "report_verify.png"), full_page=True)
        _check_manifest(page)
        _check_copy(page, js=True)
        assert page.errors == []
        page.context.close()


def test_provenance_line_and_disagreement_in_chromium(browser, reports, tmp_path):
    """The CLI's results with a provenance record each (the schema ``attribute`` fills),
    rendered by the HTML writer: line and warning visible, details folded, nothing cut."""
    doc = json.loads(reports["json"].read_text())
    results = doc["results"]
    long = "Steps: 20, Sampler: Euler a, " + "x" * 300  # one unbroken token
    for i, r in enumerate(results):
        r["provenance"] = {
            "claimed_generator": "midjourney-v6" if i == 0 else r["decision"],
            "digital_source_type": "trainedAlgorithmicMedia",
            "c2pa": None,
            "png_text": {"parameters": long},
            "exif": {"Software": "midjourney-v6"},
            "xmp": None,
            "notes": ["no C2PA manifest"],
            "errors": [],
            "agrees_with_fingerprint": i != 0,
            "summary": f"PNG text names {'midjourney-v6' if i == 0 else r['decision']}",
        }
    path = tmp_path / "prov.html"
    with path.open("w", encoding="utf-8") as f:
        manifest = {k: v for k, v in doc.items() if k not in ("results", "summary")}
        writer = builtin.html(f, manifest, thumbnails=True)
        for r in results:
            writer.write(r)
        writer.close(doc["summary"])
    for width in (1280, 390):
        page = _open(browser, path, width)
        lines = _visible_text(page, "article.card .prov .pline")
        assert len(lines) == len(results) and "PNG text names midjourney-v6" in lines[0]
        (warn,) = _visible_text(page, "article.card .pwarn")
        assert f"metadata names midjourney-v6, the fingerprint names {results[0]['decision']}" in (
            warn
        )
        details = page.locator("article.card .prov details").first
        assert not details.locator("> table").is_visible()  # folded by default
        details.locator("> summary").click()
        assert details.locator("> table").is_visible()
        assert page.evaluate(_CLIPPED_JS, _CHECKED) == []
        assert page.errors == []
        page.context.close()
