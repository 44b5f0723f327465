"""Decoding memory stays bounded: no whole-image float64 copies, no over-sized read buffers.

Measured with tracemalloc (numpy arrays and Python bytes; Pillow's own C buffers are not
traced) on synthetic 16 Mpx images, against the size of the float32 RGB output, which any
decode must allocate. Before the fixes a 16 Mpx load peaked at 2.8x that size (a read buffer
of MAX_FILE_BYTES per file) and the float rescale made whole-image float64 copies.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from fpattr.io.loader import load_image

H, W = 4000, 4000  # 16 Mpx
OUT = H * W * 3 * 4  # bytes of the float32 (H, W, 3) result


def peak_ratio(path: Path) -> float:
    tracemalloc.start()
    try:
        img = load_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert img.pixels.shape == (H, W, 3) and img.pixels.dtype == np.float32
    return peak / OUT


@pytest.fixture(scope="module")
def plane() -> np.ndarray:
    a = np.zeros((H, W), np.uint8)
    a[::7] = 200
    a[:, ::5] = 90
    return a


def test_8bit_rgb_png_peak_is_about_the_output(tmp_path, plane):
    Image.fromarray(np.stack([plane, plane[::-1], plane[:, ::-1]], axis=2)).save(
        tmp_path / "big.png", compress_level=1
    )
    assert peak_ratio(tmp_path / "big.png") < 1.7  # file bytes + uint8 raster + float32 out


def test_float_gray_rescale_has_no_whole_image_float64_copy(tmp_path, plane):
    Image.fromarray(plane.astype(np.float32) * 3).save(tmp_path / "big_f.tif")  # [0, 600]
    ratio = peak_ratio(tmp_path / "big_f.tif")
    # file + float32 plane + rescaled plane + RGB out = 2.0x; one float64 copy adds 0.67x
    assert ratio < 2.3, ratio


def test_16bit_planar_tiff_peak_is_bounded(tmp_path, plane):
    small = plane[: H // 2, : W // 2].astype(np.uint16) * 257  # 4 Mpx keeps the test quick
    tifffile.imwrite(
        tmp_path / "p16.tif",
        np.stack([small, small, small]),
        photometric="rgb",
        planarconfig="separate",
    )
    tracemalloc.start()
    try:
        img = load_image(tmp_path / "p16.tif")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert img.bit_depth == 16
    # file bytes, tifffile's segment reads and uint16 raster (0.5x each) + float32 out
    assert peak / img.pixels.nbytes < 3.5
