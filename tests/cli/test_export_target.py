"""`fpattr export` checks where it writes before any work (break-it 27d): never over a
shipped extractor unless asked, never under a backbone's name, never into a file."""

from __future__ import annotations

from pathlib import Path

from fpattr.io.loader import sha256_file
from fpattr.paths import SHIPPED_EXTRACTORS, models_dir
from fpattr.testing import run_cli


def test_export_never_replaces_a_shipped_extractor_unasked(tmp_path: Path):
    # `fpattr export RUN` with its defaults (--out models --name default) replaced the
    # shipped default with a 20-step toy model; every gallery bound to it stopped working
    run = tmp_path / "run"  # no checkpoint: the refusal comes before anything is read
    for name in SHIPPED_EXTRACTORS:
        card = models_dir() / f"{name}.json"
        if not card.exists():
            continue
        before = sha256_file(card)
        r = run_cli(["export", run, "--out", models_dir(), "--name", name])
        assert r.exit_code == 2, r.output
        assert f"is the shipped {name!r} extractor" in r.stderr and "--replace-shipped" in r.stderr
        assert sha256_file(card) == before
    r = run_cli(["export", run])  # the defaults
    assert r.exit_code == 2 and "is the shipped 'default' extractor" in r.stderr
    # asked on purpose, or another folder: on to the checkpoint (missing here)
    for args in (["--replace-shipped"], ["--out", tmp_path / "models"]):
        r = run_cli(["export", run, *args])
        assert "is the shipped" not in r.stderr, r.output


def test_export_refuses_a_backbones_name_and_a_file_for_a_folder(tmp_path: Path):
    # a model named "marra" hid the built-in -b marra, and could not be reached itself
    for name in ("marra", "spectrum", "dct", "auto", "onnx"):
        r = run_cli(["export", tmp_path / "run", "--out", tmp_path / "m", "--name", name])
        assert r.exit_code == 2 and "is the name of a backbone" in r.stderr, (name, r.output)
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    r = run_cli(["export", tmp_path / "run", "--out", afile, "--name", "mine"])
    assert r.exit_code == 2 and "internal error" not in r.stderr, r.output


def test_quantize_never_replaces_the_shipped_int8_unasked(tmp_path: Path):
    card = models_dir() / "default-int8.json"
    if not card.exists():
        return
    before = sha256_file(card)
    args = ["quantize", models_dir() / "default.json", "--calib-images", tmp_path]
    r = run_cli(args)  # the defaults: --out models --name default-int8
    assert r.exit_code == 2 and "is the shipped 'default-int8' extractor" in r.stderr, r.output
    assert sha256_file(card) == before
