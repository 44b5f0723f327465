import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from fpattr._testing_onnx import write_tiny_onnx_model  # noqa: E402
from fpattr.backbones.base import create_backbone  # noqa: E402
from fpattr.backbones.onnx import OnnxBackbone, choose_providers  # noqa: E402
from fpattr.errors import BackboneError, ModelFileError  # noqa: E402


def test_runs_and_reports_providers(tmp_path):
    card = write_tiny_onnx_model(tmp_path, size=32, dim=16)
    bb = OnnxBackbone(card)
    x = np.random.default_rng(0).random((5, 32, 32, 3), dtype=np.float32)
    e = bb.embed(x)
    assert e.shape == (5, 16) and e.dtype == np.float32
    assert np.allclose(bb.embed(x[:2]), e[:2], atol=1e-5)  # dynamic batch, deterministic
    info = bb.info()
    assert info["providers"] == ["CPUExecutionProvider"] and info["sha256"] == bb.sha256
    assert bb.input_size == 32 and bb.id == "tiny-test-s32"


def test_registry_factory_and_onnx_path(tmp_path):
    card = write_tiny_onnx_model(tmp_path)
    bb = create_backbone("onnx", model=str(card.with_suffix(".onnx")))
    assert isinstance(bb, OnnxBackbone)
    with pytest.raises(BackboneError, match="model card"):
        create_backbone("onnx")


def test_checksum_mismatch_is_refused(tmp_path):
    card = write_tiny_onnx_model(tmp_path)
    doc = json.loads(card.read_text())
    doc["sha256"] = "0" * 64
    card.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="does not match"):
        OnnxBackbone(card)


def test_bad_cards(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        OnnxBackbone(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ModelFileError, match="not an fpattr model card"):
        OnnxBackbone(tmp_path / "x.json")


def test_provider_choice():
    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in choose_providers("auto")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackboneError, match="fpattr\\[gpu\\]"):
            choose_providers("cuda")


def test_card_calibration_is_used(tmp_path):
    from fpattr.pipeline import choose_calibration

    cal = {"centroid": {"a": 10.0, "b": -5.0, "threshold": 0.6, "target_far": 0.01}}
    bb = OnnxBackbone(write_tiny_onnx_model(tmp_path, calibration=cal))
    c, info = choose_calibration(bb, None, "centroid")
    assert c is not None and c.source == "model-card" and c.threshold == 0.6
    c, info = choose_calibration(bb, None, "pair")
    assert c is None and info["source"] == "none"


def test_view_calibrations_pick_the_largest_fitted_count_not_above_the_input():
    from fpattr.calibration import Calibration
    from fpattr.pipeline import ViewCalibrations

    def cal(t: float, source: str = "model-card") -> Calibration:
        return Calibration(1.0, 0.0, t, 0.01, source)

    default = cal(0.9)
    vc = ViewCalibrations(4, {1: cal(0.8), 2: cal(0.85)})
    assert vc.pick(default, 1) == (vc.by_views[1], 1)
    assert vc.pick(default, 3) == (vc.by_views[2], 2)
    assert vc.pick(default, 4) == (default, None) and vc.pick(default, 9) == (default, None)
    assert vc.pick(None, 1) == (None, None)
    assert ViewCalibrations(4, {2: cal(0.85)}).pick(default, 1)[1] == 2  # nothing lower


def test_view_calibrations_come_only_with_the_cards_own_calibration(tmp_path):
    from fpattr.calibration import Calibration
    from fpattr.pipeline import choose_calibration, view_calibrations

    c = {"a": 1.0, "b": 0.0, "threshold": 0.9, "target_far": 0.01}
    card = {"centroid": c, "n_views": 4, "by_views": {"1": {"centroid": {**c, "threshold": 0.7}}}}
    bb = OnnxBackbone(write_tiny_onnx_model(tmp_path, calibration=card))
    cal, _ = choose_calibration(bb, None, "centroid")
    vc = view_calibrations(bb, "centroid", cal)
    assert vc is not None and vc.default_views == 4 and vc.by_views[1].threshold == 0.7
    assert view_calibrations(bb, "pair", cal) is None  # no 1-view pair entry
    user, _ = choose_calibration(bb, None, "centroid", threshold=0.5)
    assert view_calibrations(bb, "centroid", user) is None
    loo = Calibration(1.0, 0.0, 0.5, 0.01, "gallery-leave-one-out")
    assert view_calibrations(bb, "centroid", loo) is None
