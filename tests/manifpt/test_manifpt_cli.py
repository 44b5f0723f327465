"""`fpattr artifacts index|compute|info` and `attribute -b manifpt` end to end."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from fpattr.manifpt import RealReference
from fpattr.testing import run_cli, write_generator_images

SIZE = 32


def _index(real_dir, out, *extra):
    r = run_cli(
        ["artifacts", "index", real_dir, "--out", out, "--size", SIZE, "--patches", 60, *extra]
    )
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_index_compute_info(real_dir, tmp_path, write_real):
    summary = _index(real_dir, tmp_path / "ref.npz", "-q")
    assert summary["n_patches"] == 60 and summary["n_images"] == 12 and summary["n_failed"] == 0
    assert summary["index"]["kind"] == "exact" and summary["dtype"] == "uint8"
    assert summary["sha256"] == RealReference.load(tmp_path / "ref.npz").sha256
    assert summary["patches_per_s"] > 0

    info = json.loads(run_cli(["artifacts", "info", tmp_path / "ref.npz"]).stdout)
    assert info["sha256"] == summary["sha256"] and info["space"] == "pixel"

    fakes = write_generator_images(tmp_path / "fakes", "checker", n=2, size=64)
    (tmp_path / "fakes" / "broken.png").write_bytes(b"not an image")
    real = sorted(real_dir.glob("*.png"))[0]
    r = run_cli(
        ["artifacts", "compute", tmp_path / "fakes", real, "--ref", tmp_path / "ref.npz"]
        + ["--out", tmp_path / "art", "--batch-size", 5, "-q"]
    )
    assert r.exit_code == 1, r.output  # one input failed, the others were processed
    rows = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert [x["status"] for x in rows] == ["ok", "ok", "error", "ok"]
    assert "broken.png" in rows[2]["path"] and rows[2]["error"]
    for row in (rows[0], rows[1], rows[3]):
        a = np.load(row["out"], allow_pickle=False)
        assert a.shape == (4, SIZE, SIZE, 3) and a.dtype == np.float32
        assert row["n_views"] == 4 and len(row["views"]) == 4
        assert np.isclose(row["energy"], float((a.astype(np.float64) ** 2).mean()), rtol=1e-5)
        assert row["nn_distance"] > 0 and {"source", "y", "x"} <= set(row["views"][0])
    assert {p.name for p in (tmp_path / "art").iterdir()} == {
        "000.npy",
        "001.npy",
        real.stem + ".npy",
    }

    r = run_cli(
        ["artifacts", "compute", fakes[0], "--ref", tmp_path / "ref.npz", "--out", tmp_path / "png"]
        + ["--png", "--views", "1", "-q"]
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)["out"]
    assert out.endswith(".png") and Image.open(out).size == (SIZE, SIZE)


def test_cli_usage_errors(real_dir, tmp_path):
    r = run_cli(["artifacts", "index", real_dir, "--out", tmp_path / "r.npz", "--space", "rgb"])
    assert r.exit_code == 2 and "space must be one of" in r.output
    r = run_cli(
        ["artifacts", "compute", real_dir, "--ref", tmp_path / "none.npz", "--out", tmp_path]
    )
    assert r.exit_code == 2 and "fpattr artifacts index" in r.output


def test_frequency_ivf_index_through_cli(real_dir, tmp_path):
    summary = _index(real_dir, tmp_path / "f.npz", "--space", "frequency", "--index", "ivf")
    assert summary["index"]["kind"] == "ivf" and summary["index"]["ann"] in (
        "numpy",
        "faiss",
        "hnswlib",
    )
    assert RealReference.load(tmp_path / "f.npz").space == "frequency"


def test_attribute_end_to_end_with_manifpt(real_dir, tmp_path):
    ref = tmp_path / "ref.npz"
    _index(real_dir, ref, "-q")
    gallery = tmp_path / "gallery"
    opts = ["-b", "manifpt", "--backbone-opt", f"ref={ref}"]
    for kind in ("checker", "nearest"):
        write_generator_images(tmp_path / "refs" / kind, kind, n=4, size=64, seed=1)
        write_generator_images(tmp_path / "q", kind, n=3, size=64, seed=7, prefix=f"{kind}_")
        r = run_cli(["gallery", "add", kind, tmp_path / "refs" / kind, "-g", gallery, *opts, "-q"])
        assert r.exit_code == 0, r.output
    r = run_cli(["attribute", tmp_path / "q", "-g", gallery, *opts, "-f", "json", "-q"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["summary"]["n_inputs"] == 6 and rep["summary"]["n_failed"] == 0
    for res in rep["results"]:
        truth = res["path"].rsplit("/", 1)[1].split("_")[0]
        assert res["top"][0]["model"] == truth, res

    # the gallery is bound to this reference: another one is refused
    other = tmp_path / "other.npz"
    _index(real_dir, other, "--seed", "5", "-q")
    r = run_cli(
        ["attribute", tmp_path / "q", "-g", gallery, "-b", "manifpt"]
        + ["--backbone-opt", f"ref={other}", "-q"]
    )
    assert r.exit_code == 2 and "re-enrol" in r.output
