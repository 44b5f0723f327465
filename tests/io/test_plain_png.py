"""The libpng fast path for plain 8-bit PNGs gives what Pillow's path gives, field for field,
and leaves every other PNG (and every damaged one) to Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from fpattr.errors import ImageLoadError
from fpattr.io import loader

pytest.importorskip("imagecodecs")


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _insert_after_ihdr(data: bytes, *chunks: bytes) -> bytes:
    cut = 8 + 12 + 13  # signature + IHDR chunk
    return data[:cut] + b"".join(chunks) + data[cut:]


def _extra_idat_data(data: bytes) -> bytes:
    """The image data followed by a second zlib stream in its own IDAT (libpng ignores it)."""
    iend = data.index(b"IEND") - 4
    return data[:iend] + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + data[iend:]


def _too_many_rows(w: int = 5, h: int = 4) -> bytes:
    """An RGB PNG whose image data holds two rows more than its height (libpng warns
    "IDAT: Too much image data" and decodes the image, as Pillow does silently)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    raw = b"".join(b"\0" + bytes(range(3 * w)) for _ in range(h + 2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def _png(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _rng_image(mode: str, size=(37, 23)) -> Image.Image:
    rng = np.random.default_rng(len(mode))
    bands = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], bands), dtype=np.uint8)
    im = Image.fromarray(arr[..., 0] if bands == 1 else arr)
    assert im.mode == mode
    return im


def _variants() -> dict[str, tuple[bytes, bool]]:
    """name -> (file bytes, whether the fast path should take it)."""
    rgb = _rng_image("RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a prompt")
    info.add_text("Comment", "zipped " * 50, zip=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    gama = _chunk(b"gAMA", struct.pack(">I", 45455))
    bad_gama = gama[:-1] + bytes([gama[-1] ^ 1])
    plain = _png(rgb)
    idat = plain.index(b"IDAT")
    iend = plain.index(b"IEND") - 4
    phys = _chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1))
    gray16 = Image.fromarray(np.random.default_rng(5).integers(0, 65536, (9, 11), dtype=np.uint16))
    frames = [_rng_image("RGB"), _rng_image("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    apng = io.BytesIO()
    frames[0].save(apng, format="PNG", save_all=True, append_images=frames[1:])
    return {
        "rgb": (plain, True),
        "rgba": (_png(_rng_image("RGBA")), True),
        "gray": (_png(_rng_image("L")), True),
        "gray_alpha": (_png(_rng_image("LA")), True),
        "rgb_text": (_png(rgb, pnginfo=info), True),
        "rgb_gamma": (_insert_after_ihdr(plain, gama), True),
        "rgb_icc": (_png(rgb, icc_profile=b"\0" * 64), False),
        "rgb_srgb_phys": (_insert_after_ihdr(plain, _chunk(b"sRGB", b"\0"), phys), True),
        # break-it pass: malformed chunks libpng only warns about, Pillow refuses
        "gamma_empty": (_insert_after_ihdr(plain, _chunk(b"gAMA", b"")), False),
        "phys_short": (_insert_after_ihdr(plain, phys[:8] + phys[9:]), False),
        "gamma_empty_after_idat": (plain[:iend] + _chunk(b"gAMA", b"") + plain[iend:], False),
        "fdat_without_actl": (plain[:iend] + _chunk(b"fdAT", b"\0" * 8) + plain[iend:], False),
        "idat_extra_data": (_extra_idat_data(plain), True),
        "too_many_rows": (_too_many_rows(), True),
        "rgb_trns": (_png(rgb, transparency=(1, 2, 3)), False),
        "gray_trns": (_png(_rng_image("L"), transparency=5), False),
        "rgb_exif_orientation": (_png(rgb, exif=exif.tobytes()), False),
        "rgb_bad_crc": (_insert_after_ihdr(plain, bad_gama), False),
        "rgb_truncated": (plain[: idat + 40], False),
        "gray16": (_png(gray16), False),
        "palette": (_png(rgb.convert("P")), False),
        "apng": (apng.getvalue(), False),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bool]]:
    d = tmp_path_factory.mktemp("png")
    out = {}
    for name, (data, fast) in _variants().items():
        (d / f"{name}.png").write_bytes(data)
        out[name] = (d / f"{name}.png", fast)
    return out


def _load(path: Path) -> tuple[dict | None, np.ndarray | None, str | None]:
    try:
        img = loader.load_image(path)
    except ImageLoadError as e:
        return None, None, e.reason
    return img.info(), img.pixels, None


@pytest.mark.parametrize("name", list(_variants()))
def test_fast_path_equals_pillow(files, name, monkeypatch, caplog) -> None:
    path, fast = files[name]
    taken: list[bool] = []
    real = loader._load_plain_png

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        r = real(*a, **kw)
        taken.append(r is not None)
        return r

    monkeypatch.setattr(loader, "_load_plain_png", spy)
    info, pixels, error = _load(path)
    assert taken == [fast]  # the plain ones go through libpng, the rest to Pillow
    monkeypatch.setattr(loader, "_LIBPNG", [None])  # as without imagecodecs: Pillow only
    want_info, want_pixels, want_error = _load(path)
    assert error == want_error
    assert info == want_info
    if want_pixels is None:
        assert pixels is None
    else:
        assert pixels is not None and pixels.dtype == np.float32
        np.testing.assert_array_equal(pixels, want_pixels)
    # libpng's warnings went to stderr through imagecodecs' logger ("PNG warning: ...")
    assert not [r for r in caplog.records if r.name.startswith("imagecodecs")]


def test_cases_say_what_they_are(files) -> None:
    """The variants are what their names say (so the test above covers those cases)."""
    assert _load(files["rgb_exif_orientation"][0])[0]["orientation"] == 6
    assert _load(files["apng"][0])[0]["frames"] == 2
    assert _load(files["gray16"][0])[0]["bit_depth"] == 16
    assert "truncated" in _load(files["rgb_truncated"][0])[2]
    assert _load(files["rgb_bad_crc"][0])[2]  # refused, by Pillow's words
    assert _load(files["rgba"][0])[0]["conversions"] == ["alpha channel dropped"]


def test_size_limits_hold_on_the_fast_path(files) -> None:
    path = files["rgb"][0]
    with pytest.raises(ImageLoadError, match="over the"):
        loader.load_image(path, max_pixels=100)
