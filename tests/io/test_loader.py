"""load_image: every hostile case, exact pixel values, and no leaked global state."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageFile, ImageOps, TiffImagePlugin, features

from fpattr.errors import ImageLoadError
from fpattr.io import loader as loader_mod
from fpattr.io.loader import IMAGE_EXTENSIONS, LoadedImage, load_image, oriented, sha256_file
from fpattr.testing import encode_png, make_hostile_inputs, make_image, write_image

F16 = "16-bit -> float (no 8-bit rounding)"


def recorded(orientation: int) -> str:
    return (
        f"EXIF orientation {orientation} recorded "
        "(display only; the fingerprint reads the stored raster)"
    )


@pytest.fixture
def hostile(tmp_path: Path) -> dict[str, Path]:
    return make_hostile_inputs(tmp_path / "hostile")


def expected8(arr: np.ndarray) -> np.ndarray:
    return (np.asarray(arr, dtype=np.float64) / 255).astype(np.float32)


def expected16(arr: np.ndarray) -> np.ndarray:
    return (np.asarray(arr, dtype=np.float64) / 65535).astype(np.float32)


def reason(path: Path, **kwargs: int) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(path, **kwargs)
    err = info.value
    assert err.path == str(path)
    assert "\n" not in str(err) and "Traceback" not in str(err)
    return err.reason


def tiff16(arr: np.ndarray, *, big_endian: bool) -> bytes:
    """Minimal uncompressed 16-bit RGB(A) TIFF (Pillow cannot write one)."""
    height, width, channels = arr.shape
    e = ">" if big_endian else "<"
    data = arr.astype(f"{e}u2").tobytes()
    bps_offset = 8 + len(data)
    ifd_offset = bps_offset + 2 * channels
    tags = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, channels, bps_offset),
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, 1, 8),
        (277, 3, 1, channels),
        (278, 3, 1, height),
        (279, 4, 1, len(data)),
        (284, 3, 1, 1),
    ] + ([(338, 3, 1, 2)] if channels == 4 else [])
    out = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(f"{e}I", ifd_offset)
    out += data + struct.pack(f"{e}{channels}H", *[16] * channels)
    out += struct.pack(f"{e}H", len(tags))
    for tag, kind, count, value in tags:
        packed = struct.pack(f"{e}HH", value, 0) if kind == 3 and count == 1 else None
        out += struct.pack(f"{e}HHI", tag, kind, count) + (packed or struct.pack(f"{e}I", value))
    return out + struct.pack(f"{e}I", 0)


# --------------------------------------------------------------------------- hostile zoo

LOADS = {
    "ok_png": ("PNG", "RGB", 8, []),
    "ok_jpeg": ("JPEG", "RGB", 8, []),
    "ok_webp": ("WEBP", "RGB", 8, []),
    "ok_tiff": ("TIFF", "RGB", 8, []),
    "ok_bmp": ("BMP", "RGB", 8, []),
    "gif_animated": ("GIF", "P", 8, ["palette -> RGB", "first of 3 frames"]),
    "cmyk_jpeg": ("JPEG", "CMYK", 8, ["CMYK -> RGB"]),
    "png16_gray": ("PNG", "I;16", 16, [F16, "grayscale -> RGB"]),
    "png16_rgb": ("PNG", "RGB", 16, [F16]),
    "palette_png": ("PNG", "P", 8, ["palette -> RGB"]),
    "palette_transparency_png": (
        "PNG",
        "P",
        8,
        ["palette -> RGB", "palette transparency dropped"],
    ),
    "rgba_png": ("PNG", "RGBA", 8, ["alpha channel dropped"]),
    "la_png": ("PNG", "LA", 8, ["alpha channel dropped", "grayscale -> RGB"]),
    "gray_png": ("PNG", "L", 8, ["grayscale -> RGB"]),
    "exif_rotated_jpeg": ("JPEG", "RGB", 8, [recorded(6)]),
}

FAILS = {
    "corrupt_png": "truncated or corrupt image data",
    "truncated_jpeg": "truncated or corrupt image data (image file is truncated",
    "empty_png": "empty file (0 bytes)",
    "text_as_png": (
        "not a recognised image format: by its content this is text, though it is named .png"
    ),
    "non_image_txt": "not an image by its content: text",
    "huge_png": "image is 100000x100000 (10000 Mpx), over the 64 Mpx limit (decompression bomb?)",
    "zero_size_png": "image has zero width or height (0x16)",
    "broken_symlink": "broken symbolic link (target does not exist)",
    "self_symlink_png": "symbolic link loop",
    "symlink_loop": "is a directory",
}


@pytest.mark.parametrize("case", sorted(LOADS))
def test_hostile_case_loads_with_recorded_conversions(hostile, case):
    if case not in hostile:
        pytest.skip(f"{case} not available on this platform/Pillow build")
    fmt, mode, depth, conversions = LOADS[case]
    img = load_image(hostile[case])
    assert (img.format, img.mode, img.bit_depth, img.conversions) == (fmt, mode, depth, conversions)
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (img.height, img.width, 3)
    assert img.pixels.flags.c_contiguous
    assert 0.0 <= img.pixels.min() and img.pixels.max() <= 1.0
    assert img.frames == (3 if case == "gif_animated" else 1)


@pytest.mark.parametrize("case", sorted(FAILS))
def test_hostile_case_fails_with_clear_reason(hostile, case):
    if case not in hostile:
        pytest.skip(f"{case} not available on this platform")
    assert FAILS[case] in reason(hostile[case])


def test_hostile_files_are_tiny_and_cover_the_brief(hostile):
    expected = set(LOADS) | set(FAILS) | {"unreadable_png"}
    missing = expected - set(hostile)
    assert missing <= {"ok_webp", "broken_symlink", "self_symlink_png", "symlink_loop"}
    for path in hostile.values():
        if path.is_file() and not path.is_symlink():
            assert path.stat().st_size < 50_000, path


def test_unreadable_file(hostile):
    path = hostile["unreadable_png"]
    if os.name != "posix" or os.geteuid() == 0:  # root (and Windows) ignore chmod 000
        assert load_image(path).format == "PNG"
    else:
        assert reason(path) == "permission denied"


def test_missing_file_directory_and_fifo(tmp_path):
    assert reason(tmp_path / "nope.png") == "no such file or directory"
    assert reason(tmp_path) == "is a directory"
    assert "a parent is not a folder" in reason(write_image(tmp_path / "a.png") / "x.png")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.png"
        os.mkfifo(fifo)
        assert reason(fifo) == "not a regular file (device, pipe or socket)"


# --------------------------------------------------------------------------- exact pixels


def test_rgb_png_pixels_hash_and_info(tmp_path):
    path = write_image(tmp_path / "x.png", (7, 5), seed=3)
    img = load_image(path)
    np.testing.assert_array_equal(img.pixels, expected8(np.asarray(Image.open(path))))
    data = path.read_bytes()
    assert img.sha256 == hashlib.sha256(data).hexdigest() == sha256_file(path)
    assert (img.width, img.height, img.path) == (7, 5, str(path))
    info = img.info()
    assert "pixels" not in info and json.loads(json.dumps(info)) == info
    assert info["conversions"] == [] and info["sha256"] == img.sha256
    assert info["orientation"] == img.orientation == 1
    assert isinstance(img, LoadedImage)


@pytest.mark.parametrize("filter_type", [None, 0, 1, 2, 3, 4])
def test_png16_rgb_keeps_all_16_bits(tmp_path, filter_type):
    rng = np.random.default_rng(filter_type or 7)
    arr = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(encode_png(arr, filter_type=filter_type))
    img = load_image(path)
    np.testing.assert_array_equal(img.pixels, expected16(arr))
    assert (img.bit_depth, img.conversions) == (16, [F16])
    assert not np.array_equal(img.pixels, expected8(arr >> 8))  # beyond 8-bit precision


def test_png16_rgba_and_la_keep_16_bits_and_drop_alpha(tmp_path):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 65536, (6, 5, 4), dtype=np.uint16)
    (tmp_path / "rgba16.png").write_bytes(encode_png(rgba))
    img = load_image(tmp_path / "rgba16.png")
    np.testing.assert_array_equal(img.pixels, expected16(rgba[..., :3]))
    assert img.conversions == [F16, "alpha channel dropped"] and img.bit_depth == 16

    la = rng.integers(0, 65536, (6, 5, 2), dtype=np.uint16)
    (tmp_path / "la16.png").write_bytes(encode_png(la))
    img = load_image(tmp_path / "la16.png")
    np.testing.assert_array_equal(img.pixels, np.repeat(expected16(la[..., :1]), 3, axis=2))
    assert img.conversions == [F16, "alpha channel dropped", "grayscale -> RGB"]


def test_pillow_still_decodes_16bit_rgb_png_at_8_bits(hostile):
    """Canary: the low-byte recovery exists because Pillow keeps only the high bytes.

    If this fails, Pillow changed how it opens 48-bit PNGs; revisit ``_swap16`` in the loader.
    """
    im = Image.open(hostile["png16_rgb"])
    assert im.mode == "RGB" and im.tile[0][3] in ("RGB;16B", ("RGB;16B",))


def test_png16_rgb_is_refused_when_low_byte_recovery_fails(hostile, monkeypatch):
    """Exact decoding or a true refusal: never fingerprint the 8-bit remains of 16-bit data."""
    monkeypatch.setattr(loader_mod, "_decode_low_bytes", lambda data, im: None)
    assert reason(hostile["png16_rgb"]) == (
        "16-bit RGB samples could only be decoded at 8 bits (precision would be lost): refused"
    )


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("use_libtiff", [False, True])
def test_tiff16_rgb_keeps_all_16_bits(tmp_path, monkeypatch, big_endian, use_libtiff):
    if use_libtiff and not features.check("libtiff"):
        pytest.skip("Pillow built without libtiff")
    monkeypatch.setattr(TiffImagePlugin, "READ_LIBTIFF", use_libtiff)
    arr = np.random.default_rng(2).integers(0, 65536, (4, 6, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.tif"
    path.write_bytes(tiff16(arr, big_endian=big_endian))
    img = load_image(path)
    np.testing.assert_array_equal(img.pixels, expected16(arr))
    assert (img.format, img.bit_depth, img.conversions) == ("TIFF", 16, [F16])


def test_png16_gray_pixel_values(tmp_path):
    gray = np.array([[0, 1, 255, 256], [257, 32768, 65534, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    path.write_bytes(encode_png(gray))
    img = load_image(path)
    np.testing.assert_array_equal(img.pixels, np.repeat(expected16(gray)[..., None], 3, axis=2))
    assert img.pixels[0, 1, 0] > 0  # 1/65535 survives; 8-bit rounding would give 0


def test_pillow_written_16bit_gray_png_and_tiff(tmp_path):
    source = make_image((8, 6), seed=4, mode="I;16")
    for name in ("g.png", "g.tif"):
        source.save(tmp_path / name)
        img = load_image(tmp_path / name)
        assert img.bit_depth == 16 and img.conversions == [F16, "grayscale -> RGB"]
        np.testing.assert_array_equal(img.pixels[..., 1], expected16(np.asarray(source)))


def test_alpha_is_dropped_not_composited(tmp_path):
    source = make_image((10, 8), seed=5, mode="RGBA")
    rgba = np.asarray(source)
    assert rgba[0, 0, 3] == 0 and rgba[0, 0, :3].any()  # a transparent, coloured pixel
    source.save(tmp_path / "rgba.png")
    img = load_image(tmp_path / "rgba.png")
    np.testing.assert_array_equal(img.pixels, expected8(rgba[..., :3]))

    la = make_image((10, 8), seed=5, mode="LA")
    la.save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    gray = np.asarray(la)[..., 0]
    np.testing.assert_array_equal(img.pixels, np.repeat(expected8(gray)[..., None], 3, axis=2))


def test_palette_pixels_are_the_palette_colours(hostile):
    for case in ("palette_png", "palette_transparency_png", "gif_animated"):
        with Image.open(hostile[case]) as im:
            index = np.asarray(im)
            palette = np.asarray(im.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
        np.testing.assert_array_equal(load_image(hostile[case]).pixels, expected8(palette[index]))


def test_cmyk_and_other_colour_spaces_match_pillow_conversion(hostile, tmp_path):
    with Image.open(hostile["cmyk_jpeg"]) as im:
        expected = expected8(np.asarray(im.convert("RGB")))
    np.testing.assert_array_equal(load_image(hostile["cmyk_jpeg"]).pixels, expected)
    for mode in ("LAB", "YCbCr"):
        path = tmp_path / f"{mode}.tif"
        try:
            make_image((6, 4), seed=1, mode=mode).save(path)
        except (OSError, KeyError, ValueError):
            continue  # this Pillow cannot write that mode to TIFF
        img = load_image(path)
        assert img.mode == mode and img.conversions == [f"{mode} -> RGB"]
        with Image.open(path) as im:
            np.testing.assert_array_equal(img.pixels, expected8(np.asarray(im.convert("RGB"))))


def test_bilevel_and_gray(tmp_path):
    make_image((9, 7), seed=2, mode="1").save(tmp_path / "b.png")
    img = load_image(tmp_path / "b.png")
    assert (img.mode, img.bit_depth, img.conversions) == ("1", 1, ["1-bit -> RGB"])
    assert set(np.unique(img.pixels)) <= {0.0, 1.0}
    assert np.array_equal(img.pixels[..., 0], img.pixels[..., 2])


def test_float_and_int32_tiffs(tmp_path):
    make_image((5, 4), seed=3, mode="F").save(tmp_path / "f.tif")
    img = load_image(tmp_path / "f.tif")
    assert img.mode == "F" and img.conversions[0] == "float kept as is (values within [0, 1])"
    with Image.open(tmp_path / "f.tif") as im:
        np.testing.assert_array_equal(img.pixels[..., 0], np.asarray(im))

    Image.fromarray(np.array([[-2.0, 0.0], [1.0, 6.0]], np.float32)).save(tmp_path / "g.tif")
    img = load_image(tmp_path / "g.tif")
    assert img.conversions[0] == "float values in [-2, 6] rescaled to [0, 1]"
    np.testing.assert_allclose(img.pixels[..., 0], [[0, 0.25], [0.375, 1]])

    Image.fromarray(np.array([[np.nan, 0]], np.float32)).save(tmp_path / "nan.tif")
    assert reason(tmp_path / "nan.tif") == "float image contains NaN or infinite values"

    ints = np.array([[0, 1000], [40000, 65535]], np.int32)
    Image.fromarray(ints).save(tmp_path / "i.tif")
    img = load_image(tmp_path / "i.tif")
    assert (img.mode, img.bit_depth) == ("I", 16)
    np.testing.assert_array_equal(img.pixels[..., 0], expected16(ints))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_recorded_not_applied(tmp_path, orientation):
    """Pixels are the stored raster; oriented() shows what Pillow's exif_transpose shows."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    make_image((5, 3), seed=orientation).save(path, exif=exif.tobytes())
    img = load_image(path)
    with Image.open(path) as im:
        stored = expected8(np.asarray(im))
        shown = expected8(np.asarray(ImageOps.exif_transpose(im)))
    np.testing.assert_array_equal(img.pixels, stored)
    assert (img.width, img.height) == (5, 3)
    assert img.orientation == img.info()["orientation"] == orientation
    assert img.conversions == ([] if orientation == 1 else [recorded(orientation)])
    up = oriented(img.pixels, img.orientation)
    np.testing.assert_array_equal(up, shown)
    assert up.dtype == np.float32 and up.flags.c_contiguous


def test_orientation_tag_alone_does_not_change_the_fingerprint(tmp_path):
    """Byte-identical pixels, plus only EXIF Orientation=6: the same pixels reach the extractor."""
    image = make_image((40, 24), seed=11)
    plain, tagged = tmp_path / "plain.png", tmp_path / "tagged.png"
    image.save(plain)
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(tagged, exif=exif.tobytes())
    a, b = load_image(plain), load_image(tagged)
    assert a.sha256 != b.sha256  # the files differ (metadata) ...
    assert np.array_equal(a.pixels, b.pixels)  # ... the fingerprint's input does not
    assert (a.orientation, b.orientation) == (1, 6)
    assert (b.width, b.height) == (a.width, a.height) == (40, 24)
    assert b.conversions == [recorded(6)]
    with Image.open(tagged) as im:
        shown = expected8(np.asarray(ImageOps.exif_transpose(im)))
    up = oriented(b.pixels, b.orientation)
    assert up.shape == (40, 24, 3)
    np.testing.assert_array_equal(up, shown)
    np.testing.assert_array_equal(up, np.rot90(b.pixels, -1))  # 6: 90 degrees clockwise


def test_oriented_leaves_orientation_1_and_invalid_values_alone():
    px = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    for orientation in (1, 0, 9):
        assert oriented(px, orientation) is px
    assert oriented(px[..., 0], 8).shape == (4, 2)  # any trailing axes: (H, W) works too


def test_exif_rotated_jpeg_keeps_the_stored_size(hostile):
    with Image.open(hostile["exif_rotated_jpeg"]) as im:
        assert im.size == (48, 32)
        stored = expected8(np.asarray(im))
    img = load_image(hostile["exif_rotated_jpeg"])
    assert (img.width, img.height, img.orientation) == (48, 32, 6)
    np.testing.assert_array_equal(img.pixels, stored)
    assert oriented(img.pixels, img.orientation).shape == (48, 32, 3)


def test_invalid_exif_orientation_is_ignored_and_recorded(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 9
    path = tmp_path / "o.jpg"
    make_image((5, 3)).save(path, exif=exif.tobytes())
    img = load_image(path)
    assert (img.width, img.height, img.orientation) == (5, 3, 1)
    assert img.conversions == ["EXIF orientation 9 invalid; ignored"]


# --------------------------------------------------------------------------- limits and errors


def test_pixel_and_side_limits(tmp_path, monkeypatch):
    path = write_image(tmp_path / "x.png", (64, 64))
    assert reason(path, max_pixels=1000) == (
        "image is 64x64 (4096 px), over the 1000 px limit (decompression bomb?)"
    )
    assert load_image(path, max_pixels=4096).width == 64
    monkeypatch.setattr(loader_mod, "MAX_SIDE", 32)
    assert "a side over the 32 px limit" in reason(path)


def test_file_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    path = write_image(tmp_path / "x.png", (64, 64))
    monkeypatch.setattr(loader_mod, "MAX_FILE_BYTES", 100)
    assert "over the 0 MiB limit" in reason(path)


def test_unsupported_format_is_refused_even_if_pillow_knows_it(tmp_path):
    make_image((4, 4)).save(tmp_path / "x.ppm")
    assert reason(tmp_path / "x.ppm").startswith("PNM image: format not supported (supported: ")


def test_unexpected_pillow_exception_becomes_image_load_error(tmp_path, monkeypatch):
    path = write_image(tmp_path / "x.png", (8, 8))
    monkeypatch.setattr(loader_mod, "_LIBPNG", [None])  # Pillow's path, not libpng's

    def boom(self):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    assert reason(path) == "unexpected RuntimeError while decoding: boom second line"

    def bomb(self):
        raise Image.DecompressionBombError("too many pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", bomb)
    assert "decompression-bomb guard (too many pixels)" in reason(path)


def test_decompression_bomb_warning_is_refused_without_leaking_filters(tmp_path, monkeypatch):
    path = write_image(tmp_path / "x.png", (8, 8))
    monkeypatch.setattr(loader_mod, "_LIBPNG", [None])  # Pillow's path, not libpng's
    factory, accept = Image.OPEN["PNG"]

    def warning_factory(fp, filename):
        warnings.warn("big", Image.DecompressionBombWarning, stacklevel=1)
        return factory(fp, filename)

    monkeypatch.setitem(Image.OPEN, "PNG", (warning_factory, accept))
    filters = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may reach the user as a warning
        assert "decompression-bomb guard (big)" in reason(path)
    assert warnings.filters == filters


def test_no_global_pillow_state_is_changed(hostile):
    before = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS, list(warnings.filters))
    for path in hostile.values():
        try:
            load_image(path)
        except ImageLoadError:
            pass
    after = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS, list(warnings.filters))
    assert after == before


def test_concurrent_loads_match_serial_loads(hostile):
    paths = [p for p in hostile.values() if p.suffix.lower() in IMAGE_EXTENSIONS] * 3

    def outcome(path: Path) -> tuple[str, str]:
        try:
            return "ok", load_image(path).sha256
        except ImageLoadError as e:
            return "error", e.reason

    serial = [outcome(p) for p in paths]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(outcome, paths)) == serial


# --------------------------------------------------------------------------- properties


@pytest.fixture(scope="module")
def prop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prop")


_SHAPES = hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=12).map(
    lambda s: (s[0], s[1], 3)
)
_PROP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROP
@given(arr=hnp.arrays(np.uint8, _SHAPES))
def test_property_rgb_png_roundtrip_is_exact(prop_dir, arr):
    path = prop_dir / "p8.png"
    Image.fromarray(arr).save(path)
    np.testing.assert_array_equal(load_image(path).pixels, expected8(arr))


@_PROP
@given(arr=hnp.arrays(np.uint16, _SHAPES), filter_type=st.sampled_from([None, 0, 1, 2, 3, 4]))
def test_property_rgb16_png_roundtrip_is_exact(prop_dir, arr, filter_type):
    path = prop_dir / "p16.png"
    path.write_bytes(encode_png(arr, filter_type=filter_type))
    np.testing.assert_array_equal(load_image(path).pixels, expected16(arr))


@pytest.fixture(scope="module")
def fuzz_sources(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    cases = make_hostile_inputs(tmp_path_factory.mktemp("fuzz-src"))
    names = ("ok_png", "ok_jpeg", "ok_webp", "ok_tiff", "ok_bmp", "gif_animated", "png16_rgb")
    return [cases[n].read_bytes() for n in names if n in cases]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_mutated_files_load_or_fail_cleanly(prop_dir, fuzz_sources, data):
    blob = bytearray(data.draw(st.sampled_from(fuzz_sources)))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        if data.draw(st.booleans()):
            blob[pos] = data.draw(st.integers(0, 255))
        else:
            del blob[pos : pos + data.draw(st.integers(1, 64))]
    path = prop_dir / "mutant.bin"
    path.write_bytes(bytes(blob))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow warning may escape either
        try:
            img = load_image(path)
        except ImageLoadError as e:
            assert not e.reason.startswith("unexpected"), e.reason
            return
    assert img.pixels.shape == (img.height, img.width, 3)
    assert np.isfinite(img.pixels).all() and 0 <= img.pixels.min() <= img.pixels.max() <= 1
