import json
import multiprocessing as mp

import numpy as np
import pytest

from fpattr.errors import GalleryError
from fpattr.gallery import Gallery, check_model_name, editing, export_npz, import_npz

BB = {"name": "spectrum", "id": "spectrum-v1-s64", "sha256": "a" * 64}
OTHER = {"name": "default", "id": "default-v1", "sha256": "b" * 64}


def _emb(seed, n=5, d=8, center=None):
    rng = np.random.default_rng(seed)
    c = center if center is not None else rng.normal(size=d)
    return (c + 0.1 * rng.normal(size=(n, d))).astype(np.float32)


def _refs(name, n=5):
    return [{"path": f"{name}/{k}.png", "sha256": f"{name}{k}"} for k in range(n)]


def _gallery(tmp_path, n_models=3):
    g = Gallery.open_or_create(tmp_path / "g", BB)
    for m in range(n_models):
        g.add(f"m{m}", _emb(m), _refs(f"m{m}"))
    g.save()
    return g


def test_roundtrip_and_binding(tmp_path):
    g = _gallery(tmp_path)
    h = Gallery.load(tmp_path / "g")
    assert list(h.models) == ["m0", "m1", "m2"] and h.sha256 == g.sha256
    assert np.allclose(h.models["m1"].embeddings, g.models["m1"].embeddings)
    h.check_backbone(BB)
    with pytest.raises(GalleryError, match="re-enrol"):
        h.check_backbone(OTHER)
    with pytest.raises(GalleryError):
        Gallery.open_or_create(tmp_path / "g", OTHER)


def test_storage_is_json_plus_npy_no_pickle(tmp_path):
    _gallery(tmp_path)
    doc = json.loads((tmp_path / "g" / "gallery.json").read_text())
    assert doc["schema"] == "fpattr.gallery/1" and doc["backbone"] == BB
    for e in doc["models"].values():
        arr = np.load(tmp_path / "g" / e["file"], allow_pickle=False)
        assert arr.dtype == np.float32 and arr.shape == (5, 8)


def test_matching_finds_the_right_model(tmp_path):
    g = _gallery(tmp_path)
    names, sims = g.similarities(_emb(1, n=1, center=g.models["m1"].embeddings.mean(0)))
    assert names[int(np.argmax(sims[0]))] == "m1"


def test_add_replace_append_remove(tmp_path):
    g = _gallery(tmp_path)
    with pytest.raises(GalleryError, match="already enrolled"):
        g.add("m0", _emb(9), _refs("x"))
    g.add("m0", _emb(9, n=2), _refs("new", 2), replace=True)
    assert len(g.models["m0"].refs) == 2
    g.add("m0", _emb(10, n=3), _refs("new", 3), append=True)  # 2 duplicates by sha256 skipped
    assert len(g.models["m0"].refs) == 3 and g.models["m0"].embeddings.shape[0] == 3
    g.remove("m2")
    with pytest.raises(GalleryError):
        g.remove("m2")
    with pytest.raises(GalleryError, match="embedding size"):
        g.add("m9", _emb(1, d=4), _refs("m9"))


@pytest.mark.parametrize("bad", ["", "unknown", "../x", "a/b", " x", "x" * 200])
def test_bad_model_names(bad):
    with pytest.raises(GalleryError):
        check_model_name(bad)


def test_tampered_gallery_is_refused(tmp_path):
    _gallery(tmp_path)
    doc = json.loads((tmp_path / "g" / "gallery.json").read_text())
    f = tmp_path / "g" / doc["models"]["m0"]["file"]
    arr = np.load(f)
    arr[0, 0] += 1
    np.save(f, arr)
    with pytest.raises(GalleryError, match="sha256"):
        Gallery.load(tmp_path / "g")


def test_loo_scores_separate_distinct_models(tmp_path):
    g = _gallery(tmp_path)
    gen, imp = g.loo_scores()
    assert gen.size == 15 and imp.size == 30 and gen.mean() > imp.mean()
    pg, pi = g.loo_pair_scores()
    assert pg.size == 3 * 10 and pi.size == 3 * 25


def test_export_import_roundtrip(tmp_path):
    g = _gallery(tmp_path)
    export_npz(g, tmp_path / "g.npz")
    h = import_npz(tmp_path / "g.npz")
    assert h.sha256 == g.sha256 and h.backbone == BB
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(GalleryError):
        import_npz(tmp_path / "junk.npz")


def test_failed_edit_leaves_gallery_unchanged(tmp_path):
    g = _gallery(tmp_path)
    before = (tmp_path / "g" / "gallery.json").read_bytes()
    with pytest.raises(RuntimeError), editing(tmp_path / "g", BB) as h:
        h.remove("m0")
        raise RuntimeError("crash mid-edit")
    assert (tmp_path / "g" / "gallery.json").read_bytes() == before
    assert Gallery.load(tmp_path / "g").sha256 == g.sha256


def _enrol(path, name):
    with editing(path, BB) as g:
        g.add(name, _emb(hash(name) % 1000), _refs(name))


def test_concurrent_adds_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    names = [f"p{k}" for k in range(6)]
    with ctx.Pool(2) as pool:
        pool.starmap(_enrol, [(tmp_path / "g", n) for n in names])
    assert sorted(Gallery.load(tmp_path / "g").models) == names
