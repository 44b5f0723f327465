"""Files with metadata, built by the tests themselves (no fixture files)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

A1111 = (
    "a castle on a hill, golden hour\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 64x64, "
    'Model hash: 6ce0161689, Model: v1-5-pruned, Lora hashes: "a: 1, b: 2", Version: v1.6.0'
)
DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def chunk(ctype: bytes, data: bytes, *, bad_crc: bool = False) -> bytes:
    """One PNG chunk (length, type, data, CRC)."""
    crc = zlib.crc32(ctype + data) ^ (1 if bad_crc else 0)
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc)


def text_chunk(key: str, text: str, kind: str = "tEXt") -> bytes:
    """A tEXt, zTXt, iTXt (uncompressed) or iTXt-z (compressed) chunk."""
    k = key.encode("latin-1") + b"\x00"
    if kind == "tEXt":
        return chunk(b"tEXt", k + text.encode("latin-1"))
    if kind == "zTXt":
        return chunk(b"zTXt", k + b"\x00" + zlib.compress(text.encode("latin-1")))
    if kind == "iTXt":
        return chunk(b"iTXt", k + b"\x00\x00" + b"en\x00\x00" + text.encode("utf-8"))
    if kind == "iTXt-z":
        body = zlib.compress(text.encode("utf-8"))
        return chunk(b"iTXt", k + b"\x01\x00" + b"en\x00\x00" + body)
    raise ValueError(kind)


def png_bytes(size: int = 16, color: tuple[int, int, int] = (90, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "PNG")
    return buf.getvalue()


def insert_chunks(png: bytes, *chunks: bytes) -> bytes:
    """``png`` with ``chunks`` inserted after IHDR: the pixels stay byte for byte the same."""
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def write_png(path: Path, *chunks: bytes) -> Path:
    path.write_bytes(insert_chunks(png_bytes(), *chunks))
    return path


def xmp_packet(body: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{body}</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def jpeg_with_xmp(packet: bytes) -> bytes:
    """A JPEG whose APP1 XMP segment holds ``packet`` (placed right after SOI)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(buf, "JPEG")
    data = buf.getvalue()
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + seg + data[2:]


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def pf() -> SimpleNamespace:
    """The file builders above (test modules cannot import conftest in importlib mode)."""
    names = ("chunk", "text_chunk", "png_bytes", "insert_chunks", "write_png", "xmp_packet")
    return SimpleNamespace(
        A1111=A1111, DST=DST, jpeg_with_xmp=jpeg_with_xmp, **{n: globals()[n] for n in names}
    )
