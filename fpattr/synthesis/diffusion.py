"""Diffusion-like denoisers: a small U-Net turns noisy photos into clean ones.

Imitates the denoising network of diffusion models (DDPM, EDM, latent-free
pixel diffusion): a two-level U-Net trained on photos with Gaussian noise of
random strength, and a sampler that runs it for a few steps. Sampling from
pure noise with a tiny, briefly trained denoiser gives blobs, so generation is
SDEdit-like (Meng et al. 2022): a held-out photo is noised to sigma=0.5 and
denoised back in ``steps`` deterministic (DDIM / Euler) steps; the network
re-synthesises the fine detail, which is where its fingerprint is.

Design choices: U-Net skip connections, up-sampling, normalisation, noise-level
(time) embedding, sampler steps and what the network predicts (clean image or
noise; the latter leaves the noisy input on a skip path to the output).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fpattr.synthesis.base import FamilyBase, random_crops
from fpattr.synthesis.layers import Upsample2x, conv3, make_norm
from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES

#: Training noise levels (on the [-1, 1] scale), log-uniform.
SIGMA_MIN, SIGMA_MAX = 0.02, 1.0
#: Where SDEdit-like generation starts.
SIGMA_START = 0.5


def sigma_embedding(sigma: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of log(sigma) (as in EDM's noise conditioning)."""
    half = dim // 2
    freqs = torch.exp(torch.linspace(math.log(0.5), math.log(50.0), half, device=sigma.device))
    arg = torch.log(sigma).view(-1, 1) * freqs.view(1, -1)
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class _ResBlock(nn.Module):
    """x + conv(silu(norm(x))) + per-channel noise-level bias (DDPM-style pre-activation)."""

    def __init__(self, ch: int, norm: str, temb: bool) -> None:
        super().__init__()
        self.norm = make_norm(norm, ch)
        self.conv = conv3(ch, ch)
        self.temb = nn.Linear(ch, ch) if temb else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = self.conv(F.silu(self.norm(x)))
        if self.temb is not None and emb is not None:
            h = h + self.temb(emb).unsqueeze(-1).unsqueeze(-1)
        return x + h


class UNetDenoiser(nn.Module):
    """Two-level U-Net: full -> 1/2 -> 1/4 resolution and back, skips as designed."""

    def __init__(self, arch: Mapping[str, str], width: int) -> None:
        super().__init__()
        norm, temb = arch["norm"], arch["time_embedding"] == "yes"
        self.skip = arch["skip"]
        self.prediction = arch["prediction"]
        self.steps = int(arch["steps"])
        self.emb = (
            nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
            if temb
            else None
        )
        self.width = width
        self.inp = conv3(3, width)
        self.enc1 = _ResBlock(width, norm, temb)
        self.down1 = conv3(width, width, stride=2)
        self.enc2 = _ResBlock(width, norm, temb)
        self.down2 = conv3(width, width, stride=2)
        self.mid = _ResBlock(width, norm, temb)
        self.up2 = Upsample2x(arch["upsampling"], width)
        self.up1 = Upsample2x(arch["upsampling"], width)
        if self.skip == "concat":
            self.merge2: nn.Module = nn.Conv2d(2 * width, width, 1)
            self.merge1: nn.Module = nn.Conv2d(2 * width, width, 1)
        self.dec2 = _ResBlock(width, norm, temb)
        self.dec1 = _ResBlock(width, norm, temb)
        self.out_norm = make_norm(norm, width)
        self.out = conv3(width, 3)

    def _merge(self, x: torch.Tensor, skip: torch.Tensor, level: int) -> torch.Tensor:
        if self.skip == "add":
            return x + skip
        if self.skip == "concat":
            return (self.merge2 if level == 2 else self.merge1)(torch.cat([x, skip], dim=1))
        return x

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Estimate the clean image (on the [-1, 1] scale) from ``x`` = clean + sigma * noise."""
        emb = self.emb(sigma_embedding(sigma, self.width)) if self.emb is not None else None
        h1 = self.enc1(self.inp(x), emb)
        h2 = self.enc2(self.down1(h1), emb)
        h = self.mid(self.down2(h2), emb)
        h = self.dec2(self._merge(self.up2(h), h2, 2), emb)
        h = self.dec1(self._merge(self.up1(h), h1, 1), emb)
        out = self.out(F.silu(self.out_norm(h)))
        if self.prediction == "eps":
            return x - sigma.view(-1, 1, 1, 1) * out
        return out


class DiffusionDenoiserFamily(FamilyBase):
    """Small U-Net denoisers sampled SDEdit-style in 1-4 steps."""

    name = "diffusion_denoiser"
    description = (
        "Diffusion-like U-Net denoisers (noise-level conditioning, x0/eps prediction), "
        "sampled SDEdit-style from noised photos in 1-4 steps"
    )
    needs_photos = True
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["diffusion_denoiser"]  # torch-free: synth --list
    ID_PREFIX = "dn"
    ID_CODES = {
        "skip": "K",
        "upsampling": "U",
        "norm": "N",
        "time_embedding": "T",
        "steps": "S",
        "prediction": "P",
    }
    ID_GROUPS = [["K", "U"], ["N"], ["T", "S", "P"]]

    def build(self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 64) -> nn.Module:
        self.check_buildable(arch, image_size)
        return UNetDenoiser(arch, width)

    def size_problem(self, arch: Mapping[str, str], image_size: int) -> str | None:
        """Why ``arch`` cannot be built at ``image_size`` (None: it can); builds nothing."""
        if image_size % 4:
            return f"image size {image_size} is not divisible by 4"
        return None

    def training_loss(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        crop -= crop % 4
        x, _, _ = random_crops(photos, idx, crop, gen)
        x0 = x * 2 - 1
        u = torch.rand(len(x0), generator=gen)
        sigma = SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** u
        noisy = x0 + sigma.view(-1, 1, 1, 1) * torch.randn(x0.shape, generator=gen)
        pred = model(noisy.to(device), sigma.to(device))
        # MSE on the [0, 1] scale so the loss floor means the same as for the autoencoders.
        return F.mse_loss(pred, x0.to(device)) / 4

    def sample(
        self,
        model: nn.Module,
        photos: torch.Tensor | None,
        n: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor:
        assert photos is not None
        x0 = photos[:n] * 2 - 1
        k = model.steps
        sigmas = [SIGMA_START * (0.1 ** (i / k)) if i < k else 0.0 for i in range(k + 1)]
        x = x0 + sigmas[0] * torch.randn(x0.shape, generator=gen)
        x = x.to(device)
        est = x
        for i in range(k):
            s = torch.full((len(x),), sigmas[i], device=device)
            est = model(x, s)
            if sigmas[i + 1] > 0:  # deterministic DDIM / Euler step towards the estimate
                x = est + (sigmas[i + 1] / sigmas[i]) * (x - est)
        return est * 0.5 + 0.5
