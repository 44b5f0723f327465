"""Classic training-free baselines from the literature, as built-in backbones (numpy/scipy).

Each one re-implements a published method so fpattr's learned extractor can be
compared with it on the same galleries and metrics (docs/methods/baselines.md):

* ``marra``: averaged noise residual + normalized correlation (Marra et al. 2019);
* ``corvi``: averaged power spectrum of the noise residual (Corvi et al. 2023);
* ``dct``: log |DCT| coefficients (Frank et al. 2020), or the 1-D azimuthal
  log-spectrum (Durall et al. 2020) with ``features="azimuthal"``.

The per-view embedding is chosen so that the gallery centroid (the mean of
L2-normalised view embeddings) is the quantity each paper averages, and the cosine
to it is the score the paper uses, or as close as a cosine can get.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fpattr import signal
from fpattr.backbones.base import Backbone, config_sha256
from fpattr.views import l2_normalize

VERSION = 1
DENOISERS = ("wiener", "binomial")
CHANNELS = ("luma", "rgb")
BANDS = ("full", "low", "high")
SCALES = ("linear", "log")
DCT_FEATURES = ("dct", "azimuthal")


def _l2(x: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm rows: the cosine of two such rows is their Pearson correlation."""
    return l2_normalize(x - x.mean(axis=1, keepdims=True)).astype(np.float32)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


class _Baseline(Backbone):
    """Shared plumbing: size/views, a JSON config, an id naming the non-default options."""

    #: option -> default; non-default values are spelled out in ``id``
    _defaults: dict[str, Any] = {}

    def __init__(self, size: int, views: int, **options: Any) -> None:
        if int(size) < 8 or int(size) % 2:
            raise ValueError(f"{self.name} size must be even and >= 8, got {size}")
        if int(views) < 1:
            raise ValueError(f"{self.name} views must be >= 1, got {views}")
        self.input_size = int(size)
        self.default_views = int(views)
        self._options = options
        self._config = {"name": self.name, "version": VERSION, "size": self.input_size, **options}

    @property
    def id(self) -> str:
        extra = [
            f"{k}{v}" if not isinstance(v, str) else v
            for k, v in self._options.items()
            if v != self._defaults.get(k)
        ]
        return "-".join([f"{self.name}-v{VERSION}-s{self.input_size}", *extra])

    @property
    def sha256(self) -> str:
        return config_sha256(self._config)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "config": dict(self._config)}

    def _planes(self, views: np.ndarray, channels: str) -> np.ndarray:
        """(N, S, S, 3) -> (N, C, S, S) float32: luma (C=1) or the three colour planes."""
        x = np.asarray(views, dtype=np.float32)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"{self.name} expects views (N, S, S, 3), got {x.shape}")
        if channels == "luma":
            return signal.to_gray(x)[:, None]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _residual(x: np.ndarray, denoiser: str, window: int, sigma: float | None) -> np.ndarray:
    if denoiser == "wiener":
        return signal.wiener_residual(x, window, sigma)
    return signal.residual(x)


class MarraBackbone(_Baseline):
    """Averaged noise residual (Marra et al., MIPR 2019).

    The embedding of a view is its noise residual itself, zero-mean and unit-norm,
    flattened. The gallery centroid is then the averaged residual, i.e. the model's
    fingerprint, and the cosine to it is the normalized correlation of the paper.
    The residual is position-dependent: it only matches when views are aligned
    (same-size images, grid crops at the same offsets), as in the paper.
    """

    name = "marra"
    _defaults = {"denoiser": "wiener", "window": 3, "sigma": None, "channels": "luma"}

    def __init__(
        self,
        size: int = 64,
        views: int = 4,
        denoiser: str = "wiener",
        window: int = 3,
        sigma: float | None = None,
        channels: str = "luma",
    ) -> None:
        if int(window) < 3 or int(window) % 2 == 0:
            raise ValueError(f"marra window must be odd and >= 3, got {window}")
        if sigma is not None and not float(sigma) > 0:
            raise ValueError(f"marra sigma must be > 0 or None (estimate), got {sigma}")
        super().__init__(
            size,
            views,
            denoiser=_choice("denoiser", denoiser, DENOISERS),
            window=int(window),
            sigma=None if sigma is None else float(sigma),
            channels=_choice("channels", channels, CHANNELS),
        )

    def embed(self, views: np.ndarray) -> np.ndarray:
        o = self._options
        x = self._planes(views, o["channels"])
        r = _residual(x, o["denoiser"], o["window"], o["sigma"])
        return _l2(r.reshape(len(r), -1))


class CorviBackbone(_Baseline):
    """Averaged power spectrum of the noise residual (Corvi et al., ICASSP 2023).

    The embedding of a view is its fft-shifted residual power spectrum |FFT2(r)|^2
    (averaged over colour channels) at full view resolution, DC bin dropped,
    zero-mean/unit-norm. On the default linear scale the gallery centroid is an
    average of power spectra, the plot the paper reads up-sampling peaks from;
    ``scale="log"`` averages log-spectra instead (a geometric mean: flatter, noisier).
    Unlike ``spectrum`` nothing is pooled and the radial fall-off is kept.
    """

    name = "corvi"
    _defaults = {"denoiser": "binomial", "channels": "rgb", "scale": "linear", "band": "full"}

    def __init__(
        self,
        size: int = 64,
        views: int = 4,
        denoiser: str = "binomial",
        channels: str = "rgb",
        scale: str = "linear",
        band: str = "full",
    ) -> None:
        super().__init__(
            size,
            views,
            denoiser=_choice("denoiser", denoiser, DENOISERS),
            channels=_choice("channels", channels, CHANNELS),
            scale=_choice("scale", scale, SCALES),
            band=_choice("band", band, BANDS),
        )
        s = self.input_size
        yy, xx = np.indices((s, s))
        # the central S/2 x S/2 block of the shifted spectrum: |frequency| < Nyquist / 2
        q = s // 4
        low = (np.abs(yy - s // 2 + 0.5) < q) & (np.abs(xx - s // 2 + 0.5) < q)
        keep = {"full": np.ones((s, s), bool), "low": low, "high": ~low}[band]
        keep[s // 2, s // 2] = False  # DC is 0 after mean removal: log would make it an outlier
        self._keep = keep.ravel()

    def spectrum_image(self, embedding: np.ndarray) -> np.ndarray:
        """(S, S) map of an embedding or centroid, to display like the paper; NaN = not kept."""
        out = np.full(self._keep.size, np.nan, np.float32)
        out[self._keep] = np.asarray(embedding, np.float32).ravel()
        return out.reshape(self.input_size, self.input_size)

    def embed(self, views: np.ndarray) -> np.ndarray:
        o = self._options
        x = self._planes(views, o["channels"])
        p = signal.power_spectrum(_residual(x, o["denoiser"], 3, None)).mean(axis=1)
        p = p.reshape(len(p), -1)[:, self._keep].astype(np.float64)
        if o["scale"] == "log":
            # floor relative to each view's mean power: scale-free, never log(0)
            p = np.log(p + 1e-6 * p.mean(axis=1, keepdims=True) + 1e-30)
        return _l2(p)


class DctBackbone(_Baseline):
    """Log-scaled DCT coefficients (Frank et al., ICML 2020) or Durall's azimuthal spectrum.

    ``features="dct"``: orthonormal 2-D DCT-II of the luma view, log(|c| + eps),
    standardised over the coefficients of each view (Frank et al. standardise each
    coefficient with dataset statistics; a training-free backbone has no dataset).
    ``features="azimuthal"``: the 1-D azimuthal average of the luma's log power
    spectrum (Durall et al. 2020), DC bin dropped, zero-mean/unit-norm so the cosine is
    a Pearson correlation (the paper min-max normalises it for a trained classifier).
    """

    name = "dct"
    _defaults = {"features": "dct", "eps": 1e-4}

    def __init__(
        self, size: int = 64, views: int = 4, features: str = "dct", eps: float = 1e-4
    ) -> None:
        if not float(eps) > 0:
            raise ValueError(f"dct eps must be > 0, got {eps}")
        super().__init__(
            size, views, features=_choice("features", features, DCT_FEATURES), eps=float(eps)
        )

    def embed(self, views: np.ndarray) -> np.ndarray:
        x = self._planes(views, "luma")[:, 0]
        if self._options["features"] == "dct":
            feats = log_dct(x, self._options["eps"]).reshape(len(x), -1)
            feats = feats - feats.mean(axis=1, keepdims=True)
            return (feats / np.maximum(feats.std(axis=1, keepdims=True), 1e-12)).astype(np.float32)
        p = signal.power_spectrum(x).astype(np.float64)
        logp = np.log(p + 1e-6 * p.mean(axis=(1, 2), keepdims=True) + 1e-30)
        return _l2(signal.azimuthal_average(logp)[:, 1:])


def log_dct(x: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """log(|DCT-II(x)| + eps) over the last two axes: Frank et al.'s feature, before scaling.

    eps is in [0, 1] pixel units; 1e-4 sits below 8-bit quantisation noise (~1e-3 per
    orthonormal coefficient), so it floors only coefficients that carry no information.
    """
    return np.log(np.abs(signal.dct2(x)) + np.float32(eps)).astype(np.float32)
