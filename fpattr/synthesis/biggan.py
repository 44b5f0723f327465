"""BigGAN-like generators: residual up blocks with conditional batch norm, trained GLO-style.

Imitates the generator of BigGAN (Brock et al. 2019): residual up blocks
(conditional BN + ReLU + nearest x2 + 3x3 conv, conditional BN + ReLU + 3x3
conv; skip = nearest x2 + 1x1 conv), an optional SAGAN self-attention block at
one resolution, and a final BN + ReLU + 3x3 conv + tanh. The BN gains and
biases come from a per-sample embedding (BigGAN's shared class embedding plus
hierarchical z); here it is a linear map of the pooled latent. Nearest
up-sampling and conditional BN are what the fingerprint is made of.

Training is GLO-style as in :mod:`fpattr.synthesis.gan_decoder` (per-photo latent
maps, see :class:`fpattr.synthesis.stylegan.GloLatentMixin`); the ``loss`` design
choice comes from :mod:`fpattr.synthesis.losses`. ``truncation`` scales the latent
noise at sampling (BigGAN's truncation trick: truncated normal, times 0.5 or 1.0);
it changes generation only, not training.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fpattr.synthesis.gan_decoder import LATENT_CHANNELS
from fpattr.synthesis.layers import conv3
from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES
from fpattr.synthesis.stylegan import (
    GloGanFamily,
    check_latent_size,
    stage_channels,
    standardize,
)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine parameters, then per-sample gain (1 + g(e)) and bias b(e)."""

    def __init__(self, ch: int, emb_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(ch, affine=False)
        self.gain = nn.Linear(emb_dim, ch)
        self.bias = nn.Linear(emb_dim, ch)
        for lin in (self.gain, self.bias):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        g = 1 + self.gain(emb)[:, :, None, None]
        return self.bn(x) * g + self.bias(emb)[:, :, None, None]


class UpBlock(nn.Module):
    """BigGAN generator residual block: x2 nearest up-sampling on both paths."""

    def __init__(self, cin: int, cout: int, emb_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm(cin, emb_dim)
        self.conv1 = conv3(cin, cout)
        self.bn2 = ConditionalBatchNorm(cout, emb_dim)
        self.conv2 = conv3(cout, cout)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x, emb))
        h = self.conv1(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.conv2(F.relu(self.bn2(h, emb)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SelfAttention(nn.Module):
    """SAGAN / BigGAN self-attention: theta, phi (C/8), g (C/2), 2x2 max-pooled keys and
    values, output 1x1 conv scaled by a learnt gamma that starts at 0."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.ck, self.cv = max(1, ch // 8), max(1, ch // 2)
        self.theta = nn.Conv2d(ch, self.ck, 1, bias=False)
        self.phi = nn.Conv2d(ch, self.ck, 1, bias=False)
        self.g = nn.Conv2d(ch, self.cv, 1, bias=False)
        self.o = nn.Conv2d(self.cv, ch, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).flatten(2)  # (B, ck, HW)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # (B, ck, HW/4)
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # (B, cv, HW/4)
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (B, HW, HW/4)
        o = (g @ attn.transpose(1, 2)).view(b, self.cv, h, w)
        return x + self.gamma * self.o(o)


class BigGanGenerator(nn.Module):
    """latent map -> 3x3 conv -> n x UpBlock (attention after the first) -> BN-ReLU-conv-tanh."""

    def __init__(self, arch: Mapping[str, str], width: int, image_size: int) -> None:
        super().__init__()
        self.n_stages = int(arch["stages"])
        self.latent_size = check_latent_size("biggan", image_size, self.n_stages)
        self.truncation = float(arch["truncation"])
        ch = stage_channels(width, self.n_stages)
        self.embed = nn.Sequential(nn.Linear(LATENT_CHANNELS, width), nn.ReLU())
        self.inp = conv3(LATENT_CHANNELS, ch[0])
        self.blocks = nn.ModuleList(
            [UpBlock(ch[i], ch[i + 1], width) for i in range(self.n_stages)]
        )
        self.attention = SelfAttention(ch[1]) if arch["attention"] == "yes" else None
        self.out_bn = nn.BatchNorm2d(ch[-1])
        self.out = conv3(ch[-1], 3)
        self.register_parameter("latents", None)

    def forward(
        self,
        z: torch.Tensor,
        origin: torch.Tensor | None = None,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        z = standardize(z)
        emb = self.embed(z.mean(dim=(2, 3)))
        x = self.inp(z)
        for i, block in enumerate(self.blocks):
            x = block(x, emb)
            if i == 0 and self.attention is not None:
                x = self.attention(x)
        return torch.tanh(self.out(F.relu(self.out_bn(x)))) * 0.5 + 0.5


class BigGanFamily(GloGanFamily):
    """BigGAN-like generators (conditional BN residual up blocks), trained GLO-style."""

    name = "biggan"
    description = (
        "BigGAN-like generators (conditional-BN residual up blocks with nearest x2, "
        "optional self-attention, truncation at sampling), trained GLO-style"
    )
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["biggan"]  # torch-free: synth --list
    ID_PREFIX = "bg"
    ID_CODES = {"stages": "G", "attention": "A", "truncation": "T", "loss": "L"}
    ID_GROUPS = [["G", "A"], ["T"], ["L"]]

    def build(
        self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 128
    ) -> nn.Module:
        self.check_arch(arch)
        model = BigGanGenerator(arch, width, image_size)
        model.loss_kind = arch["loss"]
        return model

    def sample_noise_scale(self, model: nn.Module) -> float:
        return float(model.truncation)

    def sample_latents(
        self, model: nn.Module, n: int, gen: torch.Generator, noise_scale: float = 1.0
    ) -> torch.Tensor:
        """As the GLO sampler, but the noise is a truncated normal (|z| < 2, BigGAN's
        truncation trick) scaled by the architecture's truncation."""
        bank, s = model.latents, model.latent_size
        if bank is None:
            return (
                torch.fmod(torch.randn(n, LATENT_CHANNELS, s, s, generator=gen), 2.0) * noise_scale
            )
        bank = bank.detach().cpu()
        a = torch.randint(len(bank), (n,), generator=gen)
        b = torch.randint(len(bank), (n,), generator=gen)
        t = torch.rand(n, 1, 1, 1, generator=gen) * self.sample_mix
        noise = torch.fmod(torch.randn((n, *bank.shape[1:]), generator=gen), 2.0)
        return (
            (1 - t) * standardize(bank[a])
            + t * standardize(bank[b])
            + self.sample_noise * noise_scale * noise
        )
