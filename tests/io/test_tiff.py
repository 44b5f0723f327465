"""TIFF: exact decoding or a true refusal (separate planes, 16-bit and float samples).

Each instance of the issue is one test, with the TIFF written here by tifffile and the exact
pixel values checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from fpattr.errors import ImageLoadError
from fpattr.io.loader import load_image

F16 = "16-bit -> float (no 8-bit rounding)"


def reason(path) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    return info.value.reason


def rgb16(seed: int = 0, shape: tuple[int, int] = (7, 9)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 65536, (*shape, 3), dtype=np.uint16)


def expected16(arr: np.ndarray) -> np.ndarray:
    return (arr.astype(np.float64) / 65535).astype(np.float32)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_planar_separate_uint16_rgb_keeps_every_bit(tmp_path, compression):
    """Was: garbage at 8 bits, status ok (and the deflate copy held only the high byte)."""
    arr = rgb16(1)
    path = tmp_path / "planar16.tif"
    tifffile.imwrite(
        path,
        arr.transpose(2, 0, 1),  # (S, H, W): one plane per channel
        photometric="rgb",
        planarconfig="separate",
        compression=compression,
    )
    with tifffile.TiffFile(path) as tf:
        assert tf.pages.first.planarconfig == 2  # the layout under test
    img = load_image(path)
    np.testing.assert_array_equal(img.pixels, expected16(arr))
    assert (img.format, img.bit_depth, img.width, img.height) == ("TIFF", 16, 9, 7)
    assert img.conversions == [F16]


def test_contiguous_uint16_rgb_deflate_keeps_every_bit(tmp_path):
    arr = rgb16(2)
    tifffile.imwrite(tmp_path / "c16.tif", arr, photometric="rgb", compression="zlib")
    img = load_image(tmp_path / "c16.tif")
    np.testing.assert_array_equal(img.pixels, expected16(arr))
    assert img.bit_depth == 16 and img.conversions == [F16]


def test_uint16_rgba_drops_alpha_and_keeps_rgb_exact(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 65536, (5, 6, 4), dtype=np.uint16)
    tifffile.imwrite(
        tmp_path / "rgba16.tif",
        arr.transpose(2, 0, 1),
        photometric="rgb",
        planarconfig="separate",
        extrasamples=["unassalpha"],
    )
    img = load_image(tmp_path / "rgba16.tif")
    np.testing.assert_array_equal(img.pixels, expected16(arr[..., :3]))
    assert img.conversions == [F16, "alpha channel dropped"]


def test_float32_rgb_in_unit_range_is_kept_exactly(tmp_path):
    """Was: refused as "corrupt or truncated" although the file is fine."""
    arr = np.random.default_rng(4).random((6, 8, 3), dtype=np.float32)
    arr[0, 0] = [0.0, 1.0, 0.5]
    tifffile.imwrite(tmp_path / "f32.tif", arr, photometric="rgb")
    img = load_image(tmp_path / "f32.tif")
    np.testing.assert_array_equal(img.pixels, arr)
    assert (img.bit_depth, img.conversions) == (32, ["float kept as is (values within [0, 1])"])


def test_float32_rgb_planar_separate_in_unit_range(tmp_path):
    arr = np.random.default_rng(5).random((4, 3, 3), dtype=np.float32)
    tifffile.imwrite(
        tmp_path / "f32p.tif", arr.transpose(2, 0, 1), photometric="rgb", planarconfig="separate"
    )
    np.testing.assert_array_equal(load_image(tmp_path / "f32p.tif").pixels, arr)


def test_float32_rgb_out_of_range_is_rescaled_and_says_so(tmp_path):
    arr = np.array(
        [[[-2.0, 0.0, 6.0], [1.0, 2.0, 3.0]], [[4.0, 5.0, -1.0], [0.5, 0.25, 0.75]]],
        dtype=np.float32,
    )
    tifffile.imwrite(tmp_path / "hdr.tif", arr, photometric="rgb")
    img = load_image(tmp_path / "hdr.tif")
    assert img.conversions == ["float values in [-2, 6] rescaled to [0, 1]"]
    expected = ((arr.astype(np.float64) + 2) / 8).astype(np.float32)
    np.testing.assert_array_equal(img.pixels, expected)


def test_float_rgb_with_nan_is_refused_as_such(tmp_path):
    arr = np.zeros((2, 2, 3), np.float32)
    arr[1, 1, 2] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", arr, photometric="rgb")
    assert reason(tmp_path / "nan.tif") == "float image contains NaN or infinite values"


def test_float64_gray_is_read_not_called_corrupt(tmp_path):
    arr = np.linspace(0, 1, 12, dtype=np.float64).reshape(3, 4)
    tifffile.imwrite(tmp_path / "f64.tif", arr, photometric="minisblack")
    img = load_image(tmp_path / "f64.tif")
    np.testing.assert_array_equal(img.pixels[..., 1], arr.astype(np.float32))
    assert img.conversions == [
        "float kept as is (values within [0, 1])",
        "64-bit float -> 32-bit float",
        "grayscale -> RGB",
    ]


def test_unsupported_layout_is_refused_naming_it(tmp_path):
    signed = np.arange(18, dtype=np.int16).reshape(2, 3, 3) - 9
    tifffile.imwrite(tmp_path / "s16.tif", signed, photometric="rgb")
    assert reason(tmp_path / "s16.tif") == (
        "unsupported TIFF layout: 16-bit signed integer RGB TIFF, 3 sample(s) per pixel, "
        "none compression"
    )
    cmyk = np.zeros((2, 3, 4), np.uint16)
    tifffile.imwrite(tmp_path / "cmyk16.tif", cmyk, photometric="separated")
    assert reason(tmp_path / "cmyk16.tif") == (
        "unsupported TIFF layout: 16-bit unsigned integer CMYK TIFF, 4 sample(s) per pixel, "
        "none compression"
    )


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_planar_tiff_is_called_truncated_not_unsupported(tmp_path, compression):
    arr = rgb16(6, (16, 16))
    path = tmp_path / "full.tif"
    tifffile.imwrite(
        path,
        arr.transpose(2, 0, 1),
        photometric="rgb",
        planarconfig="separate",
        compression=compression,
    )
    with tifffile.TiffFile(path) as tf:
        assert tf.pages.first.offset < min(tf.pages.first.dataoffsets)  # IFD before the pixels
    (tmp_path / "cut.tif").write_bytes(path.read_bytes()[:-100])
    assert reason(tmp_path / "cut.tif") == (
        "truncated or corrupt image data (a strip or tile lies past the end)"
    )


def test_decoded_array_must_match_what_the_container_declares(tmp_path, monkeypatch):
    arr = rgb16(7)
    tifffile.imwrite(tmp_path / "x.tif", arr, photometric="rgb")
    real = tifffile.TiffPage.asarray

    def short(self, *args, **kwargs):
        return real(self, *args, **kwargs)[:-1]  # a decoder that loses a row

    monkeypatch.setattr(tifffile.TiffPage, "asarray", short)
    assert reason(tmp_path / "x.tif").startswith(
        "decoded array (6, 9, 3) does not match the declared 9x7 with 3 sample(s)"
    )


def test_eight_bit_tiffs_still_go_through_pillow_unchanged(tmp_path):
    arr = np.random.default_rng(8).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb8.tif", arr, photometric="rgb")
    img = load_image(tmp_path / "rgb8.tif")
    assert (img.mode, img.bit_depth, img.conversions) == ("RGB", 8, [])
    np.testing.assert_array_equal(img.pixels, arr / np.float32(255))


def test_a_tiff_codec_pillow_lacks_is_unsupported_not_corrupt(tmp_path):
    """A valid header whose compression Pillow cannot decode (JPEG 2000, tag 34712) is an
    unsupported layout, never a claim that the evidence is corrupt."""
    import io
    import struct

    import numpy as np
    import tifffile

    from fpattr.errors import ImageLoadError
    from fpattr.io.loader import load_image

    px = (np.arange(32 * 32 * 3) % 251).astype(np.uint8).reshape(32, 32, 3)
    buf = io.BytesIO()
    tifffile.imwrite(buf, px, photometric="rgb", compression="zlib")
    data = bytearray(buf.getvalue())
    off = struct.unpack("<I", data[4:8])[0]
    for k in range(struct.unpack("<H", data[off : off + 2])[0]):
        e = off + 2 + 12 * k
        if struct.unpack("<H", data[e : e + 2])[0] == 259:  # Compression
            data[e + 8 : e + 10] = struct.pack("<H", 34712)
    (tmp_path / "j2k.tif").write_bytes(bytes(data))
    with pytest.raises(ImageLoadError) as info:
        load_image(tmp_path / "j2k.tif")
    assert "unsupported TIFF" in info.value.reason and "jpeg2000" in info.value.reason
    assert "corrupt" not in info.value.reason
