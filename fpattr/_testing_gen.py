"""Images from fake 'generators' with distinct, known traces (re-exported by fpattr.testing).

Real generators leave periodic traces of their up-sampling layers; these
imitate three of them so tests of backbones, galleries and the CLI have a
ground truth without shipping data:

* ``nearest``: content made at half resolution, nearest-neighbour up-sampled;
* ``bilinear``: the same, bilinear up-sampling;
* ``checker``: full-resolution content plus a fixed 4x4 periodic pattern
  (a transposed-convolution checkerboard).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENERATOR_KINDS = ("nearest", "bilinear", "checker")


def _content(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth random 'scene' content in [0, 1], (size, size, 3)."""
    coarse = rng.random((size // 8 + 1, size // 8 + 1, 3))
    yy = np.linspace(0, coarse.shape[0] - 1, size)
    xx = np.linspace(0, coarse.shape[1] - 1, size)
    y0, x0 = np.floor(yy).astype(int), np.floor(xx).astype(int)
    y1, x1 = np.minimum(y0 + 1, coarse.shape[0] - 1), np.minimum(x0 + 1, coarse.shape[1] - 1)
    fy, fx = (yy - y0)[:, None, None], (xx - x0)[None, :, None]
    img = (
        coarse[y0][:, x0] * (1 - fy) * (1 - fx)
        + coarse[y1][:, x0] * fy * (1 - fx)
        + coarse[y0][:, x1] * (1 - fy) * fx
        + coarse[y1][:, x1] * fy * fx
    )
    return np.clip(img + rng.normal(0, 0.04, img.shape), 0, 1)


def _bilinear2x(x: np.ndarray) -> np.ndarray:
    up = np.repeat(np.repeat(x, 2, 0), 2, 1)
    padded = np.pad(up, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return (
        padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] + 4 * up
    ) / 8


def generator_image(kind: str, size: int = 64, seed: int = 0, trace: int = 1234) -> np.ndarray:
    """One (size, size, 3) uint8 image from a fake generator of ``kind``.

    ``trace`` seeds the checker pattern: two ``checker`` generators with different
    ``trace`` are different models of the same architecture.
    """
    rng = np.random.default_rng(seed)
    if kind == "nearest":
        small = _content(rng, size // 2)
        img = np.repeat(np.repeat(small, 2, 0), 2, 1)
    elif kind == "bilinear":
        img = _bilinear2x(_content(rng, size // 2))
    elif kind == "checker":
        tile = np.random.default_rng(trace).normal(0, 0.06, (4, 4, 3))  # the model's own trace
        img = _content(rng, size) + np.tile(tile, (size // 4, size // 4, 1))
    else:
        raise ValueError(f"unknown generator kind {kind!r}; expected one of {GENERATOR_KINDS}")
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_generator_images(
    folder: Path,
    kind: str,
    *,
    n: int = 5,
    size: int = 64,
    seed: int = 0,
    prefix: str = "",
    trace: int = 1234,
) -> list[Path]:
    """Write ``n`` PNGs of one fake generator into ``folder``; returns their paths."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        p = folder / f"{prefix}{k:03d}.png"
        Image.fromarray(generator_image(kind, size, seed * 1000 + k, trace)).save(p)
        paths.append(p)
    return paths
