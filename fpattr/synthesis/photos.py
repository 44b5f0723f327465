"""Real photos that synthetic models learn to (re)produce.

From ``--real DIR`` when given (e.g. BSDS500), else from photos that ship inside
installed packages (scikit-image's sample data, scikit-learn's sample images):
fpattr never downloads anything. Crops are random-resized (a random square of
the photo, down-scaled to ``size`` with an anti-aliasing filter) because real
generators are trained on whole, down-scaled images: plain crops at the
camera's resolution would be blurrier per pixel than anything a generator makes.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fpattr.errors import ImageLoadError, UsageError

#: Colour photographs bundled with scikit-image (no download needed; others are fetched).
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "hubble_deep_field.jpg",
)
#: Colour photographs bundled with scikit-learn (``sklearn/datasets/images``).
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


def _package_dir(name: str) -> Path | None:
    """A package's folder without importing it (importing scikit-learn takes seconds)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_photo_paths() -> list[Path]:
    """Paths of the sample photos shipped by installed packages (may be empty)."""
    paths: list[Path] = []
    skimage_dir = _package_dir("skimage")
    if skimage_dir is not None:
        paths += [skimage_dir / "data" / f for f in SKIMAGE_PHOTOS]
    sklearn_dir = _package_dir("sklearn")
    if sklearn_dir is not None:
        paths += [sklearn_dir / "datasets" / "images" / f for f in SKLEARN_PHOTOS]
    return [p for p in paths if p.is_file()]


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden entries skipped), in a stable order."""
    from fpattr.io import iter_inputs
    from fpattr.io.loader import IMAGE_EXTENSIONS

    return [
        item.path
        for item in iter_inputs([folder], extensions=IMAGE_EXTENSIONS)
        if item.error is None
    ]


def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] through the project's safe loader (ImageLoadError on failure)."""
    from fpattr.io import load_image

    return np.asarray(load_image(path).pixels, dtype=np.float32)


def _crops_of(
    pixels: np.ndarray, n: int, size: int, rng: np.random.Generator, max_scale: float
) -> Iterator[np.ndarray]:
    """``n`` random-resized square crops of one photo, each (size, size, 3)."""
    from PIL import Image

    h, w = pixels.shape[:2]
    img = Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8))
    short = min(h, w)
    hi = min(short, size * max_scale)
    for _ in range(n):
        side = int(round(np.exp(rng.uniform(np.log(size), np.log(max(hi, size))))))
        side = min(side, short)
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        crop = img.resize((size, size), Image.Resampling.LANCZOS, box=(x, y, x + side, y + side))
        yield np.asarray(crop, dtype=np.float32) / 255.0


def load_photos(
    real_dir: Path | None,
    *,
    size: int,
    n_crops: int,
    seed: int,
    max_scale: float = 4.0,
    warn: bool = True,
) -> np.ndarray:
    """``n_crops`` random crops, float32 (n_crops, size, size, 3) in [0, 1].

    Deterministic in ``seed``. Crops are spread evenly over the photos (at most
    ``n_crops`` photos are decoded, one at a time, so memory stays small); each
    crop covers a random square of ``size`` to ``size * max_scale`` pixels
    (log-uniform) resized to ``size``. Photos smaller than ``size`` and files
    that fail to load are skipped with a note on stderr.
    """
    if size < 8 or n_crops < 1:
        raise UsageError(f"need size >= 8 and n_crops >= 1, got size={size}, n_crops={n_crops}")
    if real_dir is not None:
        real_dir = Path(real_dir)
        if not real_dir.is_dir():
            raise UsageError(f"real photo folder {real_dir} does not exist")
        paths = image_files(real_dir)
        where = str(real_dir)
    else:
        paths = bundled_photo_paths()
        where = "photos bundled with scikit-image / scikit-learn"
    if not paths:
        raise UsageError(f"no images found in {where}; pass a folder of photos with --real DIR")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paths))[: min(len(paths), n_crops)]
    chosen = [paths[i] for i in order]
    out: list[np.ndarray] = []
    todo = n_crops
    skipped: list[str] = []
    # Round-robin over the chosen photos; a photo that fails passes its share on.
    for k, path in enumerate(chosen):
        share = -(-todo // (len(chosen) - k))  # ceil: spread what is left evenly
        try:
            pixels = load_rgb(path)
        except ImageLoadError as exc:
            skipped.append(f"{path}: {exc.reason}")
            continue
        if min(pixels.shape[:2]) < size:
            skipped.append(f"{path}: smaller than {size} px")
            continue
        out.extend(_crops_of(pixels, share, size, rng, max_scale))
        todo -= share
    if warn and skipped:
        print(f"note: skipped {len(skipped)} photo(s): {skipped[:3]}", file=sys.stderr)
    if not out:
        raise UsageError(f"no usable photos of at least {size} px in {where}")
    if len(out) < n_crops:  # every photo's share was taken but some failed: top up
        extra = rng.integers(0, len(out), n_crops - len(out))
        out.extend(out[i].copy() for i in extra)
    arr = np.stack(out[:n_crops]).astype(np.float32)
    return arr[rng.permutation(len(arr))]
