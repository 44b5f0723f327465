"""Test helpers for fpattr and for plugin authors: images, galleries, CLI runner, contract checks.

Images: numpy + Pillow only, tiny files, so tests never need real photographs or network
access; ``make_hostile_inputs`` builds the zoo of odd and broken files that the input layer
must survive. Contract checks (``check_backbone``, ``check_family``, ``check_gallery``,
``check_writer``) live in :mod:`fpattr.testing.contracts`, temporary galleries in
:mod:`fpattr.testing.galleries`, pytest fixtures in :mod:`fpattr.testing.pytest_plugin`
(``pytest_plugins = ["fpattr.testing.pytest_plugin"]``).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, features

__all__ = ["encode_png", "make_hostile_inputs", "make_image", "write_image"]

_PATTERNS = ("noise", "gradient", "checker")


def make_image(
    size: tuple[int, int] = (64, 64),
    *,
    seed: int = 0,
    pattern: str = "noise",
    mode: str = "RGB",
) -> Image.Image:
    """A reproducible image of ``size`` = (width, height) in any Pillow ``mode``.

    The pattern is made at 16-bit precision: "I;16" images carry genuine 16-bit values, and
    "RGBA"/"LA" get a varied alpha channel (zeros included) so alpha handling is observable.
    """
    width, height = size
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {size}")
    rng = np.random.default_rng(seed)
    rgb16 = _pattern16(width, height, pattern, rng)
    rgb8 = (rgb16 >> 8).astype(np.uint8)
    if mode == "RGB":
        return Image.fromarray(rgb8)
    if mode in ("RGBA", "LA"):
        alpha = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
        alpha[0, 0] = 0  # a fully transparent pixel whose colour must survive
        base = Image.fromarray(rgb8)
        bands = base.split() if mode == "RGBA" else (base.convert("L"),)
        return Image.merge(mode, (*bands, Image.fromarray(alpha)))
    if mode == "I;16":
        return Image.fromarray(rgb16[..., 0])
    if mode == "I":
        return Image.fromarray(rgb16[..., 0].astype(np.int32))
    if mode == "F":
        return Image.fromarray(rgb16[..., 0].astype(np.float32) / 65535)
    if mode == "P":
        return Image.fromarray(rgb8).quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    return Image.fromarray(rgb8).convert(mode)


def write_image(
    path: str | os.PathLike[str],
    size: tuple[int, int] = (64, 64),
    *,
    seed: int = 0,
    fmt: str | None = None,
    mode: str = "RGB",
    pattern: str = "noise",
    **save_kwargs: Any,
) -> Path:
    """Save ``make_image(...)`` to ``path`` (format from the suffix unless ``fmt``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_image(size, seed=seed, pattern=pattern, mode=mode).save(path, format=fmt, **save_kwargs)
    return path


def encode_png(array: np.ndarray, *, filter_type: int | None = None) -> bytes:
    """PNG bytes for a uint8/uint16 array of shape (H, W) or (H, W, 1-4), without Pillow.

    Pillow cannot write 16-bit RGB(A) PNGs, which generators and editors do produce. With
    ``filter_type=None`` rows cycle through all five PNG filters so decoders are fully exercised.
    """
    arr = np.asarray(array)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"encode_png needs uint8 or uint16 data, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or 0 in arr.shape:
        raise ValueError(f"encode_png needs shape (H, W) or (H, W, 1-4), got {arr.shape}")
    height, width, channels = arr.shape
    bit_depth = 16 if arr.dtype == np.uint16 else 8
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.frombuffer(arr.astype(">u2" if bit_depth == 16 else "u1").tobytes(), np.uint8)
    rows = rows.reshape(height, -1).astype(np.int16)
    bpp = channels * bit_depth // 8
    prev = np.zeros_like(rows[0])
    out = []
    for y, row in enumerate(rows):
        ftype = y % 5 if filter_type is None else filter_type
        out.append(bytes([ftype]) + _png_filter(ftype, row, prev, bpp).tobytes())
        prev = row
    return _png_file(width, height, bit_depth, color_type, zlib.compress(b"".join(out), 9))


def make_hostile_inputs(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write one tiny file (< 50 KB) per odd or broken input case into ``folder``.

    Expected to load (conversions recorded by ``fpattr.io.load_image``):
      ok_png, ok_jpeg, ok_webp, ok_tiff, ok_bmp (RGB, no conversion);
      gif_animated ("palette -> RGB", "first of 3 frames"); cmyk_jpeg ("CMYK -> RGB");
      png16_gray ("16-bit -> float (no 8-bit rounding)", "grayscale -> RGB");
      png16_rgb (16-bit RGB, all PNG filters; "16-bit -> float (no 8-bit rounding)");
      palette_png ("palette -> RGB"); palette_transparency_png (+ "palette transparency dropped");
      rgba_png / la_png ("alpha channel dropped", not composited; la also "grayscale -> RGB");
      gray_png ("grayscale -> RGB"); exif_rotated_jpeg (48x32 stored, orientation 6: loads as
      the stored 48x32 raster with "EXIF orientation 6 recorded (display only ...)");
      unreadable_png (chmod 000: fails "permission denied", except for root, who can read it).
    Expected to fail with ImageLoadError:
      corrupt_png (valid IHDR, garbage IDAT), truncated_jpeg (first half of a JPEG),
      empty_png (0 bytes), text_as_png (text named .png), huge_png (IHDR claims 100000x100000),
      zero_size_png (IHDR claims 0x16), broken_symlink (.png link to nowhere),
      self_symlink_png (.png link to itself: a symlink loop).
    For the folder walk: symlink_loop is a subfolder holding ``parent -> ..`` (the walk must end),
    non_image_txt (notes.txt) must be skipped. Symlink cases are left out where the OS refuses
    to create symlinks.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Path] = {}

    def put(name: str, filename: str, data: bytes) -> None:
        cases[name] = folder / filename
        cases[name].write_bytes(data)

    def save(name: str, filename: str, image: Image.Image, **kwargs: Any) -> None:
        cases[name] = folder / filename
        image.save(cases[name], **kwargs)

    rgb = make_image((32, 24), seed=1)
    save("ok_png", "ok.png", rgb)
    save("ok_jpeg", "ok.jpg", rgb, quality=90)
    if features.check("webp"):
        save("ok_webp", "ok.webp", rgb, lossless=True)
    save("ok_tiff", "ok.tiff", rgb)
    save("ok_bmp", "ok.bmp", rgb)
    frames = [make_image((16, 12), seed=s, pattern="checker") for s in range(3)]
    save("gif_animated", "animated.gif", frames[0], save_all=True, append_images=frames[1:])
    save("cmyk_jpeg", "cmyk.jpg", make_image((32, 24), seed=2, mode="CMYK"), quality=90)
    rng = np.random.default_rng(3)
    put("png16_gray", "gray16.png", encode_png(rng.integers(0, 65536, (12, 16), np.uint16)))
    put("png16_rgb", "rgb16.png", encode_png(rng.integers(0, 65536, (12, 16, 3), np.uint16)))
    save("palette_png", "palette.png", make_image((32, 24), seed=4, mode="P"))
    save(
        "palette_transparency_png",
        "palette_trns.png",
        make_image((32, 24), seed=5, mode="P"),
        transparency=0,
    )
    save("rgba_png", "rgba.png", make_image((32, 24), seed=6, mode="RGBA"))
    save("la_png", "la.png", make_image((32, 24), seed=7, mode="LA"))
    save("gray_png", "gray.png", make_image((32, 24), seed=8, mode="L"))
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif_rotated_jpeg", "rotated.jpg", make_image((48, 32), seed=9), exif=exif.tobytes())

    put("corrupt_png", "corrupt.png", _png_file(16, 16, 8, 2, b"\x8e not zlib data " * 8))
    jpeg = cases["ok_jpeg"].read_bytes()
    put("truncated_jpeg", "truncated.jpg", jpeg[: len(jpeg) // 2])
    put("empty_png", "empty.png", b"")
    put("text_as_png", "text.png", b"This is a text file, not an image.\n")
    put("huge_png", "huge.png", _png_file(100_000, 100_000, 8, 2, zlib.compress(b"\0" * 64)))
    put("zero_size_png", "zero.png", _png_file(0, 16, 8, 2, zlib.compress(b"")))
    put("non_image_txt", "notes.txt", b"case notes: not an image\n")

    unreadable = folder / "unreadable.png"
    rgb.save(unreadable)
    unreadable.chmod(0)
    cases["unreadable_png"] = unreadable

    loop_dir = folder / "loop"
    loop_dir.mkdir(exist_ok=True)
    links = {
        "symlink_loop": (loop_dir / "parent", "..", True),
        "broken_symlink": (folder / "broken.png", "does-not-exist.png", False),
        "self_symlink_png": (folder / "self.png", "self.png", False),
    }
    for name, (link, target, is_dir) in links.items():
        try:
            link.symlink_to(target, target_is_directory=is_dir)
        except (OSError, NotImplementedError):  # e.g. Windows without symlink privilege
            continue
        cases[name] = loop_dir if name == "symlink_loop" else link
    return cases


# --------------------------------------------------------------------------- internals


def _pattern16(width: int, height: int, pattern: str, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint16 pattern."""
    if pattern == "noise":
        return rng.integers(0, 65536, size=(height, width, 3), dtype=np.uint16)
    y, x = np.mgrid[0:height, 0:width]
    if pattern == "gradient":
        gx = x * 65535 // max(width - 1, 1)
        gy = y * 65535 // max(height - 1, 1)
        offset = int(rng.integers(0, 65536))
        return np.stack([gx, gy, (gx // 2 + gy // 2 + offset) % 65536], axis=-1).astype(np.uint16)
    if pattern == "checker":
        colours = rng.integers(0, 65536, size=(2, 3), dtype=np.uint16)
        return colours[((x // 8) + (y // 8)) % 2]
    raise ValueError(f"unknown pattern {pattern!r}; choose from {', '.join(_PATTERNS)}")


def _png_filter(ftype: int, row: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """Apply PNG filter ``ftype`` to one row (int16 bytes); vectorised since it reads raw bytes."""
    left = np.concatenate([np.zeros(bpp, np.int16), row[:-bpp]])
    upleft = np.concatenate([np.zeros(bpp, np.int16), prev[:-bpp]])
    if ftype == 0:
        pred = np.zeros_like(row)
    elif ftype == 1:
        pred = left
    elif ftype == 2:
        pred = prev
    elif ftype == 3:
        pred = (left + prev) // 2
    elif ftype == 4:
        p = left + prev - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
    else:
        raise ValueError(f"PNG filter type must be 0-4, got {ftype}")
    return ((row - pred) & 0xFF).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_file(width: int, height: int, bit_depth: int, color_type: int, idat: bytes) -> bytes:
    """A structurally valid PNG (correct CRCs) around any IDAT payload: cheap hostile files."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


# --- fake generators and a tiny ONNX extractor (lead's additions) ---------------------------------
from fpattr._testing_gen import (  # noqa: E402
    GENERATOR_KINDS,
    generator_image,
    write_generator_images,
)


def write_tiny_onnx_model(folder: str | os.PathLike[str], **kwargs: Any) -> Path:
    """A tiny untrained ONNX extractor + model card (needs the ``onnx`` package)."""
    from fpattr._testing_onnx import write_tiny_onnx_model as _write

    return _write(Path(folder), **kwargs)


__all__ += ["GENERATOR_KINDS", "generator_image", "write_generator_images", "write_tiny_onnx_model"]


def run_cli(args: list[Any], **kwargs: Any) -> Any:
    """Invoke the full ``fpattr`` CLI (built-ins + installed plugins) through Typer's
    runner; returns the ``Result`` (``exit_code``, ``stdout``, ``stderr``, ``output``)."""
    from typer.testing import CliRunner

    from fpattr.cli.app import build_app

    return CliRunner().invoke(build_app(), [str(a) for a in args], **kwargs)


__all__ += ["run_cli"]


# --- contract checks and temporary galleries ----------------------------------------------------
from fpattr.testing.contracts import (  # noqa: E402
    check_backbone,
    check_family,
    check_gallery,
    check_writer,
    sample_report,
    tiny_photos,
)
from fpattr.testing.galleries import make_gallery  # noqa: E402

__all__ += [
    "check_backbone",
    "check_family",
    "check_gallery",
    "check_writer",
    "make_gallery",
    "sample_report",
    "tiny_photos",
]
