"""What a file is by its content (magic bytes), never by its name.

:func:`image_kind` names the image format a file's first bytes announce (supported or not);
:func:`describe` words what a non-image file looks like, for the "skipped" reason.
"""

from __future__ import annotations

__all__ = ["HEAD_BYTES", "describe", "image_kind"]

#: Bytes read from the start of a file to decide what it is.
HEAD_BYTES = 512

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1"}
_HEIF_BRANDS |= {b"msf1", b"mif2"}
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def _ftyp_brands(head: bytes) -> list[bytes]:
    """Major and compatible brands of an ISO-BMFF file (MP4, HEIF, AVIF), or []."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return []
    size = int.from_bytes(head[:4], "big")
    end = min(max(size, 16), len(head))
    brands = [head[8:12]]
    brands += [head[i : i + 4] for i in range(16, end - 3, 4)]
    return brands


def image_kind(head: bytes) -> str | None:
    """The image format announced by ``head`` ("PNG", "JPEG", ..., "HEIF", "JPEG XL"), or None.

    Formats the loader cannot decode are named too, so that they fail as images (with a
    reason) instead of being skipped as non-images.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 18:
        if int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES:
            return "BMP"
    brands = _ftyp_brands(head)
    if brands:
        if head[8:12] in _AVIF_BRANDS or (
            any(b in _AVIF_BRANDS for b in brands) and head[8:12] not in _HEIF_BRANDS
        ):
            return "AVIF"
        if any(b in _HEIF_BRANDS for b in brands):
            return "HEIF"
        if b"jxl " in brands:
            return "JPEG XL"
        return None
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "JPEG XL"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG 2000"
    if head.startswith(b"8BPS"):
        return "PSD"
    if head.startswith(b"qoif"):
        return "QOI"
    if head.startswith(b"v/1\x01"):
        return "OpenEXR"
    if head.startswith(b"#?RADIANCE") or head.startswith(b"#?RGBE"):
        return "Radiance HDR"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3].isspace():
        return "PNM"
    if head.startswith(b"DDS "):
        return "DDS"
    return None


_BINARY = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or .npz, .docx, ...)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"(\xb5/\xfd", "zstd-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x93NUMPY", "a NumPy array file (.npy)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"),
    (b"\xcf\xfa\xed\xfe", "an executable (Mach-O)"),
    (b"ID3", "MP3 audio"),
    (b"OggS", "Ogg audio/video"),
    (b"fLaC", "FLAC audio"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"\x00\x00\x01\xba", "an MPEG video"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document"),
    (b"\x80\x02", "a Python pickle"),
    (b"\x80\x04\x95", "a Python pickle"),
    (b"\x80\x05\x95", "a Python pickle"),
)


def describe(head: bytes) -> str:
    """What a non-image file looks like, in a few words ("text", "a PDF document", ...)."""
    if not head:
        return "empty file (0 bytes)"
    for magic, what in _BINARY:
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF":
        kind = {b"WAVE": "WAV audio", b"AVI ": "an AVI video"}.get(head[8:12])
        return kind or "a RIFF container"
    brands = _ftyp_brands(head)
    if brands:
        brand = head[8:12].decode("ascii", "replace").strip()
        return f"an MP4/QuickTime video or other ISO media (brand {brand!r})"
    if head.startswith(b"MZ"):
        return "a Windows executable"
    text = _as_text(head)
    if text is not None:
        low = text.lstrip("\ufeff \t\r\n").lower()
        if low.startswith("<svg") or ("<svg" in low and low.startswith("<?xml")):
            return "an SVG drawing (vector graphics, no pixels to read)"
        if low.startswith("<!doctype html") or low.startswith("<html"):
            return "an HTML page"
        if low.startswith("<?xml"):
            return "XML text"
        if low[:1] in ("{", "["):
            return "text (JSON?)"
        return "text"
    return "unrecognised binary data (starts " + head[:8].hex(" ") + ")"


def _as_text(head: bytes) -> str | None:
    """``head`` decoded as UTF-8 text, or None if it looks binary."""
    if b"\x00" in head:
        for enc in ("utf-16",):  # BOM-marked UTF-16 text (Windows notepad)
            if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
                try:
                    return head[: len(head) // 2 * 2].decode(enc)
                except UnicodeDecodeError:
                    return None
        return None
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\r\n\f\v\x1b")
        return text if controls <= len(text) // 50 else None
    return None
