"""benchmarks/run_benchmarks.py end to end on tiny benchmarks made here, plus its pieces.

Two fast backbones (spectrum, dct) keep it to a few seconds per condition; the real run
uses every backbone on the real and public benchmarks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fpattr.testing import write_generator_images

pytest.importorskip("matplotlib")
BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import run_benchmarks as rb  # noqa: E402

KINDS = ["nearest", "bilinear", "checker"]


def _public(root: Path) -> Path:
    for i, kind in enumerate(KINDS):
        write_generator_images(root / f"big_{kind}", kind, n=7, size=128, seed=i, trace=i)
    write_generator_images(root / "small_nearest", "nearest", n=7, size=64, seed=9, trace=9)
    write_generator_images(root / "real", "nearest", n=3, size=128, seed=7, trace=7)
    return root


def test_size_controlled_keeps_only_large_generators(tmp_path):
    public = _public(tmp_path / "public")
    (tmp_path / "sc").mkdir()
    sc = rb.size_controlled(public, tmp_path / "sc")
    kept = sorted(p.name for p in sc.iterdir())
    assert kept == ["big_bilinear", "big_checker", "big_nearest", "real"]
    assert all(p.is_symlink() for p in sc.iterdir())


def test_tables_bold_the_best_and_docs_section_is_replaced(tmp_path):
    def runs(a: float, b: float) -> dict:
        return {
            "runs": [
                {"backbone": "default", "top1": a, "roc_auc": 0.9, "tar_at_far_1e-2": 0.5},
                {"backbone": "dct", "top1": b, "roc_auc": 0.8, "tar_at_far_1e-2": 0.6},
            ]
        }

    res = {"real": {"clean": runs(0.9, 0.7)}, "public": {"clean": runs(0.4, 0.5)}}
    table = rb.table_main(res, ["default", "dct"])
    default_row = next(line for line in table.splitlines() if "learned" in line)
    assert "**90.0**" in default_row and "**0.900**" in default_row and "| 40.0 |" in default_row
    assert "real/clean/top1: default" in rb.wins(res, ["default", "dct"])
    assert "public/clean/top1: dct" in rb.wins(res, ["default", "dct"])
    doc = tmp_path / "bench.md"
    doc.write_text(f"# B\n\nkeep me\n\n{rb.BEGIN}\nOLD-SECTION\n{rb.END}\n\ntail\n")
    res["public-sc"] = {"resize1": runs(0.3, 0.2)}
    for r in res.values():
        for c in r.values():
            for x in c["runs"]:
                x |= {"n_models": 3, "n_queries": 9}
    meta = {"command": "x", "seconds": 1.0, "date": "d", "model": "m"}
    meta |= {"conditions": 1, "conditions_cached": 0}
    rb.write_docs(doc, res, None, ["default", "dct"], meta)
    text = doc.read_text()
    assert "keep me" in text and "tail" in text and "OLD-SECTION" not in text
    assert text.count(rb.BEGIN) == 1 and "| backbone |" in text


# slow: 114 s on a 2-core AVX2 machine (15 evaluate runs, twice); the default suite
# took 10.5 min there with it
@pytest.mark.slow
def test_one_command_regenerates_table_json_plots_and_docs(tmp_path):
    real = tmp_path / "realbench"
    for i, kind in enumerate(KINDS):
        write_generator_images(real / f"gen_{kind}", kind, n=12, size=64, seed=i, trace=i + 20)
    (real / "manifest.json").write_text(json.dumps({"models": []}))
    public = _public(tmp_path / "public")
    out, docs, figs = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "fig"
    cmd = [sys.executable, str(BENCH / "run_benchmarks.py"), "--real-bench", str(real)]
    cmd += ["--public", str(public), "--backbones", "spectrum,dct", "--cache", str(tmp_path / "c")]
    cmd += ["--out", str(out), "--docs", str(docs), "--figures", str(figs)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["results"]) == {"real", "public", "public-sc"}
    assert set(res["results"]["real"]) == {
        "clean", "jpeg95", "jpeg85", "jpeg75", "jpeg50", "resize0.75", "resize0.5"
    }  # fmt: skip
    assert res["results"]["real"]["clean"]["runs"][0]["n_models"] == 3
    assert res["results"]["public-sc"]["resize0.5"]["runs"][0]["n_models"] == 3  # small dropped
    assert res["results"]["public"]["clean"]["runs"][0]["n_models"] == 4
    assert (figs / "bench_overview.png").stat().st_size > 0
    assert (figs / "bench_robustness.png").stat().st_size > 0
    text = docs.read_text()
    assert rb.BEGIN in text and "Frank et al. (DCT)" in text
    # second run: every condition comes from the cache
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stderr.count("cached:") == 15, r.stderr[-2000:]
