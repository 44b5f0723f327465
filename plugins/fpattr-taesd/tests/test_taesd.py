"""fpattr-taesd: hooks, the family and gallery contracts, the gallery builder, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import fpattr_taesd
import pytest

from fpattr.testing import check_family, check_gallery

installed = pytest.mark.skipif(
    not any(ep.name == "taesd" for ep in metadata.entry_points(group="fpattr")),
    reason="not installed: fpattr plugins install -e plugins/fpattr-taesd",
)


@pytest.fixture
def _one_thread():
    """Tiny models: extra OpenMP threads only compete with other work on the machine.

    Skips without torch (the family needs fpattr[train]); only the tests marked
    ``needs_torch`` use it, so the hooks, the design space and the shipped gallery are
    still tested on an install without torch.
    """
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


needs_torch = pytest.mark.usefixtures("_one_thread")


def test_hooks_register(plugin_host):
    plugin_host.register(fpattr_taesd, name="taesd")
    assert not plugin_host.failures
    assert plugin_host.registry("synthesizer").entry("taesd").plugin == "taesd"
    entry = plugin_host.registry("gallery").entry("taesd")
    assert entry.meta["backbone"] == "spectrum" and entry.obj == fpattr_taesd.GALLERY_DIR


def test_module_import_is_light():
    code = "import sys, fpattr_taesd; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_design_space_is_declared_without_torch(plugin_host):
    """Registered as metadata, so `fpattr synth --list` shows it without torch."""
    from fpattr.synthesis.spaces import LOSSES, n_architectures

    plugin_host.register(fpattr_taesd, name="taesd")
    space = plugin_host.registry("synthesizer").entry("taesd").meta["design_space"]
    assert space is fpattr_taesd.DESIGN_SPACE
    assert list(space) == ["latent_channels", "blocks", "upsampling", "latent_clamp", "loss"]
    assert space["loss"] == list(LOSSES) and n_architectures(space) == 64


@needs_torch
def test_design_space_is_labelled():
    fam = fpattr_taesd.make_family()
    assert fam.design_space() == fpattr_taesd.DESIGN_SPACE  # the declared one
    assert len(fam.architectures()) == 64
    assert fam.arch_id(fam.architectures()[0]) == "tae-C4B3Unearest-Ktanh-Ll2"


@needs_torch
def test_family_contract(tiny_photos):
    check_family(fpattr_taesd.make_family(), photos=tiny_photos)


@needs_torch
def test_family_contract_with_the_adversarial_loss(tiny_photos, monkeypatch):
    """The last architecture: 16-ch latent, 1 block, bilinear, no clamp, l1+perceptual+adv."""
    import torch

    from fpattr.synthesis import losses

    torch.manual_seed(0)  # an untrained perceptual net: the contract, not the quality
    monkeypatch.setattr(losses, "_CURRENT", {"net": losses.PerceptualNet().eval()})
    fam = fpattr_taesd.make_family()
    fam.adv_steps = 2
    stats = check_family(fam, arch=fam.architectures()[-1], photos=tiny_photos)
    assert stats["adv_steps"] == 2


@needs_torch
def test_decoder_output_path_is_taesd_like():
    from fpattr_taesd.family import Clamp

    fam = fpattr_taesd.make_family()
    model = fam.build(fam.architectures()[0], width=8, image_size=32)
    assert isinstance(model.decoder[0], Clamp)
    assert not any("Norm" in type(m).__name__ for m in model.modules())  # no normalisation
    with pytest.raises(Exception, match="multiple of 8"):
        fam.build(fam.architectures()[0], width=8, image_size=20)


def test_shipped_gallery_contract():
    info = check_gallery(fpattr_taesd.GALLERY_DIR, backbone="spectrum")
    assert info["models"] == {"taesd-sd": 6, "taesd-flux": 6, "taesd-lite": 6}
    size = sum(f.stat().st_size for f in fpattr_taesd.GALLERY_DIR.rglob("*") if f.is_file())
    assert size < 64_000  # shipped in the wheel: keep it KBs


@needs_torch
def test_gallery_builder_runs(tmp_path):
    from fpattr_taesd.build_gallery import build

    from fpattr.synthesis.photos import bundled_photo_paths

    if not bundled_photo_paths():
        pytest.skip("no bundled photos (scikit-image / scikit-learn not installed)")
    out = build(tmp_path / "g", size=32, width=8, steps=10, refs=2)
    info = check_gallery(out, backbone="spectrum")
    assert info["models"] == {"taesd-sd": 2, "taesd-flux": 2, "taesd-lite": 2}


@installed
@needs_torch
def test_cli_synth_list_and_attribute_with_the_gallery(cli, tmp_path, tiny_photos):
    import torch
    from PIL import Image

    r = cli(["synth", "--list"])
    assert r.exit_code == 0 and "taesd" in {row["name"] for row in json.loads(r.stdout)}
    fam = fpattr_taesd.make_family()
    model = fam.build(fam.architectures()[0], width=8, image_size=64)
    photos = torch.nn.functional.interpolate(tiny_photos, size=64, mode="bilinear")
    fam.train(model, photos, seed=0, loss_floor=0.0, max_steps=3, batch_size=4)
    folder = Path(tmp_path / "generated")
    folder.mkdir()
    for k, img in enumerate(fam.generate(model, photos[:3], 3, seed=0)):
        Image.fromarray(img).save(folder / f"{k}.png")
    r = cli(["attribute", folder, "--gallery", "taesd", "-b", "spectrum", "-f", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["summary"]["n_ok"] == 3 and doc["gallery"]["n_models"] == 3
    assert all(res["top"][0]["model"].startswith("taesd-") for res in doc["results"])


@installed
def test_cli_lists_the_family_and_attributes_with_the_gallery_without_torch(cli, tmp_path):
    """What needs no torch works without it: the family's design space in `synth --list`,
    and `--gallery taesd` alone (backbone auto = the gallery's own, spectrum)."""
    from fpattr.testing import write_generator_images

    r = cli(["synth", "--list"])
    assert r.exit_code == 0, r.output
    row = {f["name"]: f for f in json.loads(r.stdout)}["taesd"]
    assert row["n_architectures"] == 64 and row["design_space"] == fpattr_taesd.DESIGN_SPACE
    write_generator_images(tmp_path / "q", "nearest", n=2)
    r = cli(["attribute", tmp_path / "q", "--gallery", "taesd", "-f", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["gallery"]["n_models"] == 3
