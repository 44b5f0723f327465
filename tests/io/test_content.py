"""Nothing lost, nothing silent: every file found is processed, failed or skipped, by content.

Each instance of the issue is one test: files the old suffix filter dropped without a word
(.jfif, .jpe, MPO, .apng, a PNG without suffix, .avif, notes.txt, HEIC without the plugin).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from fpattr.errors import ImageLoadError
from fpattr.io import loader as loader_mod
from fpattr.io.loader import NotAnImageError, SkippedInputError, load_image
from fpattr.io.prefetch import iter_loaded
from fpattr.io.sniff import describe, image_kind
from fpattr.io.walk import iter_inputs
from fpattr.pipeline import Embedder, Settings
from fpattr.testing import make_image, run_cli, write_image

HEIF_HINT = "HEIC/HEIF image: needs `pip install fpattr[heif]` (the pillow-heif plugin)"


def rgb(seed: int = 0, size: tuple[int, int] = (40, 30)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def heic_bytes() -> bytes:
    """An ISO-BMFF header with the HEIC brand (enough to be recognised by content)."""
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def results(folder: Path) -> dict[str, tuple[str, str | None]]:
    """name -> ("ok" | "skipped" | "failed", reason) for everything under ``folder``."""
    out = {}
    for item, res in iter_loaded(iter_inputs([folder]), workers=2):
        name = item.path.relative_to(folder).as_posix()
        if isinstance(res, ImageLoadError):
            kind = "skipped" if getattr(res, "skipped", False) else "failed"
            out[name] = (kind, res.reason)
        else:
            out[name] = ("ok", None)
    return out


@pytest.mark.parametrize("suffix", [".jfif", ".jpe", ".JPE", ".jif"])
def test_jpeg_with_other_jpeg_suffixes_is_found_and_processed(tmp_path, suffix):
    Image.fromarray(rgb()).save(tmp_path / f"photo{suffix}", format="JPEG", quality=95)
    assert results(tmp_path) == {f"photo{suffix}": ("ok", None)}
    assert load_image(tmp_path / f"photo{suffix}").format == "JPEG"


def test_mpo_is_found_and_its_first_picture_processed(tmp_path):
    first, second = Image.fromarray(rgb(1)), Image.fromarray(rgb(2))
    first.save(tmp_path / "camera.mpo", format="MPO", save_all=True, append_images=[second])
    assert results(tmp_path) == {"camera.mpo": ("ok", None)}
    img = load_image(tmp_path / "camera.mpo")
    assert (img.format, img.frames) == ("MPO", 2)
    with Image.open(tmp_path / "camera.mpo") as im:
        expected = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_array_equal(img.pixels, expected)


def test_apng_is_found_and_its_first_frame_read_exactly(tmp_path):
    a, b = rgb(3), rgb(4)
    Image.fromarray(a).save(
        tmp_path / "anim.apng", format="PNG", save_all=True, append_images=[Image.fromarray(b)]
    )
    assert results(tmp_path) == {"anim.apng": ("ok", None)}
    img = load_image(tmp_path / "anim.apng")
    np.testing.assert_array_equal(img.pixels, (a / 255).astype(np.float32))
    assert img.frames == 2 and "first of 2 frames" in img.conversions


def test_png_without_suffix_is_found_by_content(tmp_path):
    a = rgb(5)
    Image.fromarray(a).save(tmp_path / "download", format="PNG")
    assert results(tmp_path) == {"download": ("ok", None)}
    np.testing.assert_array_equal(load_image(tmp_path / "download").pixels, a / np.float32(255))


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_is_found_and_decoded_by_pillow(tmp_path):
    Image.fromarray(rgb(6)).save(tmp_path / "x.avif", format="AVIF", quality=100)
    assert results(tmp_path) == {"x.avif": ("ok", None)}
    img = load_image(tmp_path / "x.avif")
    with Image.open(tmp_path / "x.avif") as im:
        expected = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    assert img.format == "AVIF" and img.pixels.shape == (30, 40, 3)
    np.testing.assert_array_equal(img.pixels, expected)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_damaged_avif_is_called_corrupt_not_unexpected(tmp_path):
    Image.fromarray(rgb(9)).save(tmp_path / "x.avif", format="AVIF", quality=90)
    data = (tmp_path / "x.avif").read_bytes()
    (tmp_path / "cut.avif").write_bytes(data[: len(data) - 40])
    with pytest.raises(ImageLoadError) as info:
        load_image(tmp_path / "cut.avif")
    assert "corrupt" in info.value.reason and "unexpected" not in info.value.reason


def test_heic_without_the_plugin_fails_with_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(loader_mod, "_HEIF_STATE", [False])  # as if pillow-heif is missing
    (tmp_path / "IMG_0001.HEIC").write_bytes(heic_bytes())
    (tmp_path / "renamed.jpg").write_bytes(heic_bytes())  # content decides, not the name
    assert results(tmp_path) == {
        "IMG_0001.HEIC": ("failed", HEIF_HINT),
        "renamed.jpg": ("failed", HEIF_HINT),
    }


def test_heif_plugin_is_not_imported_until_a_heif_file_is_met():
    import subprocess
    import sys

    code = (
        "import sys, fpattr.io.loader as L; from fpattr.testing import write_image; "
        "import tempfile, os; d = tempfile.mkdtemp(); p = os.path.join(d, 'a.png'); "
        "write_image(p, (8, 8)); L.load_image(p); assert 'pillow_heif' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_heic_with_the_plugin_is_decoded(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    a = rgb(10, (48, 32))
    pillow_heif.from_bytes(mode="RGB", size=(48, 32), data=a.tobytes()).save(
        tmp_path / "x.heic", quality=90
    )
    assert results(tmp_path) == {"x.heic": ("ok", None)}
    img = load_image(tmp_path / "x.heic")
    expected = np.asarray(pillow_heif.open_heif(tmp_path / "x.heic")) / np.float32(255)
    assert (img.format, img.bit_depth) == ("HEIF", 8)
    np.testing.assert_array_equal(img.pixels, expected)


def test_10bit_heic_keeps_its_10_bits(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    a10 = np.random.default_rng(11).integers(0, 1024, (32, 48, 3)).astype(np.uint16)
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(48, 32), data=(a10 << 6).tobytes())
    heif.save(tmp_path / "hdr.heic", quality=90)
    decoded = np.asarray(pillow_heif.open_heif(tmp_path / "hdr.heic", convert_hdr_to_8bit=False))
    img = load_image(tmp_path / "hdr.heic")
    assert (img.format, img.bit_depth, img.mode) == ("HEIF", 10, "RGB;10")
    assert img.conversions == ["10-bit -> float (no 8-bit rounding)"]
    expected = ((decoded >> 6).astype(np.float64) / 1023).astype(np.float32)
    np.testing.assert_array_equal(img.pixels, expected)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_declaring_more_than_8_bits_is_refused_not_rounded(tmp_path):
    Image.fromarray(rgb(12)).save(tmp_path / "x.avif", format="AVIF", quality=90)
    data = bytearray((tmp_path / "x.avif").read_bytes())
    i = data.index(b"pixi")
    assert data[i + 8] == 3 and data[i + 9 : i + 12] == b"\x08\x08\x08"
    data[i + 9 : i + 12] = b"\x0a\x0a\x0a"  # as a 10-bit AVIF declares itself
    (tmp_path / "hdr.avif").write_bytes(bytes(data))
    with pytest.raises(ImageLoadError) as info:
        load_image(tmp_path / "hdr.avif")
    assert info.value.reason == (
        "10-bit AVIF: Pillow decodes AVIF at 8 bits only (precision would be lost): refused"
    )


def test_heif_opener_is_registered_lazily_only_when_installed(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_plugin(name, *args, **kwargs):
        if name == "pillow_heif":
            raise ImportError("No module named 'pillow_heif'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(loader_mod, "_HEIF_STATE", [])
    monkeypatch.setattr(builtins, "__import__", no_plugin)
    assert loader_mod._heif_available() is False
    assert loader_mod._HEIF_STATE == [False]  # tried once, remembered


def test_notes_beside_images_are_skipped_with_what_they_look_like(tmp_path):
    write_image(tmp_path / "a.png", (16, 16))
    (tmp_path / "notes.txt").write_text("case notes\n")
    (tmp_path / "page.html").write_text("<!DOCTYPE html><html><body>hi</body></html>")
    (tmp_path / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    (tmp_path / "data.bin").write_bytes(bytes(range(256)))
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert results(tmp_path) == {
        ".DS_Store": ("skipped", "skipped: hidden (name starts with '.'), not searched"),
        "a.png": ("ok", None),
        "data.bin": (
            "skipped",
            "not an image by its content: unrecognised binary data "
            "(starts 00 01 02 03 04 05 06 07)",
        ),
        "doc.pdf": ("skipped", "not an image by its content: a PDF document"),
        "empty": ("skipped", "not an image by its content: empty file (0 bytes)"),
        "logo.svg": (
            "skipped",
            "not an image by its content: an SVG drawing (vector graphics, no pixels to read)",
        ),
        "notes.txt": ("skipped", "not an image by its content: text"),
        "page.html": ("skipped", "not an image by its content: an HTML page"),
    }


def test_folder_of_only_non_images_reports_each_file(tmp_path):
    (tmp_path / "README").write_text("nothing to see")
    (tmp_path / "x.npy").write_bytes(b"\x93NUMPY\x01\x00")
    assert results(tmp_path) == {
        "README": ("skipped", "not an image by its content: text"),
        "x.npy": ("skipped", "not an image by its content: a NumPy array file (.npy)"),
    }


def test_a_non_image_named_like_an_image_fails_instead_of_being_skipped(tmp_path):
    (tmp_path / "photo.jpg").write_text("<html><body>403 Forbidden</body></html>")
    assert results(tmp_path) == {
        "photo.jpg": (
            "failed",
            "not a recognised image format: by its content this is an HTML page, though it is "
            "named .jpg (supported: PNG, JPEG, WebP, TIFF, BMP, GIF, AVIF, HEIC/HEIF with "
            "fpattr[heif])",
        )
    }


def test_a_non_image_named_explicitly_fails(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    with pytest.raises(NotAnImageError) as info:  # the loader says what it is ...
        load_image(notes)
    assert info.value.skipped and info.value.reason == "not an image by its content: text"
    ((_, res),) = iter_loaded(iter_inputs([notes]))  # ... but it was asked for: a failure
    assert type(res) is ImageLoadError and not getattr(res, "skipped", False)
    assert res.reason == "not an image by its content: text"


def test_a_large_non_image_is_skipped_without_being_read(tmp_path, monkeypatch):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\0" * 4096)
    monkeypatch.setattr(loader_mod, "MAX_FILE_BYTES", 1000)  # over the limit: not read at all
    assert results(tmp_path) == {
        "clip.mp4": (
            "skipped",
            "not an image by its content: an MP4/QuickTime video or other ISO media (brand 'isom')",
        )
    }


def test_unsupported_image_formats_fail_naming_the_format(tmp_path):
    (tmp_path / "a.jxl").write_bytes(b"\xff\x0a" + b"\0" * 32)
    (tmp_path / "b.psd").write_bytes(b"8BPS\x00\x01" + b"\0" * 32)
    make_image((4, 4)).save(tmp_path / "c.ppm")
    got = results(tmp_path)
    assert {k: v[0] for k, v in got.items()} == dict.fromkeys(got, "failed")
    assert got["a.jxl"][1].startswith("JPEG XL image: format not supported")
    assert got["b.psd"][1].startswith("PSD image: format not supported")
    assert got["c.ppm"][1].startswith("PNM image: format not supported")


def test_sniffing_is_by_content():
    assert image_kind(b"\x89PNG\r\n\x1a\n") == "PNG"
    assert image_kind(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf") == "AVIF"
    assert image_kind(heic_bytes()) == "HEIF"
    assert image_kind(b"BM not really") is None  # "BM" alone is not a bitmap header
    assert describe("caf\u00e9 au lait".encode()) == "text"
    assert describe(b'{"a": 1}') == "text (JSON?)"


def test_skipped_items_are_not_failures_in_the_embedder(tmp_path):
    from fpattr.backbones.resolve import create_backbone

    write_image(tmp_path / "a.png", (64, 64))
    (tmp_path / "notes.txt").write_text("x")
    bb = create_backbone("spectrum")
    quiet = list(Embedder(bb, Settings()).embed_paths([tmp_path]))
    assert [Path(e.path).name for e in quiet] == ["a.png"]  # default: old callers see images
    full = list(Embedder(bb, Settings(), include_skipped=True).embed_paths([tmp_path]))
    assert [(Path(e.path).name, e.skipped, e.error) for e in full] == [
        ("a.png", False, None),
        ("notes.txt", True, "not an image by its content: text"),
    ]


def test_skipped_error_class_is_an_image_load_error():
    err = SkippedInputError("x", "skipped: hidden")
    assert isinstance(err, ImageLoadError) and err.skipped


def test_attribute_rows_and_summary_count_processed_failed_and_skipped(tmp_path):
    refs, inputs = tmp_path / "refs", tmp_path / "in"
    for k in range(3):
        write_image(refs / f"r{k}.png", (64, 64), seed=k)
    write_image(inputs / "a.png", (64, 64), seed=7)
    Image.fromarray(rgb(8, (64, 64))).save(inputs / "b.jfif", format="JPEG")
    (inputs / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (inputs / "notes.txt").write_text("notes")
    gallery = tmp_path / "g"
    r = run_cli(["gallery", "add", "m1", refs, "-b", "spectrum", "-g", gallery, "-q"])
    assert r.exit_code == 0, r.output
    r = run_cli(["attribute", inputs, "-b", "spectrum", "-g", gallery, "-f", "json", "-q"])
    out = json.loads(r.stdout)
    status = {Path(row["path"]).name: row["status"] for row in out["results"]}
    assert status == {"a.png": "ok", "b.jfif": "ok", "bad.png": "error", "notes.txt": "skipped"}
    row = next(row for row in out["results"] if row["status"] == "skipped")
    assert row["error"] == "not an image by its content: text"
    summary = out["summary"]
    assert (summary["n_inputs"], summary["n_ok"], summary["n_failed"]) == (3, 2, 1)
    assert summary["n_skipped"] == 1
    assert r.exit_code == 1  # something failed; the skipped file alone would not do that
