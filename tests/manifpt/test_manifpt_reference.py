"""RealReference: exact projection of real images, storage, tamper detection, search."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from fpattr import manifpt
from fpattr.manifpt import ManifptError, NeighbourIndex, RealReference, artifacts

SIZE = 32


def _grid_ref(real_dir, space: str = "pixel", **kw) -> RealReference:
    """4 grid patches per 64 px image: exactly the views make_views takes (offsets 0, 32)."""
    ref, failed = RealReference.build(
        [real_dir], size=SIZE, n_patches=48, strategy="grid", space=space, workers=0, **kw
    )
    assert failed == [] and len(ref) == 48
    return ref


@pytest.mark.parametrize(
    "space,kw",
    [
        ("pixel", {}),
        ("frequency", {}),
        ("frequency", {"freq_input": "residual"}),
        ("embedding", {}),
    ],
)
def test_real_image_in_reference_has_zero_artifact(real_dir, views_of, space, kw):
    ref = _grid_ref(real_dir, space, **kw)
    assert ref.patches.dtype == np.uint8  # 8-bit PNGs are stored exactly
    for path in sorted(real_dir.glob("*.png"))[:3]:
        v = views_of(path)
        a = artifacts(v, ref)
        assert a.shape == v.shape and a.dtype == np.float32
        assert np.abs(a).max() < 1e-5, (space, path.name, np.abs(a).max())
        _, dist = ref.search(v, k=2)  # float16 descriptors: ~0, far below the runner-up
        assert np.all(dist[:, 0] < 0.05 * dist[:, 1]), dist
        rows = ref.project(v).indices
        assert {ref.source_of(int(r))["source"] for r in rows} == {str(path)}


def test_unseen_image_has_an_artifact_and_pixel_distance_is_its_norm(real_dir, smooth_image):
    ref = _grid_ref(real_dir)
    v = np.stack([smooth_image(99)[:SIZE, :SIZE]]).astype(np.float32) / 255
    proj = ref.project(v)
    a = v - proj.projected
    assert np.abs(a).mean() > 0.01
    # P(x) is mean-aligned, so the centred-pixel search distance is exactly ||a||
    assert np.allclose(np.linalg.norm(a.reshape(1, -1), axis=1), proj.distances, rtol=1e-4)
    np.testing.assert_allclose(a.mean(axis=(1, 2)), 0, atol=1e-5)


def test_random_crops_are_seeded_and_spread(real_dir):
    a, _ = RealReference.build([real_dir], size=SIZE, n_patches=50, seed=3, workers=0)
    b, _ = RealReference.build([real_dir], size=SIZE, n_patches=50, seed=3, workers=0)
    c, _ = RealReference.build([real_dir], size=SIZE, n_patches=50, seed=4, workers=0)
    assert a.sha256 == b.sha256 and a.sha256 != c.sha256
    per_image = np.bincount(a.origins[:, 0])
    assert len(a) == 50 and per_image.max() - per_image.min() <= 1 and len(per_image) == 12
    assert a.origins[:, 1:].max() <= 64 - SIZE


def test_save_load_roundtrip_and_tamper_detection(real_dir, views_of, tmp_path):
    ref = _grid_ref(real_dir, "frequency")
    out = ref.save(tmp_path / "ref.npz")
    back = RealReference.load(out)
    assert back.sha256 == ref.sha256 and back.config == ref.config
    np.testing.assert_array_equal(back.patches, ref.patches)
    np.testing.assert_array_equal(back.descriptors, ref.descriptors)
    v = views_of(sorted(real_dir.glob("*.png"))[5])
    np.testing.assert_array_equal(back.artifacts(v), ref.artifacts(v))
    with zipfile.ZipFile(out) as z:
        assert not any(n.endswith(".pkl") for n in z.namelist())
        meta = json.loads(np.load(out)["manifpt.json"].tobytes())
    assert meta["sha256"] == ref.sha256 and meta["config"]["space"] == "frequency"

    # one changed pixel, metadata (and its digest) copied verbatim -> refused
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["patches"] = arrays["patches"].copy()
    arrays["patches"][0, 0, 0, 0] ^= 1
    bad = tmp_path / "tampered.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ManifptError, match="sha256"):
        RealReference.load(bad)
    # a changed config is caught too
    arrays = {k: v for k, v in np.load(out).items()}
    meta["config"]["align_mean"] = False
    arrays["manifpt.json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(bad, **arrays)
    with pytest.raises(ManifptError, match="sha256"):
        RealReference.load(bad)
    # a missing array, or arrays that do not fit together
    arrays = {k: v for k, v in np.load(out).items() if k != "origins"}
    np.savez(bad, **arrays)
    with pytest.raises(ManifptError, match="cannot read"):
        RealReference.load(bad)
    arrays["origins"] = np.zeros((3, 3), np.int32)
    np.savez(bad, **arrays)
    with pytest.raises(ManifptError, match="malformed"):
        RealReference.load(bad)
    # truncated / not a reference / missing
    (tmp_path / "cut.npz").write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    for path in (tmp_path / "cut.npz", tmp_path / "missing.npz"):
        with pytest.raises(ManifptError):
            RealReference.load(path)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ManifptError, match="cannot read|not an fpattr"):
        RealReference.load(tmp_path / "other.npz")


def test_save_is_atomic_and_refuses_other_suffixes(real_dir, tmp_path, monkeypatch):
    ref = _grid_ref(real_dir)
    out = ref.save(tmp_path / "ref.npz")
    before = out.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        ref.save(out)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["ref.npz"]
    with pytest.raises(ManifptError, match=".npz"):
        ref.save(tmp_path / "ref.bin")


def test_views_must_match_the_patch_size(real_dir):
    ref = _grid_ref(real_dir)
    with pytest.raises(ManifptError, match="views must be"):
        ref.artifacts(np.zeros((1, 16, 16, 3), np.float32))


def test_no_readable_image_is_an_error(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ManifptError, match="no real image"):
        RealReference.build([tmp_path], size=SIZE, n_patches=4, workers=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifptError, match="no real images found"):
        RealReference.build([tmp_path / "empty"], size=SIZE, n_patches=4, workers=0)


# ------------------------------------------------------------------------------- the index


def _brute(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> np.ndarray:
    if metric == "l2":
        s = ((q[:, None, :].astype(np.float64) - x[None].astype(np.float64)) ** 2).sum(-1)
    else:
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        s = -(qn.astype(np.float64) @ xn.T.astype(np.float64))
    return np.argsort(s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_exact_search_equals_brute_force(metric, monkeypatch):
    monkeypatch.setattr(manifpt, "_CHUNK_BYTES", 4 * 48 * 97)  # several blocks, odd sizes
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1000, 48)).astype(np.float32)
    q = rng.standard_normal((40, 48)).astype(np.float32)
    for data in (x, x.astype(np.float16)):  # float32 rows as views / converted rows
        ref = data.astype(np.float32)
        for k in (1, 3):
            idx, dist = NeighbourIndex.from_array(data, metric).search(q, k)
            np.testing.assert_array_equal(idx, _brute(ref, q, metric, k))
            assert np.all(np.diff(dist, axis=1) >= 0)
            if metric == "l2":
                np.testing.assert_allclose(dist[:, 0], np.linalg.norm(q - ref[idx[:, 0]], axis=1))


def test_pixel_space_search_equals_brute_force_on_centred_patches(
    real_dir, smooth_image, monkeypatch
):
    monkeypatch.setattr(manifpt, "_CHUNK_BYTES", 4 * SIZE * SIZE * 3 * 7)
    ref, _ = RealReference.build([real_dir], size=SIZE, n_patches=60, seed=1, workers=0)
    rng = np.random.default_rng(2)
    v = np.stack([smooth_image(200 + i)[:SIZE, :SIZE] for i in range(10)]).astype(np.float32)
    v = np.clip(v / 255 + rng.normal(0, 0.02, v.shape), 0, 1).astype(np.float32)
    desc = manifpt.centre(manifpt.as_float(ref.patches)).reshape(len(ref), -1)
    qd = manifpt.centre(v).reshape(len(v), -1)
    for cache in (0, 1 << 30):  # derived row blocks of 7 / one cached matrix
        idx = NeighbourIndex(
            ref._rows, len(ref), "l2", dot_rows=ref._pixel_dot_rows, cache_bytes=cache
        ).search(qd, 2)[0]
        np.testing.assert_array_equal(idx, _brute(desc, qd, "l2", 2))
    np.testing.assert_array_equal(ref.search(v)[0][:, 0], _brute(desc, qd, "l2", 1)[:, 0])


def _clustered(rng, n: int, d: int, centres: np.ndarray) -> np.ndarray:
    lab = rng.integers(0, len(centres), n)
    return (centres[lab] + rng.standard_normal((n, d))).astype(np.float32)


@pytest.mark.parametrize("metric,d", [("l2", 256), ("cosine", 64)])
def test_ivf_recall_at_1_on_clustered_data(metric, d):
    """300 Gaussian clusters whose centres are as far apart as two members of one cluster
    (they overlap), fresh queries from the same mixture: recall@1 against exact search."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((300, d))
    x, q = _clustered(rng, 8000, d, centres), _clustered(rng, 300, d, centres)
    exact = NeighbourIndex.from_array(x, metric).search(q)[0][:, 0]
    ivf = NeighbourIndex.from_array(x, metric, kind="ivf", seed=0)
    assert ivf.nlist == 89 and ivf.nprobe == 8
    assert ivf.config()["proj_dim"] == (128 if d > 128 else 0)
    recall = float((ivf.search(q)[0][:, 0] == exact).mean())
    print(f"ivf recall@1 {metric} d={d} nlist={ivf.nlist} nprobe={ivf.nprobe}: {recall:.3f}")
    assert recall >= 0.9
    wide = NeighbourIndex.from_array(x, metric, kind="ivf", nprobe=ivf.nlist, state=ivf.state)
    assert (wide.search(q)[0][:, 0] == exact).all()  # probing every cell is exact
    idx3, _ = wide.search(q, 3)
    np.testing.assert_array_equal(idx3, NeighbourIndex.from_array(x, metric).search(q, 3)[0])


def test_reference_with_ivf_roundtrip_and_search_override(real_dir, views_of, tmp_path):
    ref, _ = RealReference.build([real_dir], size=SIZE, n_patches=120, seed=0, workers=0)
    ref.build_index("ivf", ann="numpy", nlist=6, nprobe=2)
    out = ref.save(tmp_path / "ivf.npz")
    back = RealReference.load(out)
    cfg = back.index().config()
    assert cfg["kind"] == "ivf" and cfg["nlist"] == 6 and cfg["nprobe"] == 2
    assert back.index_state.keys() == {"proj", "centroids", "order", "offsets"}
    v = np.concatenate([views_of(p) for p in sorted(real_dir.glob("*.png"))[:4]])
    np.testing.assert_array_equal(back.search(v)[0], ref.search(v)[0])
    sha = back.sha256
    back.use_search("exact")
    assert back.index().config()["kind"] == "exact" and back.sha256 == sha
    exact, _ = back.search(v)
    back.use_search(None, nprobe=6)
    np.testing.assert_array_equal(back.search(v)[0], exact)  # all cells = exact
    back.save(tmp_path / "again.npz")  # an override is not stored
    assert RealReference.load(tmp_path / "again.npz").index().config()["nprobe"] == 2
    exact_ref, _ = RealReference.build([real_dir], size=SIZE, n_patches=12, workers=0)
    with pytest.raises(ManifptError, match="no approximate index"):
        exact_ref.use_search("ivf")


def test_auto_index_and_missing_optional_backends(real_dir, monkeypatch):
    ref, _ = RealReference.build([real_dir], size=SIZE, n_patches=24, workers=0)
    assert ref.build_index("auto").kind == "exact"
    monkeypatch.setattr(manifpt, "AUTO_EXACT_MAX", 10)
    monkeypatch.setattr(manifpt, "_importable", lambda m: False)
    idx = ref.build_index("auto")
    assert idx.kind == "ivf" and idx.ann == "numpy"  # no faiss/hnswlib: built-in IVF
    with pytest.raises(ManifptError, match="not installed"):
        ref.build_index("ivf", ann="faiss")


class _FakeHnsw:
    """Brute force behind hnswlib's Python API (the real package is optional)."""

    def __init__(self, space: str, dim: int) -> None:
        self.space = space

    def init_index(self, max_elements: int, ef_construction: int, M: int, random_seed: int):
        pass

    def add_items(self, data, ids) -> None:
        self.x, self.ids = np.asarray(data, np.float32), np.asarray(ids)

    def set_ef(self, ef: int) -> None:
        pass

    def knn_query(self, q, k: int):
        return _FakeFaissIVF._knn(self.x, q, k, self.space == "cosine", self.ids)


class _FakeFaissIVF:
    def __init__(self, quantizer, d: int, nlist: int, metric: int) -> None:
        self.ip, self.nprobe = metric == 0, 1

    def train(self, x) -> None:
        pass

    def add(self, x) -> None:
        self.x = np.asarray(x, np.float32)

    def search(self, q, k: int):
        labels, d = self._knn(self.x, q, k, self.ip, np.arange(len(self.x)))
        labels = labels.astype(np.int64)
        labels[0, -1] = -1  # faiss pads short result lists with -1
        return d, labels

    @staticmethod
    def _knn(x, q, k, inner: bool, ids):
        if inner:
            xn = x / np.linalg.norm(x, axis=1, keepdims=True)
            s = 1 - np.asarray(q) / np.linalg.norm(q, axis=1, keepdims=True) @ xn.T
        else:
            s = ((np.asarray(q)[:, None] - x[None]) ** 2).sum(-1)
        top = np.argsort(s, axis=1)[:, :k]
        return ids[top].astype(np.uint64), np.take_along_axis(s, top, 1)


@pytest.mark.parametrize("engine", ["faiss", "hnswlib"])
def test_optional_ann_engines_are_wired(engine, real_dir, views_of, monkeypatch):
    import sys
    import types

    fake = types.SimpleNamespace(
        Index=_FakeHnsw,
        METRIC_INNER_PRODUCT=0,
        METRIC_L2=1,
        IndexFlatIP=lambda d: None,
        IndexFlatL2=lambda d: None,
        IndexIVFFlat=_FakeFaissIVF,
    )
    monkeypatch.setitem(sys.modules, engine, fake)
    for space in ("pixel", "embedding"):  # l2 and cosine
        ref, _ = RealReference.build([real_dir], size=SIZE, n_patches=40, space=space, workers=0)
        v = np.concatenate([views_of(p) for p in sorted(real_dir.glob("*.png"))[:2]])
        exact = ref.search(v, 2)[0]
        idx = ref.build_index("ivf", ann="auto" if engine == "faiss" else engine)
        assert idx.ann == engine and ref.index_state == {}
        np.testing.assert_array_equal(ref.search(v, 2)[0], exact)
