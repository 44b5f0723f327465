"""Torch building blocks shared by the built-in families.

The design choices that leave fingerprints live here, once: how a decoder
up-samples (interpolation, transposed convolution, sub-pixel convolution), which
normalisation and activation it uses and in which order. Importing this module
imports torch, so only family factories import it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("relu", "lrelu", "silu", "sigmoid", "tanh", "none")
NORMS = ("batch", "instance", "group", "adain", "none")
UPSAMPLINGS = ("nearest", "bilinear", "transposed", "pixelshuffle")


def conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with 'same' zero padding (the paper's kernel size)."""
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def make_act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "lrelu":
        return nn.LeakyReLU(0.2)
    if name == "silu":
        return nn.SiLU()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "tanh":
        return nn.Tanh()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def make_norm(name: str, ch: int) -> nn.Module:
    """Batch / instance / group normalisation (affine). ``adain`` is handled by
    :class:`ModulatedNorm`, which needs a style vector."""
    if name == "batch":
        return nn.BatchNorm2d(ch)
    if name == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if name == "group":
        return nn.GroupNorm(max(1, min(8, ch // 4)), ch)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {name!r}; expected one of {NORMS}")


class ConvUnit(nn.Sequential):
    """One convolution with its normalisation and activation.

    ``order="post"``: conv -> norm -> act (classic); ``"pre"``: norm -> act -> conv
    (pre-activation). The paper's design choice S.
    """

    def __init__(
        self, cin: int, cout: int, *, norm: str, act: str, order: str, stride: int = 1
    ) -> None:
        if order == "post":
            layers = [conv3(cin, cout, stride), make_norm(norm, cout), make_act(act)]
        elif order == "pre":
            layers = [make_norm(norm, cin), make_act(act), conv3(cin, cout, stride)]
        else:
            raise ValueError(f"unknown order {order!r}; expected 'pre' or 'post'")
        super().__init__(*layers)


class Upsample2x(nn.Module):
    """Doubles the spatial size; each mode leaves its own spectral trace.

    nearest/bilinear: fixed interpolation (peaks at the old Nyquist / smooth roll-off);
    transposed: learnt 3x3 stride-2 transposed conv (checkerboard);
    pixelshuffle: 3x3 conv to 4x channels + sub-pixel shuffle (periodic 2x2 pattern).
    """

    def __init__(self, mode: str, ch: int) -> None:
        super().__init__()
        if mode not in UPSAMPLINGS:
            raise ValueError(f"unknown up-sampling {mode!r}; expected one of {UPSAMPLINGS}")
        self.mode = mode
        if mode == "transposed":
            self.op: nn.Module = nn.ConvTranspose2d(
                ch, ch, 3, stride=2, padding=1, output_padding=1
            )
        elif mode == "pixelshuffle":
            self.op = nn.Sequential(conv3(ch, 4 * ch), nn.PixelShuffle(2))
        else:
            self.op = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.mode == "bilinear":
            return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.op(x)


class ModulatedNorm(nn.Module):
    """AdaIN: instance-normalise, then scale and shift per channel from a style vector
    (StyleGAN1-like modulation)."""

    def __init__(self, ch: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(ch, affine=False)
        self.affine = nn.Linear(style_dim, 2 * ch)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(style).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return self.norm(x) * (1 + gamma) + beta
