"""Backbone ``manifpt``: contract, binding to the reference, separation of fake generators."""

from __future__ import annotations

import numpy as np
import pytest

from fpattr.backbones.resolve import create_backbone
from fpattr.errors import BackboneError
from fpattr.manifpt import RealReference
from fpattr.testing import generator_image
from fpattr.views import make_views

SIZE = 32


@pytest.fixture(scope="module")
def ref_path(real_dir, tmp_path_factory):
    ref, _ = RealReference.build([real_dir], size=SIZE, n_patches=96, seed=0, workers=0)
    return ref.save(tmp_path_factory.mktemp("ref") / "ref.npz")


def _image_embeddings(bb, kind: str, seeds) -> np.ndarray:
    out = []
    for s in seeds:
        v, _ = make_views(generator_image(kind, 64, s).astype(np.float32) / 255, SIZE, 4)
        e = bb.embed(v)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        m = e.mean(axis=0)
        out.append(m / np.linalg.norm(m))
    return np.stack(out)


@pytest.mark.parametrize("features", ["spectrum", "raw"])
def test_separates_checker_from_nearest(ref_path, features):
    bb = create_backbone("manifpt", ref=str(ref_path), features=features)
    emb = {
        "checker": _image_embeddings(bb, "checker", range(6)),
        "nearest": _image_embeddings(bb, "nearest", range(100, 106)),
    }
    within = []
    for e in emb.values():
        s = e @ e.T
        within.extend(s[np.triu_indices(len(e), 1)])
    across = (emb["checker"] @ emb["nearest"].T).ravel()
    print(f"manifpt-{features}: within {np.mean(within):.3f} across {np.mean(across):.3f}")
    assert np.mean(within) > np.mean(across) + (0.5 if features == "spectrum" else 0.05)
    if features == "spectrum":  # every within pair beats the average across pair
        assert np.min(within) > np.mean(across)


def test_contract_and_identity(ref_path, real_dir, tmp_path):
    bb = create_backbone("manifpt", ref=str(ref_path))
    ref = RealReference.load(ref_path)
    assert bb.input_size == SIZE and bb.default_views == 4
    assert bb.id.startswith("manifpt-v1-s32-pixel-spectrum-") and ref.sha256[:12] in bb.id
    info = bb.info()
    assert info["config"]["reference_sha256"] == ref.sha256
    assert info["reference"]["n_patches"] == 96 and len(bb.sha256) == 64
    views = np.random.default_rng(0).random((5, SIZE, SIZE, 3)).astype(np.float32)
    e = bb.embed(views)
    assert e.shape == (5, bb.embedding_dim) and e.dtype == np.float32
    np.testing.assert_array_equal(e[2:3], bb.embed(views[2:3]))  # batch-independent

    # another reference (other seed) -> another extractor identity
    other, _ = RealReference.build([real_dir], size=SIZE, n_patches=96, seed=1, workers=0)
    bb2 = create_backbone("manifpt", ref=str(other.save(tmp_path / "other.npz")))
    assert bb2.sha256 != bb.sha256 and bb2.id != bb.id
    assert create_backbone("manifpt", ref=str(ref_path), features="raw").sha256 != bb.sha256
    assert create_backbone("manifpt", ref=str(ref_path)).sha256 == bb.sha256


def test_clear_errors(ref_path, tmp_path):
    with pytest.raises(BackboneError, match="fpattr artifacts index"):
        create_backbone("manifpt")
    with pytest.raises(BackboneError, match="no real reference"):
        create_backbone("manifpt", ref=str(tmp_path / "missing.npz"))
    with pytest.raises(BackboneError, match="patch size 32"):
        create_backbone("manifpt", ref=str(ref_path), size=64)
    with pytest.raises(BackboneError, match="features"):
        create_backbone("manifpt", ref=str(ref_path), features="fft")
    with pytest.raises(BackboneError, match="no approximate index"):
        create_backbone("manifpt", ref=str(ref_path), index="ivf")
    with pytest.raises(BackboneError, match="does not accept"):
        create_backbone("manifpt", ref=str(ref_path), bogus=1)
