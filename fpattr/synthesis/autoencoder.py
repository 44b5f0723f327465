"""The paper's family: shallow convolutional autoencoders that reconstruct photos.

Design space (Yang et al., TMM 2025, Sec. III): K down/up blocks, L convolutions
per up-block, up-sampling U, activation A, normalisation N, order S; width 32,
3x3 kernels. We add sub-pixel convolution (``pixelshuffle``) to U because many
recent decoders use it: 384 architectures, and the paper's 288 are
``architectures(where={"upsampling": ["nearest", "bilinear", "transposed"]})``.

The generated image is the reconstruction of a held-out photo: its content is
the photo's, its fingerprint is the decoder's.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fpattr.synthesis.base import FamilyBase, random_crops
from fpattr.synthesis.layers import ConvUnit, Upsample2x, conv3
from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES

#: The paper's up-sampling choices (without our pixel-shuffle addition).
PAPER_UPSAMPLING = ("nearest", "bilinear", "transposed")


class AutoencoderNet(nn.Module):
    """stem conv -> K stride-2 down units -> K x (up-sample + L conv units) -> head conv."""

    def __init__(self, arch: Mapping[str, str], width: int) -> None:
        super().__init__()
        k, n_conv = int(arch["down_blocks"]), int(arch["convs_per_up"])
        unit = {"norm": arch["norm"], "act": arch["activation"], "order": arch["order"]}
        self.stem = conv3(3, width)
        self.down = nn.Sequential(*[ConvUnit(width, width, stride=2, **unit) for _ in range(k)])
        ups: list[nn.Module] = []
        for _ in range(k):
            ups.append(Upsample2x(arch["upsampling"], width))
            ups.extend(ConvUnit(width, width, **unit) for _ in range(n_conv))
        self.up = nn.Sequential(*ups)
        self.head = conv3(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.up(self.down(self.stem(x * 2 - 1))))
        return y * 0.5 + 0.5


class AutoencoderFamily(FamilyBase):
    """Shallow conv autoencoders (the paper's model synthesis)."""

    name = "autoencoder"
    description = (
        "Shallow conv autoencoders reconstructing photos (Yang et al. 2025); "
        "fingerprint from the decoder's up-sampling path"
    )
    needs_photos = True
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["autoencoder"]  # torch-free: synth --list
    ID_PREFIX = "ae"
    ID_CODES = {
        "down_blocks": "K",
        "convs_per_up": "L",
        "upsampling": "U",
        "activation": "A",
        "norm": "N",
        "order": "S",
    }
    ID_GROUPS = [["K", "L", "U"], ["A"], ["N"], ["S"]]

    def size_problem(self, arch: Mapping[str, str], image_size: int) -> str | None:
        """Why ``arch`` cannot be built at ``image_size`` (None: it can); builds nothing."""
        factor = 2 ** int(arch["down_blocks"])
        if image_size % factor:
            return f"image size {image_size} is not divisible by {factor}"
        return None

    def build(self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 64) -> nn.Module:
        self.check_buildable(arch, image_size)
        return AutoencoderNet(arch, width)

    def training_loss(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        factor = 2 ** len(model.down)
        crop -= crop % factor
        x, _, _ = random_crops(photos, idx, crop, gen)
        x = x.to(device)
        return F.mse_loss(model(x), x)

    def sample(
        self,
        model: nn.Module,
        photos: torch.Tensor | None,
        n: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor:
        assert photos is not None
        return model(photos[:n].to(device))
