"""Every built-in family: design space bookkeeping, build, train, generate."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fpattr.errors import UsageError
from fpattr.synthesis.base import SynthesizerFamily

FAMILIES = ("autoencoder", "gan_decoder", "diffusion_denoiser")


def test_builtin_families_registered_through_the_hook(families):
    for name, fam in families.items():
        assert isinstance(fam, SynthesizerFamily)
        assert fam.name == name and fam.description


def test_builtin_module_does_not_import_torch():
    code = (
        "import sys, fpattr.synthesis.builtin, fpattr.synthesis, fpattr.cli.synth_cmd;"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_autoencoder_design_space_counts(families):
    ae = families["autoencoder"]
    assert len(ae.architectures()) == 384
    paper = ae.architectures(where={"upsampling": ["nearest", "bilinear", "transposed"]})
    assert len(paper) == 288
    assert all(a["upsampling"] != "pixelshuffle" for a in paper)
    arch = {
        "down_blocks": "2",
        "convs_per_up": "1",
        "upsampling": "bilinear",
        "activation": "relu",
        "norm": "batch",
        "order": "post",
    }
    assert ae.arch_id(arch) == "ae-K2L1Ubilinear-Arelu-Nbn-Spost"


@pytest.mark.parametrize("name", FAMILIES)
def test_architectures_are_the_ordered_product_with_unique_ids(families, name):
    fam = families[name]
    space = fam.design_space()
    archs = fam.architectures()
    assert len(archs) == int(np.prod([len(v) for v in space.values()]))
    assert archs == fam.architectures()  # deterministic
    assert archs[0] == {k: v[0] for k, v in space.items()}
    assert archs[1][list(space)[-1]] == space[list(space)[-1]][1]  # last choice fastest
    ids = [fam.arch_id(a) for a in archs]
    assert len(set(ids)) == len(ids)
    assert all(i.isascii() and "/" not in i and " " not in i for i in ids)


def test_unknown_restriction_value_is_a_usage_error(families):
    with pytest.raises(UsageError):
        families["autoencoder"].architectures(where={"upsampling": ["bicubic"]})


@pytest.mark.parametrize("name", FAMILIES)
def test_architectures_build_and_keep_the_size(families, name):
    """A stride-17 sample of the product: every value of every choice, in many contexts."""
    import torch

    fam = families[name]
    sample = fam.architectures()[::17]
    for choice, values in fam.design_space().items():
        assert {a[choice] for a in sample} == set(values)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        for arch in sample:
            model = fam.build(arch, width=4, image_size=16).eval()
            if name == "gan_decoder":
                y = model(torch.randn(2, 8, model.latent_size, model.latent_size))
            elif name == "diffusion_denoiser":
                y = model(x, torch.full((2,), 0.3))
            else:
                y = model(x)
            assert y.shape == (2, 3, 16, 16), fam.arch_id(arch)


@pytest.mark.parametrize("name", FAMILIES)
def test_train_and_generate_tiny(families, tiny_photos, name):
    import torch

    fam = families[name]
    arch = fam.architectures()[-1]
    torch.manual_seed(0)
    model = fam.build(arch, width=8, image_size=16)
    stats = fam.train(
        model, tiny_photos, seed=1, loss_floor=0.0, max_steps=3, batch_size=4, device="cpu"
    )
    assert stats["steps"] == 3 and np.isfinite(stats["final_loss"])
    imgs = fam.generate(model, tiny_photos[:3], 5, seed=2, device="cpu")
    assert imgs.dtype == np.uint8 and imgs.shape == (5, 16, 16, 3)


def test_training_is_deterministic_and_stops_at_the_floor(families, tiny_photos):
    import torch

    fam = families["autoencoder"]
    arch = fam.architectures()[0]
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = fam.build(arch, width=8, image_size=16)
        runs.append(
            fam.train(
                model, tiny_photos, seed=3, loss_floor=0.0, max_steps=4, batch_size=4, device="cpu"
            )
        )
    assert runs[0] == runs[1]
    model = fam.build(arch, width=8, image_size=16)
    stats = fam.train(
        model, tiny_photos, seed=3, loss_floor=10.0, max_steps=50, batch_size=4, device="cpu"
    )
    assert stats["steps"] == 5  # the floor is met at once; 5 steps is the minimum


def test_gradients_are_zeroed_every_step(families, tiny_photos, monkeypatch):
    """The paper's public code accumulated gradients over steps; ours must not."""
    import torch

    calls = {"zero": 0, "step": 0}
    zero, step = torch.optim.Adam.zero_grad, torch.optim.Adam.step

    def counting_zero(self, *a, **k):
        calls["zero"] += 1
        return zero(self, *a, **k)

    def counting_step(self, *a, **k):
        calls["step"] += 1
        assert calls["zero"] == calls["step"]
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "zero_grad", counting_zero)
    monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
    fam = families["gan_decoder"]
    model = fam.build(fam.architectures()[0], width=8, image_size=16)
    fam.train(model, tiny_photos, seed=0, loss_floor=0.0, max_steps=3, batch_size=4, device="cpu")
    assert calls == {"zero": 3, "step": 3}


def test_photo_transforming_families_need_photos(families, tiny_photos):
    fam = families["autoencoder"]
    model = fam.build(fam.architectures()[0], width=8, image_size=16)
    with pytest.raises(UsageError):
        fam.generate(model, None, 2, seed=0, device="cpu")
    assert families["gan_decoder"].needs_photos is False


def test_bad_image_size_is_a_usage_error(families):
    ae = families["autoencoder"]
    arch = ae.architectures()[-1]  # K=2 needs a multiple of 4
    with pytest.raises(UsageError):
        ae.build(arch, width=8, image_size=18)
