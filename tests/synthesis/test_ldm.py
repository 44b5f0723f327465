"""Latent-decoder families (KL-VAE, VQGAN, DiT patch tokens): design space, build, train,
generate, determinism, the auxiliary losses and the adversarial phase. Tiny sizes only."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fpattr.errors import UsageError  # noqa: E402
from fpattr.synthesis import losses  # noqa: E402
from fpattr.synthesis.base import SynthesizerFamily  # noqa: E402
from fpattr.synthesis.ldm import (  # noqa: E402
    LdmVaeFamily,
    PatchTokenFamily,
    VqganFamily,
    group_norm,
)

FAMILIES = {"ldm_vae": LdmVaeFamily, "vqgan": VqganFamily, "dit_patch": PatchTokenFamily}
COUNTS = {"ldm_vae": 144, "vqgan": 64, "dit_patch": 48}
#: the cheapest architecture of each family that still has every part (l2 loss).
SMALL = {
    "ldm_vae": {
        "factor": "8",
        "blocks": "1",
        "upsampling": "nearest",
        "mid_attention": "yes",
        "loss": "l2",
    },
    "vqgan": {
        "factor": "8",
        "codebook": "64",
        "blocks": "1",
        "upsampling": "nearest",
        "loss": "l2",
    },
    "dit_patch": {"patch": "2", "mixer": "attention", "upsampling": "nearest", "loss": "l2"},
}


def smooth_photos(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) smooth random 'photos' in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, size // 8), max(2, size // 8), generator=gen)
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    return smooth_photos(8, 32)


@pytest.mark.parametrize("name", FAMILIES)
def test_design_space_is_the_product_with_unique_ids_and_loss_last(name):
    fam = FAMILIES[name]()
    assert isinstance(fam, SynthesizerFamily)
    assert fam.name == name and fam.description and fam.needs_photos
    space = fam.design_space()
    assert list(space)[-1] == "loss" and space["loss"] == list(losses.LOSSES)
    archs = fam.architectures()
    assert len(archs) == COUNTS[name] == int(np.prod([len(v) for v in space.values()]))
    ids = [fam.arch_id(a) for a in archs]
    assert len(set(ids)) == len(ids)
    assert all(i.isascii() and "/" not in i and " " not in i for i in ids)
    assert all(i.startswith(fam.ID_PREFIX + "-") for i in ids)
    assert pickle.loads(pickle.dumps(fam)).arch_id(archs[3]) == ids[3]


def test_arch_ids_read_well():
    assert LdmVaeFamily().arch_id(SMALL["ldm_vae"]) == "vae-F8B1Unearest-Ayes-Ll2"
    assert VqganFamily().arch_id(SMALL["vqgan"]) == "vq-F8K64B1Unearest-Ll2"
    assert PatchTokenFamily().arch_id(SMALL["dit_patch"]) == "pt-P2-Mattention-Unearest-Ll2"


@pytest.mark.parametrize("name", FAMILIES)
def test_every_value_builds_and_keeps_the_size(name):
    fam = FAMILIES[name]()
    sample = fam.architectures(where={"loss": ["l2"]})
    x = smooth_photos(2, 32)
    with torch.no_grad():
        for arch in sample:
            model = fam.build(arch, width=8, image_size=32)
            assert model.loss_kind == "l2"
            assert model(x).shape == (2, 3, 32, 32), fam.arch_id(arch)


@pytest.mark.parametrize("name", FAMILIES)
def test_train_then_generate_gives_uint8_images(name, photos):
    fam = FAMILIES[name]()
    torch.manual_seed(0)
    model = fam.build(SMALL[name], width=8, image_size=32)
    stats = fam.train(
        model, photos, seed=1, loss_floor=0.0, max_steps=5, batch_size=4, crop=16, device="cpu"
    )
    assert stats["steps"] == 5 and np.isfinite(stats["final_loss"])
    assert model.aux_loss is None  # consumed by the base every step
    imgs = fam.generate(model, photos[:3], 5, seed=2, device="cpu")
    assert imgs.dtype == np.uint8 and imgs.shape == (5, 32, 32, 3)
    with pytest.raises(UsageError):
        fam.generate(model, None, 2, seed=0, device="cpu")


@pytest.mark.parametrize("name", FAMILIES)
def test_same_seed_same_images(name, photos):
    fam = FAMILIES[name]()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = fam.build(SMALL[name], width=8, image_size=32)
        stats = fam.train(
            model, photos, seed=4, loss_floor=0.0, max_steps=3, batch_size=4, device="cpu"
        )
        runs.append((stats, fam.generate(model, photos[:2], 2, seed=5, device="cpu")))
    assert runs[0][0] == runs[1][0]
    assert np.array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("name", FAMILIES)
def test_training_reduces_the_reconstruction_error(name, photos):
    fam = FAMILIES[name]()
    torch.manual_seed(0)
    model = fam.build(SMALL[name], width=8, image_size=32)
    fixed = photos[:4]

    def mse() -> float:
        with torch.no_grad():
            model.eval()
            return float(torch.nn.functional.mse_loss(model(fixed), fixed))

    before = mse()
    fam.train(model, photos, seed=0, loss_floor=0.0, max_steps=30, batch_size=4, device="cpu")
    after = mse()
    assert after < 0.8 * before, (before, after)


def test_bad_image_sizes_are_usage_errors():
    vae, vq, pt = LdmVaeFamily(), VqganFamily(), PatchTokenFamily()
    with pytest.raises(UsageError):
        vae.build({**SMALL["ldm_vae"], "factor": "16"}, width=8, image_size=40)  # not a multiple
    with pytest.raises(UsageError):
        vae.build({**SMALL["ldm_vae"], "factor": "16"}, width=8, image_size=16)  # 1 px latent
    with pytest.raises(UsageError):
        vq.build(SMALL["vqgan"], width=8, image_size=20)
    with pytest.raises(UsageError):
        pt.build({**SMALL["dit_patch"], "patch": "4"}, width=8, image_size=48)  # 6 px latent
    with pytest.raises(UsageError):
        vae.build({**SMALL["ldm_vae"], "factor": "huge"}, width=8, image_size=64)
    for size in (64, 128):
        vae.build({**SMALL["ldm_vae"], "factor": "16"}, width=8, image_size=size)
        pt.build({**SMALL["dit_patch"], "patch": "4"}, width=8, image_size=size)


def test_training_crops_are_aligned_and_large_enough():
    fam = PatchTokenFamily()
    model = fam.build({**SMALL["dit_patch"], "patch": "4"}, width=8, image_size=64)
    assert fam.train_crop(model, 50, 64) == 32  # rounded down to 8 * patch
    assert fam.train_crop(model, 8, 64) == 32  # at least one token
    vae = LdmVaeFamily()
    model = vae.build({**SMALL["ldm_vae"], "factor": "16"}, width=8, image_size=64)
    assert vae.train_crop(model, 20, 64) == 32  # two latent pixels
    with pytest.raises(UsageError):
        vae.train_crop(model, 20, 16)


def test_kl_and_vq_terms_are_set_by_the_training_forward(photos):
    gen = torch.Generator().manual_seed(0)
    idx = torch.arange(4)
    for fam in (LdmVaeFamily(), VqganFamily()):
        name = fam.name
        torch.manual_seed(0)
        model = fam.build(SMALL[name], width=8, image_size=32)
        out, target = fam.forward_pair(model, photos, idx, 16, gen, "cpu")
        assert out.shape == target.shape == (4, 3, 16, 16) and out.requires_grad
        assert model.aux_loss is not None and model.aux_loss.item() > 0
        assert model.aux_loss.requires_grad
    pt = PatchTokenFamily()
    model = pt.build(SMALL["dit_patch"], width=8, image_size=32)
    pt.forward_pair(model, photos, idx, 16, gen, "cpu")
    assert model.aux_loss is None


def test_vq_codebook_starts_from_encoder_outputs(photos):
    fam = VqganFamily()
    torch.manual_seed(0)
    model = fam.build({**SMALL["vqgan"], "codebook": "512"}, width=8, image_size=32)
    fam.setup_training(model, photos, torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = model.encode(photos)
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    # every entry lies close to some encoder output: no dead, far-away codes
    nearest = torch.cdist(model.codebook.detach(), flat).min(dim=1).values
    assert float(nearest.max()) < 0.1 * float(flat.std()) * flat.shape[1] ** 0.5
    with torch.no_grad():
        zq, _ = model.quantise(z)
    used = torch.unique(zq.permute(0, 2, 3, 1).reshape(-1, zq.shape[1]), dim=0)
    assert len(used) > 8


def test_generation_samples_the_vae_posterior(photos):
    """SD decodes a posterior sample: two seeds differ, the same seed repeats."""
    fam = LdmVaeFamily()
    torch.manual_seed(0)
    model = fam.build(SMALL["ldm_vae"], width=8, image_size=32)
    with torch.no_grad():  # a wide posterior makes the sampling noise visible
        model.encoder.out[-1].bias[4:].fill_(0.0)
    a = fam.generate(model, photos[:2], 2, seed=1)
    b = fam.generate(model, photos[:2], 2, seed=1)
    c = fam.generate(model, photos[:2], 2, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_group_norm_suits_small_widths():
    for ch in (4, 6, 8, 12, 32, 64):
        norm = group_norm(ch)
        assert ch % norm.num_groups == 0 and norm.num_groups <= 8


@pytest.mark.parametrize("name", FAMILIES)
def test_adversarial_loss_runs_its_phase(name, photos):
    losses.set_perceptual_net(losses.train_perceptual_net(photos, steps=1, crop=16, batch=4))
    try:
        fam = FAMILIES[name]()
        fam.adv_steps = 2
        torch.manual_seed(0)
        model = fam.build({**SMALL[name], "loss": "l1_perceptual_adv"}, width=8, image_size=32)
        stats = fam.train(model, photos, seed=0, loss_floor=0.0, max_steps=2, batch_size=2, crop=16)
        assert stats["adv_steps"] == 2 and np.isfinite(stats["final_loss"])
        assert model.aux_loss is None
        assert FAMILIES[name]().adv_steps > 2  # set on the instance only
    finally:
        losses.set_perceptual_net(None)


def test_vq_restarts_dead_codes_on_batch_outputs():
    torch.manual_seed(0)
    model = VqganFamily().build(SMALL["vqgan"], width=8, image_size=32)
    direction = torch.ones(1, 8, 1, 1)
    z = torch.nn.functional.normalize(direction + 0.1 * torch.randn(2, 8, 4, 4), dim=1)
    with torch.no_grad():  # the batch all maps to code 0, the only one alive
        model.codebook[0] = direction.flatten()
        model.codebook[1:] = -direction.flatten()
    model.usage.fill_(0.0)
    model.usage[0] = 100.0
    zq, loss = model.quantise(z, torch.Generator().manual_seed(0))
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8)
    restarted = model.codebook.detach()[1:]
    # every dead code now sits on an encoder output of the batch
    assert torch.cdist(restarted, flat).min(dim=1).values.max() < 1e-3
    assert bool((model.usage[1:] >= 1.0).all())
    assert torch.isfinite(loss) and zq.shape == z.shape
