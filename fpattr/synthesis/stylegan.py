"""StyleGAN2- and StyleGAN3-like synthesis networks, trained GLO-style.

Imitates the last pixels of StyleGAN2 (Karras et al. 2020) and StyleGAN3
(Karras et al. 2021), whose traces come from the synthesis network alone:

* StyleGAN2: per resolution two modulated 3x3 convolutions with weight
  demodulation, per-channel noise injection, leaky ReLU 0.2 with a sqrt(2) gain;
  up-sampling by a (modulated) stride-2 transposed convolution followed by the
  [1, 3, 3, 1] FIR low-pass (upfirdn2d), or bilinear; ToRGB outputs of every
  resolution summed through FIR up-sampling ("skip" generator) or one ToRGB
  at the end.
* StyleGAN3 (alias-free): Fourier-feature input with learnt frequencies,
  modulated by the latent; every nonlinearity wrapped as up x2 -> leaky ReLU ->
  low-pass -> down x2 (Kaiser-windowed sinc, or a box filter that lets aliasing
  through), no noise; resolution doubled by filtered x2 up-sampling.

Adversarial training is too slow for thousands of CPU models, so as in
:mod:`fpattr.synthesis.gan_decoder` the networks are trained GLO-style
(Bojanowski et al. 2018): every training photo owns a learnable latent map
(started from its low-resolution colours plus noise); the style vector is the
mapping MLP of the pooled latent. Generation decodes interpolations of learnt
latents plus noise. The ``loss`` design choice comes from
:mod:`fpattr.synthesis.losses`; a small log-amplitude spectrum term (the one
``gan_decoder`` uses) is added in every case, since GLO decoders are blurry
without it. Channel counts halve at the last resolution, as StyleGAN's do.

The GLO helpers here (:class:`GloLatentMixin`) are shared by :mod:`fpattr.synthesis.biggan`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fpattr.errors import UsageError
from fpattr.synthesis.base import FamilyBase, random_crops
from fpattr.synthesis.gan_decoder import LATENT_CHANNELS, log_amplitude_loss
from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES

SQRT2 = math.sqrt(2.0)
#: value abbreviations in arch ids shared by the GAN-like families.
GAN_VALUE_CODES = {
    **FamilyBase.VALUE_CODES,
    "transposed_fir": "tf",
    "bilinear": "bil",
    "yes": "1",
    "no": "0",
    "l1_perceptual": "l1p",
    "l1_perceptual_adv": "l1pa",
}


# -- GLO latent bank (same approach as gan_decoder, shared with biggan) ------------------------


def standardize(z: torch.Tensor) -> torch.Tensor:
    """Per-sample zero mean, unit std over (C, H, W) (GLO keeps latents on a sphere)."""
    return (z - z.mean(dim=(1, 2, 3), keepdim=True)) / (z.std(dim=(1, 2, 3), keepdim=True) + 1e-5)


class GloLatentMixin:
    """Per-photo learnable latent maps for decoders that up-sample ``2**n_stages`` times.

    The model must have ``n_stages`` and ``latent_size`` attributes and a ``latents``
    parameter slot (``register_parameter("latents", None)``).
    """

    name: str
    #: Adam learning rate of the per-photo latents.
    latent_lr = 2e-2
    #: latents are mixed as (1 - t) z_a + t z_b with t ~ U(0, sample_mix).
    sample_mix = 0.5
    #: noise added to interpolated latents at generation (relative to their unit scale).
    sample_noise = 0.3
    #: scale of the low-resolution photo in the initial latents.
    photo_init = 2.0
    #: weight of the log-amplitude spectrum term added to every loss (0 = none).
    spectral_weight = 0.05

    def setup_training(
        self, model: nn.Module, photos: torch.Tensor, gen: torch.Generator
    ) -> list[dict[str, Any]]:
        size = photos.shape[-1]
        full = model.latent_size * 2**model.n_stages
        if size != full:
            raise UsageError(
                f"{self.name}: photos are {size} px but the model was built for {full}"
            )
        s = model.latent_size
        z = torch.randn(len(photos), LATENT_CHANNELS, s, s, generator=gen)
        z[:, :3] = (F.adaptive_avg_pool2d(photos, s) * 2 - 1) * self.photo_init
        model.latents = nn.Parameter(z.to(next(model.parameters()).device))
        return [{"params": [model.latents], "lr": self.latent_lr}]

    def latent_crops(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(photo crops, their latent crops, latent-grid origins (B, 2)) aligned to the factor."""
        factor = 2**model.n_stages
        crop = max(factor * 2, crop - crop % factor)
        x, y0, x0 = random_crops(photos, idx, crop, gen, align=factor)
        s = crop // factor
        # one advanced-indexing gather: its backward is a single scatter into the bank
        # (per-sample slices would each materialise a bank-sized zero gradient)
        ys, xs = y0 // factor, x0 // factor
        rows = (ys.view(-1, 1) + torch.arange(s)).to(model.latents.device)
        cols = (xs.view(-1, 1) + torch.arange(s)).to(model.latents.device)
        sel = idx.to(model.latents.device).view(-1, 1, 1)
        z = model.latents[sel, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        return x, z, torch.stack([y0 // factor, x0 // factor], dim=1).float()

    def spectral_aux(self, model: nn.Module, out: torch.Tensor, target: torch.Tensor) -> None:
        model.aux_loss = (
            self.spectral_weight * log_amplitude_loss(out, target)
            if self.spectral_weight > 0
            else None
        )

    def sample_latents(
        self, model: nn.Module, n: int, gen: torch.Generator, noise_scale: float = 1.0
    ) -> torch.Tensor:
        """Interpolations of two learnt latents plus noise; Gaussian latents when untrained.

        ``noise_scale`` multiplies :attr:`sample_noise` (BigGAN's truncation)."""
        bank, s = model.latents, model.latent_size
        if bank is None:
            return torch.randn(n, LATENT_CHANNELS, s, s, generator=gen)
        bank = bank.detach().cpu()
        a = torch.randint(len(bank), (n,), generator=gen)
        b = torch.randint(len(bank), (n,), generator=gen)
        t = torch.rand(n, 1, 1, 1, generator=gen) * self.sample_mix
        noise = torch.randn((n, *bank.shape[1:]), generator=gen)
        return (
            (1 - t) * standardize(bank[a])
            + t * standardize(bank[b])
            + self.sample_noise * noise_scale * noise
        )


def check_latent_size(name: str, image_size: int, n_stages: int) -> int:
    factor = 2**n_stages
    if image_size % factor or image_size // factor < 2:
        raise UsageError(f"{name}: image size {image_size} does not suit {n_stages} up-stages")
    return image_size // factor


def stage_channels(width: int, n_stages: int) -> list[int]:
    """Input channels of every stage plus the output channels of the last one: ``width``
    throughout, halved at the last resolution (StyleGAN halves channels as they grow)."""
    return [width] * n_stages + [max(4, width // 2)]


# -- filters (upfirdn2d-like, separable, depthwise) --------------------------------------------


def fir_taps(
    taps: tuple[float, ...] | list[float] | torch.Tensor, gain: float = 1.0
) -> torch.Tensor:
    """1-D filter normalised to sum to ``gain``."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    return f / f.sum() * gain


def fir_kernel(taps: tuple[float, ...] = (1, 3, 3, 1), gain: float = 4.0) -> torch.Tensor:
    """The separable 2-D FIR kernel (outer product) summing to ``gain``; StyleGAN2 uses
    [1, 3, 3, 1] with gain = up**2 = 4 after up-sampling."""
    f = fir_taps(taps)
    return torch.outer(f, f) * gain


def kaiser_sinc(numtaps: int = 10, cutoff: float = 0.25, width: float = 0.3) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass (as StyleGAN3's ``design_lowpass_filter``): ``cutoff``
    and transition ``width`` in cycles per sample; sums to 1."""
    atten = 2.285 * (numtaps - 1) * math.pi * width + 7.95
    if atten > 50:
        beta = 0.1102 * (atten - 8.7)
    elif atten > 21:
        beta = 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    else:
        beta = 0.0
    n = torch.arange(numtaps, dtype=torch.float64) - (numtaps - 1) / 2
    h = 2 * cutoff * torch.special.sinc(2 * cutoff * n)
    h = h * torch.kaiser_window(numtaps, periodic=False, beta=beta, dtype=torch.float64)
    return (h / h.sum()).float()


def _sep(f: torch.Tensor, ch: int) -> tuple[torch.Tensor, torch.Tensor]:
    f = f.to(torch.float32)
    return f.view(1, 1, 1, -1).expand(ch, 1, 1, -1), f.view(1, 1, -1, 1).expand(ch, 1, -1, 1)


def filter_up2(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 up-sampling: zero insertion then the even-length filter ``f`` (gain 2 per axis
    expected), as a depthwise transposed convolution; keeps the pixel grid centred."""
    ch, taps = x.shape[1], f.numel()
    fw, fh = _sep(f.to(x.device), ch)
    pad = taps // 2 - 1
    x = F.conv_transpose2d(x, fw, stride=(1, 2), padding=(0, pad), groups=ch)
    return F.conv_transpose2d(x, fh, stride=(2, 1), padding=(pad, 0), groups=ch)


def filter_down2(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Low-pass with the even-length filter ``f`` (gain 1) then keep every second sample."""
    ch, taps = x.shape[1], f.numel()
    fw, fh = _sep(f.to(x.device), ch)
    pad = taps // 2 - 1
    x = F.conv2d(x, fw, stride=(1, 2), padding=(0, pad), groups=ch)
    return F.conv2d(x, fh, stride=(2, 1), padding=(pad, 0), groups=ch)


def fir_blur(x: torch.Tensor, f: torch.Tensor, pad: int) -> torch.Tensor:
    """Separable FIR filtering with ``pad`` zeros on every side (no rate change)."""
    fw, fh = _sep(f.to(x.device), x.shape[1])
    x = F.conv2d(F.pad(x, (pad, pad, pad, pad)), fw, groups=x.shape[1])
    return F.conv2d(x, fh, groups=x.shape[1])


def lrelu_gain(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU 0.2 with StyleGAN's sqrt(2) gain (keeps the signal's magnitude)."""
    return F.leaky_relu(x, 0.2) * SQRT2


# -- modulated convolution -----------------------------------------------------------------


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution: per-sample input-channel scales from the style,
    then (optionally) weight demodulation so every output channel has unit expected
    variance for unit-variance input. Implemented un-fused (scale input, shared conv,
    scale output), which is mathematically the same and fast on a CPU.

    ``transposed=True`` makes it the stride-2 transposed up-sampling conv (output 2H+1).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        style_dim: int,
        *,
        demodulate: bool = True,
        transposed: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.affine = nn.Linear(style_dim, cin)
        nn.init.zeros_(self.affine.bias)
        with torch.no_grad():
            self.affine.bias.fill_(1.0)  # styles start at 1 (StyleGAN's bias_init=1)
            self.affine.weight.mul_(0.5)
        self.demodulate, self.transposed = demodulate, transposed
        self.gain = 1.0 / math.sqrt(cin * kernel * kernel)  # equalised learning rate
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.affine(style)  # (B, cin)
        w = self.weight * self.gain
        x = x * s[:, :, None, None]
        if self.transposed:
            y = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        else:
            y = F.conv2d(x, w, padding=self.padding)
        if self.demodulate:
            # sum over (cin, k, k) of (w_oik s_i)^2 = s^2 @ sum_k w_oik^2
            d = torch.rsqrt(s.pow(2) @ w.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # (B, cout)
            y = y * d[:, :, None, None]
        return y


class NoiseInjection(nn.Module):
    """x + strength[c] * per-pixel Gaussian noise; strength learnt per channel, starts at 0."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, ch, 1, 1))

    def forward(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        b, _, h, w = x.shape
        noise = torch.randn((b, 1, h, w), generator=gen).to(x.device)
        return x + self.strength * noise


def mapping_mlp(width: int) -> nn.Sequential:
    """latent (8) -> style (width): StyleGAN's mapping network, two layers instead of eight."""
    return nn.Sequential(
        nn.Linear(LATENT_CHANNELS, width), nn.LeakyReLU(0.2), nn.Linear(width, width)
    )


# -- StyleGAN2 -------------------------------------------------------------------------------


class _Sg2Layer(nn.Module):
    """modulated conv (optionally the transposed up-conv + FIR) -> noise -> bias -> lrelu*sqrt2."""

    def __init__(self, cin: int, cout: int, style_dim: int, *, up: str | None, noise: bool):
        super().__init__()
        self.up = up
        self.conv = ModulatedConv(cin, cout, 3, style_dim, transposed=up == "transposed_fir")
        self.noise = NoiseInjection(cout) if noise else None
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))
        self.register_buffer("fir", fir_taps((1, 3, 3, 1), gain=2.0), persistent=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor, gen: torch.Generator | None):
        if self.up == "bilinear":
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.conv(x, style)
        if self.up == "transposed_fir":
            x = fir_blur(x, self.fir, 1)  # (2H+1) -> 2H, gain 4 as upfirdn2d after up=2
        if self.noise is not None:
            x = self.noise(x, gen)
        return lrelu_gain(x + self.bias)


class StyleGan2Synthesis(nn.Module):
    """latent map (B, 8, s, s) -> modulated conv -> n x [up-layer, layer] -> ToRGB(s)."""

    def __init__(self, arch: Mapping[str, str], width: int, image_size: int) -> None:
        super().__init__()
        self.n_stages = int(arch["stages"])
        self.latent_size = check_latent_size("stylegan2", image_size, self.n_stages)
        self.skips = arch["output_skips"] == "yes"
        self.upsampling = arch["upsampling"]
        noise = arch["noise"] == "yes"
        ch = stage_channels(width, self.n_stages)
        self.mapping = mapping_mlp(width)
        self.inp = ModulatedConv(LATENT_CHANNELS, ch[0], 3, width)
        self.inp_bias = nn.Parameter(torch.zeros(1, ch[0], 1, 1))
        self.layers = nn.ModuleList()
        self.to_rgb = nn.ModuleList()
        for i in range(self.n_stages):
            self.layers.append(
                nn.ModuleList(
                    [
                        _Sg2Layer(ch[i], ch[i + 1], width, up=self.upsampling, noise=noise),
                        _Sg2Layer(ch[i + 1], ch[i + 1], width, up=None, noise=noise),
                    ]
                )
            )
            if self.skips or i == self.n_stages - 1:
                self.to_rgb.append(ModulatedConv(ch[i + 1], 3, 1, width, demodulate=False))
        self.rgb_bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.register_buffer("fir_up", fir_taps((1, 3, 3, 1), gain=2.0), persistent=False)
        self.register_parameter("latents", None)

    def forward(
        self,
        z: torch.Tensor,
        origin: torch.Tensor | None = None,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        z = standardize(z)
        style = self.mapping(z.mean(dim=(2, 3)))
        x = lrelu_gain(self.inp(z, style) + self.inp_bias)
        rgb = None
        for i, (up_layer, layer) in enumerate(self.layers):
            x = layer(up_layer(x, style, gen), style, gen)
            if self.skips:
                y = self.to_rgb[i](x, style)
                if rgb is not None:
                    if self.upsampling == "bilinear":
                        rgb = F.interpolate(rgb, scale_factor=2.0, mode="bilinear")
                    else:
                        rgb = filter_up2(rgb, self.fir_up)
                    y = y + rgb
                rgb = y
        if not self.skips:
            rgb = self.to_rgb[0](x, style)
        return (rgb + self.rgb_bias) * 0.5 + 0.5


class GloGanFamily(GloLatentMixin, FamilyBase):
    """forward_pair / sample for latent-map decoders with ``model(z, origin, gen)``."""

    needs_photos = False
    VALUE_CODES = GAN_VALUE_CODES

    def size_problem(self, arch: Mapping[str, str], image_size: int) -> str | None:
        """Why ``arch`` cannot be built at ``image_size`` (None: it can); builds nothing
        (the same rule as :func:`check_latent_size`, which the models apply)."""
        try:
            check_latent_size(self.name, image_size, int(arch["stages"]))
        except UsageError as exc:
            return str(exc)
        return None

    def forward_pair(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, z, origin = self.latent_crops(model, photos, idx, crop, gen)
        out, x = model(z, origin.to(device), gen), x.to(device)
        self.spectral_aux(model, out, x)
        return out, x

    def sample_noise_scale(self, model: nn.Module) -> float:
        return 1.0

    def sample(
        self,
        model: nn.Module,
        photos: torch.Tensor | None,
        n: int,
        gen: torch.Generator,
        device: str,
    ) -> torch.Tensor:
        z = self.sample_latents(model, n, gen, self.sample_noise_scale(model))
        return model(z.to(device), None, gen)


class StyleGan2Family(GloGanFamily):
    """StyleGAN2-like synthesis networks (modulated/demodulated convs), trained GLO-style."""

    name = "stylegan2"
    description = (
        "StyleGAN2-like synthesis nets (demodulated convs, noise, transposed conv + "
        "[1,3,3,1] FIR or bilinear, skip ToRGB), trained GLO-style"
    )
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["stylegan2"]  # torch-free: synth --list
    ID_PREFIX = "sg2"
    ID_CODES = {"stages": "G", "upsampling": "U", "output_skips": "K", "noise": "N", "loss": "L"}
    ID_GROUPS = [["G", "U"], ["K", "N"], ["L"]]

    def build(
        self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 128
    ) -> nn.Module:
        self.check_arch(arch)
        model = StyleGan2Synthesis(arch, width, image_size)
        model.loss_kind = arch["loss"]
        return model


# -- StyleGAN3 -------------------------------------------------------------------------------


class FourierFeatures(nn.Module):
    """sin/cos of learnt frequencies at absolute latent-grid positions, modulated per pixel
    by the latent map (a 1x1 conv gives gains and offsets)."""

    def __init__(self, n_freq: int, bandlimit: float = 0.5) -> None:
        super().__init__()
        radius = torch.rand(n_freq) * bandlimit
        angle = torch.rand(n_freq) * 2 * math.pi
        self.freqs = nn.Parameter(torch.stack([radius * angle.cos(), radius * angle.sin()], 1))
        self.phases = nn.Parameter(torch.rand(n_freq) * 2 * math.pi)
        self.modulate = nn.Conv2d(LATENT_CHANNELS, 4 * n_freq, 1)
        nn.init.zeros_(self.modulate.weight)
        nn.init.zeros_(self.modulate.bias)

    def forward(self, z: torch.Tensor, origin: torch.Tensor | None) -> torch.Tensor:
        b, _, h, w = z.shape
        ys = torch.arange(h, device=z.device, dtype=z.dtype) + 0.5
        xs = torch.arange(w, device=z.device, dtype=z.dtype) + 0.5
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        pos = torch.stack([gy, gx], dim=-1).expand(b, h, w, 2)
        if origin is not None:
            pos = pos + origin.to(z.dtype).view(b, 1, 1, 2)
        arg = 2 * math.pi * (pos @ self.freqs.t()) + self.phases  # (B, H, W, F)
        feats = torch.cat([arg.sin(), arg.cos()], dim=-1).permute(0, 3, 1, 2)
        gain, offset = self.modulate(z).chunk(2, dim=1)
        return feats * (1 + gain) + offset


class _Sg3Layer(nn.Module):
    """modulated 3x3 conv -> filtered leaky ReLU (up x2 -> bias + lrelu -> low-pass -> down x2)."""

    def __init__(self, cin: int, cout: int, style_dim: int, filt: torch.Tensor) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, style_dim)
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))
        self.register_buffer("f_up", filt * 2, persistent=False)
        # the sqrt(2) gain of the leaky ReLU is folded into the (linear) down filter
        self.register_buffer("f_down", filt * SQRT2, persistent=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, style)
        x = filter_up2(x + self.bias, self.f_up)
        return filter_down2(F.leaky_relu(x, 0.2), self.f_down)


class StyleGan3Synthesis(nn.Module):
    """Fourier features -> 1x1 -> n x [filtered x2 up, 2 filtered layers] -> ToRGB (no skips)."""

    def __init__(self, arch: Mapping[str, str], width: int, image_size: int) -> None:
        super().__init__()
        self.n_stages = int(arch["stages"])
        self.latent_size = check_latent_size("stylegan3", image_size, self.n_stages)
        filt = kaiser_sinc() if arch["filter"] == "kaiser" else fir_taps((1, 1))
        # halved at each of the last two resolutions: the filtered nonlinearities run at
        # twice the resolution, and StyleGAN3's channel counts fall as resolution grows
        ch = [width] * (self.n_stages - 1) + [max(4, width // 2), max(4, width // 4)]
        self.mapping = mapping_mlp(width)
        n_freq = max(4, width // 2)
        self.fourier = FourierFeatures(n_freq)
        # SG3's input layer is linear: Fourier features -> learnt 1x1 mixing
        self.inp = nn.Conv2d(2 * n_freq, ch[0], 1)
        self.stages = nn.ModuleList(
            [
                nn.ModuleList(
                    [
                        _Sg3Layer(ch[i], ch[i + 1], width, filt),
                        _Sg3Layer(ch[i + 1], ch[i + 1], width, filt),
                    ]
                )
                for i in range(self.n_stages)
            ]
        )
        self.to_rgb = ModulatedConv(ch[-1], 3, 1, width, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.register_buffer("f_up", filt * 2, persistent=False)
        self.register_parameter("latents", None)

    def forward(
        self,
        z: torch.Tensor,
        origin: torch.Tensor | None = None,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        z = standardize(z)
        style = self.mapping(z.mean(dim=(2, 3)))
        x = self.inp(self.fourier(z, origin))
        for first, second in self.stages:
            x = filter_up2(x, self.f_up)
            x = second(first(x, style), style)
        return (self.to_rgb(x, style) + self.rgb_bias) * 0.5 + 0.5


class StyleGan3Family(GloGanFamily):
    """StyleGAN3-like alias-free synthesis networks, trained GLO-style."""

    name = "stylegan3"
    description = (
        "StyleGAN3-like alias-free synthesis nets (Fourier-feature input, filtered leaky "
        "ReLU with Kaiser-sinc or box filters, filtered x2 up-sampling), trained GLO-style"
    )
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["stylegan3"]  # torch-free: synth --list
    ID_PREFIX = "sg3"
    ID_CODES = {"stages": "G", "filter": "F", "loss": "L"}
    ID_GROUPS = [["G", "F"], ["L"]]

    def build(
        self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 128
    ) -> nn.Module:
        self.check_arch(arch)
        model = StyleGan3Synthesis(arch, width, image_size)
        model.loss_kind = arch["loss"]
        return model
