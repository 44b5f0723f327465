"""The ``taesd`` synthesizer family: TAESD-like tiny autoencoders (imports torch).

TAESD (Ollin Boer Bohan, github.com/madebyollin/taesd; ``AutoencoderTiny`` in diffusers)
is the tiny distilled decoder that real-time and one-step pipelines put in place of the
full VAE decoder: SD-Turbo / SDXL-Turbo demos, LCM and StreamDiffusion use it to turn
latents into pixels fast, and TAESDXL, TAESD3 and TAEF1 do the same for SDXL, SD3 and
FLUX. Its output path differs from the LDM decoder that fpattr's ``ldm_vae`` imitates:

* no normalisation at all, ReLU everywhere;
* a soft clamp of the latent at the decoder's input, ``tanh(z / 3) * 3``;
* per level three residual blocks (3x3 conv, ReLU, 3x3 conv, ReLU, 3x3 conv, plus the
  input, then ReLU), then nearest x2 up-sampling and a bias-free 3x3 conv, three times
  (x8), and one more block and a conv to RGB;
* one width (64 channels) at every resolution, so the full-resolution stage costs as
  much as the others.

The design space keeps those choices labelled: latent channels 4 (TAESD, TAESDXL) or 16
(TAESD3, TAEF1), blocks per level 3 (TAESD) or 1 (lighter), nearest (TAESD) or bilinear
up-sampling, the latent clamp on or off, and the training ``loss``
(:data:`fpattr.synthesis.losses.LOSSES`; TAESD was trained with adversarial losses).
Models transform photos (``needs_photos``): a generated image is the decoded latent of a
held-out photo, so its content is the photo's and its fingerprint the decoder's.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from fpattr.errors import UsageError
from fpattr.synthesis.base import FamilyBase, random_crops
from fpattr_taesd import DESIGN_SPACE as _DESIGN_SPACE

#: up-sampling factor of every TAESD decoder (three x2 levels).
FACTOR = 8
LEVELS = 3


def _conv(cin: int, cout: int, *, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)


class Clamp(nn.Module):
    """TAESD's soft clamp of the latent: ``tanh(z / 3) * 3`` (near identity in [-3, 3])."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z / 3) * 3


class Block(nn.Module):
    """TAESD's residual block: conv-ReLU-conv-ReLU-conv plus the input, then ReLU."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(ch, ch), nn.ReLU(), _conv(ch, ch), nn.ReLU(), _conv(ch, ch))
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + x)


class Upsample(nn.Module):
    """x2 by interpolation (TAESD: nearest), before the level's bias-free conv."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class TinyAutoencoder(nn.Module):
    """Encoder (stride-2 bias-free convs + blocks) -> latent -> TAESD decoder.

    Images on the [0, 1] scale in and out, as TAESD's own (the decoder is unclamped here;
    generation clamps when it quantises).
    """

    def __init__(self, arch: Mapping[str, str], width: int) -> None:
        super().__init__()
        latent = int(arch["latent_channels"])
        blocks = int(arch["blocks"])
        enc: list[nn.Module] = [_conv(3, width), Block(width)]
        for _ in range(LEVELS):
            enc += [_conv(width, width, stride=2, bias=False)]
            enc += [Block(width) for _ in range(blocks)]
        enc.append(_conv(width, latent))
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [Clamp()] if arch["latent_clamp"] == "tanh" else []
        dec += [_conv(latent, width), nn.ReLU()]
        for _ in range(LEVELS):
            dec += [Block(width) for _ in range(blocks)]
            dec += [Upsample(arch["upsampling"]), _conv(width, width, bias=False)]
        dec += [Block(width), _conv(width, 3)]
        self.decoder = nn.Sequential(*dec)
        self.loss_kind = arch["loss"]  # read by FamilyBase.training_loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class TaesdFamily(FamilyBase):
    """TAESD-like tiny autoencoders (x8, no normalisation, latent soft clamp)."""

    name = "taesd"
    description = (
        "TAESD tiny decoders of real-time / one-step pipelines (SD-Turbo, LCM, "
        "StreamDiffusion; TAESDXL/TAESD3/TAEF1): no norm, ReLU, latent tanh clamp, nearest x8"
    )
    needs_photos = True
    DESIGN_SPACE = _DESIGN_SPACE  # torch-free, in the package: synth --list needs no torch
    ID_PREFIX = "tae"
    ID_CODES = {
        "latent_channels": "C",
        "blocks": "B",
        "upsampling": "U",
        "latent_clamp": "K",
        "loss": "L",
    }
    ID_GROUPS = [["C", "B", "U"], ["K"], ["L"]]
    #: Adam's rate: without normalisation 2e-3 sometimes blows up the first steps.
    lr = 1e-3

    def build(
        self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 128
    ) -> nn.Module:
        self.check_arch(arch)
        if image_size % FACTOR or image_size < 2 * FACTOR:
            raise UsageError(
                f"{self.name}: image size {image_size} must be a multiple of {FACTOR}, "
                f"at least {2 * FACTOR}"
            )
        if width < 4:
            raise UsageError(f"{self.name}: width must be at least 4, got {width}")
        return TinyAutoencoder(arch, width)

    def forward_pair(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        size = int(photos.shape[-1])
        crop = max(2 * FACTOR, crop - crop % FACTOR)  # whole latent pixels, at least 2
        if crop > size:
            raise UsageError(f"{self.name}: photos of {size} px are too small ({crop} px)")
        x, _, _ = random_crops(photos, idx, crop, gen, align=FACTOR)
        x = x.to(device)
        return model(x), x

    def sample(
        self,
        model: nn.Module,
        photos: torch.Tensor | None,
        n: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor:
        if photos is None:
            raise UsageError(f"{self.name}: sampling needs photos to transform")
        x = photos[:n]
        if x.shape[-1] % FACTOR or x.shape[-2] % FACTOR:
            raise UsageError(f"{self.name}: photo sides must be multiples of {FACTOR}")
        return model(x.to(device))
