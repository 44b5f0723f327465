"""Publication chains in training augmentation, and the v2 extractor's strided stem."""

from __future__ import annotations

import numpy as np
import pytest

from fpattr.training.augment import AugmentConfig, _encode, augment


def _photo(seed: int = 0, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    base = np.stack([np.sin(6 * yy), np.cos(5 * xx), yy * xx], -1) * 0.4 + 0.5
    return ((base + rng.normal(0, 0.05, base.shape)).clip(0, 1) * 255).astype(np.uint8)


def test_rounds_chain_resizes_and_reencodes() -> None:
    img = _photo()
    single = AugmentConfig(p_resize=1.0, p_jpeg=1.0, p_blur=0.0, rounds=1)
    chained = AugmentConfig(p_resize=1.0, p_jpeg=1.0, p_blur=0.0, rounds=4)
    a = [augment(img, 64, single, np.random.default_rng(s)) for s in range(8)]
    b = [augment(img, 64, chained, np.random.default_rng(s)) for s in range(8)]
    for x in a + b:
        assert x.shape == (64, 64, 3) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
    # some draw takes more than one round, and its pixels differ from the single pass
    assert any(not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_rounds_one_is_deterministic_per_seed() -> None:
    cfg = AugmentConfig(rounds=1)
    img = _photo(1)
    x = augment(img, 48, cfg, np.random.default_rng(7))
    y = augment(img, 48, cfg, np.random.default_rng(7))
    assert np.array_equal(x, y)


def test_webp_reencode_differs_from_jpeg() -> None:
    pytest.importorskip("PIL.WebPImagePlugin")
    img = _photo(2, 64)
    jpeg = _encode(img, AugmentConfig(jpeg_quality=(70, 70), p_webp=0.0), np.random.default_rng(0))
    webp = _encode(img, AugmentConfig(jpeg_quality=(70, 70), p_webp=1.0), np.random.default_rng(0))
    assert jpeg.shape == webp.shape == img.shape
    assert not np.array_equal(jpeg, webp)


def test_strided_stem_quarters_the_cnn_cost() -> None:
    torch = pytest.importorskip("torch")
    from fpattr.training.model import Extractor, ExtractorConfig, count_macs

    base = {"size": 32, "widths": [4, 8, 8, 8], "dim": 8, "spectrum": False}
    one = Extractor(ExtractorConfig(**base))
    two = Extractor(ExtractorConfig(**base, stem_stride=2))
    out = two.eval()(torch.rand(3, 32, 32, 3))
    assert out.shape == (3, 8)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    ratio = count_macs(two) / count_macs(one)
    assert 0.2 < ratio < 0.3  # every conv after the stem runs on a quarter of the pixels
