"""`fpattr synth` and `fpattr fidelity` through the full CLI."""

from __future__ import annotations

import json

from fpattr.testing import run_cli


def test_synth_list_shows_the_builtin_families():
    r = run_cli(["synth", "--list"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["autoencoder"]["n_architectures"] == 384
    assert {"gan_decoder", "diffusion_denoiser"} <= set(rows)


def test_synth_then_resume_then_fidelity(tmp_path):
    zoo = tmp_path / "zoo"
    args = [
        "synth",
        zoo,
        "--family",
        "autoencoder",
        "--family",
        "gan_decoder",
        "--models",
        "2",
        "--images-per-model",
        "2",
        "--size",
        "16",
        "--width",
        "8",
        "--max-steps",
        "2",
        "--train-crop",
        "16",
        "--device",
        "cpu",
        "-q",
        "--only",
        "upsampling=nearest,bilinear,transposed",
    ]
    r = run_cli(args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["built"] == 2 and summary["failed"] == []
    r = run_cli(args)
    assert r.exit_code == 0 and json.loads(r.stdout)["kept"] == 2
    r = run_cli(["fidelity", zoo, zoo, "--format", "json", "--plot", tmp_path / "s.png"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["fd"] < 1e-6 and set(res["families"]) == {"autoencoder", "gan_decoder"}
    r = run_cli(["fidelity", zoo, zoo])
    assert r.exit_code == 0 and "autoencoder" in r.stdout


def test_usage_errors_exit_2(tmp_path):
    assert run_cli(["synth"]).exit_code == 2
    assert run_cli(["synth", tmp_path / "z", "--only", "nonsense"]).exit_code == 2
    r = run_cli(["synth", tmp_path / "z", "--family", "autoencodr", "-q"])
    assert r.exit_code == 2 and "autoencoder" in r.stderr
    assert run_cli(["fidelity", tmp_path / "none", tmp_path]).exit_code == 2
