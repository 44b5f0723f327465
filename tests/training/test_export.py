"""ONNX export: the dynamo exporter (onnxscript, from the [train] extra), failures raised
rather than swallowed, parity enforced, the exporter recorded in the card; and the
shipped models/default.onnx runs."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from fpattr.errors import FpattrError
from fpattr.training import export as export_mod
from fpattr.training.export import export, find_images
from fpattr.training.model import Extractor, ExtractorConfig

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _checkpoint(tmp_path, seed=0):
    torch.manual_seed(seed)
    model = Extractor(ExtractorConfig(size=32, widths=[8, 8, 8, 8], dim=16)).eval()
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict()}, tmp_path / "x.pt")
    return tmp_path / "x.pt"


def test_the_train_extra_installs_the_exporter():
    """onnxscript is what torch.onnx.export(dynamo=True) needs; the [train] extra has it."""
    from pathlib import Path

    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    doc = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    train = doc["project"]["optional-dependencies"]["train"]
    assert any(r.startswith("onnxscript") for r in train)
    assert "torch==2.13.0" in train


def test_card_records_the_exporter(tiny_zoo, tmp_path):
    pytest.importorskip("onnxscript")
    card = export(
        _checkpoint(tmp_path), tmp_path / "m", name="t", parity_images=find_images(tiny_zoo)[:4]
    )
    ex = card["exporter"]
    assert ex["name"] == "torch.onnx.export(dynamo=True)" and ex["opset"] == card["opset"]
    from importlib.metadata import version

    assert ex["torch"] == version("torch") and ex["onnxscript"] == version("onnxscript")
    assert ex["onnx"] == version("onnx")


def test_a_failing_parity_check_is_rejected_and_writes_nothing(tiny_zoo, tmp_path, monkeypatch):
    """The ONNX graph of *other* weights than torch's: parity must fail, nothing written."""
    other = Extractor(ExtractorConfig(size=32, widths=[8, 8, 8, 8], dim=16)).eval()
    real = export_mod._onnx_bytes
    monkeypatch.setattr(export_mod, "_onnx_bytes", lambda model, tmp: real(other, tmp))
    out = tmp_path / "m"
    with pytest.raises(FpattrError, match="parity failed.*nothing was written"):
        export(_checkpoint(tmp_path), out, name="t", parity_images=find_images(tiny_zoo)[:4])
    assert not list(out.iterdir())  # no model, no card, no temporary file


def test_an_impossible_parity_threshold_is_rejected(tiny_zoo, tmp_path):
    with pytest.raises(FpattrError, match="parity failed"):
        export(
            _checkpoint(tmp_path),
            tmp_path / "m",
            name="t",
            parity_images=find_images(tiny_zoo)[:2],
            min_cosine=1.5,
        )
    assert not list((tmp_path / "m").iterdir())


def test_export_failure_is_raised_not_swallowed(tiny_zoo, tmp_path, monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(kwargs.get("dynamo"))
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(FpattrError, match=r"ONNX export failed \(torch.onnx.export\(dynamo=True\)"):
        export(_checkpoint(tmp_path), tmp_path / "m", name="t", parity_images=find_images(tiny_zoo))
    assert calls == [True]  # no second, silent attempt with the TorchScript exporter
    assert not list((tmp_path / "m").iterdir())


def test_missing_onnxscript_is_an_error_not_a_fallback(tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # find_spec -> None: not installed
    with pytest.raises(FpattrError, match=r"needs onnxscript.*fpattr\[train\]"):
        export(_checkpoint(tmp_path), tmp_path / "m", name="t", parity_images=find_images(tiny_zoo))


def test_cli_export_checks_its_dependencies_first(tmp_path, monkeypatch):
    from fpattr.testing import run_cli

    monkeypatch.setitem(sys.modules, "onnxscript", None)
    r = run_cli(["export", tmp_path, "--out", tmp_path / "m"])
    assert r.exit_code == 2 and "onnxscript" in r.output


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden"])
def test_export_refuses_names_that_are_not_file_stems(tmp_path, bad):
    with pytest.raises(FpattrError, match="invalid model name"):
        export(tmp_path / "x.pt", tmp_path / "m", name=bad, parity_images=[])


def test_shipped_default_model_loads_and_embeds():
    """models/default.onnx (the shipped extractor) runs: finite, unit-norm embeddings of the
    card's dimension for a couple of tiny images."""
    from fpattr.backbones.onnx import default_card_path, read_card
    from fpattr.backbones.resolve import create_backbone
    from fpattr.views import make_views

    card = read_card(default_card_path())
    bb = create_backbone("default")
    size = card["input"]["size"]
    rng = np.random.default_rng(0)
    images = [rng.random((40, 40, 3), dtype=np.float32), rng.random((64, 96, 3)).astype("f4")]
    for px in images:
        views, _ = make_views(px, size, 4)
        emb = bb.embed(views)
        assert emb.shape == (len(views), card["output"]["dim"]) and np.isfinite(emb).all()
        assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    assert bb.sha256 == card["sha256"]


def test_ctrl_c_inside_the_exporter_is_an_interruption_not_a_failure(
    tiny_zoo, tmp_path, monkeypatch
):
    """torch.onnx.export catches the KeyboardInterrupt and raises its own error from it: the
    CLI still ends as interrupted (130), not "ONNX export failed" (exit 2; break-it F11)."""
    from fpattr.testing import run_cli

    pytest.importorskip("onnxscript")

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Failed to export the model with torch.export") from exc

    run = tmp_path / "run"
    run.mkdir()
    _checkpoint(tmp_path).rename(run / "extractor.pt")
    monkeypatch.setattr(torch.onnx, "export", interrupted)
    r = run_cli(
        ["export", run, "--out", tmp_path / "m", "--name", "t", "--parity-images", tiny_zoo]
    )
    assert r.exit_code == 130, r.output
    assert "interrupted (SIGINT)" in r.output and "export failed" not in r.output
    assert not (tmp_path / "m" / "t.onnx").exists()


def test_interruption_in_reads_the_cause_chain():
    from fpattr.errors import FpattrError as E
    from fpattr.errors import interruption_in

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise E("wrapped") from ki
    except E as exc:
        assert isinstance(interruption_in(exc), KeyboardInterrupt)
    assert interruption_in(ValueError("plain")) is None
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a  # a cycle ends the walk
    assert interruption_in(a) is None
