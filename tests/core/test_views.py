import io
import json

import numpy as np
import pytest
from PIL import Image

from fpattr.testing import make_image
from fpattr.views import (
    FLAT_SIGNAL,
    MAX_AUTO_VIEWS,
    effective_views,
    make_views,
    view_grid,
    view_signal,
)


def _img(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize(
    "shape,n,expected",
    [
        ((64, 64), 4, 1),  # exactly the view size: one crop, no repeats
        ((128, 128), 4, 4),
        ((128, 128), 9, 9),
        ((300, 500), 9, 9),
        ((64, 200), 4, 2),  # one row of crops only
    ],
)
def test_grid_counts(shape, n, expected):
    v, info = make_views(_img(*shape), 64, n)
    assert v.shape == (expected, 64, 64, 3) and v.dtype == np.float32
    assert (info["n_views"], info["padded"]) == (expected, False)
    assert info["effective_views"] == effective_views(*shape, 64, expected)
    assert len(info["signal"]) == expected and info["flat_views"] == 0  # random pixels
    assert json.loads(json.dumps(info)) == info


def test_crops_are_native_pixels_not_resampled():
    img = _img(128, 128)
    v, _ = make_views(img, 64, 4)
    assert np.array_equal(v[0], img[:64, :64]) and np.array_equal(v[-1], img[64:, 64:])


@pytest.mark.parametrize("shape", [(32, 32), (1, 1), (10, 300), (63, 64)])
def test_small_images_are_padded(shape):
    v, info = make_views(_img(*shape), 64, 4)
    assert v.shape[1:] == (64, 64, 3) and info["padded"]
    assert np.isfinite(v).all()


def test_center_strategy_and_bad_strategy():
    v, info = make_views(_img(100, 100), 64, 9, "center")
    assert info["n_views"] == 1
    with pytest.raises(ValueError):
        make_views(_img(100, 100), 64, 4, "random")


# --------------------------------------------------------------------------- effective views


@pytest.mark.parametrize(
    "shape,n,expected",
    [
        ((65, 65), 4, 1),  # 4 crops, but they share 63 of 64 rows: one view's worth
        ((128, 128), 4, 4),
        ((300, 300), 9, 9),
        ((300, 300), 4, 4),  # never more than the views taken
        ((32, 32), 4, 1),  # padded
        ((1, 1), 4, 1),
        ((64, 200), 4, 3),
        ((127, 127), 9, 1),
    ],
)
def test_effective_views(shape, n, expected):
    assert effective_views(*shape, 64, n) == expected


@pytest.mark.parametrize("shape,expected", [((65, 65), 1), ((32, 32), 1), ((128, 128), 4)])
def test_make_views_reports_effective_views_of_the_unpadded_image(shape, expected):
    v, info = make_views(_img(*shape), 64, 4)
    assert info["effective_views"] == expected and info["n_views"] == len(v)


def test_effective_views_is_capped_by_the_views_actually_taken():
    _, info = make_views(_img(64, 300), 64, 9)  # one row of 3 crops; 4 tiles of distinct pixels
    assert (info["n_views"], info["effective_views"]) == (3, 3)
    _, info = make_views(_img(300, 300), 64, 9, "center")
    assert (info["n_views"], info["effective_views"]) == (1, 1)


@pytest.mark.parametrize(
    "shape,base,expected",
    [
        ((128, 128), 4, (2, 2)),  # 2 tiles a side: the default grid
        ((65, 65), 4, (2, 2)),  # never fewer than the default (effective views say 1)
        ((32, 32), 4, (2, 2)),
        ((192, 256), 4, (3, 4)),  # each side its own tiles
        ((256, 256), 4, (4, 4)),
        ((1024, 4096), 4, (4, 4)),  # capped at a 4 x 4 grid
        ((64, 4000), 4, (2, 4)),  # a strip: its long side still gets 4 crops
        ((256, 256), 1, (4, 4)),
        ((64, 64), 1, (1, 1)),
        ((256, 256), 25, (5, 5)),  # a default above the cap stays the least
    ],
)
def test_view_grid_follows_the_image_size(shape, base, expected):
    assert view_grid(*shape, 64, base) == expected
    rows, cols = expected
    assert rows * cols <= max(MAX_AUTO_VIEWS, base)


@pytest.mark.parametrize(
    "shape,views", [((64, 4000), 4), ((4000, 64), 4), ((192, 256), 12), ((300, 300), 16)]
)
def test_make_views_by_size_counts(shape, views):
    v, info = make_views(_img(*shape), 64, 4, by_size=True)
    assert v.shape[0] == info["n_views"] == views
    assert info["effective_views"] == effective_views(*shape, 64, views)


def test_make_views_by_size_covers_a_large_image_with_distinct_crops():
    v, info = make_views(_img(256, 256), 64, 4, by_size=True)
    assert v.shape == (16, 64, 64, 3)
    assert (info["n_views"], info["effective_views"]) == (16, 16)
    # the 16 crops tile the image: each is one 64 px tile of it, and no tile twice
    img = _img(256, 256)
    tiles = {
        (y, x): img[y : y + 64, x : x + 64] for y in range(0, 256, 64) for x in range(0, 256, 64)
    }
    hit = [next(k for k, t in tiles.items() if np.array_equal(t, crop)) for crop in v]
    assert sorted(hit) == sorted(tiles)
    # a fixed count is kept whatever the size; small images keep the default
    assert make_views(_img(256, 256), 64, 4)[0].shape[0] == 4
    assert make_views(_img(128, 128), 64, 4, by_size=True)[0].shape[0] == 4
    assert make_views(_img(256, 256), 64, 4, "center", by_size=True)[0].shape[0] == 1


# --------------------------------------------------------------------------- flat views


def _q8(x):
    """Quantise to 8 bits, as any stored image is."""
    return (np.round(np.clip(x, 0, 1) * 255) / 255).astype(np.float32)


def _jpeg(x, quality):
    buf = io.BytesIO()
    Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)).save(
        buf, "JPEG", quality=quality
    )
    buf.seek(0)
    return np.asarray(Image.open(buf), dtype=np.float32) / 255


def test_view_signal_shape_dtype_and_8bit_units():
    x = np.full((2, 32, 32, 3), 0.5, np.float32)
    x[1, :, ::2] += 1 / 255  # columns alternating 0 / 1 level: residual +-0.5 level
    s = view_signal(x)
    assert s.shape == (2,) and s.dtype == np.float64
    assert s[0] == 0.0 and s[1] == pytest.approx(0.5, rel=1e-3)
    with pytest.raises(ValueError):
        view_signal(np.zeros((32, 32, 3), np.float32))


@pytest.mark.parametrize(
    "name,pixels",
    [
        ("black", np.zeros((128, 128, 3), np.float32)),
        ("white", np.ones((128, 128, 3), np.float32)),
        ("grey", np.full((200, 90, 3), 0.5, np.float32)),
        ("1x1", np.array([[[0.2, 0.7, 0.4]]], np.float32)),
    ],
)
def test_constant_images_have_only_flat_views(name, pixels):
    v, info = make_views(pixels, 64, 4)
    assert info["flat_views"] == info["n_views"] == len(v)
    assert info["signal"] == [0.0] * len(v)


def test_smooth_gradients_in_float_are_flat_and_smooth_generators_are_not():
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    rng = np.random.default_rng(0)
    worst_float = worst_8bit = 0.0
    for _ in range(300):
        angle = rng.uniform(0, np.pi)
        slope = np.exp(rng.uniform(np.log(0.02), np.log(4.0)))  # 8-bit levels per pixel
        colour = rng.uniform(0.3, 1.0, 3) if rng.random() < 0.5 else np.ones(3)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy) * slope
        img = (rng.uniform(0, 128) + (ramp - ramp.min())[..., None] * colour) / 255
        worst_float = max(worst_float, view_signal(img[None].astype(np.float32))[0])
        worst_8bit = max(worst_8bit, view_signal(_q8(img)[None])[0])
    assert worst_float < 1e-3 < FLAT_SIGNAL
    # 8-bit quantisation of a gradient measures up to ~0.31: above the flat line on purpose,
    # because a VAE's smooth samples measure as little as 0.38 and still identify it
    assert worst_8bit < 0.4
    full = np.linspace(0, 1, 300)[None, :, None].repeat(200, 0).repeat(3, 2)
    _, info = make_views(full.astype(np.float32), 64, 9)
    assert info["flat_views"] == info["n_views"] == 9
    from pathlib import Path

    from fpattr.io.loader import load_image

    demo = Path(__file__).parents[2] / "fpattr" / "data" / "demo" / "queries"
    for f in sorted(demo.glob("vae_*.png")):  # smooth decoder output, identified at cos 0.97
        _, info = make_views(load_image(f).pixels, 64, 4)
        assert info["flat_views"] == 0, (f.name, info["signal"])


def test_faint_noise_and_textures_are_not_flat():
    rng = np.random.default_rng(1)
    faint = [0.5 + rng.uniform(-2 / 255, 2 / 255, (64, 64, 3)) for _ in range(20)]
    s = view_signal(np.stack(faint).astype(np.float32))
    assert s.min() > FLAT_SIGNAL  # measured 0.67-0.69
    assert view_signal(np.stack([_q8(f) for f in faint])).min() > FLAT_SIGNAL

    texture = np.asarray(make_image((256, 256), seed=3), np.float32) / 255
    for img in (texture, _jpeg(texture, 75)):
        _, info = make_views(img, 64, 9)
        assert info["flat_views"] == 0 and min(info["signal"]) > 10 * FLAT_SIGNAL
    _, info = make_views(_img(300, 500), 64, 9)
    assert info["flat_views"] == 0


def test_natural_photo_crops_are_not_flat():
    from fpattr.io import load_image
    from fpattr.synthesis.photos import bundled_photo_paths

    photo = next((p for p in bundled_photo_paths() if p.name == "astronaut.png"), None)
    if photo is None:
        pytest.skip("scikit-image's sample photos are not installed")
    px = load_image(photo).pixels
    tiles = np.stack(
        [px[y : y + 64, x : x + 64] for y in range(0, 512, 64) for x in range(0, 512, 64)]
    )
    assert view_signal(tiles).min() > 2 * FLAT_SIGNAL  # measured min 1.15, median 5.8
    jpeg = np.stack([_jpeg(t, 75) for t in tiles])
    assert np.median(view_signal(jpeg)) > 10 * FLAT_SIGNAL


def test_padded_tiny_image_with_texture_still_has_signal():
    _, info = make_views(_img(8, 8), 64, 4)
    assert info["padded"] and info["effective_views"] == 1 and info["flat_views"] == 0


def _padded_view_signal(views: np.ndarray) -> np.ndarray:
    """view_signal as first written: the whole padded residual, then the border cut off."""
    from fpattr.signal import residual, to_gray

    r = residual(to_gray(views.astype(np.float32, copy=False)))
    if min(r.shape[1:]) > 8:
        r = r[:, 2:-2, 2:-2]
    return r.reshape(r.shape[0], -1).astype(np.float64).std(axis=1) * 255.0


@pytest.mark.parametrize("side", [5, 8, 9, 10, 13, 32, 64, 65])
def test_view_signal_bit_identical_to_the_padded_residual(side):
    # the interior residual skips the padding: flat checks (and decisions) must not move
    rng = np.random.default_rng(side)
    cases = [
        rng.random((4, side, side, 3), dtype=np.float32),
        np.round(rng.random((3, side, side, 3)) * 255).astype(np.float32) / 255,  # 8-bit
        np.zeros((1, side, side, 3), np.float32),
        np.full((2, side, side, 3), 0.5, np.float32),
        np.linspace(0, 1, side * side * 3, dtype=np.float32).reshape(1, side, side, 3),
        rng.random((2, side, side, 3)),  # float64 views
    ]
    for views in cases:
        assert view_signal(views).tobytes() == _padded_view_signal(views).tobytes()
