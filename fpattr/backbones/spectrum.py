"""Training-free backbone: power spectrum of the noise residual (numpy only).

Why it works at all: up-sampling layers leave periodic correlations that show up
as peaks and a characteristic fall-off in the residual's spectrum (Durall 2020,
Corvi 2023). The embedding has two parts, each L2-normalised:

* the 2-D log power spectrum with its radial profile removed (keeps the
  anisotropic peaks of up-sampling grids, drops image content's 1/f shape),
* the radial (azimuthal) profile itself, centered (interpolation filters change
  the high-frequency fall-off).

It needs no weights, so fpattr works before a learned extractor exists, and it
is the reference the learned extractor must beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fpattr import signal
from fpattr.backbones.base import Backbone, config_sha256
from fpattr.views import l2_normalize

VERSION = 1


class SpectrumBackbone(Backbone):
    name = "spectrum"

    def __init__(
        self, size: int = 64, views: int = 4, pool: int = 2, radial_weight: float = 1.0
    ) -> None:
        if size < 16 or size % 2 or size % pool:
            raise ValueError("spectrum size must be even, >= 16 and divisible by pool")
        self.input_size = int(size)
        self.default_views = int(views)
        self.pool = int(pool)
        self.radial_weight = float(radial_weight)
        self._config = {
            "name": self.name,
            "version": VERSION,
            "size": self.input_size,
            "pool": self.pool,
            "radial_weight": self.radial_weight,
        }
        n = self.input_size // self.pool
        yy, xx = np.indices((n, n))
        # ring index of each pooled cell, measured from the (pooled) DC position
        rr = np.hypot(yy + 0.5 - n / 2, xx + 0.5 - n / 2)
        ring = rr.round().astype(int)
        _, self._ring = np.unique(ring, return_inverse=True)  # dense ring ids, none empty
        self._ring = self._ring.reshape(n, n)
        self._ring_count = np.bincount(self._ring.ravel()).astype(np.float64)
        self._half = slice(0, n // 2 + 1)  # the spectrum of a real signal is symmetric

    @property
    def id(self) -> str:
        return f"spectrum-v{VERSION}-s{self.input_size}-p{self.pool}"

    @property
    def sha256(self) -> str:
        return config_sha256(self._config)

    def embed(self, views: np.ndarray) -> np.ndarray:
        x = np.asarray(views, dtype=np.float32).transpose(0, 3, 1, 2)  # N, 3, H, W
        # Average the three channels' periodograms: same trace, 3x less estimation noise.
        p = signal.power_spectrum(signal.residual(x)).mean(axis=1)
        if self.pool > 1:
            p = signal.block_pool(p, p.shape[-1] // self.pool)
        logp = np.log(p + 1e-8)
        n = logp.shape[0]
        ring = self._ring.ravel()
        flat = logp.reshape(n, -1)
        radial = np.stack([np.bincount(ring, weights=row) for row in flat]) / self._ring_count
        aniso = (logp - radial[:, self._ring])[:, self._half].reshape(n, -1)
        radial = radial - radial.mean(axis=1, keepdims=True)
        parts = [_l2(aniso), self.radial_weight * _l2(radial)]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "config": self._config}


def _l2(x: np.ndarray) -> np.ndarray:
    return l2_normalize(x - x.mean(axis=1, keepdims=True))
