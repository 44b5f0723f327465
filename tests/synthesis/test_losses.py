"""Loss diversity in model synthesis: objectives, the perceptual network, the adversarial phase."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from fpattr.synthesis import losses  # noqa: E402
from fpattr.synthesis.base import FamilyBase, random_crops  # noqa: E402


def test_pixel_objectives_have_their_values() -> None:
    out = torch.zeros(1, 3, 4, 4)
    target = torch.full((1, 3, 4, 4), 0.5)
    assert losses.pixel_objective("l2", out, target).item() == pytest.approx(0.25)
    assert losses.pixel_objective("l1", out, target).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown loss"):
        losses.pixel_objective("hinge", out, target)


def test_perceptual_net_is_deterministic_and_distance_is_zero_on_equal_images() -> None:
    photos = torch.rand(8, 3, 32, 32)
    a = losses.train_perceptual_net(photos, seed=3, steps=3, crop=16, batch=4)
    b = losses.train_perceptual_net(photos, seed=3, steps=3, crop=16, batch=4)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    x = torch.rand(2, 3, 16, 16)
    assert losses.perceptual_distance(a, x, x).item() == 0.0
    assert losses.perceptual_distance(a, x, x.flip(-1)).item() > 0.0


def test_perceptual_net_round_trips_through_a_file(tmp_path) -> None:
    net = losses.train_perceptual_net(torch.rand(4, 3, 16, 16), steps=1, crop=16, batch=2)
    sha = losses.save_perceptual_net(net, tmp_path / "p.pt")
    assert len(sha) == 16
    back = losses.load_perceptual_net(tmp_path / "p.pt")
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(net(x), back(x))


def test_hinge_losses() -> None:
    real, fake = torch.full((2,), 2.0), torch.full((2,), -2.0)
    assert losses.hinge_d_loss(real, fake).item() == 0.0  # both beyond the margin
    assert losses.hinge_d_loss(-real, -fake).item() == pytest.approx(6.0)
    assert losses.hinge_g_loss(fake).item() == pytest.approx(2.0)


class _Conv(FamilyBase):
    """A one-layer photo-to-photo family using forward_pair (the loss comes from the base)."""

    name = "test_conv"
    DESIGN_SPACE = {"loss": list(losses.LOSSES)}
    ID_PREFIX = "tc"
    ID_CODES = {"loss": "L"}

    def build(self, arch, *, width=8, image_size=16):  # type: ignore[override]
        model = torch.nn.Conv2d(3, 3, 3, padding=1)
        model.loss_kind = arch["loss"]
        return model

    def forward_pair(self, model, photos, idx, crop, gen, device):  # type: ignore[override]
        x, _, _ = random_crops(photos, idx, crop, gen)
        return model(x), x


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_every_loss_trains_and_only_adv_runs_the_adversarial_phase(kind: str) -> None:
    losses.set_perceptual_net(
        losses.train_perceptual_net(torch.rand(4, 3, 16, 16), steps=1, crop=16)
    )
    fam = _Conv()
    fam.adv_steps = 3
    model = fam.build({"loss": kind})
    stats = fam.train(
        model, torch.rand(6, 3, 16, 16), seed=0, max_steps=4, batch_size=2, loss_floor=0.0
    )
    assert stats["steps"] == 4
    assert stats["reached_floor"] is False  # a floor of 0 is never reached
    assert stats["adv_steps"] == (3 if kind.endswith("_adv") else 0)
    losses.set_perceptual_net(None)
