"""Training-time processing that published images go through.

Fingerprints must survive what happens to images after generation: platforms
re-encode JPEG (quality 60-100), resize (0.5-2x with common filters), crop and
sometimes blur, and an image shared twice goes through that more than once.
Each transform is applied with a probability. One *round* follows a typical
publication chain: resize -> crop -> blur -> JPEG/WebP; ``rounds`` > 1 repeats
resize and re-encoding up to that many times (a repost of a repost) before the
final crop, as ../shared/real-decoders.md describes the images analysts meet.
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
    #: most publication rounds (resize + re-encode) per view; 1 = v1's single pass
    rounds: int = 1
    #: share of re-encodes written as WebP instead of JPEG (same quality range)
    p_webp: float = 0.0

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


def _encode(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One lossy re-encode (JPEG, or WebP with probability ``p_webp``) at a random quality."""
    buf = io.BytesIO()
    q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    fmt = "WEBP" if cfg.p_webp and rng.random() < cfg.p_webp else "JPEG"
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format=fmt, quality=q)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _resize(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    lo, hi = np.log(cfg.scale_range[0]), np.log(cfg.scale_range[1])
    s = float(np.exp(rng.uniform(lo, hi)))
    pil = Image.fromarray(np.ascontiguousarray(img))
    new = (max(8, round(pil.width * s)), max(8, round(pil.height * s)))
    return np.asarray(pil.resize(new, _FILTERS[int(rng.integers(len(_FILTERS)))]))


def augment(img: np.ndarray, size: int, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (size, size, 3) in [0, 1], processed like a published image.

    With ``rounds == 1`` the draws are v1's exactly (resize, crop, blur, JPEG), so a
    v1 training run replays bit for bit.
    """
    rounds = 1 if cfg.rounds <= 1 else int(rng.integers(1, cfg.rounds + 1))
    for r in range(rounds):
        if rng.random() < cfg.p_resize:
            img = _resize(img, cfg, rng)
        if r < rounds - 1 and rng.random() < cfg.p_jpeg:
            img = _encode(img, cfg, rng)  # an earlier round's re-encode, before later resizing
    img = random_crop(img, size, rng)
    if rng.random() < cfg.p_blur:
        pil = Image.fromarray(np.ascontiguousarray(img))
        img = np.asarray(pil.filter(ImageFilter.GaussianBlur(rng.uniform(*cfg.blur_sigma))))
    if rng.random() < cfg.p_jpeg:
        img = _encode(img, cfg, rng)
    return img.astype(np.float32) / 255.0
