"""StyleGAN2/3-, BigGAN- and SR-cascade-like families: bookkeeping, training, properties."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from fpattr.errors import UsageError

torch = pytest.importorskip("torch")

from fpattr.synthesis.biggan import BigGanFamily  # noqa: E402
from fpattr.synthesis.sr_cascade import SrCascadeFamily  # noqa: E402
from fpattr.synthesis.stylegan import (  # noqa: E402
    ModulatedConv,
    StyleGan2Family,
    StyleGan3Family,
    filter_down2,
    filter_up2,
    fir_kernel,
    fir_taps,
    kaiser_sinc,
)

FAMILIES = {
    "stylegan2": StyleGan2Family,
    "stylegan3": StyleGan3Family,
    "biggan": BigGanFamily,
    "sr_cascade": SrCascadeFamily,
}
SIZE = 32


@pytest.fixture(autouse=True)
def _untrained_perceptual_net():
    """l1_perceptual losses need a feature net; an untrained one is enough (and instant)."""
    from fpattr.synthesis.losses import PerceptualNet, set_perceptual_net

    torch.manual_seed(0)
    set_perceptual_net(PerceptualNet().eval().requires_grad_(False))
    yield
    set_perceptual_net(None)


@pytest.fixture(scope="module")
def photos():
    """(12, 3, 32, 32) photo-like images: smoothed noise plus some fine detail."""
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(12, 3, 8, 8, generator=gen)
    x = torch.nn.functional.interpolate(coarse, size=SIZE, mode="bicubic", align_corners=False)
    x = x + 0.1 * torch.rand(12, 3, SIZE, SIZE, generator=gen)
    return x.clamp(0, 1)


def _small(fam, loss: str = "l2") -> dict:
    """The cheapest architecture with the given loss."""
    return next(a for a in fam.architectures() if a["loss"] == loss)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_design_space_product_and_unique_ids(name):
    fam = FAMILIES[name]()
    space = fam.design_space()
    assert list(space)[-1] == "loss"
    archs = fam.architectures()
    assert len(archs) == int(np.prod([len(v) for v in space.values()]))
    ids = [fam.arch_id(a) for a in archs]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(fam.ID_PREFIX + "-") and "/" not in i and " " not in i for i in ids)
    assert fam.name == name and fam.description
    assert pickle.loads(pickle.dumps(fam)).arch_id(archs[-1]) == ids[-1]
    assert fam.needs_photos is (name == "sr_cascade")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_train_adv_phase_and_generate(name, photos):
    """The largest-machinery arch: 5 steps, a short adversarial phase, uint8 output."""
    fam = FAMILIES[name]()
    fam.adv_steps = 2
    arch = fam.architectures()[-1]
    assert arch["loss"] == "l1_perceptual_adv"
    torch.manual_seed(0)
    model = fam.build(arch, width=8, image_size=SIZE)
    stats = fam.train(
        model, photos, seed=1, loss_floor=0.0, max_steps=5, batch_size=4, crop=SIZE, device="cpu"
    )
    assert stats["steps"] == 5 and np.isfinite(stats["final_loss"])
    assert stats["adv_steps"] == 2
    imgs = fam.generate(model, photos[:3], 5, seed=2, device="cpu")
    assert imgs.dtype == np.uint8 and imgs.shape == (5, SIZE, SIZE, 3)
    assert imgs.std() > 0


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_value_builds_and_keeps_the_size(name, photos):
    """A stride sample covering every value of every choice; 2 steps each at 32 px."""
    fam = FAMILIES[name]()
    sample = fam.architectures(where={"loss": ["l2"]})
    sample = sample[:: max(1, len(sample) // 4)] + [sample[-1]]
    for choice, values in fam.design_space().items():
        if choice != "loss":
            assert {a[choice] for a in sample} == set(values), choice
    for arch in sample:
        torch.manual_seed(0)
        model = fam.build(arch, width=8, image_size=SIZE)
        fam.train(model, photos, seed=0, loss_floor=0.0, max_steps=2, batch_size=2, device="cpu")
        imgs = fam.generate(model, photos[:2], 2, seed=0, device="cpu")
        assert imgs.shape == (2, SIZE, SIZE, 3), fam.arch_id(arch)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_deterministic_given_seed(name, photos):
    fam = FAMILIES[name]()
    arch = fam.architectures()[-2]  # l1_perceptual, noise / refinement where the family has it
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = fam.build(arch, width=8, image_size=SIZE)
        stats = fam.train(
            model, photos, seed=3, loss_floor=0.0, max_steps=3, batch_size=4, device="cpu"
        )
        runs.append((stats, fam.generate(model, photos[:4], 4, seed=5, device="cpu")))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("name", list(FAMILIES))
def test_training_reduces_the_mse(name, photos):
    fam = FAMILIES[name]()
    arch = _small(fam)
    if name == "sr_cascade":
        arch = {**arch, "factor": "4"}  # factor 2 on smooth photos leaves too little to learn

    def mse_after(steps: int) -> float:
        torch.manual_seed(0)
        model = fam.build(arch, width=8, image_size=SIZE)
        fam.train(model, photos, seed=4, loss_floor=0.0, max_steps=steps, batch_size=8)
        model.eval()
        gen = torch.Generator().manual_seed(9)
        idx = torch.arange(len(photos))
        with torch.no_grad():
            out, target = fam.forward_pair(model, photos, idx, SIZE, gen, "cpu")
        return float(torch.nn.functional.mse_loss(out, target))

    before, after = mse_after(1), mse_after(30)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_unsuitable_size_is_a_usage_error(name):
    fam = FAMILIES[name]()
    arch = fam.architectures()[-1]  # 3 up-stages (x8) / factor 4 (needs a multiple of 8)
    with pytest.raises(UsageError):
        fam.build(arch, width=8, image_size=36)
    fam.build(arch, width=8, image_size=64)  # 64 suits every architecture


def test_demodulated_conv_keeps_unit_variance():
    """Weight demodulation: unit-variance i.i.d. input -> unit-variance output per channel,
    whatever the style (Karras et al. 2020, eq. 3)."""
    torch.manual_seed(0)
    conv = ModulatedConv(16, 12, 3, style_dim=8)
    with torch.no_grad():
        conv.weight.normal_()
        conv.affine.weight.normal_()
        x = torch.randn(6, 16, 48, 48)
        style = torch.randn(6, 8) * 3
        y = conv(x, style)[:, :, 1:-1, 1:-1]  # borders see zero padding
    var = y.var(dim=(2, 3))
    assert var.shape == (6, 12)
    assert torch.allclose(var, torch.ones_like(var), atol=0.15), var
    undemod = ModulatedConv(16, 12, 3, style_dim=8, demodulate=False)
    with torch.no_grad():
        undemod.load_state_dict(conv.state_dict())
        v2 = undemod(x, style)[:, :, 1:-1, 1:-1].var(dim=(2, 3))
    assert not torch.allclose(v2, torch.ones_like(v2), atol=0.15)


def test_fir_kernels_sum_to_their_gains():
    k = fir_kernel((1, 3, 3, 1), gain=4.0)
    assert k.shape == (4, 4)
    assert float(k.sum()) == pytest.approx(4.0)  # x2 up-sampling gain = up**2
    assert torch.allclose(k, k.t()) and float(k[1, 1]) > float(k[0, 0])
    assert float(kaiser_sinc().sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(fir_taps((1, 1), gain=2.0).sum()) == pytest.approx(2.0)


@pytest.mark.parametrize("taps", [(1, 1), (1, 3, 3, 1), None])
def test_filtered_resampling_keeps_constants_and_sizes(taps):
    """Up x2 with gain 2 per axis and down x2 with gain 1 keep a constant image constant
    (away from the zero-padded border) and double / halve the size."""
    f = kaiser_sinc() if taps is None else fir_taps(taps)
    x = torch.ones(1, 2, 16, 16)
    up = filter_up2(x, f * 2)
    assert up.shape == (1, 2, 32, 32)
    inner = up[:, :, 8:-8, 8:-8]
    assert torch.allclose(inner, torch.ones_like(inner), atol=1e-5)
    down = filter_down2(up, f)
    assert down.shape == (1, 2, 16, 16)
    assert torch.allclose(down[:, :, 5:-5, 5:-5], torch.ones(1, 2, 6, 6), atol=1e-5)


def test_biggan_truncation_scales_the_sampling_noise(photos):
    fam = BigGanFamily()
    torch.manual_seed(0)
    model = fam.build(_small(fam), width=8, image_size=SIZE)
    fam.train(model, photos, seed=0, loss_floor=0.0, max_steps=2, batch_size=4)
    spread = {}
    for t in (0.5, 1.0):
        z = fam.sample_latents(model, 64, torch.Generator().manual_seed(0), noise_scale=t)
        spread[t] = float(z.std())
        assert float(z.abs().max()) < 100
    assert spread[0.5] < spread[1.0]


def test_sr_cascade_starts_from_the_upsampled_photo(photos):
    """Untrained (zero-initialised output conv): one step returns the degraded photo."""
    from fpattr.synthesis.sr_cascade import degrade

    fam = SrCascadeFamily()
    arch = {**_small(fam), "factor": "4", "kernel": "nearest", "steps": "1"}
    model = fam.build(arch, width=8, image_size=SIZE).eval()
    with torch.no_grad():
        out = fam.sample(model, photos[:2], 2, torch.Generator().manual_seed(0), "cpu")
    expect = degrade(photos[:2], 4, "nearest")
    assert torch.allclose(out, expect, atol=1e-6)
    assert torch.equal(expect[..., 0:4, 0:4], expect[..., 0:1, 0:1].expand(-1, -1, 4, 4))
