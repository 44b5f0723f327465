"""Small real generators (GANs, a VAE, a DDPM) used as held-out test models.

These are deliberately *not* the synthetic autoencoder families the extractor is
trained on: they are complete generative models trained from noise, so that the
benchmark measures zero-shot attribution on generators the extractor never saw.
Each design axis that ManiFPT found to shape fingerprints (up-sampling, loss) is
varied on its own, and the registry holds pairs that differ only in seed or only
in training data, the two hardest attribution cases.

Images are tensors in [-1, 1], NCHW, float32.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Kind = Literal["gan", "vae", "diffusion"]
UPSAMPLINGS = ("transposed", "nearest", "bilinear", "pixelshuffle")
GAN_LOSSES = ("ns", "lsgan", "wgan-gp", "hinge")
#: Data specs: "photos" = every photo of the source; "photos-a"/"photos-b" = its two disjoint
#: halves (even/odd sorted index); "skimage" = scikit-image's bundled photos, always.
DATA_SPECS = ("photos", "photos-a", "photos-b", "skimage")


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark generator: every label that defines it, plus training settings.

    ``steps`` is the default number of optimiser updates of the generator (or of the
    denoiser/VAE); it was chosen so the whole registry trains in ~30-45 min on 2 CPU cores.
    """

    id: str
    kind: Kind
    upsampling: str
    loss: str
    seed: int
    data: str
    steps: int
    size: int = 64
    width: int = 16
    z_dim: int = 64
    batch: int = 32
    lr: float = 2e-4
    extra: dict = field(default_factory=dict)

    def labels(self) -> dict:
        """Design labels written to the manifest (what an analysis may try to predict).

        ``family`` and ``design`` repeat them in the synthesizers' vocabulary, so
        `fpattr analyze score` reads this benchmark like a zoo.
        """
        return {
            "id": self.id,
            "kind": self.kind,
            "upsampling": self.upsampling,
            "loss": self.loss,
            "seed": self.seed,
            "data": self.data,
            **self.design_labels(),
        }

    def design_labels(self) -> dict:
        """Family, up-sampling, normalisation and activation as `fpattr analyze` names them.

        GAN and VAE share the DCGAN generator (batch norm + ReLU up-blocks; the VAE is an
        autoencoder), the DDPM is a GroupNorm + SiLU U-Net denoiser.
        """
        if self.kind == "diffusion":
            family, norm, act = "diffusion_denoiser", "group", "silu"
        else:
            family = "autoencoder" if self.kind == "vae" else "gan_decoder"
            norm, act = "batch", "relu"
        return {
            "family": family,
            "design": {"upsampling": self.upsampling, "norm": norm, "activation": act},
        }

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- building blocks


class UpBlock(nn.Module):
    """x2 up-sampling + normalisation + ReLU; the up-sampling op is the fingerprint source."""

    def __init__(self, c_in: int, c_out: int, mode: str, norm: bool = True) -> None:
        super().__init__()
        if mode == "transposed":
            up: nn.Module = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=not norm)
        elif mode in ("nearest", "bilinear"):
            kw = {"align_corners": False} if mode == "bilinear" else {}
            up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode=mode, **kw),
                nn.Conv2d(c_in, c_out, 3, 1, 1, bias=not norm),
            )
        elif mode == "pixelshuffle":
            up = nn.Sequential(
                nn.Conv2d(c_in, 4 * c_out, 3, 1, 1, bias=not norm), nn.PixelShuffle(2)
            )
        else:
            raise ValueError(f"unknown up-sampling {mode!r}; expected one of {UPSAMPLINGS}")
        self.body = nn.Sequential(up, nn.BatchNorm2d(c_out) if norm else nn.Identity(), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _n_ups(size: int) -> int:
    n = int(math.log2(size // 4))
    if 4 * 2**n != size:
        raise ValueError(f"size must be 4 * 2**k, got {size}")
    return n


class Generator(nn.Module):
    """DCGAN-style generator: z -> 4x4 -> (x2 up-blocks) -> size x size RGB in [-1, 1]."""

    def __init__(self, z_dim: int, size: int, width: int, upsampling: str) -> None:
        super().__init__()
        n = _n_ups(size)
        chans = [width * 2 ** (n - i) for i in range(n + 1)]  # e.g. 256,128,64,32,32/..
        self.z_dim = z_dim
        self.fc = nn.Sequential(nn.Linear(z_dim, chans[0] * 16), nn.ReLU())
        self.c0 = chans[0]
        self.ups = nn.Sequential(*[UpBlock(chans[i], chans[i + 1], upsampling) for i in range(n)])
        self.out = nn.Conv2d(chans[-1], 3, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.c0, 4, 4)
        return torch.tanh(self.out(self.ups(x)))


class Discriminator(nn.Module):
    """Strided-conv critic. ``norm``: "bn" (DCGAN), "sn" (spectral norm, for hinge), "none"
    (WGAN-GP: batch norm would break the per-sample gradient penalty)."""

    def __init__(self, size: int, width: int, norm: str = "bn") -> None:
        super().__init__()
        n = _n_ups(size)
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(n):
            c_out = width * 2**i
            conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm != "bn" or i == 0)
            if norm == "sn":
                conv = nn.utils.spectral_norm(conv)
            layers.append(conv)
            if norm == "bn" and i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        head = nn.Linear(c_in * 16, 1)
        self.head = nn.utils.spectral_norm(head) if norm == "sn" else head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1)).squeeze(1)


class Encoder(nn.Module):
    """VAE encoder: strided convs to 4x4, then mean and log-variance of q(z|x)."""

    def __init__(self, z_dim: int, size: int, width: int) -> None:
        super().__init__()
        n = _n_ups(size)
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(n):
            c_out = width * 2 ** (i + 1)
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * 16, 2 * z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)


class VAE(nn.Module):
    """Gaussian VAE whose decoder is the same Generator as the GANs (so only the
    training objective differs from a GAN with the same up-sampling).

    Samples are drawn from a Gaussian fitted to the aggregate posterior after training
    ("ex-post density estimation", Ghosh et al., ICLR 2020): a tiny CPU-trained VAE's
    posterior means spread well beyond N(0, I) (std ~3.4 per dimension here), so plain prior
    samples all decode to the same gray blur. Until :meth:`fit_latent` runs it is N(0, I).
    """

    def __init__(self, z_dim: int, size: int, width: int, upsampling: str) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.encoder = Encoder(z_dim, size, width)
        self.decoder = Generator(z_dim, size, width, upsampling)
        self.register_buffer("z_mean", torch.zeros(z_dim))
        self.register_buffer("z_chol", torch.eye(z_dim))

    @torch.no_grad()
    def fit_latent(self, mu: torch.Tensor) -> None:
        """Set the sampling Gaussian to the mean/covariance of posterior means ``mu`` (N, z)."""
        cov = torch.cov(mu.T.double()) + 1e-4 * torch.eye(
            self.z_dim, dtype=torch.float64, device=mu.device
        )
        self.z_mean.copy_(mu.mean(0))
        self.z_chol.copy_(torch.linalg.cholesky(cov).float())

    def latent(self, eps: torch.Tensor) -> torch.Tensor:
        """Map standard-normal noise to a latent of the fitted sampling distribution."""
        return self.z_mean + eps @ self.z_chol.T

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decoder(z), mu, logvar


# --------------------------------------------------------------------------- diffusion


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (as in DDPM/Transformer)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int) -> None:
        super().__init__()
        self.n1 = nn.GroupNorm(8, c_in)
        self.c1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.t = nn.Linear(t_dim, c_out)
        self.n2 = nn.GroupNorm(8, c_out)
        self.c2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x))) + self.t(temb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


class TinyUNet(nn.Module):
    """Three-level U-Net (one ResBlock per level) predicting the noise epsilon.

    Down-sampling is a strided conv, up-sampling is ``upsampling`` (+3x3 conv), so the
    diffusion model also carries an up-sampling label comparable to the GANs'.
    """

    def __init__(self, width: int, upsampling: str = "nearest", mults: tuple = (1, 2, 2)) -> None:
        super().__init__()
        t_dim = width * 4
        self.width = width
        self.temb = nn.Sequential(nn.Linear(width, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.inp = nn.Conv2d(3, width, 3, 1, 1)
        chans = [width * m for m in mults]
        self.down_blocks = nn.ModuleList()
        self.downs = nn.ModuleList()
        c = width
        for i, ch in enumerate(chans):
            self.down_blocks.append(ResBlock(c, ch, t_dim))
            c = ch
            if i < len(chans) - 1:
                self.downs.append(nn.Conv2d(c, c, 3, 2, 1))
        self.mid = ResBlock(c, c, t_dim)
        self.up_blocks = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            self.up_blocks.append(ResBlock(c + ch, ch, t_dim))
            c = ch
            if i > 0:
                self.ups.append(_up_op(c, chans[i - 1] if i > 0 else c, upsampling))
                c = chans[i - 1]
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, 3, 3, 1, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(timestep_embedding(t, self.width))
        h = self.inp(x)
        skips = []
        for i, blk in enumerate(self.down_blocks):
            h = blk(h, temb)
            skips.append(h)
            if i < len(self.downs):
                h = self.downs[i](h)
        h = self.mid(h, temb)
        for i, blk in enumerate(self.up_blocks):
            h = blk(torch.cat([h, skips.pop()], dim=1), temb)
            if i < len(self.ups):
                h = self.ups[i](h)
        return self.out(h)


def _up_op(c_in: int, c_out: int, mode: str) -> nn.Module:
    if mode == "transposed":
        return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)
    if mode == "pixelshuffle":
        return nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 3, 1, 1), nn.PixelShuffle(2))
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode=mode, **kw), nn.Conv2d(c_in, c_out, 3, 1, 1)
    )


class Diffusion(nn.Module):
    """DDPM (linear beta schedule, T=1000, epsilon objective) with a DDIM sampler, so a
    genuinely trained model samples in ``sample_steps`` (50 by default) network calls."""

    def __init__(self, width: int, upsampling: str, timesteps: int = 1000) -> None:
        super().__init__()
        self.net = TinyUNet(width, upsampling)
        self.timesteps = timesteps
        betas = torch.linspace(1e-4, 0.02, timesteps)
        self.register_buffer("alpha_bar", torch.cumprod(1.0 - betas, dim=0), persistent=False)

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        t = torch.randint(0, self.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        ab = self.alpha_bar[t][:, None, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        return F.mse_loss(self.net(xt, t), noise)

    @torch.no_grad()
    def sample(self, noise: torch.Tensor, sample_steps: int = 50) -> torch.Tensor:
        """Deterministic DDIM (eta=0) from the given initial noise."""
        ts = torch.linspace(self.timesteps - 1, 0, sample_steps).long().tolist()
        x = noise
        for i, t in enumerate(ts):
            ab = self.alpha_bar[t]
            ab_prev = self.alpha_bar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            eps = self.net(x, tt)
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
            x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        return x.clamp(-1, 1)


# --------------------------------------------------------------------------- registry


def build(cfg: BenchConfig) -> dict[str, nn.Module]:
    """Networks of a benchmark model by role ("G"/"D", "vae", "ddpm"), seeded by cfg.seed."""
    torch.manual_seed(cfg.seed)
    if cfg.kind == "gan":
        if cfg.loss not in GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {cfg.loss!r}; expected one of {GAN_LOSSES}")
        norm = {"wgan-gp": "none", "hinge": "sn"}.get(cfg.loss, "bn")
        return {
            "G": Generator(cfg.z_dim, cfg.size, cfg.width, cfg.upsampling),
            "D": Discriminator(cfg.size, cfg.width, norm),
        }
    if cfg.kind == "vae":
        return {"vae": VAE(cfg.z_dim, cfg.size, cfg.width, cfg.upsampling)}
    if cfg.kind == "diffusion":
        return {"ddpm": Diffusion(cfg.width, cfg.upsampling)}
    raise ValueError(f"unknown kind {cfg.kind!r}")


def _gan(id_: str, up: str, loss: str, seed: int = 0, data: str = "photos", **kw) -> BenchConfig:
    steps = kw.pop("steps", 1000)
    if loss == "wgan-gp":
        kw.setdefault("lr", 1e-4)
        kw.setdefault("extra", {"n_critic": 2, "gp_weight": 10.0})
    return BenchConfig(id_, "gan", up, loss, seed, data, steps, **kw)


#: The benchmark. Pairs: gan_tconv_ns_s0/_s1 and vae_bilinear_s0/_s1 differ only in seed;
#: gan_bilinear_lsgan_a/_b (two disjoint halves of the photos) and vae_bilinear_s0 /
#: vae_bilinear_skimage differ only in training data.
REGISTRY: dict[str, BenchConfig] = {
    c.id: c
    for c in [
        _gan("gan_tconv_ns_s0", "transposed", "ns", seed=0),
        _gan("gan_tconv_ns_s1", "transposed", "ns", seed=1),
        _gan("gan_tconv_lsgan", "transposed", "lsgan", seed=2),
        _gan("gan_tconv_wgangp", "transposed", "wgan-gp", seed=3),
        _gan("gan_tconv_hinge", "transposed", "hinge", seed=4),
        _gan("gan_nearest_ns", "nearest", "ns", seed=5),
        _gan("gan_bilinear_ns", "bilinear", "ns", seed=6),
        _gan("gan_pixelshuffle_ns", "pixelshuffle", "ns", seed=7),
        _gan("gan_pixelshuffle_hinge", "pixelshuffle", "hinge", seed=8),
        _gan("gan_bilinear_lsgan_a", "bilinear", "lsgan", seed=9, data="photos-a"),
        _gan("gan_bilinear_lsgan_b", "bilinear", "lsgan", seed=9, data="photos-b"),
        BenchConfig("vae_bilinear_s0", "vae", "bilinear", "elbo", 10, "photos", 1000, lr=1e-3),
        BenchConfig("vae_bilinear_s1", "vae", "bilinear", "elbo", 11, "photos", 1000, lr=1e-3),
        BenchConfig(
            "vae_bilinear_skimage", "vae", "bilinear", "elbo", 10, "skimage", 1000, lr=1e-3
        ),
        BenchConfig(
            "ddpm_nearest",
            "diffusion",
            "nearest",
            "eps-mse",
            12,
            "photos",
            5000,
            batch=16,
            lr=3e-4,
            extra={"sample_steps": 50},
        ),
    ]
}


def seed_pairs(registry: dict[str, BenchConfig] = REGISTRY) -> list[tuple[str, str]]:
    """Pairs of models identical in every setting except the seed."""
    return _pairs_differing_in(registry, "seed")


def data_pairs(registry: dict[str, BenchConfig] = REGISTRY) -> list[tuple[str, str]]:
    """Pairs of models identical in every setting except the training data."""
    return _pairs_differing_in(registry, "data")


def _pairs_differing_in(registry: dict[str, BenchConfig], key: str) -> list[tuple[str, str]]:
    def rest(c: BenchConfig) -> dict:
        d = c.to_dict()
        d.pop("id")
        d.pop(key)
        return d

    cfgs = list(registry.values())
    return [
        (a.id, b.id)
        for i, a in enumerate(cfgs)
        for b in cfgs[i + 1 :]
        if getattr(a, key) != getattr(b, key) and rest(a) == rest(b)
    ]
