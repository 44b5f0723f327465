"""Super-resolution stages of diffusion cascades (GLIDE, Imagen, unCLIP/Karlo, DeepFloyd IF).

In a cascade the last pixels come from a super-resolution model (64 -> 256 px)
conditioned on the base image up-sampled by a fixed kernel; its up-sampling
kernel and U-Net leave the trace, the base model's is mostly washed out. Here
a photo is down-sampled by the factor (area / box), up-sampled back with the
kernel (bilinear, bicubic or nearest) and a small U-Net (GroupNorm + SiLU, one
down/up level with a skip) predicts the high-resolution image as the
up-sampled image plus a residual. Its input is the current estimate and the
up-sampled image (6 channels), as SR diffusion U-Nets take the noisy image and
the low-resolution condition.

Generation runs held-out photos through it. ``steps`` = 2 adds one SDEdit-like
refinement: the first estimate is re-noised at :data:`SIGMA_REFINE` and denoised
again; such models are also trained on noised photos (half of each batch).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fpattr.errors import UsageError
from fpattr.synthesis.base import FamilyBase, random_crops
from fpattr.synthesis.layers import conv3, make_norm
from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES

#: noise level (std on the [0, 1] scale) of the refinement steps at generation.
SIGMA_REFINE = 0.05
#: training noise levels of refinement inputs: U(SIGMA_TRAIN_MIN, SIGMA_TRAIN_MAX).
SIGMA_TRAIN_MIN, SIGMA_TRAIN_MAX = 0.02, 0.1


def degrade(x: torch.Tensor, factor: int, kernel: str) -> torch.Tensor:
    """Area down-sampling by ``factor`` then fixed-kernel up-sampling back to the size."""
    low = F.avg_pool2d(x, factor)
    if kernel == "nearest":
        return F.interpolate(low, scale_factor=float(factor), mode="nearest")
    return F.interpolate(low, scale_factor=float(factor), mode=kernel, align_corners=False)


class _ResBlock(nn.Module):
    """DDPM residual block: x + conv(silu(norm(conv(silu(norm(x))))))."""

    def __init__(self, ch: int, norm: str) -> None:
        super().__init__()
        self.n1, self.c1 = make_norm(norm, ch), conv3(ch, ch)
        self.n2, self.c2 = make_norm(norm, ch), conv3(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        return x + self.c2(F.silu(self.n2(h)))


class SrUNet(nn.Module):
    """(estimate, up-sampled) -> residual; channels c at full resolution, 2c at half
    (DDPM's channel multipliers (1, 2)); nearest x2 + conv up-sampling; concat skip."""

    def __init__(self, arch: Mapping[str, str], width: int) -> None:
        super().__init__()
        self.factor = int(arch["factor"])
        self.kernel = arch["kernel"]
        self.steps = int(arch["steps"])
        norm = arch["norm"]
        c, c2 = max(4, width // 2), width
        self.inp = conv3(6, c)
        self.enc = _ResBlock(c, norm)
        self.down = conv3(c, c2, stride=2)
        self.mid = _ResBlock(c2, norm)
        self.up = conv3(c2, c)
        self.merge = conv3(2 * c, c)
        self.out_norm = make_norm(norm, c)
        self.out = conv3(c, 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """High-resolution estimate (on the [0, 1] scale) = ``up`` + predicted residual."""
        h1 = self.enc(self.inp(torch.cat([x, up], dim=1) * 2 - 1))
        h = self.mid(self.down(h1))
        h = self.up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.merge(torch.cat([h, h1], dim=1))
        return up + self.out(F.silu(self.out_norm(h))) * 0.5


class SrCascadeFamily(FamilyBase):
    """Diffusion-cascade super-resolution stages (fixed-kernel up-sampling + U-Net residual)."""

    name = "sr_cascade"
    description = (
        "Diffusion-cascade super-resolution stages (GLIDE/Imagen/Karlo): area down x2/x4, "
        "bilinear/bicubic/nearest up, GroupNorm-SiLU U-Net residual, 1-2 SDEdit steps"
    )
    needs_photos = True
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["sr_cascade"]  # torch-free: synth --list
    ID_PREFIX = "sr"
    ID_CODES = {"factor": "F", "kernel": "K", "norm": "N", "steps": "S", "loss": "L"}
    ID_GROUPS = [["F", "K"], ["N", "S"], ["L"]]
    VALUE_CODES = {
        **FamilyBase.VALUE_CODES,
        "bilinear": "bil",
        "bicubic": "bic",
        "nearest": "nn",
        "l1_perceptual": "l1p",
        "l1_perceptual_adv": "l1pa",
    }

    def size_problem(self, arch: Mapping[str, str], image_size: int) -> str | None:
        """Why ``arch`` cannot be built at ``image_size`` (None: it can); builds nothing."""
        factor = int(arch["factor"])
        if image_size % (2 * factor) or image_size // factor < 4:
            return (
                f"{self.name}: image size {image_size} does not suit factor {factor} "
                f"(needs a multiple of {2 * factor}, at least {4 * factor})"
            )
        return None

    def build(
        self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 128
    ) -> nn.Module:
        self.check_buildable(arch, image_size)
        model = SrUNet(arch, width)
        model.loss_kind = arch["loss"]
        return model

    def forward_pair(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        unit = 2 * model.factor
        crop = max(2 * unit, crop - crop % unit)
        x, _, _ = random_crops(photos, idx, crop, gen, align=model.factor)
        up = degrade(x, model.factor, model.kernel)
        inp = up
        if model.steps > 1:  # half the batch: refinement inputs (photo + noise)
            refine = (torch.rand(len(x), generator=gen) < 0.5).view(-1, 1, 1, 1)
            sigma = SIGMA_TRAIN_MIN + (SIGMA_TRAIN_MAX - SIGMA_TRAIN_MIN) * torch.rand(
                len(x), 1, 1, 1, generator=gen
            )
            noisy = x + sigma * torch.randn(x.shape, generator=gen)
            inp = torch.where(refine, noisy, up)
        x, up, inp = x.to(device), up.to(device), inp.to(device)
        return model(inp, up), x

    def sample(
        self,
        model: nn.Module,
        photos: torch.Tensor | None,
        n: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor:
        assert photos is not None
        x = photos[:n]
        size = x.shape[-1]
        if size % (2 * model.factor):
            raise UsageError(f"{self.name}: {size} px photos do not suit factor {model.factor}")
        up = degrade(x, model.factor, model.kernel).to(device)
        est = model(up, up)
        for _ in range(model.steps - 1):
            noise = torch.randn(est.shape, generator=gen).to(device)
            est = model(est + SIGMA_REFINE * noise, up)
        return est
