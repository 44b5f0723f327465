"""Latent decoders: the output path of latent diffusion, VQ and patch-token models.

Most images made today leave a latent generator through the same kind of
decoder (see ``shared/real-decoders.md``): Stable Diffusion, SDXL, LDM, DiT,
PixArt and MAR decode a 4-channel latent with a KL-autoencoder's decoder;
VQGAN-based models (taming transformers, DALL-E mini, MaskGIT) decode a
quantised codebook latent with the same design. That decoder is conv-in, a
mid block (ResNet + self-attention), then per level ResNet blocks (GroupNorm +
SiLU + 3x3 conv, residual) and a x2 up-sampling (nearest + 3x3 conv), and
GroupNorm + SiLU + conv-out at full resolution: its x8 / x16 up-sampling
depth, GroupNorm statistics and training loss make the fingerprint.

Three families imitate it at small width (``width`` channels at full
resolution, at most ``2 * width`` below), trained briefly on photo crops:

* :class:`LdmVaeFamily` (``ldm_vae``): KL-autoencoder (mean + log-variance,
  reparameterised sample, KL term with LDM's weight 1e-6);
* :class:`VqganFamily` (``vqgan``): a nearest-codebook-entry latent
  (straight-through estimator, codebook + 0.25 x commitment loss, l2-normalised
  lookup, codebook started from the encoder's outputs on training photos and dead
  codes restarted);
* :class:`PatchTokenFamily` (``dit_patch``): the latent is patchified into
  tokens, mixed (per-token MLP or a transformer block), projected back with a
  final linear layer and unpatchified before the x8 decoder, as DiT / PixArt /
  MAR output their latents.

All three transform photos (``needs_photos``): a generated image is the decoded
(sampled, quantised or token-mixed) latent of a held-out photo, so its content
is the photo's and its fingerprint is the decoder's. Every family lists the
training ``loss`` (:data:`fpattr.synthesis.losses.LOSSES`) as its last choice.
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
from fpattr.synthesis.layers import Upsample2x, conv3
from fpattr.synthesis.spaces import BUILTIN_DESIGN_SPACES, LDM_DECODER_UPSAMPLING

#: Latent channels of the KL and patch-token models (SD / SDXL / DiT use 4).
LATENT_CHANNELS = 4
#: Code vector size of the VQ models (the 1x1 conv before quantisation maps to it).
CODE_DIM = 8
#: Up-sampling choices of the decoder: nearest / bilinear x2 + 3x3 conv, or transposed conv.
DECODER_UPSAMPLING = LDM_DECODER_UPSAMPLING


def group_norm(ch: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups of at least 4 channels (real decoders use 32 groups
    of 4-16 channels; small widths need fewer groups)."""
    groups = max(1, min(8, ch // 4))
    while ch % groups:
        groups -= 1
    return nn.GroupNorm(groups, ch, eps=1e-6)


def level_channels(width: int, level: int) -> int:
    """Channels at ``level`` (resolution / 2**level): ``width`` down to a quarter of the
    resolution, ``2 * width`` below (real decoders: 128-256-512-512; the cost is in the
    high-resolution stages, which is also where the fingerprint is)."""
    return width if level <= 2 else 2 * width


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> 3x3 conv, twice, plus the (1x1-projected) input: LDM's ResnetBlock."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = conv3(cin, cout)
        self.norm2 = group_norm(cout)
        self.conv2 = conv3(cout, cout)
        self.skip: nn.Module = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the pixels of a feature map (LDM's AttnBlock)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = group_norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)  # (b, hw, c)
        return x + self.proj(y.transpose(-1, -2).reshape(b, c, h, w))


class Upsample(nn.Module):
    """x2 up-sampling keeping the channels: ``nearest`` / ``bilinear`` interpolation followed
    by a 3x3 conv (what SD's decoder does), or a learnt 3x3 stride-2 transposed conv."""

    def __init__(self, mode: str, ch: int) -> None:
        super().__init__()
        if mode not in DECODER_UPSAMPLING:
            raise ValueError(f"unknown up-sampling {mode!r}; expected one of {DECODER_UPSAMPLING}")
        self.up = Upsample2x(mode, ch)
        self.conv: nn.Module = nn.Identity() if mode == "transposed" else conv3(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


class Encoder(nn.Module):
    """stride-2 conv-in -> ``levels - 1`` x (GroupNorm, SiLU, stride-2 3x3 conv) -> ResBlock
    -> GroupNorm, SiLU, 3x3 conv to ``out_ch``. Input on the [0, 1] scale.

    Lighter than LDM's encoder (no full-resolution blocks): the fingerprint is the
    decoder's, and the encoder only has to deliver a latent the decoder can invert.
    """

    def __init__(self, levels: int, width: int, out_ch: int) -> None:
        super().__init__()
        ch = level_channels(width, 1)
        self.conv_in = conv3(3, ch, stride=2)
        downs: list[nn.Module] = []
        for level in range(2, levels + 1):
            nxt = level_channels(width, level)
            downs += [group_norm(ch), nn.SiLU(), conv3(ch, nxt, stride=2)]
            ch = nxt
        self.down = nn.Sequential(*downs)
        self.mid = ResBlock(ch, ch)
        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), conv3(ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x * 2 - 1).contiguous(memory_format=torch.channels_last)
        return self.out(self.mid(self.down(self.conv_in(x))))


class Decoder(nn.Module):
    """The LDM / VQGAN decoder: conv-in -> mid (ResBlock [+ self-attention]) -> per level
    ``blocks`` ResBlocks and a x2 up-sampling -> GroupNorm, SiLU, conv-out to RGB.

    ``levels`` = log2 of the up-sampling factor; output on the [0, 1] scale (unclamped).
    """

    def __init__(
        self, levels: int, blocks: int, upsampling: str, width: int, in_ch: int, attention: bool
    ) -> None:
        super().__init__()
        ch = level_channels(width, levels)
        self.conv_in = conv3(in_ch, ch)
        mid: list[nn.Module] = [ResBlock(ch, ch)]
        if attention:
            mid.append(SelfAttention(ch))
        self.mid = nn.Sequential(*mid)
        ups: list[nn.Module] = []
        for level in range(levels, 0, -1):
            out = level_channels(width, level)
            for _ in range(blocks):
                ups.append(ResBlock(ch, out))
                ch = out
            ups.append(Upsample(upsampling, ch))
        self.up = nn.Sequential(*ups)
        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), conv3(ch, 3))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.out(self.up(self.mid(self.conv_in(z))))
        return y * 0.5 + 0.5


class LatentModel(nn.Module):
    """Encoder -> latent bottleneck -> :class:`Decoder`; subclasses define the bottleneck.

    ``align``: the pixel multiple every input side must be (the decoder's factor, times
    the patch size for tokens). ``aux_loss`` is set by training forward passes (KL,
    VQ losses) and consumed by :class:`~fpattr.synthesis.base.FamilyBase`.
    """

    def __init__(self, factor: int, align: int, loss_kind: str) -> None:
        super().__init__()
        self.factor = factor
        self.align = align
        self.loss_kind = loss_kind
        self.aux_loss: torch.Tensor | None = None

    def finish(self) -> LatentModel:
        """Channels-last weights: about 25 % faster convolutions on CPU (oneDNN)."""
        return self.to(memory_format=torch.channels_last)

    def reconstruct(
        self, x: torch.Tensor, gen: torch.Generator, training: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(decoded image, auxiliary loss or None) for photos ``x`` (B, 3, H, W) in [0, 1]."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction (posterior mean / nearest codes)."""
        return self.reconstruct(x, torch.Generator().manual_seed(0), training=False)[0]


def _noise(like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise shaped like ``like`` from the CPU generator (deterministic on any device)."""
    return torch.randn(like.shape, generator=gen).to(like.device, like.dtype)


class KLAutoencoder(LatentModel):
    """SD / LDM KL-autoencoder: the encoder predicts mean and log-variance of a 4-channel
    latent; training and generation decode a posterior sample (mean + std * noise)."""

    def __init__(
        self, arch: Mapping[str, str], width: int, kl_weight: float, init_logvar: float
    ) -> None:
        factor = int(arch["factor"])
        super().__init__(factor, factor, arch["loss"])
        levels = int(math.log2(factor))
        self.kl_weight = kl_weight
        self.encoder = Encoder(levels, width, 2 * LATENT_CHANNELS)
        with torch.no_grad():  # start with a narrow posterior (trained SD VAEs have one)
            self.encoder.out[-1].bias[LATENT_CHANNELS:].fill_(init_logvar)
        self.decoder = Decoder(
            levels,
            int(arch["blocks"]),
            arch["upsampling"],
            width,
            LATENT_CHANNELS,
            attention=arch["mid_attention"] == "yes",
        )

    def reconstruct(
        self, x: torch.Tensor, gen: torch.Generator, training: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        std = torch.exp(0.5 * logvar)
        z = mean + std * _noise(mean, gen)
        aux = None
        if training:
            # LDM's KL term: summed over the latent, averaged over the batch, weighted
            # against a reconstruction loss summed over pixels; ours is a per-pixel mean,
            # so the KL is divided by the pixel count to keep LDM's balance.
            kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum() / len(x)
            aux = self.kl_weight * kl / x[0].numel()
        return self.decoder(z), aux


class VQAutoencoder(LatentModel):
    """VQGAN: encoder -> 1x1 conv to :data:`CODE_DIM` -> nearest codebook entry
    (straight-through) -> 1x1 conv -> decoder. The codebook is a parameter trained by
    the codebook loss; the encoder gets ``beta`` x the commitment loss. Codes are looked
    up by direction (``normalise``).

    Brief training collapses a codebook (a few codes win while the encoder moves), so
    training restarts dead codes (Dhariwal et al. 2020, Jukebox): a code whose running
    usage falls under ``restart_below`` is moved onto a random encoder output of the batch.
    """

    #: decay of the running usage count of each code (per training step).
    usage_decay = 0.9
    #: running usage under which a code is dead (about 30 unused steps from 1).
    restart_below = 0.05
    #: look codes up by direction (l2-normalised z and codes, as ViT-VQGAN, Parti and
    #: MAGVIT do): bounded latents keep brief, fast training from drifting off the codebook.
    normalise = True

    def __init__(self, arch: Mapping[str, str], width: int, beta: float) -> None:
        factor = int(arch["factor"])
        super().__init__(factor, factor, arch["loss"])
        levels = int(math.log2(factor))
        self.beta = beta
        self.encoder = Encoder(levels, width, level_channels(width, levels))
        self.quant_conv = nn.Conv2d(level_channels(width, levels), CODE_DIM, 1)
        n_codes = int(arch["codebook"])
        self.codebook = nn.Parameter(torch.randn(n_codes, CODE_DIM))
        self.register_buffer("usage", torch.ones(n_codes), persistent=False)
        self.post_quant_conv = nn.Conv2d(CODE_DIM, CODE_DIM, 1)
        self.decoder = Decoder(
            levels, int(arch["blocks"]), arch["upsampling"], width, CODE_DIM, attention=True
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(x))

    def book(self) -> torch.Tensor:
        """The code vectors the decoder sees (l2-normalised when ``normalise``)."""
        return F.normalize(self.codebook, dim=1) if self.normalise else self.codebook

    def nearest_codes(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``flat`` (M, CODE_DIM), which is
        normalised already when ``normalise``."""
        book = self.book()
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.t() + book.pow(2).sum(1)
        return dist.argmin(dim=1)

    def restart_dead_codes(
        self, flat: torch.Tensor, codes: torch.Tensor, gen: torch.Generator
    ) -> None:
        """Update the running usage; move dead codes onto random rows of ``flat``."""
        with torch.no_grad():
            counts = torch.bincount(codes, minlength=len(self.usage)).to(self.usage.dtype)
            self.usage.mul_(self.usage_decay).add_(counts)
            dead = (self.usage < self.restart_below).nonzero().flatten()
            if len(dead):
                pick = torch.randint(len(flat), (len(dead),), generator=gen).to(flat.device)
                self.codebook[dead] = flat[pick].detach()
                self.usage[dead] = 1.0

    def quantise(
        self, z: torch.Tensor, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(straight-through quantised z, codebook + beta * commitment loss); with ``gen``
        (training) dead codes are restarted first."""
        if self.normalise:
            z = F.normalize(z, dim=1)
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        codes = self.nearest_codes(flat.detach())
        if gen is not None:
            self.restart_dead_codes(flat, codes, gen)
            codes = self.nearest_codes(flat.detach())
        zq = self.book()[codes].reshape(b, h, w, c).permute(0, 3, 1, 2)
        loss = F.mse_loss(zq, z.detach()) + self.beta * F.mse_loss(z, zq.detach())
        return z + (zq - z).detach(), loss

    def reconstruct(
        self, x: torch.Tensor, gen: torch.Generator, training: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        zq, loss = self.quantise(self.encode(x), gen if training else None)
        out = self.decoder(self.post_quant_conv(zq))
        if not training:
            return out, None
        # A latent element weighs as much as a pixel: with both terms as means, one latent
        # element would weigh 3 * factor**2 / CODE_DIM pixels, and the commitment pull
        # would drown the reconstruction gradient (the codes would stop carrying content).
        return out, loss * zq[0].numel() / x[0].numel()


def sincos_2d(dim: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """DiT's fixed 2-D sine-cosine position embedding, (h * w, dim) (zero-padded when
    ``dim`` is not a multiple of 4)."""
    quarter = dim // 4
    freqs = 1.0 / 10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device, dtype=torch.float32),
        torch.arange(w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    ay = ys.reshape(-1, 1) * freqs
    ax = xs.reshape(-1, 1) * freqs
    emb = torch.cat([ay.sin(), ay.cos(), ax.sin(), ax.cos()], dim=1)
    return F.pad(emb, (0, dim - emb.shape[1]))


class TokenMixer(nn.Module):
    """``mlp``: a residual 2-layer MLP per token; ``attention``: one pre-norm transformer
    block (single-head self-attention + MLP), both on (B, N, dim) tokens."""

    def __init__(self, kind: str, dim: int) -> None:
        super().__init__()
        if kind not in ("mlp", "attention"):
            raise ValueError(f"unknown token mixer {kind!r}; expected 'mlp' or 'attention'")
        self.attn: nn.MultiheadAttention | None = None
        if kind == "attention":
            self.norm_attn = nn.LayerNorm(dim)
            self.attn = nn.MultiheadAttention(dim, 1, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if self.attn is not None:
            h = self.norm_attn(t)
            t = t + self.attn(h, h, h, need_weights=False)[0]
        return t + self.mlp(self.norm_mlp(t))


class PatchTokenModel(LatentModel):
    """DiT / PixArt / MAR output path: encoder -> 4-channel latent (x8) -> patchify
    (``patch`` on the latent) -> linear embedding + position -> token mixer -> LayerNorm +
    final linear to patch*patch*4 -> unpatchify -> x8 LDM decoder (1 block per level,
    mid attention)."""

    factor_levels = 3

    def __init__(self, arch: Mapping[str, str], width: int) -> None:
        factor = 2**self.factor_levels
        self.patch = int(arch["patch"])
        super().__init__(factor, factor * self.patch, arch["loss"])
        self.dim = 2 * width
        self.encoder = Encoder(self.factor_levels, width, LATENT_CHANNELS)
        p2c = self.patch * self.patch * LATENT_CHANNELS
        self.embed = nn.Linear(p2c, self.dim)
        self.mixer = TokenMixer(arch["mixer"], self.dim)
        self.final = nn.Sequential(nn.LayerNorm(self.dim), nn.Linear(self.dim, p2c))
        self.decoder = Decoder(
            self.factor_levels, 1, arch["upsampling"], width, LATENT_CHANNELS, attention=True
        )

    def tokens_to_latent(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        p = self.patch
        gh, gw = h // p, w // p
        t = z.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, p * p * c)
        t = self.embed(t) + sincos_2d(self.dim, gh, gw, z.device)
        t = self.final(self.mixer(t))
        return t.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)

    def reconstruct(
        self, x: torch.Tensor, gen: torch.Generator, training: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.decoder(self.tokens_to_latent(self.encoder(x))), None


class _LatentFamilyBase(FamilyBase):
    """Training on aligned random crops and photo-to-image generation, shared by the
    latent families; subclasses define :meth:`_make` (and may add setup)."""

    needs_photos = True
    #: Adam learning rate: GroupNorm ResNet decoders stall or blur at the base's 2e-3
    #: (about 3x the MSE after 120 steps of the x8 models at width 32).
    lr = 5e-4

    def _make(self, arch: Mapping[str, str], width: int) -> LatentModel:
        raise NotImplementedError

    def _align(self, arch: Mapping[str, str]) -> tuple[int, int]:
        """(decoder factor, alignment in pixels) of an architecture."""
        raise NotImplementedError

    def size_problem(self, arch: Mapping[str, str], image_size: int) -> str | None:
        """Why ``arch`` cannot be built at ``image_size`` (None: it can); builds nothing."""
        factor, align = self._align(arch)
        if image_size % align or image_size // factor < 2:
            return (
                f"{self.name}: image size {image_size} must be a multiple of {align} "
                f"and give a latent of at least 2 px (factor {factor})"
            )
        return None

    def build(
        self, arch: Mapping[str, str], *, width: int = 32, image_size: int = 128
    ) -> nn.Module:
        self.check_buildable(arch, image_size)
        if width < 4:
            raise UsageError(f"{self.name}: width must be at least 4, got {width}")
        return self._make(arch, width).finish()

    @staticmethod
    def train_crop(model: LatentModel, crop: int, size: int) -> int:
        """``crop`` rounded down to the model's alignment, at least two latent pixels
        (and one token); an error when the photos are smaller than that."""
        floor = max(2 * model.factor, model.align)
        crop = max(floor, crop - crop % model.align)
        if crop > size:
            raise UsageError(f"photos of {size} px are too small for this model ({crop} px)")
        return crop

    def forward_pair(
        self,
        model: nn.Module,
        photos: torch.Tensor,
        idx: torch.Tensor,
        crop: int,
        gen: torch.Generator,
        device: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        crop = self.train_crop(model, crop, int(photos.shape[-1]))
        x, _, _ = random_crops(photos, idx, crop, gen, align=model.align)
        x = x.to(device)
        out, aux = model.reconstruct(x, gen, training=True)
        model.aux_loss = aux
        return out, x

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
        h, w = x.shape[-2:]
        if h % model.align or w % model.align:
            raise UsageError(f"{self.name}: photo sides must be multiples of {model.align}")
        return model.reconstruct(x.to(device), gen, training=False)[0]


class LdmVaeFamily(_LatentFamilyBase):
    """KL-autoencoders as in Stable Diffusion / LDM (x4, x8, x16 decoders)."""

    name = "ldm_vae"
    description = (
        "Stable Diffusion / LDM KL-autoencoder decoders (4-channel latent, x4-x16, "
        "GroupNorm+SiLU ResNet blocks, nearest+conv or other x2 up-sampling)"
    )
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["ldm_vae"]  # torch-free: synth --list
    ID_PREFIX = "vae"
    ID_CODES = {"factor": "F", "blocks": "B", "upsampling": "U", "mid_attention": "A", "loss": "L"}
    ID_GROUPS = [["F", "B", "U"], ["A"], ["L"]]
    #: LDM's KL weight (relative to a reconstruction loss summed over pixels).
    kl_weight = 1e-6
    #: initial log-variance of the posterior: a unit-variance start drowns the latent in
    #: noise that a few hundred steps cannot undo (the KL weight barely pulls it back).
    init_logvar = -6.0

    def _align(self, arch: Mapping[str, str]) -> tuple[int, int]:
        return int(arch["factor"]), int(arch["factor"])

    def _make(self, arch: Mapping[str, str], width: int) -> LatentModel:
        return KLAutoencoder(arch, width, self.kl_weight, self.init_logvar)


class VqganFamily(_LatentFamilyBase):
    """VQGAN autoencoders (taming transformers, DALL-E mini, MaskGIT): quantised latents."""

    name = "vqgan"
    description = (
        "VQGAN decoders from a quantised codebook latent (x8/x16, straight-through, "
        "GroupNorm+SiLU ResNet blocks)"
    )
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["vqgan"]  # torch-free: synth --list
    ID_PREFIX = "vq"
    ID_CODES = {"factor": "F", "codebook": "K", "blocks": "B", "upsampling": "U", "loss": "L"}
    ID_GROUPS = [["F", "K", "B", "U"], ["L"]]
    #: weight of the commitment loss (VQ-VAE / VQGAN use 0.25).
    beta = 0.25
    #: slower than the other families: the codes must keep up with the encoder.
    lr = 3e-4
    #: photos encoded to start the codebook from (random encoder outputs, k-means++-free).
    init_photos = 8
    #: the codebook learns this many times faster than the network (it must follow the
    #: encoder's outputs, or codes die faster than they are restarted).
    codebook_lr_scale = 10.0

    def _align(self, arch: Mapping[str, str]) -> tuple[int, int]:
        return int(arch["factor"]), int(arch["factor"])

    def _make(self, arch: Mapping[str, str], width: int) -> LatentModel:
        return VQAutoencoder(arch, width, self.beta)

    def setup_training(
        self, model: nn.Module, photos: torch.Tensor, gen: torch.Generator
    ) -> list[dict[str, Any]]:
        """Start the codebook from encoder outputs of a few training photos (plus a little
        noise), so no code is dead at the first step; the codebook trains faster."""
        size = int(photos.shape[-1])
        crop = size - size % model.align
        if crop < 2 * model.factor:
            raise UsageError(f"photos of {size} px are too small for this model")
        sel = torch.randperm(len(photos), generator=gen)[: self.init_photos]
        device = model.codebook.device
        with torch.no_grad():
            z = model.encode(photos[sel, :, :crop, :crop].to(device))
            flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).cpu()
            pick = torch.randint(len(flat), (len(model.codebook),), generator=gen)
            init = flat[pick] + 0.01 * flat.std() * torch.randn(
                len(pick), flat.shape[1], generator=gen
            )
            model.codebook.copy_(init.to(device))
            model.usage.fill_(1.0)
        return [{"params": [model.codebook], "lr": self.lr * self.codebook_lr_scale}]


class PatchTokenFamily(_LatentFamilyBase):
    """DiT / PixArt / MAR: a patchified token stack produces the latent of an x8 decoder."""

    name = "dit_patch"
    description = (
        "DiT / PixArt / MAR output path: latent patch tokens -> mixer -> linear -> "
        "unpatchify -> x8 LDM decoder"
    )
    DESIGN_SPACE = BUILTIN_DESIGN_SPACES["dit_patch"]  # torch-free: synth --list
    ID_PREFIX = "pt"
    ID_CODES = {"patch": "P", "mixer": "M", "upsampling": "U", "loss": "L"}
    ID_GROUPS = [["P"], ["M"], ["U"], ["L"]]

    def _align(self, arch: Mapping[str, str]) -> tuple[int, int]:
        factor = 2**PatchTokenModel.factor_levels
        return factor, factor * int(arch["patch"])

    def _make(self, arch: Mapping[str, str], width: int) -> LatentModel:
        return PatchTokenModel(arch, width)
