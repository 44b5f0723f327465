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


@pytest.mark.parametrize("word", ["Unknown", "ambiguous", "INCONCLUSIVE", "same", "Different"])
def test_decision_words_cannot_name_a_model(word):
    # a model enrolled as 'inconclusive' read as that outcome in every report and summary
    with pytest.raises(GalleryError, match="reserved in any letter case"):
        check_model_name(word)
    assert check_model_name(word + "-v2") == word + "-v2"


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


def _write_raw(path, models, *, with_sha=True):
    """A gallery.json written by hand (as an attacker or an old tool would): each model's
    embeddings in emb/<k>.npy, the sha256 recorded correctly unless with_sha is False."""
    from fpattr.gallery import GalleryModel

    (path / "emb").mkdir(parents=True, exist_ok=True)
    g = Gallery(backbone=BB)
    entries = {}
    for k, (name, emb) in enumerate(models.items()):
        np.save(path / "emb" / f"{k}.npy", emb.astype(np.float32), allow_pickle=False)
        g.models[name] = GalleryModel(name, emb.astype(np.float32))
        entries[name] = {"file": f"emb/{k}.npy", "n_refs": len(emb), "refs": []}
    doc = {"schema": "fpattr.gallery/1", "backbone": BB, "models": entries}
    if with_sha:
        doc["sha256"] = g.sha256
    (path / "gallery.json").write_text(json.dumps(doc))
    return path


def test_hand_written_gallery_with_its_hash_loads(tmp_path):
    g = Gallery.load(_write_raw(tmp_path / "g", {"m0": _emb(0), "m1": _emb(1)}))
    assert sorted(g.models) == ["m0", "m1"]


@pytest.mark.parametrize("bad", ["../../x", "a/b", "/abs", "unknown", ".hidden"])
def test_gallery_json_with_a_path_like_model_name_is_refused(tmp_path, bad):
    """A name like ../../x would become emb/../../x-<hash>.npy on the next save, i.e. a
    write outside the gallery folder: refused on load, before any edit."""
    g_dir = _write_raw(tmp_path / "d" / "g", {bad: _emb(0), "ok": _emb(1)})
    with pytest.raises(GalleryError, match="invalid model name"):
        Gallery.load(g_dir)
    with pytest.raises(GalleryError, match="invalid model name"), editing(g_dir, BB) as h:
        h.add("new", _emb(2), _refs("new"))  # what `fpattr gallery add` does
    outside = [p for p in (tmp_path / "d").rglob("*") if "g" not in p.relative_to(tmp_path).parts]
    assert outside == [] and not list(tmp_path.rglob("x-*.npy"))


def test_save_never_builds_a_path_from_an_invalid_name(tmp_path):
    from fpattr.gallery import GalleryModel

    g = Gallery(backbone=BB)
    g.models["../../x"] = GalleryModel("../../x", _emb(0))  # bypassing add()
    with pytest.raises(GalleryError, match="invalid model name"):
        g.save(tmp_path / "d" / "g")
    assert not list(tmp_path.rglob("*.npy")) and not list(tmp_path.rglob("gallery.json"))


def test_gallery_json_without_its_integrity_hash_is_refused(tmp_path):
    g_dir = _write_raw(tmp_path / "g", {"m0": _emb(0)}, with_sha=False)
    with pytest.raises(GalleryError, match=r'no integrity hash \("sha256"\)'):
        Gallery.load(g_dir)


def test_galleries_the_project_writes_always_carry_the_hash(tmp_path):
    g = _gallery(tmp_path)
    doc = json.loads((tmp_path / "g" / "gallery.json").read_text())
    assert doc["sha256"] == g.sha256 and len(doc["sha256"]) == 64
    with editing(tmp_path / "g", BB) as h:
        h.remove("m0")
    doc = json.loads((tmp_path / "g" / "gallery.json").read_text())
    assert doc["sha256"] == Gallery.load(tmp_path / "g").sha256
    with editing(tmp_path / "empty", BB):
        pass  # even a gallery with no model
    assert len(json.loads((tmp_path / "empty" / "gallery.json").read_text())["sha256"]) == 64


def test_embedding_files_outside_emb_are_refused(tmp_path):
    g_dir = _write_raw(tmp_path / "g", {"m0": _emb(0)})
    doc = json.loads((g_dir / "gallery.json").read_text())
    for bad in ["../evil.npy", "/etc/passwd", "emb/../../evil.npy", "other/0.npy", 7]:
        doc["models"]["m0"]["file"] = bad
        (g_dir / "gallery.json").write_text(json.dumps(doc))
        with pytest.raises(GalleryError, match="refuses embedding path"):
            Gallery.load(g_dir)


def test_a_model_with_no_references_is_refused_on_load(tmp_path):
    """Empty embeddings would give NaN centroids and NaN scores."""
    g_dir = _write_raw(tmp_path / "g", {"m0": _emb(0), "empty": np.zeros((0, 8))})
    with pytest.raises(GalleryError, match="'empty' has no references"):
        Gallery.load(g_dir)


def test_non_finite_embeddings_are_refused_on_load(tmp_path):
    bad = _emb(0)
    bad[1, 2] = np.nan
    g_dir = _write_raw(tmp_path / "g", {"m0": bad})
    with pytest.raises(GalleryError, match="non-finite"):
        Gallery.load(g_dir)


@pytest.mark.parametrize("emb", [np.zeros((0, 8)), np.zeros(0), np.zeros((3, 0))])
def test_a_model_with_no_references_is_refused_on_add(tmp_path, emb):
    g = _gallery(tmp_path)
    n = emb.shape[0] if emb.ndim == 2 else 0
    with pytest.raises(GalleryError, match="no references"):
        g.add("empty", emb, _refs("empty", n))
    assert "empty" not in g.models
    with pytest.raises(GalleryError, match="non-finite"):
        g.add("nan", np.full((2, 8), np.nan), _refs("nan", 2))


def _npz(path, meta, arrays):
    arrays = dict(arrays)
    arrays["gallery.json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


def test_import_refuses_bad_names_empty_models_and_missing_hash(tmp_path):
    from fpattr.gallery import GalleryModel

    def meta_for(models, with_sha=True):
        g = Gallery(backbone=BB)
        for n, e in models.items():
            g.models[n] = GalleryModel(n, e.astype(np.float32))
        meta = {"schema": "fpattr.gallery/1", "backbone": BB, "models": {n: {} for n in models}}
        if with_sha:
            meta["sha256"] = g.sha256
        return meta, {f"emb/{n}": e.astype(np.float32) for n, e in models.items()}

    f = _npz(tmp_path / "a.npz", *meta_for({"../../x": _emb(0)}))
    with pytest.raises(GalleryError, match="invalid model name"):
        import_npz(f)
    f = _npz(tmp_path / "b.npz", *meta_for({"m0": _emb(0), "e": np.zeros((0, 8))}))
    with pytest.raises(GalleryError, match="no references"):
        import_npz(f)
    f = _npz(tmp_path / "c.npz", *meta_for({"m0": _emb(0)}, with_sha=False))
    with pytest.raises(GalleryError, match="integrity hash"):
        import_npz(f)
    f = _npz(tmp_path / "d.npz", *meta_for({"m0": _emb(0)}))
    assert list(import_npz(f).models) == ["m0"]


def test_a_model_name_with_a_trailing_newline_is_refused():
    with pytest.raises(GalleryError, match="invalid model name"):
        check_model_name("X\n")
    assert check_model_name("X") == "X"


@pytest.mark.parametrize("refs", [None, "abc", [1, 2, 3], [{"path": "a"}]])
def test_edited_reference_records_are_refused_not_a_crash(tmp_path, refs):
    """refs are outside the integrity hash: an edit must be a clear GalleryError."""
    g_dir = _write_raw(tmp_path / "g", {"m0": _emb(0), "m1": _emb(1)})
    doc = json.loads((g_dir / "gallery.json").read_text())
    doc["models"]["m0"]["refs"] = refs
    (g_dir / "gallery.json").write_text(json.dumps(doc))
    with pytest.raises(GalleryError, match="references"):
        Gallery.load(g_dir)


def test_models_of_different_embedding_sizes_are_refused(tmp_path):
    g_dir = _write_raw(tmp_path / "g", {"m0": _emb(0), "m1": _emb(1)[:, :3]})
    with pytest.raises(GalleryError, match="dimensional"):
        Gallery.load(g_dir)


def test_a_non_integer_reference_count_is_refused(tmp_path):
    g_dir = _write_raw(tmp_path / "g", {"m0": _emb(0), "m1": _emb(1)})
    doc = json.loads((g_dir / "gallery.json").read_text())
    doc["models"]["m0"]["n_refs"] = "5"
    (g_dir / "gallery.json").write_text(json.dumps(doc))
    with pytest.raises(GalleryError, match="not a count"):
        Gallery.load(g_dir)


def test_a_damaged_gallery_says_the_way_out(tmp_path):
    # break-it pass: every command refused a damaged gallery (rightly), with no way out
    g = _gallery(tmp_path)
    meta = g.path / "gallery.json"
    doc = json.loads(meta.read_text())
    doc["sha256"] = "0" * 64
    meta.write_text(json.dumps(doc))
    with pytest.raises(GalleryError, match="does not match its recorded sha256") as e:
        Gallery.load(g.path)
    assert "move the folder aside and enrol the models again" in str(e.value)
    # a folder that is no gallery at all is not called damaged (tmp_path's own name has
    # 'damaged' in it, so look only at the message past the path)
    with pytest.raises(GalleryError, match="missing gallery.json") as e:
        Gallery.load(tmp_path / "nowhere")
    assert "move the folder aside" not in str(e.value)


def test_save_deletes_only_the_files_its_previous_gallery_listed(tmp_path):
    # break-it 27: save() deleted every emb/*.npy the new gallery.json did not list: a
    # user's own array in the folder, or the arrays of a gallery that lost its gallery.json
    g = _gallery(tmp_path)
    emb = tmp_path / "g" / "emb"
    mine = emb / "my_features.npy"
    np.save(mine, np.zeros(3))
    m2 = json.loads((tmp_path / "g" / "gallery.json").read_text())["models"]["m2"]["file"]
    g.remove("m2")
    g.save()
    assert mine.is_file()  # not fpattr's
    assert not (tmp_path / "g" / m2).exists()  # the removed model's array is gone
    assert Gallery.load(tmp_path / "g").sha256 == g.sha256
    # a folder whose emb/ holds arrays but no gallery.json is refused, its files kept
    before = sorted(p.name for p in emb.iterdir())
    (tmp_path / "g" / "gallery.json").unlink()
    with pytest.raises(GalleryError, match="no gallery.json but its emb/ holds 3 array"):
        Gallery.open_or_create(tmp_path / "g", BB)
    assert sorted(p.name for p in emb.iterdir()) == before
    # a new gallery saved beside files it did not write leaves them alone
    other = tmp_path / "other"
    (other / "emb").mkdir(parents=True)
    np.save(other / "emb" / "x.npy", np.zeros(2))
    h = Gallery(backbone=BB, path=other)
    h.add("m0", _emb(0), _refs("m0"))
    h.save()
    assert (other / "emb" / "x.npy").is_file() and Gallery.load(other).models


def test_a_read_beside_an_edit_reads_the_new_gallery_not_damage(tmp_path, monkeypatch):
    # break-it 28: a reader that read gallery.json just before an edit committed found the
    # old arrays deleted and said "the gallery is damaged ... enrol the models again"
    import fpattr.gallery as gallery_mod

    old = _gallery(tmp_path).sha256
    real, edits = gallery_mod._load_npy, []

    def edit_meanwhile(path, file, name):
        if not edits:  # a writer replaces m1 between the reader's JSON and its arrays
            edits.append(name)
            with editing(tmp_path / "g", BB) as g:
                g.add("m1", _emb(9), _refs("m1"), replace=True)
        return real(path, file, name)

    monkeypatch.setattr(gallery_mod, "_load_npy", edit_meanwhile)
    h = Gallery.load(tmp_path / "g")
    monkeypatch.undo()
    assert edits and h.sha256 != old and h.sha256 == Gallery.load(tmp_path / "g").sha256
    # real damage is still damage, said once the file stops changing
    next((tmp_path / "g").glob("emb/m0*.npy")).unlink()
    with pytest.raises(GalleryError, match="the gallery is damaged"):
        Gallery.load(tmp_path / "g")
