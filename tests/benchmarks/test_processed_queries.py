"""benchmarks/processed_queries.py runs every condition through `fpattr evaluate` and
writes what it measured (no figure is asserted: the bench is tiny)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import processed_queries  # noqa: E402

from fpattr.testing import write_generator_images  # noqa: E402


# slow: 42 s on a 2-core AVX2 machine (five evaluate subprocesses)
@pytest.mark.slow
def test_every_condition_is_run_and_recorded(tmp_path, capsys):
    bench = tmp_path / "bench"
    models = {"nearest": ("nearest", 1234), "bilinear": ("bilinear", 1234)}
    models |= {"checker-a": ("checker", 11), "checker-b": ("checker", 22)}
    for k, (name, (kind, trace)) in enumerate(models.items()):  # 4: generator-disjoint runs
        write_generator_images(bench / name, kind, n=6, size=64, seed=k + 1, trace=trace)
    out = tmp_path / "pq.json"
    assert processed_queries.main(["--bench", str(bench), "--refs", "3", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert list(res["conditions"]) == list(processed_queries.CONDITIONS)
    only = res["conditions"]["x0.5, queries only"]
    assert only["args"] == ["--resize", "0.5", "--degrade-queries-only"]
    assert set(only["single"]) == {"in-gallery", "generator-disjoint"}
    assert set(only["single"]["in-gallery"]) == {k for _, k, _ in processed_queries.KEYS}
    table = capsys.readouterr().out
    assert table.count("\n") == 2 + 2 * len(processed_queries.CONDITIONS)  # head, rule, rows
