"""Nothing is cut: decisions, model names and numbers print in full at any terminal width
(rich may wrap a long name onto more lines; it never ends it with an ellipsis)."""

from __future__ import annotations

import io
import json
import re
import time

import pytest

from fpattr.evaluation.report import write_table
from fpattr.report import builtin
from fpattr.report.htmlfmt import CSS
from fpattr.report.table import share_widths
from fpattr.testing import run_cli

# two 60-character model names that differ only at the end
A = "stabilityai-stable-diffusion-xl-base-1.0-refiner-ema-fp16-v2a"[:59] + "A"
B = A[:-1] + "B"
WIDTHS = [60, 100, 200]


def in_column(out: str, text: str) -> bool:
    """Whether ``text`` is printed whole: on one line, or folded over consecutive lines
    of one column, left- or right-aligned (a break may drop the space rich wrapped at)."""
    lines = out.splitlines()
    head = text[: min(len(text), 4)]
    for i, line in enumerate(lines):
        x = line.find(head)
        while x >= 0:
            if _left(lines, i, x, text) or _right(lines, i, x, text):
                return True
            x = line.find(head, x + 1)
    return False


def _common(a: str, b: str) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


def _left(lines: list[str], i: int, x: int, text: str) -> bool:
    """Folded at a fixed start column ``x``."""
    rest = text
    for line in lines[i:]:
        piece = line[x:].rstrip()
        n = _common(piece, rest)
        if n == 0:
            return False
        rest = rest[n:].lstrip(" ")
        if not rest:
            return True
        if n < len(piece) and piece[n] != " ":
            return False  # the line went on with something else
    return False


def _right(lines: list[str], i: int, x: int, text: str) -> bool:
    """Folded at a fixed end column (right-justified header or cell)."""
    n = _common(lines[i][x:], text)
    end = x + n
    if end < len(lines[i]) and lines[i][end] != " ":
        return False
    rest = text[n:].lstrip(" ")
    for line in lines[i + 1 :]:
        if not rest:
            return True
        segment = line[:end]
        k = max(
            (k for k in range(1, len(rest) + 1) if segment.endswith(rest[:k])),
            default=0,
        )
        if k == 0 or (end - k > 0 and segment[end - k - 1] != " "):
            return False
        rest = rest[k:].lstrip(" ")
    return not rest


def test_in_column_helper():
    assert in_column("ab abcdef\n   ghij", "abcdefghij")
    assert not in_column("abcdef\n  xx ghij", "abcdefghij")  # not under the first piece
    assert in_column("xx abcdef  | 1\n   ghij    | 2", "abcdefghij")
    assert in_column("a long name", "long name")
    assert not in_column("abcd\u2026", "abcdefgh")
    assert in_column("  abcdef |\n    ghij |", "abcdefghij")  # right-aligned fold


def test_share_widths():
    assert share_widths(100, [(10, 4), (80, 8), (80, 8)]) == [10, 45, 45]
    assert share_widths(100, [(10, 4), (20, 8), (30, 8)]) == [10, 20, 30]
    assert share_widths(10, [(10, 4), (20, 8)]) == [5, 8]  # minimums even if too wide


def _table(manifest, results, summary, width):
    buf = io.StringIO()
    writer = builtin.table(buf, manifest, width=width)
    for r in results:
        writer.write(r)
    writer.close(summary)
    return buf.getvalue()


def _long_run(results, summary):
    for i, res in enumerate(results):  # short paths: only names could be cut
        res["path"] = f"imgs/{i}.png"
    r = results[0]
    r["decision"] = A
    r["leaning"] = B
    r["candidates"] = [A, B]
    r["probability"] = 0.912
    r["top"] = [
        {"model": A, "similarity": -0.4321, "probability": 0.61},
        {"model": B, "similarity": -0.5, "probability": 0.39},
    ]
    r["p_unknown"] = 0.0
    results[1]["top"][0]["similarity"] = -0.875
    summary["decisions"] = {A: 1, "unknown": 1, "flux-dev": 1}
    summary["as_set"] = {
        "decision": B,
        "probability": 0.8,
        "top": [{"model": A, "probability": 0.2}],
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_attribute_table_keeps_decisions_names_and_numbers(manifest, results, summary, width):
    _long_run(results, summary)
    out = _table(manifest, results, summary, width)
    assert max(len(line) for line in out.splitlines()) <= width
    assert "\u2026" not in out
    for name in (A, B):
        assert in_column(out, name), (name, out)
    assert in_column(out, f"leaning {B}")
    for number in ("-0.43", "-0.50", "0.61", "0.39", "-0.88", "0.912"):
        assert number in out, (number, out)
    # the decision column is not capped at 20 characters when there is room
    if width == 200:
        assert A in out and B in out


@pytest.mark.parametrize("width", WIDTHS)
def test_verify_table_keeps_numbers_and_decision(
    verify_manifest, verify_results, verify_summary, width
):
    verify_results[0].update(
        similarity=-0.1234, threshold=-0.05, probability=0.6, decision="different", leaning="same"
    )
    out = _table(verify_manifest, verify_results, verify_summary, width)
    assert max(len(line) for line in out.splitlines()) <= width
    for number in ("-0.123", "-0.050", "0.600"):
        assert number in out, (number, out)
    assert in_column(out, "different (same)")
    headers = ("Similarity", "Probability", "Threshold") if width >= 100 else ("Sim.", "Prob.")
    assert all(re.search(rf"\s{re.escape(h)}\s", out) for h in headers), out


# -- evaluate --compare --------------------------------------------------------------------------


def _eval_run(name: str, top1: float) -> dict:
    return {
        "backbone": name,
        "backbone_id": name,
        "n_models": 3,
        "identification": {"top1": top1, "macro_f1": -0.25},
        "verification": {"roc_auc": 0.9123},
        "seconds": 12.3456,
        "images_per_second": 1234.5,
        "per_model": {
            A: {"top1": 0.5, "mean_genuine_similarity": -0.1234, "n_refs": 5, "n_queries": 3}
        },
        "decisions": {
            "target_far": 0.01,
            "protocols": {
                "in_gallery": {
                    "single": {"achieved_far": 0.0123, "precision": 0.9, "ece_pooled": -0.0456},
                    "sets": {"10": {"achieved_far": 0.0, "coverage": 0.75}},
                }
            },
        },
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_evaluate_compare_tells_backbones_apart(width):
    doc = {"runs": [_eval_run(A, 0.905), _eval_run(B, 0.8)], "bench": {"path": "bench"}}
    buf = io.StringIO()
    write_table(doc, buf, width=width)
    out = buf.getvalue()
    assert max(len(line) for line in out.splitlines()) <= width
    assert "\u2026" not in out
    assert in_column(out, A) and in_column(out, B)
    for number in ("0.905", "0.800", "-0.250", "1234.5", "12.35", "0.0123", "-0.046", "(-0.12)"):
        assert number in out, (number, out)
    for label in ("FAR", "prec.", "cover.", "ECE", "ambig."):
        assert re.search(rf"\s{re.escape(label)}\s", out), label


# -- HTML ------------------------------------------------------------------------------------------


def test_html_css_never_cuts_names():
    assert "text-overflow" not in CSS
    badge = re.search(r"\.badge\{[^}]*\}", CSS).group(0)
    assert "nowrap" not in badge and "220px" not in badge
    assert "ol.topk .m,.sim .m{overflow-wrap:anywhere}" in CSS


def test_html_names_and_negative_numbers(manifest, results, summary, run_writer):
    _long_run(results, summary)
    page = run_writer(builtin.html, manifest, results, summary)
    assert f'<span class="badge b-model">{A}</span>' in page
    assert f'<span class="m">{B}</span>' in page
    assert f'title="{A}">{A}</span>' in page  # chart label
    assert "similarity -0.432" in page


def test_html_verify_counts_pairs_and_images(
    verify_manifest, verify_results, verify_summary, run_writer
):
    page = run_writer(builtin.html, verify_manifest, verify_results[:1], verify_summary)
    assert '<div class="tv">1</div><div class="tl">Pair</div>' in page
    assert '<div class="tv">2</div><div class="tl">Images</div>' in page
    assert "4.0 images/s" in page and "pairs/s" not in page
    assert "1 pair, 2 images" in page
    page = run_writer(builtin.html, verify_manifest, verify_results, verify_summary)
    assert '<div class="tv">2</div><div class="tl">Pairs</div>' in page


def test_verify_timer_covers_the_work(tmp_path, monkeypatch):
    """The summary's seconds and images/s of ``fpattr verify`` include the scoring."""
    from fpattr.session import Session
    from fpattr.testing import write_generator_images

    write_generator_images(tmp_path / "imgs", "checker", n=2, size=32, seed=0)
    a, b = sorted((tmp_path / "imgs").glob("*.png"))
    real = Session.verify

    def slow(self, x, y):
        time.sleep(0.4)
        return real(self, x, y)

    monkeypatch.setattr(Session, "verify", slow)
    out = tmp_path / "v.json"
    r = run_cli(["verify", a, b, "--backbone", "spectrum", "-q", "-o", out, "--threshold", "0.5"])
    assert r.exit_code == 0, r.output
    s = json.loads(out.read_text())["summary"]
    assert s["seconds"] >= 0.4
    assert s["images_per_second"] <= 2 / 0.4


@pytest.mark.parametrize("width", [40, 50])
def test_verify_below_the_column_layout_stacks_and_keeps_every_number(
    verify_manifest, verify_results, verify_summary, width
):
    verify_results[0].update(
        similarity=-0.1234, threshold=-0.05, probability=0.6, decision="different", leaning="same"
    )
    out = _table(verify_manifest, verify_results, verify_summary, width)
    assert max(len(line) for line in out.splitlines()) <= width
    for number in ("-0.123", "-0.050", "0.600"):
        assert number in out, (number, out)
    assert "different (same)" in out and "\u2026" not in out.split("Summary")[0]
