"""Training-time processing that published images go through.

Fingerprints must survive what happens to images after generation: platforms
re-encode JPEG (quality 60-100), resize (0.5-2x with common filters), crop and
sometimes blur. Each transform is applied with a probability; the order follows
a typical publication chain: resize -> crop -> blur -> JPEG.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageFilter

_FILTERS = (
    Image.Resampling.BILINEAR,
    Image.Resampling.BICUBIC,
    Image.Resampling.LANCZOS,
    Image.Resampling.BOX,
    Image.Resampling.NEAREST,
)


@dataclass
class AugmentConfig:
    p_resize: float = 0.3
    scale_range: tuple[float, float] = (0.5, 2.0)
    p_blur: float = 0.1
    blur_sigma: tuple[float, float] = (0.3, 1.0)
    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 100)

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENT = AugmentConfig(p_resize=0.0, p_blur=0.0, p_jpeg=0.0)


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random size x size crop of (H, W, 3); reflect-pad images that are smaller."""
    h, w = img.shape[:2]
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        img = np.pad(
            img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="reflect"
        )
        h, w = img.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return img[y : y + size, x : x + size]


def augment(img: np.ndarray, size: int, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (size, size, 3) in [0, 1], processed like a published image."""
    pil: Image.Image | None = None
    if rng.random() < cfg.p_resize:
        lo, hi = np.log(cfg.scale_range[0]), np.log(cfg.scale_range[1])
        s = float(np.exp(rng.uniform(lo, hi)))
        pil = Image.fromarray(img)
        new = (max(8, round(pil.width * s)), max(8, round(pil.height * s)))
        pil = pil.resize(new, _FILTERS[int(rng.integers(len(_FILTERS)))])
        img = np.asarray(pil)
    img = random_crop(img, size, rng)
    if rng.random() < cfg.p_blur:
        pil = Image.fromarray(np.ascontiguousarray(img))
        img = np.asarray(pil.filter(ImageFilter.GaussianBlur(rng.uniform(*cfg.blur_sigma))))
    if rng.random() < cfg.p_jpeg:
        buf = io.BytesIO()
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=q)
        buf.seek(0)
        img = np.asarray(Image.open(buf).convert("RGB"))
    return img.astype(np.float32) / 255.0
