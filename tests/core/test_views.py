import numpy as np
import pytest

from fpattr.views import make_views


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
    assert info == {"n_views": expected, "padded": False}


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
