import json

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from fpattr._testing_onnx import write_tiny_onnx_model  # noqa: E402
from fpattr.backbones.onnx import OnnxBackbone, choose_providers  # noqa: E402
from fpattr.backbones.resolve import create_backbone  # noqa: E402
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


def test_every_extractor_shipped_in_models_is_a_backbone_by_name(tmp_path, monkeypatch):
    """A model kept beside the default (e.g. v1 after v2 ships) is selectable by its name."""
    pytest.importorskip("onnx")
    from fpattr import plugins
    from fpattr.backbones.resolve import create_backbone
    from fpattr.paths import shipped_models
    from fpattr.testing import write_tiny_onnx_model

    write_tiny_onnx_model(tmp_path, name="v9")
    (tmp_path / "stray.json").write_text("{}")  # a card without a model is not one
    monkeypatch.setenv("FPATTR_MODELS", str(tmp_path))
    assert shipped_models() == ["v9"]
    monkeypatch.setattr(plugins, "_HOST", None)  # registries are built once per host
    assert "v9" in plugins.backbones()
    bb = create_backbone("v9")
    assert bb.name == "v9" and bb.info()["model_card"].endswith("v9.json")
