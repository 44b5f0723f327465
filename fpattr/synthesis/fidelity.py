"""Do synthetic models look like real generators in the fingerprint domain?

The paper's check (Yang et al. 2025): describe each model by the mean azimuthal
power spectrum of its images' denoiser residuals, then compare the set of
synthetic models with a set of real generators by the Frechet distance (FD) of
the two distributions, and report diversity (how spread out the synthetic
models are) next to the real generators' spread. A zoo whose models all look
alike, or look like nothing real, teaches the extractor the wrong thing.

Spectra of images of different sizes are compared on the *normalised* radius
(0 = DC, 1 = Nyquist), resampled to a common number of bins, and divided by the
number of pixels (a power density), so a 32 px and a 512 px image of the same
generator land on the same curve.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fpattr import signal
from fpattr.errors import ImageLoadError, UsageError

#: Radial bins of a profile before the DC bin is dropped (15 features: small enough
#: for covariances estimated from a few dozen models).
DEFAULT_BINS = 16
#: Folders of a real-generators set that are not generators (real photos).
DEFAULT_EXCLUDE = ("real",)


def _profile_one(image: np.ndarray, n_bins: int) -> np.ndarray:
    x = np.asarray(image)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {x.shape}")
    h, w = x.shape[:2]
    spec = signal.power_spectrum(signal.residual(signal.to_gray(x))) / float(h * w)
    native = max(2, min(h, w) // 2)
    prof = np.log10(signal.azimuthal_average(spec, native).astype(np.float64) + 1e-12)
    # resample on the normalised radius so every image size gives the same bins
    target = np.interp(np.linspace(0, 1, n_bins), np.linspace(0, 1, native), prof)
    return target[1:]  # DC carries no fingerprint (and is ~0 after the mean is removed)


def spectral_profile(
    images: np.ndarray | Iterable[np.ndarray], n_bins: int = DEFAULT_BINS
) -> np.ndarray:
    """Per-image log10 azimuthal power spectrum of the denoiser residual.

    ``images``: (N, H, W, 3) uint8 or float in [0, 1], or an iterable of (H, W, 3)
    arrays of any sizes. Returns float64 (N, n_bins - 1), radius 1/(n_bins-1) .. 1.
    """
    rows = [_profile_one(img, n_bins) for img in images]
    return np.stack(rows) if rows else np.zeros((0, n_bins - 1))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to two sets of feature rows.

    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, with the usual care:
    a diagonal offset when the product is singular (fewer samples than features),
    tiny imaginary parts dropped, never negative. One row gives a zero covariance.
    """
    from scipy import linalg

    a = np.atleast_2d(np.asarray(feats_a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(feats_b, dtype=np.float64))
    if a.shape[1] != b.shape[1] or len(a) == 0 or len(b) == 0:
        raise ValueError(f"feature sets must be non-empty with equal widths: {a.shape}, {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.cov(a, rowvar=False) if len(a) > 1 else np.zeros((a.shape[1],) * 2)
    cov_b = np.cov(b, rowvar=False) if len(b) > 1 else np.zeros((b.shape[1],) * 2)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on singular products; handled below
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(cov_a)) * eps
            covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    fd = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean)
    return float(max(fd, 0.0))


def diversity(profiles: np.ndarray) -> float:
    """Mean pairwise Euclidean distance between models' mean profiles (0 for < 2 models)."""
    from scipy.spatial.distance import pdist

    p = np.asarray(profiles, dtype=np.float64)
    return float(pdist(p).mean()) if len(p) > 1 else 0.0


def _model_dirs(root: Path, exclude: Sequence[str] = ()) -> list[Path]:
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and d.name not in exclude
    )


def model_profiles(
    root: Path,
    *,
    n_bins: int = DEFAULT_BINS,
    max_images: int = 64,
    exclude: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Folder per model -> {model name: mean spectral profile}. Unreadable files are
    skipped (noted on stderr); folders without a readable image are left out."""
    from fpattr.synthesis.photos import image_files, load_rgb

    out: dict[str, np.ndarray] = {}
    failed = 0
    for d in _model_dirs(root, exclude):
        profs = []
        for path in image_files(d)[:max_images]:
            try:
                profs.append(_profile_one(load_rgb(path), n_bins))
            except ImageLoadError:
                failed += 1
        if profs:
            out[d.name] = np.mean(profs, axis=0)
    if failed:
        print(f"note: {failed} unreadable image(s) skipped under {root}", file=sys.stderr)
    return out


def _zoo_families(zoo_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """model id -> family, from the zoo manifest or each model's done.json."""
    fam: dict[str, str] = {}
    manifest = zoo_dir / "manifest.json"
    if manifest.is_file():
        try:
            for m in json.loads(manifest.read_text(encoding="utf-8")).get("models", []):
                fam[m["id"]] = m["family"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    for name in names:
        if name not in fam:
            try:
                fam[name] = json.loads((zoo_dir / name / "done.json").read_text())["family"]
            except (OSError, ValueError, KeyError, TypeError):
                fam[name] = "unknown"
    return fam


def fidelity(
    zoo_dir: Path,
    real_gen_dir: Path,
    *,
    n_bins: int = DEFAULT_BINS,
    max_images: int = 64,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    plot: Path | None = None,
) -> dict[str, Any]:
    """Compare a synthetic zoo with real generators (both: one folder of images per model).

    Returns FD (all synthetic models vs all real generators, and per family),
    diversity of each set, and coverage (mean distance from each real generator
    to its nearest synthetic model, next to the real generators' own mean
    nearest-neighbour distance). ``exclude`` names folders of ``real_gen_dir`` that
    are not generators (``real`` photos); their spectrum is still drawn in the plot.
    """
    zoo_dir, real_gen_dir = Path(zoo_dir), Path(real_gen_dir)
    for p in (zoo_dir, real_gen_dir):
        if not p.is_dir():
            raise UsageError(f"{p} is not a folder (expected one sub-folder of images per model)")
    syn = model_profiles(zoo_dir, n_bins=n_bins, max_images=max_images)
    real = model_profiles(real_gen_dir, n_bins=n_bins, max_images=max_images, exclude=exclude)
    if len(syn) < 2 or len(real) < 2:
        raise UsageError(
            f"need at least 2 models on each side (synthetic: {len(syn)} in {zoo_dir}, "
            f"real: {len(real)} in {real_gen_dir})"
        )
    fams = _zoo_families(zoo_dir, syn)
    S = np.stack(list(syn.values()))
    R = np.stack(list(real.values()))
    from scipy.spatial.distance import cdist

    def nn_real(x: np.ndarray) -> float:
        return float(cdist(R, x).min(axis=1).mean())

    dist_rr = cdist(R, R)
    np.fill_diagonal(dist_rr, np.inf)
    result: dict[str, Any] = {
        "n_bins": n_bins,
        "fd": frechet_distance(S, R),
        "synthetic": {"n_models": len(S), "diversity": diversity(S)},
        "real": {"n_models": len(R), "diversity": diversity(R), "models": list(real)},
        "coverage": {"real_to_synthetic": nn_real(S), "real_to_real": float(dist_rr.min(1).mean())},
        "families": {},
    }
    result["diversity_ratio"] = result["synthetic"]["diversity"] / max(
        result["real"]["diversity"], 1e-12
    )
    by_family: dict[str, list[str]] = {}
    for name in syn:
        by_family.setdefault(fams[name], []).append(name)
    for fam, names in sorted(by_family.items()):
        F = np.stack([syn[n] for n in names])
        result["families"][fam] = {
            "n_models": len(F),
            "fd": frechet_distance(F, R),
            "diversity": diversity(F),
            "real_to_synthetic": nn_real(F),
        }
    if plot is not None:
        photos = model_profiles(
            real_gen_dir,
            n_bins=n_bins,
            max_images=max_images,
            exclude=[d.name for d in _model_dirs(real_gen_dir) if d.name not in exclude],
        )
        plot_spectra(
            {f: np.stack([syn[n] for n in names]) for f, names in by_family.items()},
            R,
            Path(plot),
            photos=np.stack(list(photos.values())) if photos else None,
        )
        result["plot"] = str(plot)
    return result


def plot_spectra(
    families: dict[str, np.ndarray],
    real: np.ndarray,
    path: Path,
    photos: np.ndarray | None = None,
) -> None:
    """Mean +- std of the model profiles of each family vs the real generators (PNG)."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install matplotlib") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = real.shape[1]
    r = np.linspace(0, 1, n + 1)[1:]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for prof in real:
        ax.plot(r, prof, color="black", alpha=0.15, lw=0.8)
    ax.plot(r, real.mean(0), color="black", lw=2.2, label=f"real generators ({len(real)})")
    for i, (fam, prof) in enumerate(sorted(families.items())):
        color = f"C{i}"
        mu, sd = prof.mean(0), prof.std(0)
        ax.plot(r, mu, color=color, lw=1.8, label=f"{fam} ({len(prof)})")
        ax.fill_between(r, mu - sd, mu + sd, color=color, alpha=0.18)
    if photos is not None:
        ax.plot(r, photos.mean(0), color="grey", ls="--", lw=1.5, label="real photos")
    ax.set_xlabel("normalised spatial frequency (1 = Nyquist)")
    ax.set_ylabel("log10 power of the denoiser residual")
    ax.set_title("Mean residual spectra per model: synthetic families vs real generators")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from fpattr.io.atomic import atomic_open

    try:
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format="png")
    finally:
        plt.close(fig)
