"""Real photos for training: bundled fallback, folders, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fpattr.errors import UsageError
from fpattr.synthesis.photos import bundled_photo_paths, load_photos


def test_bundled_photos_are_deterministic():
    if not bundled_photo_paths():
        pytest.skip("no bundled photos installed")
    a = load_photos(None, size=16, n_crops=12, seed=0)
    b = load_photos(None, size=16, n_crops=12, seed=0)
    c = load_photos(None, size=16, n_crops=12, seed=1)
    assert a.shape == (12, 16, 16, 3) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_folder_with_a_bad_file_and_a_small_one(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "tiny.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    photos = load_photos(tmp_path, size=32, n_crops=10, seed=0, warn=False)
    assert photos.shape == (10, 32, 32, 3)


def test_unusable_folders_are_usage_errors(tmp_path):
    with pytest.raises(UsageError):
        load_photos(tmp_path / "missing", size=16, n_crops=2, seed=0)
    with pytest.raises(UsageError):
        load_photos(tmp_path, size=16, n_crops=2, seed=0)
