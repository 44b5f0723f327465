"""Each built-in format on fake runs: parse the output back and check the fields."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re

import numpy as np
import pytest

from fpattr.report import builtin
from fpattr.report.base import ReportWriter, dumps, printable, to_jsonable

EVIL_PATH = "imgs/<script>alert(1)</script>.png"  # as in conftest
CSV_PATH = 'imgs/a,b "quoted"\nline2.png'

FACTORIES = [builtin.table, builtin.json_, builtin.jsonl, builtin.csv, builtin.html]


@pytest.mark.parametrize("factory", FACTORIES)
def test_factories_accept_unknown_options_and_follow_protocol(factory, manifest):
    writer = factory(io.StringIO(), manifest, thumbnails=True, some_future_option=3)
    assert isinstance(writer, ReportWriter)


@pytest.mark.parametrize("factory", FACTORIES)
def test_empty_run(factory, manifest, run_writer):
    out = run_writer(factory, manifest, [], {"n_inputs": 0, "n_ok": 0, "n_failed": 0})
    assert out  # every format says something, even for nothing


# -- json helpers ----------------------------------------------------------------------------


def test_to_jsonable_handles_numpy_nan_and_paths(tmp_path):
    data = {
        "f32": np.float32(0.5),
        "i64": np.int64(3),
        "arr": np.array([1.0, np.nan]),
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "b": np.bool_(True),
        "p": tmp_path,
        1: "int key",
    }
    out = to_jsonable(data)
    assert out == {
        "f32": 0.5,
        "i64": 3,
        "arr": [1.0, None],
        "nan": None,
        "inf": None,
        "b": True,
        "p": str(tmp_path),
        "1": "int key",
    }
    # float32 keeps its short form instead of 0.9100000262260437
    assert to_jsonable([np.float32(0.91), np.array([0.1, 0.2], dtype=np.float32)]) == [
        0.91,
        [0.1, 0.2],
    ]
    text = dumps({"name": "modèle ✓", "x": np.float32(1.25)})
    assert "modèle ✓" in text  # ensure_ascii=False
    assert json.loads(text)["x"] == 1.25


def test_printable_escapes_control_characters():
    assert printable("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
    assert printable(None) == ""


# -- json --------------------------------------------------------------------------------------


def test_json(manifest, results, summary, run_writer):
    out = run_writer(builtin.json_, manifest, results, summary, thumbnails=True)
    doc = json.loads(out)  # strict parse: no NaN tokens allowed below
    assert "NaN" not in out
    assert list(doc)[: len(manifest)] == list(manifest)
    assert doc["schema"] == "fpattr.report/1"
    assert doc["calibration"]["temperature"] == 1.5
    assert [r["path"] for r in doc["results"]] == [r["path"] for r in results]
    assert all("thumbnail" not in r for r in doc["results"])
    first = doc["results"][0]
    assert first["top"][0] == {
        "model": "sdxl",
        "similarity": pytest.approx(0.91),
        "probability": 0.97,
    }
    assert doc["results"][1]["top"][0]["probability"] is None  # NaN -> null
    assert doc["results"][3]["status"] == "error"
    assert doc["results"][3]["error"].startswith("cannot decode")
    assert doc["summary"]["decisions"] == {"sdxl": 1, "unknown": 1, "flux-dev": 1}
    assert doc["summary"]["n_failed"] == 1


def test_json_does_not_keep_thumbnails_in_memory(manifest, results):
    writer = builtin.json_(io.StringIO(), manifest, thumbnails=True)
    for r in results:
        writer.write(r)
    assert all("thumbnail" not in r for r in writer.results)
    results[0]["top"][0]["model"] = "mutated later"
    assert writer.results[0]["top"][0]["model"] == "sdxl"  # its own copy


def test_json_verify(verify_manifest, verify_results, verify_summary, run_writer):
    doc = json.loads(run_writer(builtin.json_, verify_manifest, verify_results, verify_summary))
    assert doc["command"] == "verify"
    assert doc["results"][0]["similarity"] == 0.82
    assert doc["results"][1]["similarity"] is None


# -- jsonl -------------------------------------------------------------------------------------


def test_jsonl(manifest, results, summary, run_writer):
    out = run_writer(builtin.jsonl, manifest, results, summary, thumbnails=True)
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == len(results) + 2
    assert lines[0]["type"] == "manifest"
    assert lines[0]["backbone"]["id"] == "fp-resnet18-v1"
    assert [x["type"] for x in lines[1:-1]] == ["result"] * len(results)
    assert [x["path"] for x in lines[1:-1]] == [r["path"] for r in results]
    assert lines[2]["path"] == EVIL_PATH
    assert lines[3]["path"] == CSV_PATH  # newline survives inside one JSON line
    assert all("thumbnail" not in x for x in lines)
    assert lines[-1]["type"] == "summary"
    assert lines[-1]["n_inputs"] == 4


def test_jsonl_streams_and_flushes(manifest, results):
    class Spy(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            Spy.flushes += 1
            super().flush()

    buf = Spy()
    writer = builtin.jsonl(buf, manifest)
    assert buf.getvalue().count("\n") == 1  # manifest before any result
    writer.write(results[0])
    assert buf.getvalue().count("\n") == 2  # the result is out before close
    assert Spy.flushes >= 2


# -- csv ---------------------------------------------------------------------------------------


def test_csv(manifest, results, summary, run_writer):
    out = run_writer(builtin.csv, manifest, results, summary, thumbnails=True)
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert list(rows[0]) == [
        "path",
        "sha256",
        "status",
        "decision",
        "probability",
        "leaning",
        "candidates",
        "p_unknown",
        "threshold",
        "target_far",
        "calibration",
        "top1_model",
        "top1_similarity",
        "top1_probability",
        "top2_model",
        "top2_similarity",
        "top2_probability",
        "error",
        "path_bytes_hex",
    ]
    assert len(rows) == len(results)
    assert rows[0]["top1_model"] == "sdxl"
    assert rows[0]["top1_similarity"] == "0.91"
    assert float(rows[0]["top1_probability"]) == 0.97
    assert rows[1]["path"] == EVIL_PATH
    assert rows[1]["top1_probability"] == ""  # NaN -> empty
    assert rows[2]["path"] == CSV_PATH  # comma, quotes and newline round-trip
    assert rows[2]["top2_probability"] == ""
    assert rows[3]["status"] == "error"
    assert rows[3]["sha256"] == ""
    assert rows[3]["top1_model"] == ""
    assert rows[3]["error"] == "cannot decode image: truncated JPEG <b>"
    assert "data:image" not in out


def test_csv_streams_rows_before_close(manifest, results):
    buf = io.StringIO()
    writer = builtin.csv(buf, manifest)
    writer.write(results[0])
    assert len(buf.getvalue().splitlines()) == 2


def test_csv_top_k_from_first_result_when_not_in_settings(manifest, results, summary, run_writer):
    manifest["settings"] = {}
    out = run_writer(builtin.csv, manifest, results, summary)
    header = next(csv.reader(io.StringIO(out)))
    assert header[-5:] == [
        "top2_model",
        "top2_similarity",
        "top2_probability",
        "error",
        "path_bytes_hex",
    ]


def test_csv_top_k_is_capped_at_the_gallerys_models(manifest, results, summary, run_writer):
    # break-it: --top-k 100 with 4 models wrote 315 columns, almost all empty
    manifest["settings"]["top_k"] = 100
    header = next(csv.reader(io.StringIO(run_writer(builtin.csv, manifest, results, summary))))
    assert sum(c.endswith("_model") for c in header) == 3  # the manifest's 3 models
    manifest["gallery"] = {"n_models": 2}
    header = next(csv.reader(io.StringIO(run_writer(builtin.csv, manifest, results, summary))))
    assert sum(c.endswith("_model") for c in header) == 2


def test_rates_never_read_zero_when_they_are_not():
    from fpattr.report.base import fmt_rate

    assert [fmt_rate(x) for x in (0.01, 0.0001, 1e-6, 0.0, None)] == [
        "1.00%",
        "0.01%",
        "0.00010%",
        "0.00%",
        "-",
    ]


def test_csv_guards_spreadsheet_formulas(manifest, results, summary, run_writer):
    results[0]["path"] = '=HYPERLINK("http://x","y")'
    rows = list(csv.DictReader(io.StringIO(run_writer(builtin.csv, manifest, results, summary))))
    assert rows[0]["path"] == "'" + results[0]["path"]
    out = run_writer(builtin.csv, manifest, results, summary, formula_guard=False)
    assert list(csv.DictReader(io.StringIO(out)))[0]["path"] == results[0]["path"]


def test_csv_verify(verify_manifest, verify_results, verify_summary, run_writer):
    out = run_writer(builtin.csv, verify_manifest, verify_results, verify_summary)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "a",
        "b",
        "similarity",
        "decision",
        "probability",
        "leaning",
        "p_same",
        "threshold",
        "target_far",
        "calibration",
        "a_images",
        "b_images",
        "a_flat",
        "b_flat",
        "a_duplicates",
        "b_duplicates",
        "a_shared",
        "b_shared",
        "a_failed",
        "b_failed",
        "error",
    ]
    assert rows[0]["b"] == EVIL_PATH
    assert float(rows[0]["similarity"]) == pytest.approx(0.82)
    assert rows[0]["decision"] == "same"
    assert rows[1]["similarity"] == ""
    assert rows[1]["error"] == "x/c.png: file not found"


# -- table -------------------------------------------------------------------------------------


def test_table(manifest, results, summary, run_writer):
    out = run_writer(builtin.table, manifest, results, summary)
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "sdxl 0.91" in out
    assert "0.97" in out
    assert "unknown" in out
    assert "failed" in out
    assert "cannot decode image" in out
    assert "<script>alert(1)</script>.png" in out
    assert "\\n" in out  # the newline in CSV_PATH is shown, not printed
    assert "2.0 images/s" in out
    assert "\x1b[" not in out  # not a terminal: no colour codes


def test_table_shortens_long_paths_from_the_left(manifest, results, summary, run_writer):
    results[0]["path"] = "/very/long/" + "deep/" * 40 + "final-name.png"
    out = run_writer(builtin.table, manifest, results, summary, width=100)
    assert "final-name.png" in out
    assert "\u2026" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_table_markup_and_escapes_are_literal(manifest, results, summary, run_writer):
    results[0]["path"] = "[bold red]x[/] \x1b]0;pwned\x07.png"
    out = run_writer(builtin.table, manifest, results, summary, color=True)
    assert "[bold red]x[/]" in out
    assert "\x1b]0;pwned" not in out


def test_table_verify(verify_manifest, verify_results, verify_summary, run_writer):
    out = run_writer(builtin.table, verify_manifest, verify_results, verify_summary)
    for column in ("Similarity", "Probability", "Threshold", "Decision"):
        assert column in out
    assert "0.820" in out and "0.950" in out and "0.600" in out
    assert "same" in out
    assert "file not found" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_table_as_set(manifest, results, summary, run_writer):
    summary["as_set"] = {"decision": "sdxl", "top": [{"model": "sdxl", "probability": 0.9}]}
    out = run_writer(builtin.table, manifest, results, summary)
    assert "As a set" in out and "sdxl 0.90" in out


# -- html --------------------------------------------------------------------------------------


def _external_refs(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, flags=re.I)


def _only_the_copy_script(page: str) -> bool:
    """The one script is the fixed copy-button script, and the CSP allows nothing else."""
    from fpattr.report.htmlfmt import COPY_JS

    digest = base64.b64encode(hashlib.sha256(COPY_JS.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    return (
        page.count("<script") == 1
        and f"<script>{COPY_JS}</script>" in page
        and f"script-src 'sha256-{digest}';" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )


def test_html(manifest, results, summary, run_writer):
    page = run_writer(builtin.html, manifest, results, summary, thumbnails=True)
    assert page.startswith("<!doctype html>")
    assert _only_the_copy_script(page)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    assert not _external_refs(page)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page
    assert page.count('<article class="card') == len(results)
    assert page.count('src="data:image/png;base64,') == 3  # the failed input has none
    # manifest
    for value in ("fp-resnet18-v1", "cd" * 32, "ef" * 32, "midjourney-v6", "temperature"):
        assert value in page
    assert "2024-05-01 12:00:00 UTC" in page and "2024-05-01 12:00:02 UTC" in page
    # cards
    # full sha256 and path as selectable text with a copy button, not only a tooltip
    assert '<code class="cp hash">' + "ab" * 32 + '</code><button type="button" class="cpb"' in page
    assert '<code class="cp">imgs/cat.png</code>' in page
    assert "512\u00d7512" in page and "RGBA-&gt;RGB" in page
    assert 'class="badge b-unknown"' in page
    assert 'class="badge b-failed"' in page
    assert "truncated JPEG &lt;b&gt;" in page
    assert "width:97.0%" in page  # probability bar
    assert "width:80.0%" in page  # similarity bar when probability is None
    assert "Content-Security-Policy" in page


def test_html_without_thumbnails_shows_placeholders(manifest, results, summary, run_writer):
    page = run_writer(builtin.html, manifest, results, summary)
    assert "data:image/png" not in page
    assert page.count("no thumbnail") == len(results)


def test_html_thumbnail_cap_and_bad_uris(manifest, results, summary, run_writer):
    results[1]["thumbnail"] = 'javascript:alert(1)"'
    page = run_writer(builtin.html, manifest, results, summary, thumbnails=True, max_thumbnails=2)
    assert "javascript:" not in page
    assert page.count('src="data:image/png') == 1
    assert "thumbnail omitted" in page


def test_html_escapes_manifest_and_model_names(manifest, results, summary, run_writer):
    manifest["settings"]["note"] = "<img src=x onerror=alert(1)>"
    results[0]["top"][0]["model"] = '<b onmouseover="x">'
    summary["decisions"] = {'<i>"evil"</i>': 2}
    page = run_writer(builtin.html, manifest, results, summary)
    assert "<img src=x" not in page and "<b onmouseover" not in page and "<i>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_html_says_skipped_for_a_skipped_input(manifest, results, summary, run_writer):
    # break-it: a non-image met in a folder carried "no decision" and "uncalibrated" in
    # the HTML while the table and JSON said "skipped"
    skipped = {
        "path": "notes.txt",
        "sha256": None,
        "status": "skipped",
        "error": "not an image (text)",
        "top": [],
        "decision": None,
        "probability": None,
    }
    out = run_writer(builtin.html, manifest, [skipped], summary)
    card = out[out.index('id="r1"') :]
    card = card[: card.index("</article>")]
    assert 'class="badge b-none">skipped<' in card and "not an image (text)" in card
    assert "no decision" not in card and "uncalibrated" not in card


def test_html_verify(verify_manifest, verify_results, verify_summary, run_writer):
    page = run_writer(builtin.html, verify_manifest, verify_results, verify_summary)
    assert "Same-model verification report" in page
    assert "&lt;script&gt;" in page and "<script>alert" not in page
    assert _only_the_copy_script(page)
    cards = page[page.index('id="results"') : page.index('id="manifest"')]
    assert cards.count('<code class="cp hash">') == 3  # a, b and the second pair's a
    assert 'class="badge b-same"' in page and 'class="badge b-failed"' in page
    assert 'class="thr" style="left:60.0%"' in page
    assert "file not found" in page
    assert not _external_refs(page)


def test_html_verify_chart_counts_pairs_not_failed_images(
    verify_manifest, verify_results, verify_summary, run_writer
):
    # break-it: one pair beside 9 unreadable images read "inconclusive 1 10%, failed 9 90%"
    summary = {**verify_summary, "n_failed": 9, "decisions": {"inconclusive": 1}}
    page = run_writer(builtin.html, verify_manifest, verify_results[:1], summary)
    chart = page[page.index('aria-label="decisions"') :]
    chart = chart[: chart.index("</div></div>") if "</div></div>" in chart else None]
    assert "inconclusive" in chart and ">failed<" not in chart and "100%" in chart
    assert '<div class="tv">9</div><div class="tl">Failed</div>' in page


def test_html_multiline_error_and_empty_verify(verify_manifest, results, summary, run_writer):
    results[3]["error"] = "line one\n<line two>"
    page = run_writer(builtin.html, {}, results, summary)
    assert "line one<br>&lt;line two&gt;" in page
    empty = run_writer(builtin.html, verify_manifest, [], {"n_inputs": 0})
    assert "Same-model verification report" in empty
    assert 'Results <span class="count">0</span>' in empty


def test_html_answer_first_manifest_last(manifest, results, summary, run_writer):
    """Summary, then the per-input decisions, then the run manifest (collapsible, open)."""
    page = run_writer(builtin.html, manifest, results, summary)
    summary_at = page.index('id="summary"')
    first_card = page.index('<article class="card')
    manifest_at = page.index('<details class="panel run" id="manifest" open>')
    assert summary_at < first_card < manifest_at
    assert page.index("fp-resnet18-v1") > manifest_at  # backbone, settings: after the cards
    assert page.index("temperature") > manifest_at
    assert '<a href="#manifest">' in page


def _prov(**kw) -> dict:
    base = {
        "claimed_generator": None,
        "digital_source_type": None,
        "c2pa": None,
        "png_text": None,
        "exif": None,
        "xmp": None,
        "notes": [],
        "errors": [],
        "agrees_with_fingerprint": None,
        "summary": "no origin metadata",
    }
    return {**base, **kw}


def test_html_provenance_line_disagreement_and_details(manifest, results, summary, run_writer):
    results[0]["provenance"] = _prov(
        claimed_generator="<b>midjourney</b>",
        png_text={"parameters": "a cat <script>alert(2)</script>, Steps: 20"},
        agrees_with_fingerprint=False,
        errors=["xmp: malformed <x:xmpmeta>"],
        summary="PNG text names midjourney",
    )
    results[2]["provenance"] = _prov(
        claimed_generator="flux-dev", agrees_with_fingerprint=True, summary="C2PA: flux-dev"
    )
    results[1]["provenance"] = _prov(agrees_with_fingerprint=False, claimed_generator="sdxl")
    page = run_writer(builtin.html, manifest, results, summary)
    assert "<script>alert" not in page and "<b>midjourney</b>" not in page
    assert "PNG text names midjourney" in page and "C2PA: flux-dev" in page
    assert (
        "metadata names <b>&lt;b&gt;midjourney&lt;/b&gt;</b>, the fingerprint names <b>sdxl</b>"
        in page
    )
    assert "the fingerprint names no enrolled model (<b>unknown</b>)" in page
    assert page.count('class="prov disagree"') == 2 and page.count('class="prov agree"') == 1
    assert "metadata details, 1 read error" in page and "malformed &lt;x:xmpmeta&gt;" in page
    assert '<div class="tv">2</div><div class="tl">Metadata disagrees</div>' in page
    # never mixed into the fingerprint's numbers: decision lines and bars as without it
    plain = run_writer(
        builtin.html, manifest, [{**r, "provenance": None} for r in results], summary
    )

    def numbers(p: str) -> list[str]:
        return re.findall(r'<div class="meta decision">.*?</ol>', p)

    assert numbers(page) == numbers(plain) and len(numbers(page)) == 3
    assert "width:97.0%" in page


def test_html_without_provenance_has_no_provenance_ui(manifest, results, summary, run_writer):
    page = run_writer(builtin.html, manifest, results, summary)
    assert 'class="prov' not in page and "Metadata disagrees" not in page


def test_html_verify_shows_each_sides_metadata(
    verify_manifest, verify_results, verify_summary, run_writer
):
    prov = {
        "summary": "C2PA: DALL·E 3 <b>signed</b>",
        "agrees_with_fingerprint": None,
        "claimed_generator": "DALL·E 3 (C2PA)",
    }
    rows = [dict(r) for r in verify_results]
    rows[0]["provenance_a"] = prov
    rows[0]["provenance_b"] = None  # a folder side has none
    page = run_writer(builtin.html, verify_manifest, rows, verify_summary)
    cards = page[page.index('id="results"') : page.index('id="manifest"')]
    assert cards.count('class="plabel">A metadata<') == 1
    assert 'class="plabel">B metadata<' not in cards
    assert "C2PA: DALL·E 3 &lt;b&gt;signed&lt;/b&gt;" in cards  # escaped, visible


def test_html_names_what_the_probability_is_of(manifest, results, summary, run_writer):
    # break-it 27c: an inconclusive card read "P(inconclusive) 0.483" for P(bilinear),
    # the outcome it leans to; an ambiguous one's P is of its candidates together
    base = {"path": "x.png", "sha256": "ab" * 32, "status": "ok", "top": [], "threshold": 0.9}
    rows = [
        {**base, "decision": "inconclusive", "leaning": "bilinear", "probability": 0.483},
        {**base, "path": "y.png", "decision": "ambiguous", "candidates": ["a", "b<c"]},
        {**base, "path": "z.png", "decision": "unknown", "probability": 0.7},
    ]
    rows[1]["probability"] = 0.66
    out = run_writer(builtin.html, manifest, rows, summary)
    assert "P(bilinear) <b>0.483</b>" in out and "P(inconclusive)" not in out
    assert "P(a or b&lt;c) <b>0.660</b>" in out and "P(ambiguous)" not in out
    assert "P(unknown) <b>0.700</b>" in out
