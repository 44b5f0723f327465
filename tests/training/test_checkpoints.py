"""Checkpoints load with torch.load(weights_only=True); a checkpoint that would run code
is refused everywhere fpattr reads one (export, training resume, fusion) and never runs."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from fpattr.errors import FpattrError
from fpattr.training import checkpoint
from fpattr.training.model import Extractor, ExtractorConfig
from fpattr.training.presets import preset
from fpattr.training.train import TrainConfig, train


class _Payload:
    """Unpickling this calls open(marker, "w"): the marker file proves code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _malicious(path, marker, *, legacy=False):
    model = Extractor(ExtractorConfig(size=32, widths=[8, 8, 8, 8], dim=16))
    blob = {"config": model.cfg.to_dict(), "model": model.state_dict(), "x": _Payload(marker)}
    if legacy:  # a bare pickle stream, not torch's zip format
        with open(path, "wb") as f:
            pickle.dump(blob, f, protocol=2)
    else:
        torch.save(blob, path)
    return path


def _cfg(zoo, out, **kw):
    return TrainConfig.from_dict(preset("tiny") | {"zoo": str(zoo), "out": str(out)} | kw)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "bare-pickle"])
def test_the_payload_is_live_when_unpickled_unsafely(tmp_path, legacy):
    """Guard for the tests below: the file really runs code under a plain unpickler."""
    marker = tmp_path / "pwned"
    ckpt = _malicious(tmp_path / "evil.pt", marker, legacy=legacy)
    with pytest.raises(FpattrError, match="refusing to load"):
        checkpoint.load(ckpt)
    assert not marker.exists()
    if legacy:
        pickle.loads(ckpt.read_bytes())  # a plain unpickler runs the payload
    else:
        torch.load(ckpt, weights_only=False)  # what the project did before: runs the payload
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "bare-pickle"])
def test_export_refuses_a_malicious_checkpoint(tmp_path, legacy):
    from fpattr.training.export import export, load_extractor

    marker = tmp_path / "pwned"
    ckpt = _malicious(tmp_path / "evil.pt", marker, legacy=legacy)
    with pytest.raises(FpattrError, match="weights_only=True"):
        load_extractor(ckpt)
    with pytest.raises(FpattrError, match="refusing to load"):
        export(ckpt, tmp_path / "models", name="evil", parity_images=[])
    assert not marker.exists()
    assert not list((tmp_path).glob("models/*"))


def test_cli_export_refuses_a_malicious_checkpoint(tmp_path):
    from fpattr.testing import run_cli

    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    _malicious(run / "extractor.pt", marker)
    r = run_cli(["export", run, "--out", tmp_path / "models", "--name", "evil"])
    assert r.exit_code != 0 and "refusing to load" in r.output
    assert not marker.exists() and not (tmp_path / "models" / "evil.onnx").exists()


def test_training_resume_refuses_a_malicious_checkpoint(tiny_zoo, tmp_path):
    marker = tmp_path / "pwned"
    out = tmp_path / "run"
    out.mkdir()
    _malicious(out / "checkpoint.pt", marker)
    with pytest.raises(FpattrError, match="refusing to load"):
        train(_cfg(tiny_zoo, out, steps=2), log=lambda s: None)
    assert not marker.exists()


def test_fusion_refuses_a_malicious_checkpoint(tmp_path):
    from fpattr.training.hybrid import fuse_run

    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_result.json").write_text(json.dumps({"zoo": {"path": str(tmp_path)}}))
    _malicious(run / "extractor.pt", marker)
    with pytest.raises(FpattrError, match="refusing to load"):
        fuse_run(run, n_views=1, log=lambda s: None)
    assert not marker.exists() and not (run / "fused.pt").exists()


def test_everything_the_project_saves_loads_weights_only(tiny_zoo, tmp_path):
    from fpattr.training.export import load_extractor
    from fpattr.training.hybrid import fuse_run

    out = tmp_path / "run"
    train(_cfg(tiny_zoo, out, steps=4), log=lambda s: None)
    fuse_run(out, n_views=1, log=lambda s: None)
    for name in ("checkpoint.pt", "extractor.pt", "fused.pt"):
        blob = torch.load(out / name, map_location="cpu", weights_only=True)
        assert isinstance(blob, dict) and "model" in blob
    for name in ("extractor.pt", "fused.pt", "checkpoint.pt"):
        load_extractor(out / name)
    # resuming from the weights_only checkpoint restores the run
    logs: list[str] = []
    r = train(_cfg(tiny_zoo, out, steps=4), log=logs.append)
    assert any("resumed from" in s for s in logs) and r["steps"] == 4


@dataclass
class _Cfg:
    a: int = 1
    b: tuple = (1, 2)


def test_save_converts_numpy_and_dataclasses_and_refuses_objects(tmp_path):
    obj = {
        "f": np.float64(0.5),
        "i": np.int64(3),
        "arr": np.arange(6, dtype=np.float32).reshape(2, 3),
        "cfg": _Cfg(),
        "nested": [{"t": torch.ones(2)}, (np.float32(1.5), "s", None, True)],
    }
    checkpoint.save(obj, tmp_path / "c.pt")
    back = torch.load(tmp_path / "c.pt", weights_only=True)
    assert back["f"] == 0.5 and type(back["f"]) is float and back["i"] == 3
    assert torch.equal(back["arr"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    assert back["cfg"] == {"a": 1, "b": (1, 2)} and back["nested"][1] == (1.5, "s", None, True)
    with pytest.raises(TypeError, match="cannot go into a checkpoint"):
        checkpoint.save({"x": object()}, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists() and not list(tmp_path.glob(".bad.pt*"))


def test_an_old_checkpoint_with_numpy_objects_is_a_clear_error(tmp_path):
    """Written by an old version with torch.save directly: numpy scalars need pickled
    classes, so it is refused with a message, not unpickled."""
    model = Extractor(ExtractorConfig(size=32, widths=[8, 8, 8, 8], dim=16))
    blob = {"config": model.cfg.to_dict(), "model": model.state_dict(), "np": np.float64(1)}
    torch.save(blob, tmp_path / "old.pt")
    with pytest.raises(FpattrError, match="re-create the checkpoint"):
        checkpoint.load(tmp_path / "old.pt")
    torch.save({"config": model.cfg.to_dict(), "model": model.state_dict()}, tmp_path / "ok.pt")
    assert "model" in checkpoint.load(tmp_path / "ok.pt")  # old *plain* checkpoints still load


def test_a_checkpoint_that_is_not_a_dict_is_refused(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(FpattrError, match="not an fpattr checkpoint"):
        checkpoint.load(tmp_path / "list.pt")
    with pytest.raises(FpattrError, match="not found"):
        checkpoint.load(tmp_path / "missing.pt")
