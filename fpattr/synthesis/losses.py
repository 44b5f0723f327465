"""Training losses for model synthesis: pixel, perceptual and an adversarial phase.

ManiFPT (Song et al., ICLR 2024, Sec. 5) finds that fingerprints cluster by the
training loss almost as much as by the up-sampling path, and real decoders are
trained with L1 + a perceptual loss + a late patch-GAN phase (LDM, VQGAN) or
adversarially from the start (GANs). A family that lists ``"loss"`` in its
design space gets all of these from :class:`fpattr.synthesis.base.FamilyBase`:

* ``l2`` / ``l1``: pixel losses on the [0, 1] scale;
* ``l1_perceptual``: L1 + feature distance in :class:`PerceptualNet`, a small
  network the project trains itself on the photo pool (self-supervised rotation
  prediction, deterministic from a seed; never downloaded weights);
* ``l1_perceptual_adv``: the above, then an adversarial phase after the floor
  (or the step budget): a patch discriminator with the hinge loss (as in the
  LDM/VQGAN autoencoders, Esser et al. 2021) for ``adv_steps`` more steps.

The floor a model trains to is always measured in MSE, whatever it optimises.
Importing this module imports torch: only family code imports it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fpattr.synthesis.spaces import LOSSES as _LOSS_NAMES

#: The loss design choice, in order of increasing machinery (defined in the torch-free
#: spaces module so design spaces can be listed without torch).
LOSSES = _LOSS_NAMES
#: weight of the perceptual term (features are instance-normalised, so O(1)).
PERCEPTUAL_WEIGHT = 0.1
#: weight of the generator's adversarial term in the adversarial phase.
ADV_WEIGHT = 0.05


class PerceptualNet(nn.Module):
    """A small VGG-like feature network: 3 -> 16 -> 32 -> 48 channels, two stride-2 steps.

    ``features(x)`` returns the three stages' activations for x (B, 3, H, W) in [0, 1];
    a 4-way linear head predicts the rotation during its own training only.
    """

    def __init__(self) -> None:
        super().__init__()
        self.s1 = nn.Sequential(
            nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 1, 1), nn.ReLU()
        )
        self.s2 = nn.Sequential(
            nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU()
        )
        self.s3 = nn.Sequential(
            nn.Conv2d(32, 48, 3, 2, 1), nn.ReLU(), nn.Conv2d(48, 48, 3, 1, 1), nn.ReLU()
        )
        self.head = nn.Linear(48, 4)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.s1(x * 2 - 1)
        f2 = self.s2(f1)
        f3 = self.s3(f2)
        return [f1, f2, f3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[-1].mean(dim=(2, 3)))


def train_perceptual_net(
    photos: torch.Tensor, *, seed: int = 0, steps: int = 300, crop: int = 48, batch: int = 32
) -> PerceptualNet:
    """Train :class:`PerceptualNet` to predict which of 0/90/180/270 degrees a crop was
    rotated by (Gidaris et al. 2018): self-supervised, so it needs photos only.

    ``photos``: float (N, 3, S, S) in [0, 1], S >= ``crop``. Deterministic given
    ``seed`` on one device; about 20 s on one CPU core.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = PerceptualNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    size = photos.shape[-1]
    crop = min(crop, size)
    for _ in range(steps):
        idx = torch.randint(len(photos), (batch,), generator=gen)
        y0 = torch.randint(size - crop + 1, (1,), generator=gen).item()
        x0 = torch.randint(size - crop + 1, (1,), generator=gen).item()
        x = photos[idx, :, y0 : y0 + crop, x0 : x0 + crop]
        rot = torch.randint(4, (batch,), generator=gen)
        x = torch.stack(
            [torch.rot90(xi, int(k), dims=(1, 2)) for xi, k in zip(x, rot, strict=True)]
        )
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), rot).backward()
        opt.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


_CURRENT: dict[str, PerceptualNet] = {}


def set_perceptual_net(net: PerceptualNet | None) -> None:
    """Make ``net`` the perceptual network of this process (the zoo's workers call this)."""
    _CURRENT.clear()
    if net is not None:
        _CURRENT["net"] = net


def perceptual_net(photos: torch.Tensor | None = None) -> PerceptualNet:
    """The process's perceptual network; trained from ``photos`` (seed 0) when none is set.

    Raises ``RuntimeError`` when none is set and no photos are given.
    """
    if "net" not in _CURRENT:
        if photos is None:
            raise RuntimeError("no perceptual network set and no photos to train one")
        _CURRENT["net"] = train_perceptual_net(photos)
    return _CURRENT["net"]


def save_perceptual_net(net: PerceptualNet, path: Path) -> str:
    """Write the weights (torch state dict, tensors only) atomically; returns their sha256[:16]."""
    from fpattr.io.atomic import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()[:16]


def load_perceptual_net(path: Path) -> PerceptualNet:
    net = PerceptualNet()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _instance_norm(f: torch.Tensor) -> torch.Tensor:
    return f / (f.pow(2).mean(dim=1, keepdim=True).sqrt() + 1e-6)


def perceptual_distance(
    net: PerceptualNet, out: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Mean squared distance of channel-normalised features (LPIPS without learnt weights)."""
    net = net.to(out.device)
    total = out.new_zeros(())
    for fo, ft in zip(net.features(out), net.features(target), strict=True):
        total = total + (_instance_norm(fo) - _instance_norm(ft)).pow(2).mean()
    return total


def pixel_objective(kind: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reconstruction objective of a ``loss`` design choice (``*_adv``: without the
    adversarial term, which :meth:`FamilyBase.train` adds in its own phase).

    ``out``, ``target``: float (B, 3, H, W) on the [0, 1] scale. Raises ``ValueError``
    for a kind not in :data:`LOSSES`.
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; expected one of {LOSSES}")
    if kind == "l2":
        return F.mse_loss(out, target)
    l1 = F.l1_loss(out, target)
    if kind == "l1":
        return l1
    return l1 + PERCEPTUAL_WEIGHT * perceptual_distance(
        perceptual_net(target.detach().cpu()), out, target
    )


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al. 2017), small: 3 -> 16 -> 32 -> 1 logits map."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.GroupNorm(4, 2 * width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()
