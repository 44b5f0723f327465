"""Views: the crops a backbone sees of one image.

Crops are taken at native resolution and never resized: resampling would
overwrite exactly the high-frequency traces that identify a generator. An
image smaller than the view size is reflect-padded (and the report says so).
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("grid", "center")


def _positions(length: int, size: int, n: int) -> list[int]:
    """n evenly spread start offsets of a window of `size` inside `length`."""
    if length <= size or n <= 1:
        return [max(0, (length - size) // 2)]
    return sorted({round(i * (length - size) / (n - 1)) for i in range(n)})


def grid_shape(n_views: int) -> tuple[int, int]:
    """Rows x cols of crops for a requested view count (1, 4, 9, 16 ...: squares)."""
    side = max(1, int(round(np.sqrt(n_views))))
    return side, side


def pad_to(pixels: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
    """Reflect-pad (H, W, 3) up to at least size x size; returns (array, padded?)."""
    h, w = pixels.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if not ph and not pw:
        return pixels, False
    pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
    return np.pad(pixels, pad, mode="reflect"), True  # numpy reflects repeatedly if needed


def make_views(
    pixels: np.ndarray, size: int, n_views: int = 4, strategy: str = "grid"
) -> tuple[np.ndarray, dict]:
    """Crops of an (H, W, 3) float32 image -> ((V, size, size, 3) float32, info).

    ``grid`` spreads up to ``n_views`` crops evenly over the image (rounded to a
    square grid, fewer when the image is small so crops do not repeat);
    ``center`` takes one central crop. ``info`` records what was done.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown view strategy {strategy!r}; expected one of {STRATEGIES}")
    pixels, padded = pad_to(pixels, size)
    h, w = pixels.shape[:2]
    if strategy == "center":
        n_views = 1
    rows, cols = grid_shape(n_views)
    ys, xs = _positions(h, size, rows), _positions(w, size, cols)
    views = np.stack([pixels[y : y + size, x : x + size] for y in ys for x in xs])
    info = {"n_views": int(views.shape[0]), "padded": padded}
    return np.ascontiguousarray(views, dtype=np.float32), info
