"""Bounded readers for the metadata blocks of image containers (PNG, JPEG, WebP, TIFF).

Only metadata is read: pixel data is skipped with ``seek``. Every block is read with a
size cap and a malformed or oversized block becomes an error string, never an exception,
so one odd file cannot stop a batch.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

#: Largest single metadata block read (a text chunk, an XMP packet, an EXIF blob).
MAX_BLOCK_BYTES = 1 << 20
#: Largest total of metadata read from one file.
MAX_TOTAL_BYTES = 8 << 20
#: Chunks/segments walked before giving up (a file of millions of tiny chunks).
MAX_BLOCKS = 100_000

XMP_PNG_KEY = "XML:com.adobe.xmp"
_JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_XMP_EXT = b"http://ns.adobe.com/xmp/extension/\x00"
_EXIF_HEADER = b"Exif\x00\x00"


@dataclass
class Blocks:
    """The raw metadata a container holds, before interpretation."""

    texts: dict[str, str] = field(default_factory=dict)  #: PNG tEXt/iTXt/zTXt by keyword
    text_kinds: dict[str, str] = field(default_factory=dict)  #: keyword -> chunk type
    xmp: bytes | None = None
    exif: bytes | None = None  #: a TIFF-structured EXIF blob (no "Exif\0\0" header)
    tiff_tags: dict[int, bytes] | None = None  #: IFD0 of a TIFF file itself
    c2pa_hint: bool = False  #: the container has a C2PA/JUMBF block (read or not)
    comment: str | None = None  #: JPEG COM segment
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _budget: int = MAX_TOTAL_BYTES
    #: blocks refused because the per-file total ran out, and where their one error line is
    #: (a file of hundreds of text chunks must not repeat the same line hundreds of times)
    _over_total: int = 0
    _over_at: int = -1

    def take(self, n: int, what: str) -> bool:
        """Whether ``n`` more bytes of metadata may be read (else an error is noted)."""
        if n > MAX_BLOCK_BYTES:
            self.errors.append(f"{what}: {n} bytes, over the {MAX_BLOCK_BYTES} byte cap: not read")
            return False
        if n > self._budget:
            self._over_total += 1
            line = (
                f"metadata over {MAX_TOTAL_BYTES} bytes in all: "
                f"{self._over_total} block(s) not read"
            )
            if self._over_at < 0:
                self._over_at = len(self.errors)
                self.errors.append(line)
            else:
                self.errors[self._over_at] = line
            return False
        self._budget -= n
        return True


def _read_exact(f: BinaryIO, n: int) -> bytes | None:
    data = f.read(n)
    return data if len(data) == n else None


# -- PNG ---------------------------------------------------------------------------------------


def read_png(f: BinaryIO) -> Blocks:
    """Text chunks (tEXt, zTXt, iTXt), eXIf and the C2PA ``caBX`` chunk of a PNG."""
    b = Blocks()
    if f.read(8) != b"\x89PNG\r\n\x1a\n":
        b.errors.append("PNG: bad signature")
        return b
    for _ in range(MAX_BLOCKS):
        head = f.read(8)
        if len(head) < 8:
            b.errors.append("PNG: file ends before the IEND chunk (truncated)")
            return b
        length, ctype = struct.unpack(">I4s", head)
        name = ctype.decode("latin-1")
        if length > 0x7FFFFFFF:
            b.errors.append(f"PNG: chunk {name!r} has an impossible length {length}: stopped")
            return b
        if ctype == b"IEND":
            return b
        if ctype == b"caBX":
            b.c2pa_hint = True
        if ctype not in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
            f.seek(length + 4, 1)
            continue
        if not b.take(length, f"PNG {name} chunk"):
            f.seek(length + 4, 1)
            continue
        data = _read_exact(f, length)
        crc = _read_exact(f, 4)
        if data is None or crc is None:
            b.errors.append(f"PNG: {name} chunk cut short (truncated file)")
            return b
        if zlib.crc32(ctype + data) != struct.unpack(">I", crc)[0]:
            b.errors.append(f"PNG: {name} chunk with a bad CRC: ignored (corrupt)")
            continue
        if ctype == b"eXIf":
            b.exif = data
            continue
        try:
            key, text = _png_text(ctype, data)
        except ValueError as exc:
            b.errors.append(f"PNG: malformed {name} chunk: {exc}")
            continue
        if key == XMP_PNG_KEY:
            b.xmp = text.encode("utf-8")
        elif key in b.texts:
            b.notes.append(f"PNG: text key {key!r} appears twice: the first kept")
        else:
            b.texts[key] = text
            b.text_kinds[key] = name
    b.errors.append(f"PNG: more than {MAX_BLOCKS} chunks: stopped reading")
    return b


def _inflate(data: bytes) -> str:
    """zlib-decompressed ``data`` as UTF-8, capped at :data:`MAX_BLOCK_BYTES` (zip bombs)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, MAX_BLOCK_BYTES)
    except zlib.error as exc:
        raise ValueError(f"bad compressed text ({exc})") from None
    if d.unconsumed_tail:
        raise ValueError(f"compressed text inflates beyond {MAX_BLOCK_BYTES} bytes")
    return out.decode("utf-8", errors="replace")


def _png_text(ctype: bytes, data: bytes) -> tuple[str, str]:
    key_raw, sep, rest = data.partition(b"\x00")
    if not sep or not 1 <= len(key_raw) <= 79:
        raise ValueError("no keyword (1-79 bytes followed by a NUL)")
    key = key_raw.decode("latin-1")
    if ctype == b"tEXt":
        return key, rest.decode("latin-1")
    if ctype == b"zTXt":
        if not rest or rest[0] != 0:
            raise ValueError("unknown compression method")
        return key, _inflate(rest[1:])
    # iTXt: compression flag, method, language tag NUL, translated keyword NUL, UTF-8 text
    if len(rest) < 2:
        raise ValueError("too short")
    flag, method = rest[0], rest[1]
    parts = rest[2:].split(b"\x00", 2)
    if len(parts) != 3:
        raise ValueError("missing language tag or translated keyword")
    text = parts[2]
    if flag == 1:
        if method != 0:
            raise ValueError("unknown compression method")
        return key, _inflate(text)
    if flag != 0:
        raise ValueError(f"bad compression flag {flag}")
    return key, text.decode("utf-8", errors="replace")


def is_c2pa_jumbf(head: bytes) -> bool:
    """Whether the first bytes of a block hold a JUMBF superbox (``jumb``) whose
    description box (``jumd``) carries the C2PA label: the start of a C2PA manifest store
    in every container (JPEG APP11 after its 8-byte JPEG XT header, PNG caBX, BMFF uuid)."""
    at = head.find(b"jumb")
    return at >= 0 and b"jumd" in head[at : at + 16] and b"c2pa" in head[at : at + 64]


def scan_c2pa(f: BinaryIO, limit: int) -> bool:
    """Whether the first ``limit`` bytes of ``f`` hold a C2PA JUMBF store anywhere: the
    presence test for containers fpattr does not walk (GIF, AVIF, HEIF, ...)."""
    f.seek(0)
    tail = b""
    seen = 0
    while seen < limit:
        chunk = f.read(min(1 << 20, limit - seen))
        if not chunk:
            return False
        seen += len(chunk)
        data = tail + chunk
        at = data.find(b"jumb")
        while at >= 0:
            if is_c2pa_jumbf(data[at : at + 64]):
                return True
            at = data.find(b"jumb", at + 1)
        tail = data[-64:]  # a box header split across two reads
    return False


# -- JPEG --------------------------------------------------------------------------------------


def read_jpeg(f: BinaryIO) -> Blocks:
    """APP1 EXIF and XMP, APP11 (C2PA JUMBF) and COM segments before the image data."""
    b = Blocks()
    if f.read(2) != b"\xff\xd8":
        b.errors.append("JPEG: bad start of image marker")
        return b
    for _ in range(MAX_BLOCKS):
        byte = f.read(1)
        if not byte:
            b.errors.append("JPEG: file ends before the image data (truncated)")
            return b
        if byte != b"\xff":
            b.errors.append("JPEG: segment structure broken: metadata read stopped")
            return b
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            return b
        m = marker[0]
        if m in (0x01, *range(0xD0, 0xD8)):
            continue
        if m in (0xDA, 0xD9):  # start of scan / end of image: no metadata after here
            return b
        raw = _read_exact(f, 2)
        if raw is None:
            b.errors.append("JPEG: truncated segment header")
            return b
        length = struct.unpack(">H", raw)[0] - 2
        if length < 0:
            b.errors.append("JPEG: segment with a bad length: metadata read stopped")
            return b
        if m == 0xEB and not b.c2pa_hint:
            # APP11 also carries other JPEG XT boxes: only a JUMBF box labelled c2pa counts
            head = f.read(min(length, 64))
            b.c2pa_hint = is_c2pa_jumbf(head)
            f.seek(length - len(head), 1)
            continue
        if m not in (0xE1, 0xFE) or not b.take(length, f"JPEG segment 0x{m:02X}"):
            f.seek(length, 1)
            continue
        data = _read_exact(f, length)
        if data is None:
            b.errors.append("JPEG: segment cut short (truncated file)")
            return b
        if m == 0xFE:
            b.comment = data.decode("utf-8", errors="replace").rstrip("\x00")
        elif data.startswith(_EXIF_HEADER):
            b.exif = b.exif or data[len(_EXIF_HEADER) :]
        elif data.startswith(_JPEG_XMP):
            b.xmp = b.xmp or data[len(_JPEG_XMP) :]
        elif data.startswith(_JPEG_XMP_EXT):
            if "extended XMP" not in " ".join(b.notes):
                b.notes.append("JPEG: extended XMP (multi-segment) present: not read")
    b.errors.append(f"JPEG: more than {MAX_BLOCKS} segments: stopped reading")
    return b


# -- WebP --------------------------------------------------------------------------------------


def read_webp(f: BinaryIO) -> Blocks:
    """``XMP `` and ``EXIF`` chunks of a WebP (RIFF) file; ``C2PA`` noted."""
    b = Blocks()
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        b.errors.append("WebP: bad RIFF header")
        return b
    for _ in range(MAX_BLOCKS):
        ch = f.read(8)
        if len(ch) < 8:
            return b  # end of file
        fourcc, size = ch[:4], struct.unpack("<I", ch[4:])[0]
        skip = size + (size & 1)
        if fourcc == b"C2PA":
            b.c2pa_hint = True
        if fourcc not in (b"XMP ", b"EXIF") or not b.take(size, f"WebP {fourcc!r} chunk"):
            f.seek(skip, 1)
            continue
        data = _read_exact(f, size)
        if data is None:
            b.errors.append(f"WebP: {fourcc.decode('latin-1')!r} chunk cut short")
            return b
        f.seek(skip - size, 1)
        if fourcc == b"XMP ":
            b.xmp = data
        else:
            b.exif = data[len(_EXIF_HEADER) :] if data.startswith(_EXIF_HEADER) else data
    b.errors.append(f"WebP: more than {MAX_BLOCKS} chunks: stopped reading")
    return b


# -- TIFF structures (TIFF files and EXIF blobs) -------------------------------------------------

_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 7: 1}
EXIF_IFD = 0x8769
TAG_XMP = 700
#: The TIFF tag that holds a C2PA manifest store (only its presence is recorded).
TAG_C2PA = 0xCD41
#: Tags read: ImageDescription, Make, Model, Software, Artist, XMP, Exif IFD, UserComment.
TAGS = {270, 271, 272, 305, 315, TAG_XMP, EXIF_IFD, 0x9286}


def read_tiff_tags(
    read_at: Callable[[int, int], bytes], errors: list[str], what: str = "EXIF"
) -> dict[int, bytes]:
    """Raw values of :data:`TAGS` from IFD0 and the Exif sub-IFD, each capped in size.

    ``read_at(offset, n)`` returns up to ``n`` bytes at ``offset`` of the TIFF structure.
    SHORT/LONG values come back as bytes too; callers convert what they use.
    """
    head = read_at(0, 8)
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        errors.append(f"{what}: not a TIFF structure")
        return {}
    order = "<" if head[:2] == b"II" else ">"
    magic, ifd = struct.unpack(order + "HI", head[2:8])
    if magic != 42:
        errors.append(f"{what}: BigTIFF or unknown layout (magic {magic}): not read")
        return {}
    out: dict[int, bytes] = {}
    seen: set[int] = set()
    todo = [ifd]
    while todo and len(seen) < 4:
        ifd = todo.pop()
        if ifd in seen or ifd < 8:
            continue
        seen.add(ifd)
        raw = read_at(ifd, 2)
        if len(raw) < 2:
            errors.append(f"{what}: IFD offset past the end")
            continue
        n = min(struct.unpack(order + "H", raw)[0], 1000)
        entries = read_at(ifd + 2, 12 * n)
        for i in range(len(entries) // 12):
            tag, typ, count, value = struct.unpack(order + "HHI4s", entries[12 * i : 12 * i + 12])
            if tag == TAG_C2PA:
                out.setdefault(tag, b"")  # presence only: the library reads the store
                continue
            if tag not in TAGS or typ not in _TYPE_SIZE:
                continue
            size = count * _TYPE_SIZE[typ]
            if size > MAX_BLOCK_BYTES:
                errors.append(f"{what}: tag {tag} holds {size} bytes, over the cap: not read")
                continue
            where = struct.unpack(order + "I", value)[0]
            data = value[:size] if size <= 4 else read_at(where, size)
            if len(data) < size:
                errors.append(f"{what}: tag {tag} points past the end")
                continue
            if tag == EXIF_IFD:
                fmt = order + ("I" if typ == 4 else "H")
                todo.append(struct.unpack(fmt, data[: struct.calcsize(fmt)])[0])
            else:
                out.setdefault(tag, data)
    return out


def bytes_reader(blob: bytes) -> Callable[[int, int], bytes]:
    """``read_at`` over an in-memory TIFF structure (an EXIF blob)."""
    return lambda off, n: blob[off : off + n]


def file_reader(f: BinaryIO) -> Callable[[int, int], bytes]:
    """``read_at`` over a TIFF file, seeking to each value (never the pixel strips)."""

    def read_at(off: int, n: int) -> bytes:
        f.seek(off)
        return f.read(n)

    return read_at


def read_tiff(f: BinaryIO) -> Blocks:
    """IFD0 tags (Software, Make, Model, Artist) and the XMP tag of a TIFF file."""
    b = Blocks()
    tags = read_tiff_tags(file_reader(f), b.errors, "TIFF")
    xmp = tags.pop(TAG_XMP, None)
    if xmp is not None:
        b.xmp = xmp
    b.c2pa_hint = tags.pop(TAG_C2PA, None) is not None
    b.tiff_tags = tags
    return b
