"""Spectral profiles, Frechet distance and the fidelity report."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fpattr.synthesis.fidelity import fidelity, frechet_distance, spectral_profile


def test_frechet_distance_is_symmetric_nonnegative_and_zero_on_itself():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 6))
    b = rng.normal(loc=0.5, scale=2.0, size=(20, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    ab, ba = frechet_distance(a, b), frechet_distance(b, a)
    assert ab > 0 and ab == pytest.approx(ba, rel=1e-6)
    # fewer samples than features (singular covariances) still gives a finite number
    assert np.isfinite(frechet_distance(a[:3], b[:4])) and frechet_distance(a[:1], b[:1]) >= 0


def test_profiles_of_different_sizes_share_bins():
    rng = np.random.default_rng(0)
    small = rng.random((32, 32, 3)).astype(np.float32)
    large = rng.random((96, 128, 3)).astype(np.float32)
    p = spectral_profile([small, large], n_bins=16)
    assert p.shape == (2, 15) and np.isfinite(p).all()
    assert np.abs(p[0] - p[1]).max() < 0.5  # white noise: same density at any size
    u8 = spectral_profile((rng.random((2, 16, 16, 3)) * 255).astype(np.uint8))
    assert u8.shape == (2, 15)


def _write_models(root, kind: str, n_models: int, seed: int) -> None:
    """Folder per model; 'sharp' = white-ish noise, 'smooth' = blurred (no high frequencies)."""
    rng = np.random.default_rng(seed)
    for m in range(n_models):
        d = root / f"{kind}{m}"
        d.mkdir(parents=True)
        gain = 0.5 + 0.5 * rng.random()
        for i in range(3):
            if kind == "sharp":
                x = 0.5 + gain * 0.3 * (rng.random((32, 32, 3)) - 0.5)
            else:
                x = np.kron(rng.random((8, 8, 3)), np.ones((4, 4, 1))) * gain
                x = (
                    np.asarray(
                        Image.fromarray((x * 255).astype(np.uint8)).resize(
                            (32, 32), Image.Resampling.BILINEAR
                        )
                    )
                    / 255.0
                )
            Image.fromarray((np.clip(x, 0, 1) * 255).astype(np.uint8)).save(d / f"{i:03d}.png")


def test_fidelity_of_a_set_with_itself_is_zero_and_grows_when_different(tmp_path):
    _write_models(tmp_path / "a", "sharp", 5, seed=0)
    _write_models(tmp_path / "b", "smooth", 5, seed=1)
    same = fidelity(tmp_path / "a", tmp_path / "a", plot=tmp_path / "plot.png")
    other = fidelity(tmp_path / "a", tmp_path / "b")
    assert same["fd"] == pytest.approx(0.0, abs=1e-6)
    assert same["synthetic"]["diversity"] == pytest.approx(same["real"]["diversity"])
    assert other["fd"] > 1.0
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert set(same["families"]) == {"unknown"}
