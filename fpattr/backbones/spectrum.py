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

VERSION = 1


class SpectrumBackbone(Backbone):
    name = "spectrum"

    def __init__(self, size: int = 64, views: int = 4, radial_weight: float = 0.5) -> None:
        if size < 16 or size % 2:
            raise ValueError("spectrum size must be an even number >= 16")
        self.input_size = int(size)
        self.default_views = int(views)
        self.radial_weight = float(radial_weight)
        self._config = {"name": self.name, "version": VERSION, "size": self.input_size,
                        "radial_weight": self.radial_weight}
        h = w = self.input_size
        yy, xx = np.indices((h, w))
        rr = np.hypot(yy - h // 2, xx - w // 2)
        self._ring = np.minimum(rr.round().astype(int), h // 2)
        self._ring_count = np.bincount(self._ring.ravel()).astype(np.float32)
        self._half = slice(0, h // 2 + 1)  # the spectrum of a real signal is symmetric

    @property
    def id(self) -> str:
        return f"spectrum-v{VERSION}-s{self.input_size}"

    @property
    def sha256(self) -> str:
        return config_sha256(self._config)

    def embed(self, views: np.ndarray) -> np.ndarray:
        gray = signal.to_gray(np.asarray(views, dtype=np.float32))
        logp = np.log(signal.power_spectrum(signal.residual(gray)) + 1e-8)
        n = logp.shape[0]
        flat = logp.reshape(n, -1)
        ring = self._ring.ravel()
        radial = np.stack([np.bincount(ring, weights=row) for row in flat]) / self._ring_count
        aniso = logp - radial[:, self._ring]
        aniso = aniso[:, self._half].reshape(n, -1)
        radial = radial - radial.mean(axis=1, keepdims=True)
        parts = [_l2(aniso), self.radial_weight * _l2(radial)]
        return np.concatenate(parts, axis=1).astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "config": self._config}


def _l2(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
