"""One messy case folder: every file is one record, exit 1, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpattr.testing import make_hostile_inputs, run_cli, write_generator_images


def _messy_folder(root: Path) -> Path:
    d = root / "case"
    make_hostile_inputs(d)
    write_generator_images(d / "gen", "checker", n=2, size=64, seed=3)
    first = sorted((d / "gen").glob("*.png"))[0]
    rgb = Image.open(first).convert("RGB")
    rgb.save(d / "photo.jfif", format="JPEG")  # a JPEG under another JPEG suffix
    rgb.save(d / "photo.jpe", format="JPEG")
    shutil.copy(first, d / "no_suffix")  # a PNG without a suffix
    rgb.save(d / "anim.apng", format="PNG")
    if "avif" in Image.registered_extensions().values() or ".avif" in Image.registered_extensions():
        rgb.save(d / "pic.avif", format="AVIF")
    (d / "notes.txt").write_text("case notes, not an image\n")
    Image.new("RGB", (64, 64), (40, 40, 40)).save(d / "flat.png")
    if sys.platform.startswith("linux"):  # a name that is not UTF-8 (Latin-1 0xE9)
        shutil.copy(first, os.fsencode(d) + b"/caf\xe9.png")
    tifffile = pytest.importorskip("tifffile")
    px16 = (np.arange(64 * 64 * 3, dtype=np.uint32) * 37 % 65536).astype(np.uint16)
    tifffile.imwrite(
        d / "planar16.tif", px16.reshape(3, 64, 64), planarconfig="separate", photometric="rgb"
    )
    rng = np.random.default_rng(0)
    tifffile.imwrite(
        d / "float32.tif", rng.random((64, 64, 3), dtype=np.float32), photometric="rgb"
    )
    return d


def _files_under(d: Path) -> set[bytes]:
    """Every non-folder entry a walk meets (links not followed into), as raw bytes."""
    out = set()
    for top, dirs, files in os.walk(os.fsencode(d)):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(top, x))]:
            out.add(os.path.join(top, name))
    return out


def _record_path(r: dict) -> bytes:
    if r.get("path_bytes_hex"):
        return bytes.fromhex(r["path_bytes_hex"])
    return os.fsencode(r["path"])


def test_a_messy_case_folder_gives_one_record_per_file_and_exit_1(tmp_path):
    d = _messy_folder(tmp_path)
    refs = tmp_path / "refs"
    write_generator_images(refs / "checker", "checker", n=4, size=64, seed=0)
    write_generator_images(refs / "nearest", "nearest", n=4, size=64, seed=0)
    g = tmp_path / "g"
    for m in ("checker", "nearest"):
        assert (
            run_cli(["gallery", "add", m, refs / m, "-g", g, "-b", "spectrum", "-q"]).exit_code == 0
        )
    cmd = [
        sys.executable,
        "-m",
        "fpattr",
        "attribute",
        str(d),
        "-g",
        str(g),
        "-b",
        "spectrum",
        "-f",
        "jsonl",
        "-q",
    ]
    r = subprocess.run(cmd, capture_output=True, timeout=120)
    assert r.returncode == 1, r.stderr.decode(errors="replace")
    assert b"Traceback" not in r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    records = [x for x in lines if x.get("type") == "result"]
    got = [_record_path(x) for x in records]
    assert len(got) == len(set(got))  # every file exactly once
    expected = _files_under(d)
    missing = expected - set(got)
    assert not missing, sorted(missing)
    by_name = {os.path.basename(_record_path(x)): x for x in records}
    assert by_name[b"notes.txt"]["status"] == "skipped"
    for ok in (
        b"photo.jfif",
        b"photo.jpe",
        b"no_suffix",
        b"anim.apng",
        b"planar16.tif",
        b"float32.tif",
    ):
        assert by_name[ok]["status"] == "ok", (ok, by_name[ok].get("error"))
    assert by_name[b"planar16.tif"]["image"]["bit_depth"] == 16
    assert by_name[b"flat.png"]["decision"] == "insufficient signal"
    if sys.platform.startswith("linux"):
        assert by_name[b"caf\xe9.png"]["status"] == "ok"
    summary = lines[-1]
    assert summary["type"] == "summary"
    s = summary.get("summary", summary)
    assert s["n_failed"] >= 1 and s["n_skipped"] >= 1
    assert s["n_ok"] + s["n_failed"] + s["n_skipped"] == len(records)
