"""What happens to images as they travel, applied in memory: resizing, cropping, JPEG.

Two users:

* ``fpattr evaluate --resize/--crop/--jpeg`` degrades the bench's images
  (:class:`fpattr.evaluation.protocol.Transform`);
* ``fpattr gallery add`` enrols each reference's *processed copies* beside it
  (:data:`PROCESSINGS`: a JPEG 75 re-encoding and a x0.5 bicubic down-scaling), so that
  a query stored unlike the references (a JPEG query against PNG references, a query
  smaller than them) is decided with a calibration made of references that went
  through the same (:func:`query_processing`, ``DecisionPolicy(processed_references=)``).

Pixels are (H, W, 3) float32 in [0, 1] throughout, as :func:`fpattr.io.loader.load_image`
returns them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "PROCESSINGS",
    "PROCESSING_STRENGTH",
    "Processing",
    "center_crop",
    "codec",
    "estimate_jpeg_quality",
    "is_jpeg",
    "jpeg_reencode",
    "least_sides",
    "processed_loader",
    "query_processing",
    "resize_bicubic",
    "scaled_size",
]


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(W, H) of an image resized by ``scale``: each side rounded, at least 1 px."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_bicubic(pixels: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] -> bicubic resize by ``scale`` (each side rounded,
    at least 1 px), same convention. Per-channel float ("F") images: no 8-bit rounding
    before a JPEG step decides it."""
    from PIL import Image

    h, w = pixels.shape[:2]
    size = scaled_size(w, h, scale)
    chans = [
        np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize(size, 3))
        for c in range(3)
    ]  # 3 = Image.Resampling.BICUBIC
    return np.clip(np.stack(chans, axis=-1), 0.0, 1.0).astype(np.float32)


def center_crop(pixels: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` pixels. Raises ValueError for a smaller image."""
    h, w = pixels.shape[:2]
    if h < side or w < side:
        raise ValueError(f"image is {w}x{h}, smaller than --crop {side}")
    y, x = (h - side) // 2, (w - side) // 2
    return pixels[y : y + side, x : x + side]


def jpeg_reencode(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Round to 8 bits, encode as baseline JPEG at ``quality`` (Pillow/libjpeg, 4:2:0
    chroma), decode: the copy a sharing platform would serve."""
    from PIL import Image

    u8 = (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class Processing:
    """A chain in the order a sharing platform applies it: bicubic resize by ``resize``,
    a ``crop`` x ``crop`` center crop, JPEG at quality ``jpeg`` (None: that step is
    skipped; nothing set: the pixels pass through untouched)."""

    jpeg: int | None = None
    resize: float | None = None
    crop: int | None = None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.jpeg, self.resize, self.crop))

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if self.resize is not None and self.resize != 1.0:
            pixels = resize_bicubic(pixels, self.resize)
        if self.crop is not None:
            pixels = center_crop(pixels, self.crop)
        if self.jpeg is not None:
            pixels = jpeg_reencode(pixels, self.jpeg)
        return pixels


#: The processed copies ``gallery add`` enrols of each reference, by name. The two kinds
#: of query :func:`query_processing` recognises; measured on the public generators
#: (benchmarks/processed_reference_calibration.py, docs/benchmarks.md), calibrating on
#: them took the precision of named answers for such queries from 0.81 to 0.90 (JPEG 75)
#: and 0.59 to 0.88 (x0.5), at lower coverage.
PROCESSINGS: dict[str, Processing] = {
    "jpeg75": Processing(jpeg=75),
    "x0.5": Processing(resize=0.5),
}


#: The kinds of :data:`PROCESSINGS`, weakest change first (a tie between kinds goes to
#: the stronger).
PROCESSING_STRENGTH = ("jpeg75", "x0.5")

#: A query is decided as a x0.5 copy when its side is at most this share of the smallest
#: reference's (its area at most the square): nearer the copies' 0.5 than the references'
#: 1. A query one pixel smaller than the references is a crop or a trim, not a x0.5 copy
#: (a break-it pass: a 127 x 128 crop of an unseen generator was named on the x0.5
#: calibration while the clean one called it unknown).
X05_MAX_SCALE = 0.75
#: A JPEG query is decided as a JPEG 75 copy at this estimated quality or lower; above it
#: (a quality-95 or -100 save) it is nearer the clean references than the copies.
JPEG75_MAX_QUALITY = 90

#: The IJG (libjpeg) luminance quantization table at quality 50, natural order (ITU-T T.81
#: Annex K, table K.1); libjpeg scales it for every other quality (jcparam.c).
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip


def _ijg_tables() -> np.ndarray:
    """(100, 64) sorted luminance tables libjpeg writes at quality 1..100."""
    q = np.arange(1, 101, dtype=np.float64)[:, None]
    scale = np.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    return np.sort(np.clip(np.floor((_IJG_LUMA * scale + 50.0) / 100.0), 1, 255), axis=1)


_TABLES = _ijg_tables()


def estimate_jpeg_quality(luma_table: Any) -> int | None:
    """The libjpeg quality (1-100) whose luminance quantization table is nearest
    ``luma_table`` (64 values, any order: Pillow's ``JpegImageFile.quantization[0]``),
    by mean absolute difference of the sorted tables; encoders with their own tables
    (cameras, Photoshop) get the libjpeg quality that quantizes about as coarsely. None for
    anything that is not 64 positive numbers."""
    try:
        t = np.sort(np.asarray(list(luma_table), dtype=np.float64))
    except (TypeError, ValueError):
        return None
    if t.shape != (64,) or not np.all(np.isfinite(t)) or t.min() < 1:
        return None
    return int(np.argmin(np.abs(_TABLES - t).mean(axis=1))) + 1


def is_jpeg(fmt: str | None) -> bool:
    """Whether a Pillow format id is a JPEG: "JPEG", or "MPO" (the multi-picture JPEG
    cameras and phones write; its first frame is a JPEG)."""
    return fmt in ("JPEG", "MPO")


def codec(fmt: str | None) -> str | None:
    """The codec family of a Pillow format id: "JPEG" for JPEG and MPO (one codec, one
    artefact pattern), else the id itself."""
    return "JPEG" if is_jpeg(fmt) else fmt


def query_processing(
    query_format: str | None,
    query_size: tuple[int, int] | None,
    reference_formats: frozenset[str] | set[str],
    least_reference_sides: tuple[int, int] | None,
    *,
    jpeg_quality: int | None = None,
) -> str | None:
    """Which of :data:`PROCESSINGS` a query looks to have gone through, judged against a
    set of references: "x0.5" when both its sides are at most ``X05_MAX_SCALE`` of the
    references' (``query_size`` (W, H) against ``least_reference_sides``, the smallest
    short and long sides among them: :func:`least_sides`; a crop that keeps one side is
    not a down-scale; checked first, as the stronger change), "jpeg75" when it is a JPEG
    (or MPO), none of the references is, and its estimated quality (``jpeg_quality``,
    :func:`estimate_jpeg_quality`; None: unknown, taken as re-encoded) is at most
    ``JPEG75_MAX_QUALITY``, else None. Unrecorded sizes or formats (galleries enrolled
    before they were recorded) say nothing.

    The answer is an inference from the file, and can be wrong (a crop of both sides is
    not a down-scale): the calibration it picks never has a lower threshold than the
    clean one (``DecisionPolicy(threshold_floor=)``), so a wrong guess cannot raise the
    false-accept rate above its target.
    """
    if query_size is not None and least_reference_sides is not None:
        short, long_ = sorted(int(v) for v in query_size)
        ref_short, ref_long = least_reference_sides
        if short <= X05_MAX_SCALE * ref_short and long_ <= X05_MAX_SCALE * ref_long:
            return "x0.5"
    if is_jpeg(query_format) and reference_formats:
        if not any(is_jpeg(f) for f in reference_formats):
            if jpeg_quality is None or jpeg_quality <= JPEG75_MAX_QUALITY:
                return "jpeg75"
    return None


def least_sides(sizes: Any) -> tuple[int, int] | None:
    """(smallest short side, smallest long side) over (W, H) ``sizes``; None if none."""
    pairs = [sorted((int(w), int(h))) for w, h in sizes if w and h]
    if not pairs:
        return None
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


def processed_loader(processing: Processing, loader: Any = None) -> Any:
    """``loader(path, max_pixels=...)`` (default :func:`fpattr.io.loader.load_image`)
    followed by ``processing``, for :class:`fpattr.pipeline.Embedder`'s ``loader``. A
    processing that fails on an image (a crop larger than it) is that image's
    :class:`fpattr.errors.ImageLoadError`."""
    from fpattr.errors import ImageLoadError
    from fpattr.io.loader import load_image

    base = loader or load_image

    def load(path: Any, *, max_pixels: int) -> Any:
        img = base(path, max_pixels=max_pixels)
        try:
            img.pixels = processing(img.pixels)
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop the run
            raise ImageLoadError(path, f"processing: {exc}") from exc
        img.height, img.width = img.pixels.shape[:2]
        return img

    return load
