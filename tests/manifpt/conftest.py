"""A tiny 'real' world for ManiFPT tests: photo-like smooth images with sensor noise.

Helpers are handed out as fixtures (the suite runs with --import-mode=importlib, so
test modules cannot import each other).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SIZE = 32  # patch / view side: small keeps every test fast


def smooth_image(seed: int, size: int = 64) -> np.ndarray:
    """(size, size, 3) uint8: bicubic-upscaled random colours + mild noise, no generator trace."""
    rng = np.random.default_rng(seed)
    small = (rng.random((size // 8, size // 8, 3)) * 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))
    noisy = big.astype(np.float64) + rng.normal(0, 2.0, big.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def write_real(folder: Path, seeds: range, size: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in seeds:
        p = folder / f"real_{s:03d}.png"
        Image.fromarray(smooth_image(s, size)).save(p)
        paths.append(p)
    return paths


def views_of(path: Path, size: int = SIZE) -> np.ndarray:
    from fpattr.io import load_image
    from fpattr.views import make_views

    return make_views(load_image(path).pixels, size, 4, "grid")[0]


@pytest.fixture(scope="session")
def real_dir(tmp_path_factory) -> Path:
    """12 real 64x64 images: grid crops of side 32 tile each one exactly (4 per image)."""
    folder = tmp_path_factory.mktemp("real")
    write_real(folder, range(12))
    return folder


@pytest.fixture(name="smooth_image")
def _smooth_image() -> Callable[..., np.ndarray]:
    return smooth_image


@pytest.fixture(name="views_of")
def _views_of() -> Callable[..., np.ndarray]:
    return views_of


@pytest.fixture(name="write_real")
def _write_real() -> Callable[..., list[Path]]:
    return write_real
