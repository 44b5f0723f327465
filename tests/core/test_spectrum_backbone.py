import numpy as np
import pytest

from fpattr.backbones.spectrum import SpectrumBackbone


def _upsampled(seed, factor=2, size=64, mode="nearest"):
    """Images with a known up-sampling trace: nearest-neighbour vs smooth content."""
    rng = np.random.default_rng(seed)
    small = rng.random((size // factor, size // factor, 3), dtype=np.float32)
    if mode == "nearest":
        return np.repeat(np.repeat(small, factor, 0), factor, 1)
    return rng.random((size, size, 3), dtype=np.float32)


def test_embedding_shape_dtype_and_determinism():
    bb = SpectrumBackbone(size=64)
    v = np.stack([_upsampled(0), _upsampled(1)])
    e1, e2 = bb.embed(v), bb.embed(v)
    assert e1.dtype == np.float32 and e1.shape[0] == 2 and e1.shape[1] == bb.embedding_dim
    assert np.array_equal(e1, e2)


def test_same_trace_is_closer_than_different_trace():
    bb = SpectrumBackbone(size=64)
    a = bb.embed(np.stack([_upsampled(s) for s in range(4)]))
    b = bb.embed(np.stack([_upsampled(s + 10, mode="noise") for s in range(4)]))
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    within = (a @ a.T)[np.triu_indices(4, 1)].mean()
    across = (a @ b.T).mean()
    assert within > across + 0.2


def test_identity_depends_on_config():
    assert SpectrumBackbone(size=64).sha256 != SpectrumBackbone(size=32).sha256
    assert SpectrumBackbone(size=64).sha256 == SpectrumBackbone(size=64).sha256
    assert SpectrumBackbone(size=64).id == "spectrum-v1-s64-p2"
    with pytest.raises(ValueError):
        SpectrumBackbone(size=15)
