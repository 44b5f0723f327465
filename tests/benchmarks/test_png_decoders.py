"""benchmarks/png_decoders.py: every decoder it times decodes the benchmark's PNGs like
Pillow, and its JSON names what it measured (no timing is asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import png_decoders  # noqa: E402


def test_png_decoders_writes_every_available_decoder(tmp_path):
    out = tmp_path / "dec.json"
    assert png_decoders.main(["--images", "6", "--rounds", "1", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    rows = res["cpu_ms_per_image"]
    assert res["images"] == 6 and res["versions"]["PIL"]
    own = [k for k in rows if k.startswith("fpattr load_image")]
    # load_image as shipped and with its libpng path off, side by side, then each decoder
    assert len(own) == 2 and any("libpng path off" in k for k in own)
    assert set(rows) == {*own, *png_decoders.decoders()}
    assert all(v > 0 for v in rows.values())
