"""fpattr.testing's contract checks over EVERY registered implementation.

Parametrised over the registries of a plugin host with the built-ins and the installed
plugins (fpattr-example, fpattr-taesd when installed), so a new backbone, family,
gallery or report format is tested here without a line of test code. Kept cheap:
families at width 4, 32 px, 2 training steps (the adversarial phase cut to 2 steps,
an untrained perceptual network), backbones on 3 random views.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpattr.errors import BackboneError
from fpattr.plugins import PluginHost
from fpattr.testing import check_backbone, check_family, check_gallery, check_writer

HOST = PluginHost()  # at collection: the parameters are the registered names


def _entries(kind: str) -> list:
    return [pytest.param(e, id=e.name) for e in HOST.registry(kind)]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models: extra OpenMP threads only spin on a shared machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_kind_has_implementations():
    assert not HOST.failures, [f.error for f in HOST.failures]
    for kind in ("backbone", "synthesizer", "report_format"):
        assert len(HOST.registry(kind)) > 0


# --- backbones --------------------------------------------------------------------------------


def _backbone_options(name: str, tmp: Path) -> dict:
    """Options for the built-ins that cannot run without a file."""
    if name == "default":
        from fpattr.backbones.onnx import default_model_available

        if not default_model_available():
            pytest.skip("no shipped extractor in models/")
    if name == "onnx":
        pytest.importorskip("onnx")
        from fpattr.testing import write_tiny_onnx_model

        return {"model": str(write_tiny_onnx_model(tmp))}
    if name == "manifpt":
        from fpattr.manifpt import RealReference
        from fpattr.testing import write_image

        for s in range(6):
            write_image(tmp / "real" / f"{s}.png", (64, 64), seed=s, pattern="gradient")
        ref, _ = RealReference.build([tmp / "real"], size=32, n_patches=24, seed=0, workers=0)
        return {"ref": str(ref.save(tmp / "ref.npz"))}
    return {}


@pytest.mark.parametrize("entry", _entries("backbone"))
def test_backbone_contract(entry, tmp_path):
    options = _backbone_options(entry.name, tmp_path)
    try:
        backbone = entry.obj(**options)
    except BackboneError as exc:
        if entry.plugin.startswith("fpattr."):
            raise
        pytest.skip(f"third-party backbone needs options: {exc}")
    check_backbone(backbone)
    again = entry.obj(**options)  # identity is a function of the options
    assert (again.id, again.sha256) == (backbone.id, backbone.sha256)


# --- synthesizer families ---------------------------------------------------------------------


@pytest.fixture
def cheap_losses(monkeypatch):
    """An untrained perceptual network (training one takes ~20 s) for the l1_perceptual
    losses; the check is about the contract, not the quality."""
    torch = pytest.importorskip("torch")
    from fpattr.synthesis import losses

    torch.manual_seed(0)
    monkeypatch.setattr(losses, "_CURRENT", {"net": losses.PerceptualNet().eval()})


@pytest.mark.parametrize("entry", _entries("synthesizer"))
def test_declared_design_space_is_the_familys(entry):
    """``design_space=`` metadata is what `synth --list` shows without torch: it must be
    the space the built family trains on (built-ins, and plugins that declare it)."""
    from fpattr.synthesis.spaces import space_problem

    declared = entry.meta.get("design_space")
    if declared is None:
        assert not entry.plugin.startswith("fpattr."), "built-ins declare their design space"
        pytest.skip("the plugin does not declare design_space= (listed by building it)")
    assert space_problem(declared) is None
    pytest.importorskip("torch")
    assert entry.obj().design_space() == {k: list(v) for k, v in declared.items()}


@pytest.mark.parametrize("entry", _entries("synthesizer"))
def test_family_contract(entry, cheap_losses):
    family = entry.obj()
    assert family.name == entry.name
    check_family(family, width=4, image_size=32, steps=2)
    # the last architecture: every choice at its last value (the adversarial loss, when
    # the family has the loss choice), its phase cut to 2 steps
    if hasattr(family, "adv_steps"):
        family.adv_steps = 2
    check_family(family, width=4, image_size=32, steps=2, arch=family.architectures()[-1])


# --- galleries --------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _entries("gallery"))
def test_registered_gallery_contract(entry):
    backbone = entry.meta.get("backbone") or None
    if backbone == "default":
        from fpattr.backbones.onnx import default_model_available

        if not default_model_available():
            pytest.skip("bound to the shipped extractor, which is missing")
    check_gallery(entry.obj, backbone=backbone)


def test_check_gallery_on_a_temporary_gallery(tmp_path):
    from fpattr.testing import make_gallery

    info = check_gallery(make_gallery(tmp_path, n=2), backbone="spectrum")
    assert info["models"] == {"checker": 2, "nearest": 2}


# --- report formats ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", _entries("report_format"))
def test_report_format_contract(entry):
    check_writer(
        entry.obj,
        name=entry.name,
        streaming=bool(entry.meta.get("streaming", False)),
        binary=bool(entry.meta.get("binary", False)),
    )


# --- the checks catch what they promise to ----------------------------------------------------


def test_check_backbone_catches_batch_dependence():
    from fpattr.backbones.base import Backbone, config_sha256

    class BatchNormed(Backbone):
        name = "batch-normed"
        input_size = 16

        @property
        def id(self) -> str:
            return "batch-normed-v1"

        @property
        def sha256(self) -> str:
            return config_sha256({"v": 1})

        def embed(self, views):
            x = np.asarray(views, np.float32).reshape(len(views), -1)[:, :8]
            return (x - x.mean(axis=0)).astype(np.float32)  # mixes the batch

    with pytest.raises(AssertionError, match="depends on the other views"):
        check_backbone(BatchNormed())


def test_check_writer_catches_a_writer_that_loses_inputs():
    class Forgetful:
        def __init__(self, stream, manifest, **_):
            self.stream = stream

        def write(self, result):
            result.pop("thumbnail", None)  # mutates the caller's dict
            self.stream.write("row\n")

        def close(self, summary):
            self.stream.write("done\n")

    with pytest.raises(AssertionError, match="must not modify|does not name"):
        check_writer(Forgetful)


def test_check_family_catches_unordered_architectures():
    pytest.importorskip("torch")
    from fpattr.synthesis.autoencoder import AutoencoderFamily

    class Shuffled(AutoencoderFamily):
        name = "shuffled"

        def architectures(self, where=None):
            return list(reversed(super().architectures(where)))

    with pytest.raises(AssertionError, match="ordered product"):
        check_family(Shuffled())


def test_check_family_catches_a_family_workers_cannot_receive():
    pytest.importorskip("torch")
    from fpattr.synthesis.autoencoder import AutoencoderFamily

    fam = AutoencoderFamily()
    fam.hook = lambda x: x  # a lambda cannot travel to spawned zoo workers

    with pytest.raises(AssertionError, match="cannot be sent to worker processes"):
        check_family(fam)


def test_old_testing_names_still_import():
    import fpattr.testing as t

    for name in (
        "run_cli",
        "write_generator_images",
        "generator_image",
        "GENERATOR_KINDS",
        "make_image",
        "write_image",
        "encode_png",
        "make_hostile_inputs",
        "write_tiny_onnx_model",
    ):
        assert name in t.__all__ and callable(getattr(t, name)) or name == "GENERATOR_KINDS"
