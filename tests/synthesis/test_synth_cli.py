"""`fpattr synth` and `fpattr fidelity` through the full CLI."""

from __future__ import annotations

import json

import fpattr
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


def test_synth_list_builds_only_families_that_do_not_declare_their_space():
    """A third-party family registered without ``design_space=`` is built to ask; when
    that fails (torch missing) its row says why and the other families are still listed."""
    from fpattr.plugins import PluginHost, get_host, set_host

    class Undeclared:
        @fpattr.hookimpl
        def fpattr_register_synthesizers(self, register):
            def factory():
                raise ModuleNotFoundError("No module named 'torch'", name="torch")

            register("needs_torch", factory, description="undeclared")
            register("declared", factory, description="d", design_space={"k": ["a", "b"]})
            register("broken_meta", factory, design_space={"k": []})

    previous = get_host()
    host = PluginHost(load_entry_points=False)
    host.register(Undeclared(), name="undeclared")
    set_host(host)
    try:
        r = run_cli(["synth", "--list"])
    finally:
        set_host(previous)
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["autoencoder"]["n_architectures"] == 384
    assert rows["declared"]["design_space"] == {"k": ["a", "b"]}
    assert rows["declared"]["n_architectures"] == 2
    assert rows["needs_torch"]["design_space"] is None
    assert "No module named 'torch'" in rows["needs_torch"]["error"]
    assert rows["broken_meta"]["n_architectures"] is None
    assert "invalid design_space" in rows["broken_meta"]["error"]
