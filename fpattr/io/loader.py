"""Decode one untrusted image file into float RGB pixels, or refuse it with one clear reason.

Inputs come from the wild (scraped folders, evidence dumps), so the loader is written as a
boundary: the file is read once (the hash covers exactly the decoded bytes), the header is
checked before any pixel memory is allocated, only a short list of well-trodden formats is
accepted, and every failure leaves as :class:`~fpattr.errors.ImageLoadError`. Pixel values are
the generator's fingerprint, so nothing is silently altered: every conversion is recorded.

Metadata never changes the pixels: the EXIF Orientation tag is recorded
(:attr:`LoadedImage.orientation`), not applied, because adding that tag alone to byte-identical
pixels must not change the fingerprint. :func:`oriented` applies it for display (thumbnails).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import struct
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from PIL import (
    BmpImagePlugin,  # noqa: F401  (imported to register the format with Pillow)
    GifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
)

from fpattr.errors import ImageLoadError

try:  # WebP support is an optional part of some Pillow builds.
    from PIL import WebPImagePlugin  # noqa: F401
except ImportError:  # pragma: no cover - depends on the Pillow build
    pass

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_FILE_BYTES",
    "MAX_SIDE",
    "SUPPORTED_FORMATS",
    "LoadedImage",
    "load_image",
    "oriented",
    "sha256_file",
]

#: Suffixes the folder walk picks up (files named explicitly are always tried).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
)
#: Larger images are refused before decoding (decompression bombs); override per call.
DEFAULT_MAX_PIXELS = 64_000_000
#: Longest side accepted, whatever the pixel count (a 1 x 10^9 strip is also a bomb).
MAX_SIDE = 32768
#: Files larger than this are refused before being read into memory.
MAX_FILE_BYTES = 512 * 1024 * 1024
#: Pillow format ids tried, in order. Exotic decoders (EPS runs Ghostscript, ...) never run.
#: The JPEG decoder also returns "MPO" for multi-picture camera JPEGs.
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF")

_SUPPORTED_HINT = "supported: PNG, JPEG, WebP, TIFF, BMP, GIF"
_EXIF_ORIENTATION = 0x0112
_16_TO_FLOAT = "16-bit -> float (no 8-bit rounding)"
_CORRUPT_DATA = (OSError, SyntaxError, EOFError, ValueError, IndexError, struct.error, zlib.error)

# ``warnings.catch_warnings`` swaps process-wide state; the lock keeps our own loader threads
# from interleaving enter/exit (which would leak filters). Only cheap steps run under it.
_PIL_LOCK = threading.Lock()

# Magic numbers, only to word the refusal of a file Pillow could not identify.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


@dataclass(eq=False)
class LoadedImage:
    """A decoded image plus the provenance a forensic report needs.

    ``pixels`` is the stored raster exactly as decoded: the EXIF orientation is *not* applied
    (it is metadata, and metadata must never change the fingerprint). ``width`` and ``height``
    are those of the stored raster; ``oriented(img.pixels, img.orientation)`` is the upright
    image a viewer would display.
    """

    path: str
    sha256: str  #: hex sha256 of exactly the bytes that were decoded
    #: (H, W, 3) float32 in [0, 1]: the stored raster, EXIF orientation not applied
    pixels: np.ndarray = field(repr=False)
    width: int  #: W of the stored raster, pixels
    height: int  #: H of the stored raster, pixels
    format: str  #: Pillow format id, e.g. "PNG"
    mode: str  #: Pillow mode before any conversion, e.g. "RGBA", "I;16", "P"
    bit_depth: int  #: bits per sample in the file: 1, 8, 16 (32 for "I"/"F" data)
    conversions: list[str] = field(default_factory=list)
    frames: int = 1
    #: EXIF Orientation (1-8) recorded for display only; 1 when absent, invalid or unreadable
    orientation: int = 1

    def info(self) -> dict[str, Any]:
        """JSON-able metadata (everything but the pixels), for reports and caches."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "pixels"}
        out["conversions"] = list(self.conversions)
        return out


class _Refused(Exception):
    """Internal: a clear, user-facing reason; becomes ImageLoadError at the boundary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed so any size works. OS errors propagate."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def load_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Read, check and decode one image; raise :class:`ImageLoadError` (only) on any problem.

    The first frame of animated/multi-page files is used. Alpha is dropped, never
    composited, because the stored RGB values are what carries the generator's traces.
    """
    name = os.fsdecode(os.fspath(path))
    try:
        return _load(name, max_pixels)
    except _Refused as e:
        raise ImageLoadError(name, e.reason) from None
    except Image.DecompressionBombError as e:
        reason = f"refused by Pillow's decompression-bomb guard ({_one_line(e)})"
        raise ImageLoadError(name, reason) from e
    except MemoryError as e:
        raise ImageLoadError(name, "out of memory while decoding the image") from e
    except Exception as e:  # the boundary: nothing else may escape
        reason = f"unexpected {type(e).__name__} while decoding: {_one_line(e)}"
        raise ImageLoadError(name, reason) from e


# --------------------------------------------------------------------------- reading


def _load(name: str, max_pixels: int) -> LoadedImage:
    data = _read_bytes(name)
    digest = hashlib.sha256(data).hexdigest()

    with _pil_guard() as caught:
        im = _open_restricted(data)
        width, height = im.size
        _check_size(width, height, max_pixels)
        bombs = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
        if bombs:
            raise _Refused(f"refused by Pillow's decompression-bomb guard ({bombs[0].message})")
        fmt, mode = im.format or "?", im.mode
        tile_rawmodes = [_tile_rawmode(t) for t in im.tile]

    conversions: list[str] = []
    if mode == "RGBA" and tile_rawmodes and set(tile_rawmodes) == {"LA;16B"}:
        # 16-bit gray+alpha PNG: Pillow keeps only the high bytes, but the 4-byte pixels have
        # the same layout as 8-bit RGBA, so decoding them as "RGBA" yields every byte.
        _set_rawmode(im, lambda raw: "RGBA")
        _decode(im)
        px = np.asarray(im)
        gray = (px[..., 0].astype(np.uint16) << 8) | px[..., 1]
        pixels = _gray_to_rgb(_to_float(gray, 65535))
        conversions += [_16_TO_FLOAT, "alpha channel dropped", "grayscale -> RGB"]
        bit_depth = 16
    else:
        _decode(im)
        rgb16 = mode in ("RGB", "RGBA") and bool(tile_rawmodes) and all(map(_swap16, tile_rawmodes))
        lo_bytes = _decode_low_bytes(data, im) if rgb16 else None
        pixels, bit_depth = _to_rgb(im, conversions, lo_bytes)
        if rgb16 and lo_bytes is None:
            conversions.insert(0, "16-bit -> 8-bit by Pillow (precision lost)")
            bit_depth = 16

    with _pil_guard():
        orientation = _exif_orientation(im, conversions)
    if orientation != 1:
        conversions.append(
            f"EXIF orientation {orientation} recorded "
            "(display only; the fingerprint reads the stored raster)"
        )

    with _pil_guard():  # counting frames parses every later header (TIFF tags can warn)
        frames = _frame_count(im, conversions)
    return LoadedImage(
        path=name,
        sha256=digest,
        pixels=pixels,
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        format=fmt,
        mode=mode,
        bit_depth=bit_depth,
        conversions=conversions,
        frames=frames,
        orientation=orientation,
    )


def _read_bytes(name: str) -> bytes:
    """Read the whole file once, refusing what is not a plain, reasonably sized file."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(name, flags)  # O_NONBLOCK: opening a FIFO must not hang the batch
    except FileNotFoundError:
        if os.path.islink(name):
            raise _Refused("broken symbolic link (target does not exist)") from None
        raise _Refused("no such file or directory") from None
    except IsADirectoryError:
        raise _Refused("is a directory") from None
    except PermissionError:
        raise _Refused("is a directory" if os.path.isdir(name) else "permission denied") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _Refused("symbolic link loop (too many levels of symbolic links)") from None
        if e.errno == errno.ENOTDIR:
            raise _Refused("no such file or directory (a parent is not a folder)") from None
        raise _Refused(f"cannot open file: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _Refused("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("not a regular file (device, pipe or socket)")
        if st.st_size > MAX_FILE_BYTES:
            raise _Refused(_too_big(st.st_size))
        with os.fdopen(fd, "rb") as f:
            fd = -1  # owned (and closed) by ``f`` from here on
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise _Refused(f"read error: {e.strerror or e}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if not data:
        raise _Refused("empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:  # grew while we looked
        raise _Refused(_too_big(len(data)))
    return data


def _too_big(size: int) -> str:
    return f"file is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES / 2**20:.0f} MiB limit"


@contextmanager
def _pil_guard() -> Iterator[list[warnings.WarningMessage]]:
    """Record (not print) Pillow warnings for a short step, without leaking warning state."""
    with _PIL_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _open_restricted(data: bytes) -> Image.Image:
    """Identify the image lazily (header only) among SUPPORTED_FORMATS.

    This is Pillow's ``Image.open`` loop minus its global decompression-bomb check, so that our
    own check (with the real size and the caller's ``max_pixels``) decides, and no global Pillow
    setting has to change.
    """
    fp = io.BytesIO(data)
    prefix = data[:16]
    for fmt in SUPPORTED_FORMATS:
        entry = Image.OPEN.get(fmt)
        if entry is None:
            continue
        factory, accept = entry
        verdict = accept(prefix) if accept else True
        if not verdict or isinstance(verdict, str):
            continue
        fp.seek(0)
        try:
            return factory(fp, "")
        except (SyntaxError, IndexError, TypeError, struct.error, EOFError, OSError) as e:
            _refuse_zero_size_png(data)
            raise _Refused(f"corrupt or truncated {fmt} header ({_one_line(e)})") from None
    _refuse_zero_size_png(data)
    magic = next((kind for sig, kind in _MAGIC if data.startswith(sig)), None)
    if magic:
        raise _Refused(f"corrupt {magic} file (header not understood)")
    raise _Refused(f"not a recognised image format ({_SUPPORTED_HINT})")


def _refuse_zero_size_png(data: bytes) -> None:
    """Pillow rejects a 0-pixel-wide PNG as unidentifiable; say what is really wrong."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        if w == 0 or h == 0:
            raise _Refused(f"image has zero width or height ({w}x{h})")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise _Refused(f"image has zero width or height ({width}x{height})")
    if width * height > max_pixels:
        raise _Refused(
            f"image is {width}x{height} ({_mpx(width * height)}), "
            f"over the {_mpx(max_pixels)} limit (decompression bomb?)"
        )
    if max(width, height) > MAX_SIDE:
        raise _Refused(
            f"image is {width}x{height}, a side over the {MAX_SIDE} px limit (decompression bomb?)"
        )


def _mpx(pixels: int) -> str:
    if pixels < 100_000:
        return f"{pixels} px"
    return f"{round(pixels / 1e6, 1):g} Mpx"


def _decode(im: Image.Image) -> None:
    try:
        _guarded_load(im)
    except Image.DecompressionBombError:
        raise
    except _CORRUPT_DATA as e:
        raise _Refused(f"truncated or corrupt image data ({_one_line(e)})") from None


def _guarded_load(im: Image.Image) -> None:
    """Decode the pixels, in parallel with other loads where Pillow cannot warn.

    TIFF decoding re-reads tag directories and warns about corrupt ones, so it runs guarded
    (serialised); the other formats only warn while their headers are parsed.
    """
    if im.format == "TIFF":
        with _pil_guard():
            im.load()
    else:
        im.load()


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------------- 16-bit RGB


def _tile_rawmode(tile: Any) -> str | None:
    args = tile[3]
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else None


def _set_rawmode(im: Image.Image, change: Any) -> None:
    """Rewrite the rawmode of every pending decoder tile (NamedTuple or plain tuple)."""
    new_tiles = []
    for tile in im.tile:
        args = tile[3]
        if isinstance(args, tuple):
            args = (change(args[0]), *args[1:])
        else:
            args = change(args)
        parts = (tile[0], tile[1], tile[2], args)
        new_tiles.append(type(tile)(*parts) if hasattr(tile, "_fields") else parts)
    im.tile = new_tiles


def _swap16(raw: str | None) -> str | None:
    """'RGB;16B' -> 'RGB;16L' (and back): the same decoder then keeps the *other* byte.

    Pillow has no 16-bit RGB mode, so for 48/64-bit RGB(A) it unfilters every byte but keeps
    only the high byte of each sample; swapping the byte order picks the low one instead.
    """
    if not raw:
        return None
    base, sep, order = raw.partition(";16")
    if not sep or base not in ("RGB", "RGBA") or order not in ("B", "L", "N"):
        return None
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    return f"{base};16{'L' if order == 'B' else 'B'}"


def _decode_low_bytes(data: bytes, hi: Image.Image) -> np.ndarray | None:
    """Second decode of a 16-bit RGB(A) image that returns the low bytes, or None if unsure."""
    try:
        with _pil_guard():
            im = _open_restricted(data)
        if im.size != hi.size or im.mode != hi.mode:
            return None
        _set_rawmode(im, _swap16)
        _guarded_load(im)
        lo = np.asarray(im)
    except Exception:  # the 8-bit result stays usable; the caller records the precision loss
        return None
    return lo if lo.shape == np.asarray(hi).shape else None


# --------------------------------------------------------------------------- pixels


def _to_float(arr: np.ndarray, scale: float) -> np.ndarray:
    # float32 division is correctly rounded, so results equal (arr / scale).astype(float32).
    return np.divide(arr, np.float32(scale), dtype=np.float32)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _to_rgb(
    im: Image.Image, conversions: list[str], lo_bytes: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """Pixels of a loaded image as (H, W, 3) float32 in [0, 1], plus the bits per sample."""
    mode = im.mode
    if lo_bytes is not None:  # 16-bit RGB(A), high bytes in ``im``
        hi = np.asarray(im)[..., :3].astype(np.uint16)
        conversions.append(_16_TO_FLOAT)
        if mode == "RGBA":
            conversions.append("alpha channel dropped")
        return _to_float((hi << 8) | lo_bytes[..., :3], 65535), 16
    if mode == "RGB":
        return _to_float(np.asarray(im), 255), 8
    if mode in ("RGBA", "RGBX", "RGBa"):
        conversions.append(
            {
                "RGBA": "alpha channel dropped",
                "RGBX": "padding channel dropped",
                "RGBa": "premultiplied alpha channel dropped (RGB left as stored)",
            }[mode]
        )
        return _to_float(np.asarray(im)[..., :3], 255), 8
    if mode in ("L", "LA"):
        gray = np.asarray(im)
        if mode == "LA":
            gray = gray[..., 0]
            conversions.append("alpha channel dropped")
        conversions.append("grayscale -> RGB")
        return _gray_to_rgb(_to_float(gray, 255)), 8
    if mode == "1":
        conversions.append("1-bit -> RGB")
        return _gray_to_rgb(np.asarray(im).astype(np.float32)), 1
    if mode in ("P", "PA"):
        return _palette_to_rgb(im, conversions), 8
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        conversions += [_16_TO_FLOAT, "grayscale -> RGB"]
        return _gray_to_rgb(_to_float(np.asarray(im), 65535)), 16
    if mode == "I":
        values = np.asarray(im)
        if values.size and (values.min() < 0 or values.max() > 65535):
            gray, note = _rescale(values.astype(np.float64), "32-bit integer")
            conversions += [note, "grayscale -> RGB"]
            return _gray_to_rgb(gray), 32
        conversions += [_16_TO_FLOAT, "grayscale -> RGB"]
        return _gray_to_rgb(_to_float(values, 65535)), 16
    if mode == "F":
        values = np.asarray(im)
        if not np.isfinite(values).all():
            raise _Refused("float image contains NaN or infinite values")
        if values.size and (values.min() < 0 or values.max() > 1):
            gray, note = _rescale(values.astype(np.float64), "float")
        else:
            gray, note = values.astype(np.float32), "float kept as is (values within [0, 1])"
        conversions += [note, "grayscale -> RGB"]
        return _gray_to_rgb(gray), 32
    # CMYK, YCbCr, LAB, HSV and anything else Pillow can convert.
    try:
        rgb = im.convert("RGB")
    except ValueError as e:
        raise _Refused(f"unsupported pixel mode {mode!r} ({_one_line(e)})") from None
    conversions.append(f"{mode} -> RGB")
    return _to_float(np.asarray(rgb), 255), 8


def _palette_to_rgb(im: Image.Image, conversions: list[str]) -> np.ndarray:
    """Look indices up in the palette ourselves: exact, and no Pillow transparency warnings."""
    index = np.asarray(im)
    if index.ndim == 3:  # "PA": index + alpha
        index = index[..., 0]
    table = np.zeros((256, 3), dtype=np.uint8)
    palette = im.getpalette("RGB")
    if palette:
        entries = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:256]
        table[: len(entries)] = entries
    else:  # no palette stored: Pillow treats indices as gray levels
        table[:] = np.arange(256, dtype=np.uint8)[:, None]
    conversions.append("palette -> RGB")
    if im.mode == "PA":
        conversions.append("alpha channel dropped")
    elif "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA"):
        conversions.append("palette transparency dropped")
    return _to_float(table[index], 255)


def _rescale(values: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    """Min-max rescale data that has no natural [0, 1] range, and say so."""
    lo, hi = float(values.min()), float(values.max())
    if hi > lo:
        out = ((values - lo) / (hi - lo)).astype(np.float32)
    else:
        out = np.clip(values, 0.0, 1.0).astype(np.float32)
    return out, f"{kind} values in [{lo:g}, {hi:g}] rescaled to [0, 1]"


# --------------------------------------------------------------------------- orientation, frames


def _exif_orientation(im: Image.Image, conversions: list[str]) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # corrupt EXIF must not cost us the pixels
        conversions.append("EXIF unreadable; orientation not recorded")
        return 1
    try:
        orientation = int(value)
    except (TypeError, ValueError):
        orientation = 0
    if orientation not in range(1, 9):
        conversions.append(f"EXIF orientation {value!r} invalid; ignored")
        return 1
    return orientation


#: EXIF orientation -> the array transform that shows the stored raster upright
#: (mode-independent; same result as Pillow's ``ImageOps.exif_transpose``).
_ORIENT_TRANSFORMS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def oriented(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The stored raster turned upright for display (thumbnails), as a viewer shows it.

    ``pixels`` is (H, W, ...) (e.g. :attr:`LoadedImage.pixels`, (H, W, 3) float32 in [0, 1]);
    ``orientation`` is the EXIF Orientation value (1-8, :attr:`LoadedImage.orientation`).
    Returns a C-contiguous array of the same dtype, (W, H, ...) for orientations 5-8, equal to
    what ``PIL.ImageOps.exif_transpose`` shows. Orientation 1 (or any value outside 2-8)
    returns ``pixels`` unchanged. Display only: never feed the result to the extractor.
    """
    transform = _ORIENT_TRANSFORMS.get(int(orientation))
    if transform is None:
        return pixels
    return np.ascontiguousarray(transform(pixels))


def _frame_count(im: Image.Image, conversions: list[str]) -> int:
    try:
        frames = int(getattr(im, "n_frames", 1))
    except Exception:  # broken later frames: the first one is already decoded
        conversions.append("first frame only (frame count unreadable)")
        return 1
    if frames > 1:
        conversions.append(f"first of {frames} frames")
    return frames
