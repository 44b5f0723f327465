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
import logging
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
from fpattr.io.sniff import HEAD_BYTES, describe, image_kind
from fpattr.io.walk import NOT_REGULAR

try:  # WebP support is an optional part of some Pillow builds.
    from PIL import WebPImagePlugin  # noqa: F401
except ImportError:  # pragma: no cover - depends on the Pillow build
    pass
try:  # AVIF is decoded natively by Pillow >= 11.3 builds that include libavif.
    from PIL import AvifImagePlugin  # noqa: F401
except ImportError:  # pragma: no cover - depends on the Pillow build
    pass

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "MAX_FILE_BYTES",
    "MAX_SIDE",
    "SUPPORTED_FORMATS",
    "LoadedImage",
    "NotAnImageError",
    "SkippedInputError",
    "load_image",
    "oriented",
    "sha256_file",
]

#: Suffixes that claim an image. The folder walk yields every file and the loader decides by
#: content; a file with one of these suffixes whose content is not an image *fails* (it was
#: meant to be an image), any other non-image file is *skipped* (:class:`NotAnImageError`).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".jif", ".mpo", ".webp", ".tif"}
    | {".tiff", ".bmp", ".dib", ".gif", ".avif", ".avifs", ".heic", ".heif", ".hif"}
)
#: Larger images are refused before decoding (decompression bombs); override per call.
DEFAULT_MAX_PIXELS = 64_000_000
#: Longest side accepted, whatever the pixel count (a 1 x 10^9 strip is also a bomb).
MAX_SIDE = 32768
#: Files larger than this are refused before being read into memory.
MAX_FILE_BYTES = 512 * 1024 * 1024
#: Pillow format ids tried, in order. Exotic decoders (EPS runs Ghostscript, ...) never run.
#: The JPEG decoder also returns "MPO" for multi-picture camera JPEGs.
#: AVIF needs a Pillow built with libavif; HEIF needs the optional ``fpattr[heif]`` extra
#: (pillow-heif), registered lazily the first time a HEIF file is met.
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF", "AVIF", "HEIF")

_SUPPORTED_HINT = "supported: PNG, JPEG, WebP, TIFF, BMP, GIF, AVIF, HEIC/HEIF with fpattr[heif]"
#: What :func:`fpattr.io.sniff.image_kind` returns -> the Pillow ids that may open it.
_KIND_FORMATS = {
    "PNG": ("PNG",),
    "JPEG": ("JPEG",),
    "GIF": ("GIF",),
    "TIFF": ("TIFF",),
    "WEBP": ("WEBP",),
    "BMP": ("BMP",),
    "AVIF": ("AVIF",),
    "HEIF": ("HEIF",),
}
_HEIF_HINT = "HEIC/HEIF image: needs `pip install fpattr[heif]` (the pillow-heif plugin)"
_HEIF_STATE: list[bool] = []  # [] not tried yet; [True] registered; [False] not installed
_HEIF_LOCK = threading.Lock()
_EXIF_ORIENTATION = 0x0112
_16_TO_FLOAT = "16-bit -> float (no 8-bit rounding)"
_CORRUPT_DATA = (
    OSError,
    SyntaxError,
    EOFError,
    ValueError,
    IndexError,
    struct.error,
    zlib.error,
)
#: Formats decoded by a C library that reports damaged data as RuntimeError.
_RUNTIME_ERROR_FORMATS = frozenset({"AVIF", "WEBP", "HEIF"})

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
    #: JPEG (and MPO) only: the libjpeg quality its luminance quantization table matches
    #: (:func:`fpattr.processing.estimate_jpeg_quality`); None for other formats
    jpeg_quality: int | None = None

    def info(self) -> dict[str, Any]:
        """JSON-able metadata (everything but the pixels), for reports and caches."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "pixels"}
        out["conversions"] = list(self.conversions)
        return out


class SkippedInputError(ImageLoadError):
    """An input left out on purpose, with its reason: reported as *skipped*, not failed.

    ``skipped`` is True here (plain :class:`ImageLoadError` has no such attribute: use
    ``getattr(err, "skipped", False)``).
    """

    skipped = True


class NotAnImageError(SkippedInputError):
    """The file is not an image by its content (and its name does not claim one either).

    Found by walking a folder, such a file is *skipped* with this reason, not failed;
    named explicitly, :func:`fpattr.io.prefetch.iter_loaded` turns it into a plain failure.
    """


class _Refused(Exception):
    """Internal: a clear, user-facing reason; becomes ImageLoadError at the boundary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NotImage(_Refused):
    """Internal: becomes NotAnImageError."""


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
    except _NotImage as e:
        raise NotAnImageError(name, e.reason) from None
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
    kind = image_kind(data[:HEAD_BYTES])
    if kind == "PNG":
        # the digest is of the file as it is; the decoder gets it without text chunks
        data = _png_without_text(data)
        fast = _load_plain_png(name, data, digest, max_pixels)
        if fast is not None:
            return fast

    if kind == "TIFF":
        tiff = _tiff_layout(data)
        if tiff is not None and not tiff.pillow_exact:
            return _load_tiff(name, data, digest, tiff, max_pixels)
    else:
        tiff = None
    iso_bits = _iso_declared_bits(data) if kind in ("AVIF", "HEIF") else None
    if kind == "AVIF" and iso_bits is not None and iso_bits > 8:
        raise _Refused(
            f"{iso_bits}-bit AVIF: Pillow decodes AVIF at 8 bits only (precision would be "
            "lost): refused"
        )

    with _pil_guard() as caught:
        im = _open_restricted(data, kind)
        width, height = im.size
        _check_size(width, height, max_pixels)
        bombs = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
        if bombs:
            raise _Refused(f"refused by Pillow's decompression-bomb guard ({bombs[0].message})")
        fmt, mode = im.format or "?", im.mode
        tile_rawmodes = [_tile_rawmode(t) for t in im.tile]
        quality = jpeg_quality(im)
    declared_bits = tiff.bits if tiff is not None else _png_declared_bits(data)
    if fmt == "HEIF":
        heif_bits = int(im.info.get("bit_depth") or 8)
        if heif_bits > 8:
            return _load_heif_hdr(name, data, digest, heif_bits, (width, height))

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
            raise _Refused(
                f"{declared_bits or 16}-bit RGB samples could only be decoded at 8 bits "
                "(precision would be lost): refused"
            )
    _check_declared(pixels, width, height, bit_depth, declared_bits)

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
        jpeg_quality=quality,
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
            raise _Refused(NOT_REGULAR)  # the rule every command shares (fpattr.io.walk)
        with os.fdopen(fd, "rb") as f:
            fd = -1  # owned (and closed) by ``f`` from here on
            head = f.read(HEAD_BYTES)
            _check_content(name, head)  # before reading (or refusing) a large non-image
            if st.st_size > MAX_FILE_BYTES:
                raise _Refused(_too_big(st.st_size))
            # Ask for the size fstat gave (+1 to see growth), not the limit: read(n) allocates
            # n bytes up front, and 512 MiB per file read would be wasteful.
            want = max(0, min(st.st_size, MAX_FILE_BYTES) + 1 - len(head))
            data = head + _read_all(f, want) if head else head
    except OSError as e:
        raise _Refused(f"read error: {e.strerror or e}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_FILE_BYTES:  # grew while we looked
        raise _Refused(_too_big(len(data)))
    return data


def _read_all(f: Any, size: int) -> bytes:
    """``size`` bytes, then on to EOF in 1 MiB steps (a file that grew is still seen whole),
    stopping just past MAX_FILE_BYTES."""
    data = f.read(size)
    if len(data) < size:
        return data
    parts = [data]
    total = len(data)
    while total <= MAX_FILE_BYTES and (chunk := f.read(1 << 20)):
        parts.append(chunk)
        total += len(chunk)
    return data if len(parts) == 1 else b"".join(parts)


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _check_content(name: str, head: bytes) -> None:
    """Decide by the first bytes whether the file is an image we can decode.

    Not an image: :class:`_NotImage` (skipped in a folder walk), unless the name claims an
    image, which makes it a failure. An image in a format we cannot decode: a failure that
    names the format.
    """
    if not head:
        if _suffix(name) in IMAGE_EXTENSIONS:
            raise _Refused("empty file (0 bytes)")
        raise _NotImage("not an image by its content: empty file (0 bytes)")
    kind = image_kind(head)
    if kind is None:
        what = describe(head)
        if _suffix(name) in IMAGE_EXTENSIONS:
            magic = next((k for sig, k in _MAGIC if head.startswith(sig)), None)
            if magic:  # a damaged header of a format we read
                raise _Refused(f"corrupt {magic} file (header not understood)")
            raise _Refused(
                f"not a recognised image format: by its content this is {what}, "
                f"though it is named {_suffix(name)} ({_SUPPORTED_HINT})"
            )
        raise _NotImage(f"not an image by its content: {what}")
    if kind == "HEIF" and not _heif_available():
        raise _Refused(_HEIF_HINT)
    if kind not in _KIND_FORMATS:
        raise _Refused(f"{kind} image: format not supported ({_SUPPORTED_HINT})")
    if not any(f in Image.OPEN for f in _KIND_FORMATS[kind]):
        raise _Refused(f"{kind} image: this Pillow build cannot decode it ({_SUPPORTED_HINT})")


def _heif_available() -> bool:
    """Register pillow-heif's opener the first time a HEIF file is met; False if missing."""
    with _HEIF_LOCK:
        if not _HEIF_STATE:
            try:
                from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

                register_heif_opener()
                _HEIF_STATE.append("HEIF" in Image.OPEN)
            except Exception:  # not installed, or a broken build: the file fails with the hint
                _HEIF_STATE.append(False)
        return _HEIF_STATE[0]


def _too_big(size: int) -> str:
    return f"file is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES / 2**20:.0f} MiB limit"


@contextmanager
def _pil_guard() -> Iterator[list[warnings.WarningMessage]]:
    """Record (not print) Pillow warnings for a short step, without leaking warning state."""
    with _PIL_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _open_restricted(data: bytes, kind: str | None = None) -> Image.Image:
    """Identify the image lazily (header only) among SUPPORTED_FORMATS.

    This is Pillow's ``Image.open`` loop minus its global decompression-bomb check, so that our
    own check (with the real size and the caller's ``max_pixels``) decides, and no global Pillow
    setting has to change.
    """
    fp = io.BytesIO(data)
    prefix = data[:16]
    for fmt in _KIND_FORMATS.get(kind or "", SUPPORTED_FORMATS):
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
        except (
            SyntaxError,
            IndexError,
            TypeError,
            KeyError,
            ValueError,
            RuntimeError,
            struct.error,
            EOFError,
            OSError,
        ) as e:
            _refuse_zero_size_png(data)
            if fmt == "TIFF":  # a header tifffile reads is not corrupt: a codec Pillow lacks
                layout = _tiff_layout(data)
                if layout is not None:
                    raise _Refused(
                        f"unsupported TIFF: {layout.describe()} (not decodable here: "
                        f"{_one_line(e)})"
                    ) from None
            raise _Refused(f"corrupt or truncated {fmt} header ({_one_line(e)})") from None
    _refuse_zero_size_png(data)
    magic = next((kind for sig, kind in _MAGIC if data.startswith(sig)), None)
    if magic:
        raise _Refused(f"corrupt {magic} file (header not understood)")
    raise _Refused(f"not a recognised image format ({_SUPPORTED_HINT})")


_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def _png_without_text(data: bytes) -> bytes:
    """``data`` with its tEXt/zTXt/iTXt chunks left out, for pixel decoding only.

    Pillow parses text chunks while it opens and decodes a PNG and raises ValueError for
    one that inflates past ``PngImagePlugin.MAX_TEXT_CHUNK`` or a total past
    ``MAX_TEXT_MEMORY`` (and SyntaxError for an unknown compression method): a hostile
    metadata chunk would fail the fingerprint. Text never affects pixels, and provenance
    reads (and reports) it separately, so the decoder does not see it. The alternative,
    ``ImageFile.LOAD_TRUNCATED_IMAGES``, is global and would also hide truncated pixel
    data. A chunk structure that cannot be walked is passed through unchanged: the decoder
    then says what is wrong with it.
    """
    pos, end = 8, len(data)
    keep: list[tuple[int, int]] = []
    start = 0  # the signature and every chunk up to the first text chunk
    found = False
    while pos + 8 <= end:
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        nxt = pos + 12 + length
        if nxt > end:
            break  # truncated: leave the rest as it is
        if ctype in _PNG_TEXT_CHUNKS:
            found = True
            keep.append((start, pos))
            start = nxt
        pos = nxt
        if ctype == b"IEND":
            break
    if not found:
        return data
    keep.append((start, end))
    return b"".join(data[a:b] for a, b in keep if a < b)


#: 8-bit PNG colour types libpng decodes here: (Pillow's mode, channels, conversions as
#: :func:`_to_rgb` words them for that mode).
_PLAIN_PNG = {
    0: ("L", 1, ["grayscale -> RGB"]),
    2: ("RGB", 3, []),
    4: ("LA", 2, ["alpha channel dropped", "grayscale -> RGB"]),
    6: ("RGBA", 4, ["alpha channel dropped"]),
}
_LIBPNG: list[Any] = []  # [] not tried yet; [png_decode] or [None] (imagecodecs missing)
#: Ancillary chunks a plain PNG may hold before its image data, with the one length each
#: may have: Pillow refuses some malformed ones ("Truncated gAMA chunk") that libpng only
#: warns about, so any other chunk, or one of another length, goes to Pillow.
_PLAIN_ANCILLARY = {b"gAMA": 4, b"sRGB": 1, b"pHYs": 9, b"cHRM": 32}


def _plain_chunks(data: bytes) -> bool:
    """The file is IHDR, then only :data:`_PLAIN_ANCILLARY` chunks of their lengths, then
    consecutive IDATs, then IEND, every chunk whole and its CRC valid (Pillow refuses a bad
    one); bytes after IEND are ignored by both decoders."""
    pos, end = 8, len(data)
    seen_idat, prev = False, b""
    while pos + 12 <= end:
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        nxt = pos + 12 + length
        if nxt > end:
            return False
        (crc,) = struct.unpack(">I", data[nxt - 4 : nxt])
        if zlib.crc32(data[pos + 4 : nxt - 4]) != crc:
            return False
        if pos == 8:
            ok = ctype == b"IHDR"
        elif ctype == b"IDAT":
            ok = not seen_idat or prev == b"IDAT"
            seen_idat = True
        elif ctype == b"IEND":
            return seen_idat and length == 0
        else:
            ok = not seen_idat and _PLAIN_ANCILLARY.get(ctype) == length
        if not ok:
            return False
        prev = ctype
        pos = nxt
    return False


def _libpng() -> Any:
    """imagecodecs' libpng decoder, or None when imagecodecs is not installed."""
    if not _LIBPNG:
        try:
            from imagecodecs import png_decode
        except Exception:  # not installed, or a broken build: Pillow decodes every PNG
            png_decode = None
        # libpng's warnings ("IDAT: Too much image data") go to this logger and from there
        # to stderr, naming no file; Pillow decodes the same files silently
        logging.getLogger("imagecodecs").setLevel(logging.ERROR)
        _LIBPNG.append(png_decode)
    return _LIBPNG[0]


def _load_plain_png(name: str, data: bytes, digest: str, max_pixels: int) -> LoadedImage | None:
    """A plain 8-bit PNG decoded by libpng (imagecodecs), or None for Pillow to decode.

    Why: for the small PNGs generators write, Pillow's per-file Python work (opening,
    parsing, loading) and decoder cost about as much CPU as inference leaves for the whole
    pipeline (docs/performance.md). The result is the one Pillow's path gives, field for
    field (tests/io/test_plain_png.py): only non-interlaced files of the plainest chunk
    layout (:func:`_plain_chunks`: no animation, EXIF, transparency, ICC profile or chunk
    Pillow might refuse; text chunks were taken out before) are taken, only within the
    size limits, and anything libpng declines or decodes to another shape goes to Pillow,
    which words the refusal as for every other file.
    """
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    plain = _PLAIN_PNG.get(colour)
    if depth != 8 or plain is None or interlace or width == 0 or height == 0:
        return None  # (Adam7 interlacing: rare, and no test writes it)
    pil_limit = Image.MAX_IMAGE_PIXELS  # Pillow's bomb guard, which its path applies too
    if width * height > max_pixels or max(width, height) > MAX_SIDE:
        return None
    if pil_limit is not None and width * height > pil_limit:
        return None
    if not _plain_chunks(data):
        return None
    decode = _libpng()
    if decode is None:
        return None
    try:
        px = decode(data)
    except Exception:  # damaged data: Pillow's path says what is wrong
        return None
    mode, channels, conversions = plain
    want = (height, width) if channels == 1 else (height, width, channels)
    if px.dtype != np.uint8 or px.shape != want:  # e.g. tRNS expanded to alpha
        return None
    gray = px if channels == 1 else px[..., 0] if channels == 2 else None
    pixels = _gray_to_rgb(_to_float(gray, 255)) if gray is not None else _to_float(px[..., :3], 255)
    _check_declared(pixels, width, height, 8, 8)
    return LoadedImage(
        path=name,
        sha256=digest,
        pixels=pixels,
        width=width,
        height=height,
        format="PNG",
        mode=mode,
        bit_depth=8,
        conversions=list(conversions),
    )


def jpeg_quality(im: Image.Image) -> int | None:
    """The estimated libjpeg quality of an opened JPEG or MPO
    (:func:`fpattr.processing.estimate_jpeg_quality`); None for another format or when its
    tables are unreadable."""
    from fpattr.processing import estimate_jpeg_quality, is_jpeg

    if not is_jpeg(im.format):
        return None
    try:
        tables = getattr(im, "quantization", None) or {}
        luma = tables.get(0) if isinstance(tables, dict) else None
    except Exception:  # noqa: BLE001 - a metadata read never fails a decode
        return None
    return None if luma is None else estimate_jpeg_quality(luma)


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
    except RuntimeError as e:
        if im.format not in _RUNTIME_ERROR_FORMATS:
            raise
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


# --------------------------------------------------------------------------- declared layout


def _png_declared_bits(data: bytes) -> int | None:
    """Bits per sample a PNG's IHDR declares (None for palette images and other formats)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 26:
        depth, colour = data[24], data[25]
        return None if colour == 3 else int(depth)
    return None


def _check_declared(
    pixels: np.ndarray, width: int, height: int, bit_depth: int, declared_bits: int | None
) -> None:
    """The decoded raster must be what the container declares before it is fingerprinted."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.float32:
        raise _Refused(f"decoder returned an unexpected {pixels.dtype} array {pixels.shape}")
    if pixels.shape[:2] != (height, width):
        raise _Refused(
            f"decoded {pixels.shape[1]}x{pixels.shape[0]} pixels but the file declares "
            f"{width}x{height}"
        )
    # 32-bit samples have no natural scale: how they were scaled is recorded instead.
    if declared_bits is not None and 8 < declared_bits <= 16 and bit_depth < declared_bits:
        raise _Refused(
            f"decoded at {bit_depth} bits per sample but the file declares {declared_bits} "
            "(precision would be lost)"
        )


def _iso_declared_bits(data: bytes) -> int | None:
    """Largest bits per channel an AVIF/HEIF 'pixi' property declares (None: no such box)."""
    best, start = None, 0
    while (i := data.find(b"pixi", start, 1 << 16)) >= 4:
        start = i + 4
        if len(data) < i + 9:
            break
        n = data[i + 8]
        bits = data[i + 9 : i + 9 + n]
        if bits:
            best = max(best or 0, max(bits))
    return best


def _load_heif_hdr(
    name: str, data: bytes, digest: str, bits: int, size: tuple[int, int]
) -> LoadedImage:
    """A HEIF with more than 8 bits per sample, decoded at its full depth (pillow-heif)."""
    import pillow_heif  # type: ignore[import-not-found]  # present: the opener is registered

    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
        arr = np.asarray(heif)
    except MemoryError:
        raise
    except Exception as e:
        raise _Refused(f"truncated or corrupt image data ({_one_line(e)})") from None
    width, height = size
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise _Refused(f"{bits}-bit HEIF decoded as an unexpected {arr.dtype} array {arr.shape}")
    conversions = [f"{bits}-bit -> float (no 8-bit rounding)"]
    if arr.shape[2] == 4:
        conversions.append("alpha channel dropped")
    # pillow-heif scales the samples up to 16 bits (v << (16 - bits)): undo it exactly
    samples = np.right_shift(arr[..., :3], 16 - bits)
    pixels = _to_float(samples, 2**bits - 1)
    _check_declared(pixels, width, height, bits, bits)
    return LoadedImage(
        path=name,
        sha256=digest,
        pixels=pixels,
        width=width,
        height=height,
        format="HEIF",
        mode=f"RGB;{bits}",
        bit_depth=bits,
        conversions=conversions,
    )


# --------------------------------------------------------------------------- TIFF

_TIFF_PHOTOMETRIC = {0: "min-is-white", 1: "gray", 2: "RGB", 3: "palette", 4: "mask"}
_TIFF_PHOTOMETRIC |= {5: "CMYK", 6: "YCbCr", 8: "CIELab", 9: "ICCLab", 10: "ITULab"}
_TIFF_SAMPLE = {1: "unsigned integer", 2: "signed integer", 3: "float"}
_TIFF_ALPHA = {1, 2}  # ExtraSamples: associated / unassociated alpha
logging.getLogger("tifffile").addHandler(logging.NullHandler())  # its warnings stay quiet


@dataclass
class _TiffLayout:
    """First page of a TIFF as its tags declare it."""

    width: int
    height: int
    samples: int
    bits: int
    sample_format: int
    planar: int  #: 1 contiguous (chunky), 2 separate planes
    photometric: int
    compression: str
    depth: int  #: > 1: a 3-D volume (SGI ImageDepth)
    extras: tuple[int, ...]
    orientation: int
    pages: int | None
    segments: list[tuple[int, int]]  #: (offset, byte count) of every strip or tile

    @property
    def pillow_exact(self) -> bool:
        """Layouts Pillow decodes exactly (the 16-bit RGB ones through the low-byte pass)."""
        if self.depth != 1:
            return False
        if self.samples == 1:
            if self.sample_format == 1 and self.bits in (1, 2, 4, 8, 16):
                return True
            return (self.bits, self.sample_format) in ((32, 2), (32, 3))
        return self.planar == 1 and self.bits == 8 and self.sample_format == 1

    def describe(self) -> str:
        colour = _TIFF_PHOTOMETRIC.get(self.photometric, f"photometric {self.photometric}")
        sample = _TIFF_SAMPLE.get(self.sample_format, f"sample format {self.sample_format}")
        planar = ", separate planes" if self.planar == 2 and self.samples > 1 else ""
        return (
            f"{self.bits}-bit {sample} {colour} TIFF, {self.samples} sample(s) per pixel{planar}, "
            f"{self.compression} compression"
        )


def _tiff_layout(data: bytes) -> _TiffLayout | None:
    """Parse the first IFD with tifffile; None if it cannot (Pillow then words the problem)."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            page = tf.pages.first
            bits = page.bitspersample
            if isinstance(bits, tuple):
                bits = bits[0] if len(set(bits)) == 1 else -1
            extras = page.extrasamples
            try:
                pages: int | None = len(tf.pages)
            except Exception:
                pages = None
            orient = int(getattr(page, "orientation", 1) or 1)
            return _TiffLayout(
                width=int(page.imagewidth),
                height=int(page.imagelength),
                samples=int(page.samplesperpixel),
                bits=int(bits),
                sample_format=int(page.sampleformat),
                planar=int(page.planarconfig),
                photometric=int(page.photometric),
                compression=getattr(page.compression, "name", str(page.compression)).lower(),
                depth=int(page.imagedepth),
                extras=tuple(int(e) for e in (extras or ())),
                orientation=orient,
                pages=pages,
                segments=list(zip(page.dataoffsets, page.databytecounts, strict=False)),
            )
    except Exception:
        return None


def _load_tiff(name: str, data: bytes, digest: str, t: _TiffLayout, max_pixels: int) -> LoadedImage:
    """Decode a TIFF layout Pillow gets wrong (separate planes, > 8-bit or float colour)."""
    import tifffile

    _check_size(t.width, t.height, max_pixels)
    layout = t.describe()
    if t.depth != 1:
        raise _Refused(f"unsupported TIFF layout: 3-D volume ({t.depth} slices; {layout})")
    if t.photometric not in (0, 1, 2) or t.bits <= 0:
        raise _Refused(f"unsupported TIFF layout: {layout}")
    colour = 3 if t.photometric == 2 else 1
    if t.samples < colour:
        raise _Refused(f"unsupported TIFF layout: {layout} (too few samples)")
    if t.sample_format == 3:
        if t.bits not in (16, 32, 64):
            raise _Refused(f"unsupported TIFF layout: {layout}")
    elif t.sample_format != 1 or t.bits > 32:
        raise _Refused(f"unsupported TIFF layout: {layout}")
    if any(off < 0 or count < 0 or off + count > len(data) for off, count in t.segments):
        raise _Refused("truncated or corrupt image data (a strip or tile lies past the end)")
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            page = tf.pages.first
            axes, arr = page.axes, page.asarray(maxworkers=1)
    except (KeyError, NotImplementedError) as e:
        raise _Refused(f"unsupported TIFF layout: {layout} ({_one_line(e)})") from None
    except MemoryError:
        raise
    except Exception as e:
        text = _one_line(e)
        if "imagecodecs" in text:
            raise _Refused(f"unsupported TIFF layout: {layout} ({text})") from None
        raise _Refused(f"truncated or corrupt image data ({text})") from None
    arr = np.asarray(arr)
    if axes.endswith("SYX") or (axes.endswith("YX") and arr.ndim == 3 and "S" in axes):
        arr = np.moveaxis(arr, -3, -1)  # separate planes -> (H, W, S)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape != (t.height, t.width, t.samples):
        raise _Refused(
            f"decoded array {arr.shape} does not match the declared "
            f"{t.width}x{t.height} with {t.samples} sample(s) ({layout})"
        )
    kind = arr.dtype.kind
    if (t.sample_format == 3) != (kind == "f") or arr.dtype.itemsize * 8 < t.bits:
        raise _Refused(f"decoded {arr.dtype} samples for a {layout}")

    conversions: list[str] = []
    extra = t.samples - colour
    if extra:
        alpha = bool(t.extras) and t.extras[0] in _TIFF_ALPHA
        dropped = "alpha channel dropped" if alpha else f"{extra} extra channel(s) dropped"
        conversions.append(dropped)
    arr = arr[..., :colour]
    if kind == "f":
        values = arr if arr.dtype == np.float32 else arr.astype(np.float32)
        if not np.isfinite(values).all():
            raise _Refused("float image contains NaN or infinite values")
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        if lo < 0 or hi > 1:
            values, note = _rescale(values, "float")
        else:
            note = "float kept as is (values within [0, 1])"
        if t.bits == 64:
            conversions.append("64-bit float -> 32-bit float")
        conversions.insert(0, note)
        pixels = values
    else:
        scale = float(2**t.bits - 1)
        pixels = _to_float(arr, scale)
        if t.bits > 8:
            conversions.insert(0, f"{t.bits}-bit -> float (no 8-bit rounding)")
        if t.bits > 24:
            conversions.append("32-bit integer samples -> float32 (precision beyond 24 bits lost)")
        if t.photometric == 0:
            np.subtract(np.float32(1), pixels, out=pixels)
            conversions.append("min-is-white inverted")
    if colour == 1:
        pixels = _gray_to_rgb(pixels[..., 0])
        conversions.append("grayscale -> RGB")
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    _check_declared(pixels, t.width, t.height, t.bits, t.bits)
    orientation = t.orientation if t.orientation in range(1, 9) else 1
    if orientation != 1:
        conversions.append(
            f"EXIF orientation {orientation} recorded "
            "(display only; the fingerprint reads the stored raster)"
        )
    frames = t.pages or 1
    if frames > 1:
        conversions.append(f"first of {frames} frames")
    base = {3: "RGB", 1: "L"}[colour] + ("A" if extra and colour == 3 else "")
    mode = base if t.bits == 8 else f"{base};{t.bits}" + ("F" if kind == "f" else "")
    return LoadedImage(
        path=name,
        sha256=digest,
        pixels=pixels,
        width=t.width,
        height=t.height,
        format="TIFF",
        mode=mode,
        bit_depth=t.bits,
        conversions=conversions,
        frames=frames,
        orientation=orientation,
    )


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
            gray, note = _rescale(values, "32-bit integer")
            conversions += [note, "grayscale -> RGB"]
            return _gray_to_rgb(gray), 32
        conversions += [_16_TO_FLOAT, "grayscale -> RGB"]
        return _gray_to_rgb(_to_float(values, 65535)), 16
    if mode == "F":
        values = np.asarray(im)
        if not np.isfinite(values).all():
            raise _Refused("float image contains NaN or infinite values")
        if values.size and (values.min() < 0 or values.max() > 1):
            gray, note = _rescale(values, "float")
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
    """Min-max rescale data that has no natural [0, 1] range, and say so.

    Computed in float64 a block of rows at a time (exact for 32-bit integers), so a large
    image never has a whole float64 copy: the output is the only full-size allocation.
    """
    lo, hi = float(values.min()), float(values.max())
    out = np.empty(values.shape, dtype=np.float32)
    rows = max(1, (1 << 20) // max(1, values[0].size)) if values.ndim > 1 else values.size
    for start in range(0, max(len(values), 1), rows):
        block = values[start : start + rows].astype(np.float64)
        if hi > lo:
            out[start : start + rows] = (block - lo) / (hi - lo)
        else:
            out[start : start + rows] = np.clip(block, 0.0, 1.0)
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
