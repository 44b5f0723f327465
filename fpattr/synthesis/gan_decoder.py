"""GAN-like decoders: a latent noise map is up-sampled into an image.

Imitates the generator half of GANs (DCGAN, PGGAN, StyleGAN): no encoder, the
image is synthesised from a low-resolution latent through a stack of
up-sampling stages. Adversarial training is too slow and too fragile for
thousands of models on a CPU, so the decoder is trained GLO-style
(Bojanowski et al. 2018): every training photo owns a learnable latent map
(started from the photo's low-resolution colours plus noise, so a few hundred
steps suffice) and decoder + latents minimise the reconstruction MSE plus a
small log-amplitude spectrum term that stands in for the adversarial loss
(without it GLO decoders are blurry: about 1.5 decades too little residual
power at high frequencies). New images decode interpolations of learnt
latents plus noise, which keeps them image-like while the fingerprint comes
from the decoder alone.

Design choices: up-sampling (incl. sub-pixel), number of up-stages, activation,
normalisation (incl. StyleGAN-like AdaIN modulation) and output non-linearity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fpattr.errors import UsageError
from fpattr.synthesis.base import FamilyBase, random_crops
from fpattr.synthesis.layers import ModulatedNorm, Upsample2x, conv3, make_act, make_norm
from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES

LATENT_CHANNELS = 8


class _Stage(nn.Module):
    """up-sample -> 2 x (conv -> norm -> act), StyleGAN-like (two convs per resolution)."""

    def __init__(self, arch: Mapping[str, str], width: int, style_dim: int) -> None:
        super().__init__()
        self.up = Upsample2x(arch["upsampling"], width)
        self.convs = nn.ModuleList([conv3(width, width), conv3(width, width)])
        adain = arch["norm"] == "adain"
        self.norms = nn.ModuleList(
            [
                ModulatedNorm(width, style_dim) if adain else make_norm(arch["norm"], width)
                for _ in range(2)
            ]
        )
        self.adain = adain
        self.act = make_act(arch["activation"])

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = conv(x)
            x = norm(x, style) if self.adain else norm(x)
            x = self.act(x)
        return x


class LatentDecoder(nn.Module):
    """latent map (B, 8, s, s) -> conv -> n_stages x _Stage -> to-RGB conv -> output act.

    ``latents`` (one map per training photo) is attached by training; it is what
    :meth:`GanDecoderFamily.sample` interpolates.
    """

    def __init__(self, arch: Mapping[str, str], width: int, image_size: int) -> None:
        super().__init__()
        self.n_stages = int(arch["stages"])
        self.latent_size = image_size // 2**self.n_stages
        self.output = arch["output"]
        self.mapping = nn.Sequential(
            nn.Linear(LATENT_CHANNELS, width), nn.LeakyReLU(0.2), nn.Linear(width, width)
        )
        self.inp = conv3(LATENT_CHANNELS, width)
        self.stages = nn.ModuleList([_Stage(arch, width, width) for _ in range(self.n_stages)])
        self.to_rgb = conv3(width, 3)
        self.register_parameter("latents", None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # Per-sample standardisation (GLO projects latents onto a sphere): keeps the
        # learnt latents and their interpolations on one scale.
        z = (z - z.mean(dim=(1, 2, 3), keepdim=True)) / (z.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        style = self.mapping(z.mean(dim=(2, 3)))
        x = self.inp(z)
        for stage in self.stages:
            x = stage(x, style)
        y = self.to_rgb(x)
        if self.output == "tanh":
            return torch.tanh(y) * 0.5 + 0.5
        if self.output == "sigmoid":
            return torch.sigmoid(2 * y)  # same slope at 0 as the tanh output
        return (y * 0.5 + 0.5).clamp(0, 1)  # "clamp": linear output, hard clipping


def log_amplitude_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 distance of log Fourier amplitudes: a cheap, perceptual-free stand-in for the
    adversarial loss. Pure MSE makes GLO decoders blurry (the mean of the plausible
    images); matching the amplitude spectrum, whatever the phase, makes them produce
    detail at every frequency as a GAN generator does."""
    fo = torch.fft.rfft2(out - out.mean(dim=(-2, -1), keepdim=True), norm="ortho")
    ft = torch.fft.rfft2(target - target.mean(dim=(-2, -1), keepdim=True), norm="ortho")
    return (torch.log(fo.abs() + 1e-3) - torch.log(ft.abs() + 1e-3)).abs().mean()


class GanDecoderFamily(FamilyBase):
    """GAN-generator-like decoders trained GLO-style on photos."""

    name = "gan_decoder"
    description = (
        "GAN-generator-like decoders (latent map -> up-sampling stages -> RGB), "
        "trained GLO-style; StyleGAN-like AdaIN optional"
    )
    needs_photos = False
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["gan_decoder"]  # torch-free: synth --list
    ID_PREFIX = "gan"
    ID_CODES = {"stages": "G", "upsampling": "U", "activation": "A", "norm": "N", "output": "O"}
    ID_GROUPS = [["G", "U"], ["A"], ["N"], ["O"]]
    #: Adam learning rate of the per-photo latents (GLO learns them much faster than weights).
    latent_lr = 2e-2
    #: latents are mixed as (1 - t) z_a + t z_b with t ~ U(0, sample_mix): 0.5 = anywhere
    #: between two photos; smaller keeps closer to one (cross-fades look less natural).
    sample_mix = 0.5
    #: noise added to interpolated latents at generation (relative to their unit scale).
    sample_noise = 0.3
    #: scale of the low-resolution photo in the initial latents (0 = plain random GLO).
    photo_init = 2.0
    #: weight of the spectral term (see :func:`log_amplitude_loss`); 0 = plain GLO.
    spectral_weight = 0.05

    def build(self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 64) -> nn.Module:
        self.check_buildable(arch, image_size)
        return LatentDecoder(arch, width, image_size)

    def size_problem(self, arch: Mapping[str, str], image_size: int) -> str | None:
        """Why ``arch`` cannot be built at ``image_size`` (None: it can); builds nothing."""
        factor = 2 ** int(arch["stages"])
        if image_size % factor or image_size // factor < 2:
            return f"image size {image_size} does not suit {arch['stages']} up-stages"
        return None

    def setup_training(
        self, model: nn.Module, photos: torch.Tensor, gen: torch.Generator
    ) -> list[dict[str, Any]]:
        size = photos.shape[-1]
        if size != model.latent_size * 2**model.n_stages:
            raise UsageError(
                f"{self.name}: photos are {size} px but the model was built for "
                f"{model.latent_size * 2**model.n_stages} px"
            )
        s = model.latent_size
        # GLO start: the photo's low-resolution colours (centred) in 3 channels, noise in the
        # rest. Random starts need thousands of steps to become image-like; this needs hundreds.
        z = torch.randn(len(photos), LATENT_CHANNELS, s, s, generator=gen)
        low = F.adaptive_avg_pool2d(photos, s) * 2 - 1
        z[:, :3] = low * self.photo_init
        model.latents = nn.Parameter(z.to(next(model.parameters()).device))
        return [{"params": [model.latents], "lr": self.latent_lr}]

    def training_loss(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        factor = 2**model.n_stages
        crop = max(factor * 2, crop - crop % factor)
        x, y0, x0 = random_crops(photos, idx, crop, gen, align=factor)
        s = crop // factor
        z = torch.stack(
            [
                model.latents[i, :, y // factor : y // factor + s, xx // factor : xx // factor + s]
                for i, y, xx in zip(idx.tolist(), y0.tolist(), x0.tolist(), strict=True)
            ]
        )
        out, x = model(z), x.to(device)
        mse = F.mse_loss(out, x)
        if self.spectral_weight <= 0:
            return mse
        return mse + self.spectral_weight * log_amplitude_loss(out, x), mse

    def sample(
        self,
        model: nn.Module,
        photos: torch.Tensor | None,
        n: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor:
        bank = model.latents
        s = model.latent_size
        if bank is None:  # untrained: plain Gaussian latents
            z = torch.randn(n, LATENT_CHANNELS, s, s, generator=gen)
        else:
            bank = bank.detach().cpu()
            a = torch.randint(len(bank), (n,), generator=gen)
            b = torch.randint(len(bank), (n,), generator=gen)
            t = torch.rand(n, 1, 1, 1, generator=gen) * self.sample_mix
            za, zb = bank[a], bank[b]
            za = (za - za.mean(dim=(1, 2, 3), keepdim=True)) / za.std(dim=(1, 2, 3), keepdim=True)
            zb = (zb - zb.mean(dim=(1, 2, 3), keepdim=True)) / zb.std(dim=(1, 2, 3), keepdim=True)
            noise = torch.randn(za.shape, generator=gen)
            z = (1 - t) * za + t * zb + self.sample_noise * noise
        return model(z.to(device))
