"""`fpattr demo` on the bundled data (the README's first command)."""

from __future__ import annotations

import json

from fpattr.paths import data_dir
from fpattr.testing import run_cli


def test_bundled_demo_data_is_complete():
    root = data_dir() / "demo"
    manifest = json.loads((root / "MANIFEST.json").read_text())
    refs = [p for p in (root / "refs").rglob("*.png")]
    queries = list((root / "queries").glob("*.png"))
    assert len(refs) >= 10 and len(queries) >= 6
    assert sum(p.stat().st_size for p in refs + queries) < 1_500_000
    assert set(manifest["files"]) >= {str(p.relative_to(root)) for p in refs + queries}


def test_demo_runs_end_to_end(tmp_path):
    report = tmp_path / "demo.html"
    r = run_cli(["demo", "-b", "spectrum", "--report", report, "-f", "json", "-q"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["summary"]["n_ok"] == out["summary"]["n_inputs"] >= 6
    assert report.is_file() and "data:image/png;base64," in report.read_text()
    reals = [x for x in out["results"] if "/real_" in x["path"]]
    assert reals and all(x["decision"] == "unknown" for x in reals)


def test_demo_refuses_an_unwritable_report_before_enrolling(tmp_path):
    # break-it 28: `demo --report /nonexistent/x.html` enrolled every model first
    from fpattr.testing import run_cli

    work = tmp_path / "work"
    r = run_cli(["demo", "--report", tmp_path / "missing" / "x.html", "--workdir", work, "-q"])
    assert r.exit_code == 2 and "not found" in r.output, r.output
    assert not work.exists()
