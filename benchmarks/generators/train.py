"""Training, sampling and real-photo loading for the benchmark generators.

Kept separate from ``make_real_benchmark.py`` so that ``scripts/make_demo_data.py`` and the
tests can train or sample one model without the benchmark's folder bookkeeping.
Training is resumable from a checkpoint (state dicts only, loaded with
``weights_only=True``) because the full benchmark takes tens of minutes on a CPU.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .models import BenchConfig, build

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
#: scikit-image sample photos that ship inside the package (no pooch download needed).
SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "camera", "brick", "grass", "gravel", "moon", "clock", "coins",
)  # fmt: skip


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve_device(name: str) -> torch.device:
    """ "auto" = CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------- real photos


def _load_rgb_uint8(path: Path) -> np.ndarray:
    """Decode with fpattr's safe loader when it exists (same decoding as inference), else PIL."""
    try:
        from fpattr.io import load_image  # type: ignore[attr-defined]
    except ImportError:
        load_image = None
    if load_image is not None:
        px = np.asarray(load_image(path).pixels, dtype=np.float32)
        return np.clip(np.rint(px * 255.0), 0, 255).astype(np.uint8)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def skimage_photos() -> list[np.ndarray]:
    """scikit-image's bundled sample photos as RGB uint8 (gray ones replicated)."""
    from skimage import data

    out = []
    for name in SKIMAGE_PHOTOS:
        im = np.asarray(getattr(data, name)())
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        out.append(np.ascontiguousarray(im[..., :3].astype(np.uint8)))
    return out


def folder_photos(root: Path) -> list[np.ndarray]:
    """Every image under ``root`` (recursive, sorted), RGB uint8; unreadable files skipped."""
    photos = []
    for p in sorted(q for q in root.rglob("*") if q.suffix.lower() in IMAGE_EXTS):
        try:
            photos.append(_load_rgb_uint8(p))
        except Exception as exc:  # one bad file must not stop a 40-minute run
            log(f"skip {p}: {exc}")
    if not photos:
        raise FileNotFoundError(f"no readable images under {root}")
    return photos


@dataclass
class PhotoSet:
    """Photos for one data spec and a description of where they came from (for the manifest)."""

    photos: list[np.ndarray]
    source: str


def photo_set(spec: str, real: Path | None, cache: dict | None = None) -> PhotoSet:
    """Resolve a data spec (see models.DATA_SPECS). Without ``real``, "photos" means the
    scikit-image set, so a benchmark still runs where no photo folder exists."""
    cache = {} if cache is None else cache
    if spec == "skimage" or real is None:
        if "skimage" not in cache:
            cache["skimage"] = skimage_photos()
        base, name = cache["skimage"], "skimage.data"
    else:
        key = str(real)
        if key not in cache:
            cache[key] = folder_photos(real)
        base, name = cache[key], str(real)
    if spec in ("photos", "skimage"):
        return PhotoSet(base, f"{name} ({len(base)} photos)")
    if spec in ("photos-a", "photos-b"):
        half = base[0::2] if spec == "photos-a" else base[1::2]
        which = "even" if spec == "photos-a" else "odd"
        return PhotoSet(half, f"{name}, {which} sorted indices ({len(half)} photos)")
    raise ValueError(f"unknown data spec {spec!r}")


class CropSampler:
    """Random square crops (side between the model size and half the photo's short side),
    resized with antialiasing to the model size, random h-flip; tensors in [-1, 1].

    Uses its own torch.Generator so data order is reproducible and resumable."""

    def __init__(self, photos: list[np.ndarray], size: int, seed: int) -> None:
        self.photos = [torch.from_numpy(p).permute(2, 0, 1).contiguous() for p in photos]
        self.size = size
        self.gen = torch.Generator().manual_seed(seed)

    def _one(self) -> torch.Tensor:
        g = self.gen
        img = self.photos[int(torch.randint(len(self.photos), (1,), generator=g))]
        h, w = img.shape[1:]
        short = min(h, w)
        lo, hi = min(self.size, short), max(min(self.size, short), short // 2)
        s = int(torch.randint(lo, hi + 1, (1,), generator=g))
        y = int(torch.randint(h - s + 1, (1,), generator=g))
        x = int(torch.randint(w - s + 1, (1,), generator=g))
        crop = img[:, y : y + s, x : x + s].float()[None] / 127.5 - 1.0
        if s != self.size:
            crop = F.interpolate(crop, size=self.size, mode="bilinear", antialias=True)
        if float(torch.rand((1,), generator=g)) < 0.5:
            crop = crop.flip(3)
        return crop[0].clamp(-1, 1)

    def batch(self, n: int) -> torch.Tensor:
        return torch.stack([self._one() for _ in range(n)])


# --------------------------------------------------------------------------- training


def _d_loss(loss: str, dr: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    if loss == "ns":
        return F.softplus(-dr).mean() + F.softplus(df).mean()
    if loss == "lsgan":
        return 0.5 * ((dr - 1) ** 2).mean() + 0.5 * (df**2).mean()
    if loss == "hinge":
        return F.relu(1 - dr).mean() + F.relu(1 + df).mean()
    return df.mean() - dr.mean()  # wgan-gp, penalty added by the caller


def _g_loss(loss: str, df: torch.Tensor) -> torch.Tensor:
    if loss == "ns":
        return F.softplus(-df).mean()
    if loss == "lsgan":
        return 0.5 * ((df - 1) ** 2).mean()
    return -df.mean()  # hinge and wgan-gp share the generator loss


def _gan_step(cfg: BenchConfig, nets: dict, opts: dict, real: torch.Tensor) -> dict[str, float]:
    """One generator update after ``n_critic`` critic updates. With one critic update the
    fake batch is reused for the generator step (as in DCGAN): a quarter less CPU time."""
    G, D = nets["G"], nets["D"]
    n, dev = real.shape[0], real.device
    n_critic = int(cfg.extra.get("n_critic", 1))
    reuse = n_critic == 1
    for _ in range(n_critic):
        with torch.set_grad_enabled(reuse):
            fake = G(torch.randn(n, cfg.z_dim, device=dev))
        ld = _d_loss(cfg.loss, D(real), D(fake.detach()))
        if cfg.loss == "wgan-gp":
            eps = torch.rand(n, 1, 1, 1, device=dev)
            mix = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(mix).sum(), mix, create_graph=True)
            gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            ld = ld + float(cfg.extra.get("gp_weight", 10.0)) * gp
        opts["D"].zero_grad(set_to_none=True)
        ld.backward()
        opts["D"].step()
    if not reuse:
        fake = G(torch.randn(n, cfg.z_dim, device=dev))
    lg = _g_loss(cfg.loss, D(fake))
    opts["G"].zero_grad(set_to_none=True)
    lg.backward()
    opts["G"].step()
    return {"D": ld.item(), "G": lg.item()}


def _vae_step(cfg: BenchConfig, nets: dict, opts: dict, real: torch.Tensor) -> dict[str, float]:
    recon, mu, logvar = nets["vae"](real)
    # Gaussian likelihood with sigma=0.1 on [-1,1] pixels, per image (nats/1000 for readability).
    rec = F.mse_loss(recon, real, reduction="none").flatten(1).sum(1).mean() / (2 * 0.1**2)
    kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean()
    loss = (rec + kl) / 1000.0
    opts["vae"].zero_grad(set_to_none=True)
    loss.backward()
    opts["vae"].step()
    return {"elbo_k": loss.item(), "recon_k": rec.item() / 1000.0, "kl": kl.item()}


def _ddpm_step(cfg: BenchConfig, nets: dict, opts: dict, real: torch.Tensor) -> dict[str, float]:
    loss = nets["ddpm"].loss(real)
    opts["ddpm"].zero_grad(set_to_none=True)
    loss.backward()
    opts["ddpm"].step()
    return {"eps_mse": loss.item()}


STEP_FNS: dict[str, Callable] = {"gan": _gan_step, "vae": _vae_step, "diffusion": _ddpm_step}


def make_optimizers(cfg: BenchConfig, nets: dict) -> dict[str, torch.optim.Optimizer]:
    betas = (0.0, 0.9) if cfg.loss == "wgan-gp" else (0.5, 0.999) if cfg.kind == "gan" else (
        0.9, 0.999)  # fmt: skip
    return {k: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=betas) for k, m in nets.items()}


@dataclass
class TrainResult:
    nets: dict
    history: dict[str, list[list[float]]]  # loss name -> [[step, window mean], ...]
    seconds: float
    steps: int
    cpu_seconds: float  # process CPU time (all threads): comparable across loaded machines


def train(
    cfg: BenchConfig,
    sampler: CropSampler,
    steps: int,
    device: torch.device,
    ckpt: Path | None = None,
    ckpt_every: int = 200,
    log_every: int = 50,
) -> TrainResult:
    """Train ``cfg`` for ``steps`` updates, resuming from ``ckpt`` if it holds a partial run.

    The checkpoint is rewritten every ``ckpt_every`` steps and at the end; it also stores
    the RNG states so a resumed run continues the same data/noise streams.
    """
    nets = {k: m.to(device) for k, m in build(cfg).items()}
    opts = make_optimizers(cfg, nets)
    history: dict[str, list[list[float]]] = {}
    start, seconds, cpu = 0, 0.0, 0.0
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        for k, m in nets.items():
            m.load_state_dict(state["nets"][k])
        for k, o in opts.items():
            o.load_state_dict(state["opts"][k])
        history, start, seconds = state["history"], int(state["step"]), float(state["seconds"])
        cpu = float(state.get("cpu_seconds", float("nan")))
        sampler.gen.set_state(state["data_rng"].cpu())  # map_location may have moved it
        torch.set_rng_state(state["torch_rng"].cpu())
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        log(f"[{cfg.id}] resumed at step {start}/{steps}")
    else:
        torch.manual_seed(cfg.seed + 1)  # noise stream, distinct from init (seed)
    t0, c0 = time.perf_counter(), time.process_time()

    def elapsed() -> float:
        return seconds + time.perf_counter() - t0

    def cpu_elapsed() -> float:
        return cpu + time.process_time() - c0

    def save(step: int) -> None:
        if ckpt is None:
            return
        state = {
            "cfg": cfg.to_dict(),
            "step": step,
            "steps": steps,
            "seconds": elapsed(),
            "cpu_seconds": cpu_elapsed(),
            "history": history,
            "nets": {k: m.state_dict() for k, m in nets.items()},
            "opts": {k: o.state_dict() for k, o in opts.items()},
            "data_rng": sampler.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        if device.type == "cuda":  # training noise is drawn on the GPU
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(ckpt)  # atomic: an interrupted save never corrupts the resume point

    for m in nets.values():
        m.train()
    step_fn = STEP_FNS[cfg.kind]
    window: dict[str, list[float]] = {}
    for step in range(start, steps):
        real = sampler.batch(cfg.batch).to(device)
        for k, v in step_fn(cfg, nets, opts, real).items():
            window.setdefault(k, []).append(v)
        done = step + 1
        if done % log_every == 0 or done == steps:
            for k, vs in window.items():
                history.setdefault(k, []).append([done, float(np.mean(vs))])
            window = {}
            msg = " ".join(f"{k}={v[-1][1]:.4f}" for k, v in history.items())
            log(f"[{cfg.id}] step {done}/{steps} {msg} ({elapsed():.0f}s)")
        if done % ckpt_every == 0 and done != steps:
            save(done)
    if cfg.kind == "vae":
        fit_vae_latent(nets["vae"], sampler, device)
    save(steps)
    return TrainResult(nets, history, elapsed(), steps, cpu_elapsed())


@torch.no_grad()
def fit_vae_latent(vae: torch.nn.Module, sampler: CropSampler, device: torch.device) -> None:
    """Fit the VAE's sampling distribution to its aggregate posterior (see VAE.fit_latent)."""
    vae.eval()
    mus = [vae.encoder(sampler.batch(256).to(device))[0] for _ in range(8)]
    vae.fit_latent(torch.cat(mus))
    vae.train()


def load_trained(cfg: BenchConfig, ckpt: Path, device: torch.device) -> dict:
    """Networks of a finished checkpoint, ready for :func:`generate`."""
    state = torch.load(ckpt, map_location=device, weights_only=True)
    nets = {k: m.to(device) for k, m in build(cfg).items()}
    for k, m in nets.items():
        m.load_state_dict(state["nets"][k])
    return nets


# --------------------------------------------------------------------------- sampling


@torch.no_grad()
def generate(
    cfg: BenchConfig, nets: dict, n: int, seed: int, device: torch.device, batch: int = 64
) -> np.ndarray:
    """``n`` samples as uint8 (n, H, W, 3). Latents/noise are drawn on the CPU from ``seed``
    so a given seed yields the same images on any device (up to float round-off)."""
    gen = torch.Generator().manual_seed(seed)
    for m in nets.values():
        m.eval()
    outs = []
    for i in range(0, n, batch):
        b = min(batch, n - i)
        if cfg.kind == "gan":
            x = nets["G"](torch.randn(b, cfg.z_dim, generator=gen).to(device))
        elif cfg.kind == "vae":
            vae = nets["vae"]
            x = vae.decoder(vae.latent(torch.randn(b, cfg.z_dim, generator=gen).to(device)))
        else:
            noise = torch.randn(b, 3, cfg.size, cfg.size, generator=gen).to(device)
            x = nets["ddpm"].sample(noise, int(cfg.extra.get("sample_steps", 50)))
        outs.append(x.float().cpu())
    x = torch.cat(outs)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def diversity(images: np.ndarray) -> float:
    """Mean pairwise RMS distance between images (uint8 NHWC) in [0, 1] units.

    Compared against the same figure for real crops it flags mode collapse."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    sq = (x**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2 * x @ x.T, 0.0) / x.shape[1]
    iu = np.triu_indices(len(x), 1)
    return float(np.sqrt(d2[iu]).mean()) if len(iu[0]) else 0.0


def save_png(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, optimize=True)


def loss_summary(history: dict[str, list[list[float]]]) -> dict[str, dict[str, float]]:
    """First and last logged window means of each loss, so the manifest shows the trend."""
    out = {}
    for k, pts in history.items():
        if pts:
            first, last = pts[0][1], pts[-1][1]
            out[k] = {
                "first": round(first, 5),
                "final": round(last, 5),
                "min": round(min(v for _, v in pts), 5),
            }
            if not all(math.isfinite(v) for _, v in pts):
                out[k]["non_finite"] = True
    return out
