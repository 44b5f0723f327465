"""Gallery search index: exact = brute force, HNSW recall, auto choice, cache, Session parity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fpattr import index as gi
from fpattr.decision import DecisionPolicy
from fpattr.gallery import Gallery
from fpattr.index import build_index, choose_kind, clustered_unit_vectors, open_index, recall_at_k

BB = {"name": "spectrum", "id": "spectrum-v1-s64", "sha256": "a" * 64}


def _faiss():
    """faiss with one thread (tests share the machine), or a skip naming the extra."""
    faiss = pytest.importorskip(
        "faiss", reason="the [index] extra (faiss-cpu) is not installed: no approximate index"
    )
    faiss.omp_set_num_threads(1)
    return faiss


def _gallery(path, n_models=6, n_refs=4, d=16, seed=0):
    rng = np.random.default_rng(seed)
    g = Gallery(backbone=dict(BB), path=path)
    for m in range(n_models):
        c = rng.normal(size=d)
        emb = (c + 0.3 * rng.normal(size=(n_refs, d))).astype(np.float32)
        g.add(f"m{m}", emb, [{"path": f"{m}/{k}", "sha256": f"{m}-{k}"} for k in range(n_refs)])
    if path is not None:
        g.save(path)
    return g


def test_exact_equals_brute_force():
    v, _ = clustered_unit_vectors(3000, 32, seed=3)
    q = np.random.default_rng(4).normal(size=(37, 32)).astype(np.float32)
    idx = build_index(v, "exact")
    sims, ids = idx.search(q, 7)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    full = qn @ v.T
    want = np.argsort(-full, axis=1, kind="stable")[:, :7]
    assert np.array_equal(ids, want)
    assert np.allclose(sims, np.take_along_axis(full, want, axis=1), atol=1e-6)
    # one (D,) query, k above the size, and small blocks give the same answer
    one_s, one_i = idx.search(q[0], 5000)
    assert one_i.shape == (1, 3000) and np.array_equal(one_i[0, :7], want[0])
    old = gi._EXACT_BLOCK
    try:
        gi._EXACT_BLOCK = 3000 * 5  # 5 query rows per block
        assert np.array_equal(idx.search(q, 7)[1], want)
    finally:
        gi._EXACT_BLOCK = old


def test_hnsw_recall_at_5_on_clustered_20k():
    _faiss()
    v, _ = clustered_unit_vectors(20_000, 128, seed=5)
    rng = np.random.default_rng(6)
    # queries are new members of the clusters (same spread as the entries): not near-copies
    noise = rng.normal(size=(500, 128)).astype(np.float32) * (0.6 / np.sqrt(128))
    q = v[rng.integers(0, len(v), 500)] + noise
    _, truth = build_index(v, "exact").search(q, 5)
    h = build_index(v, "hnsw")
    sims, ids = h.search(q, 5)
    assert recall_at_k(ids, truth) >= 0.99
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # best first
    assert h.info()["params"]["ef_search"] == gi.HNSW_EF_SEARCH


def test_auto_choice_by_size(monkeypatch, caplog):
    assert choose_kind(gi.EXACT_MAX_ENTRIES - 1) == "exact"
    assert choose_kind(10, "exact") == "exact"
    with pytest.raises(ValueError, match="unknown index kind"):
        choose_kind(10, "ivf")
    monkeypatch.setattr(gi, "faiss_available", lambda: True)
    assert choose_kind(gi.EXACT_MAX_ENTRIES) == "hnsw"
    monkeypatch.setattr(gi, "faiss_available", lambda: False)
    with caplog.at_level("WARNING", logger="fpattr.index"):
        assert choose_kind(gi.EXACT_MAX_ENTRIES) == "exact"
    assert "[index] extra" in caplog.text
    with pytest.raises(ImportError, match="faiss"):
        choose_kind(10, "hnsw")


def test_cache_reused_and_invalidated_when_the_gallery_changes(tmp_path):
    _faiss()
    g = _gallery(tmp_path / "g", n_models=40)
    a = open_index(g, "hnsw")
    assert not a.cached and a.cache_file and (tmp_path / "g" / "index").is_dir()
    b = open_index(Gallery.load(tmp_path / "g"), "hnsw")
    assert b.cached and b.cache_file == a.cache_file
    q = np.random.default_rng(1).normal(size=(3, 16)).astype(np.float32)
    assert np.array_equal(a.search(q, 5)[1], b.search(q, 5)[1])
    side = json.loads(
        (tmp_path / "g" / "index" / (a.cache_file.rsplit("/", 1)[1][:-6] + ".json")).read_text()
    )
    assert side["gallery_sha256"] == g.sha256 and side["kind"] == "hnsw"
    # a changed gallery gets a new index and the stale one is removed
    g.add(
        "new",
        np.ones((2, 16), np.float32),
        [{"path": "x", "sha256": "x"}, {"path": "y", "sha256": "y"}],
    )
    g.save()
    c = open_index(Gallery.load(tmp_path / "g"), "hnsw")
    assert not c.cached and c.cache_file != a.cache_file and c.n_entries == 41
    assert sorted(p.suffix for p in (tmp_path / "g" / "index").iterdir()) == [".faiss", ".json"]
    # a damaged cache file is rebuilt, not trusted
    (tmp_path / "g" / "index" / c.cache_file.rsplit("/", 1)[1]).write_bytes(b"junk")
    d = open_index(Gallery.load(tmp_path / "g"), "hnsw")
    assert not d.cached and d.n_entries == 41


def test_reference_entries_map_back_to_models(tmp_path):
    g = _gallery(None, n_models=5, n_refs=3)
    idx = open_index(g, "exact", entries="references")
    assert idx.n_entries == 15 and idx.owner.tolist() == [m for m in range(5) for _ in range(3)]
    ref = g.models["m3"].embeddings[1]
    _, ids = idx.search(ref, 1)
    assert idx.names[idx.owner[ids[0, 0]]] == "m3"


def _session(g, **kw):
    from fpattr.backbones.resolve import create_backbone
    from fpattr.session import Session

    bb = create_backbone("spectrum")
    g.backbone = {k: bb.info().get(k) for k in ("name", "id", "sha256")}
    return Session(bb, g, provenance=False, **kw)


def test_session_exact_index_gives_identical_results():
    g = _gallery(None, n_models=6, n_refs=4)
    s0 = _session(g)
    q = np.random.default_rng(2).normal(size=(20, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    s1 = _session(g, index="exact")
    s2 = _session(g, index="auto")
    for e in q:
        r0 = s0.decide(e)
        assert json.dumps(r0, sort_keys=True) == json.dumps(s1.decide(e), sort_keys=True)
        assert json.dumps(r0, sort_keys=True) == json.dumps(s2.decide(e), sort_keys=True)
    assert s1.index_info()["kind"] == "exact" and not s1._uses_index()


def test_session_on_candidates_matches_when_all_models_are_retrieved():
    """With every model among the candidates the top-k path is the full path."""
    _faiss()
    g = _gallery(None, n_models=8, n_refs=4)
    s_full = _session(g)
    s_ann = _session(g, index="hnsw")
    q = np.random.default_rng(3).normal(size=(10, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    for e in q:
        a, b = s_full.decide(e), s_ann.decide(e)
        assert a["decision"] == b["decision"]
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)
        assert b["p_not_retrieved"] == pytest.approx(0.0, abs=1e-9)
    info = s_ann.index_info()
    assert info["kind"] == "hnsw" and info["candidates"] == 10 and "build_seconds" in info


def test_posterior_with_models_not_retrieved_is_bounded_and_sums_to_one():
    pol = DecisionPolicy(None, prior_unknown=0.5)
    llr = np.array([5.0, 1.0, -1.0])
    full = np.concatenate([llr, np.full(97, -3.0)])
    p_all, u_all = pol.posterior(full)
    p_top, u_top = pol.posterior(llr, n_models=100, rest=(97, -1.0))  # bound: LLR of the 3rd
    assert p_top.sum() + u_top < 1.0
    # the bound at the lowest retrieved LLR only lowers the retrieved posteriors
    assert np.all(p_top <= p_all[:3] + 1e-12) and u_top <= u_all + 1e-12
    p_exact, u_exact = pol.posterior(llr, n_models=100, rest=(97, -3.0))
    assert np.allclose(p_exact, p_all[:3]) and u_exact == pytest.approx(u_all)
    # the default path is unchanged
    p, u = pol.posterior(llr)
    assert p.sum() + u == pytest.approx(1.0)


def test_session_on_candidates_of_a_larger_gallery():
    """More models than candidates: the prior stays 1/M and the rest is one bounded term."""
    _faiss()
    g = _gallery(None, n_models=40, n_refs=4)
    s_full, s_ann = _session(g), _session(g, index="hnsw")
    s_ref = _session(g, index="hnsw", index_entries="references")
    for name in ("m3", "m17"):
        e = g.models[name].embeddings[0]
        a, b, c = s_full.decide(e), s_ann.decide(e), s_ref.decide(e)
        assert [t["model"] for t in a["top"]] == [t["model"] for t in b["top"]]
        assert [t["model"] for t in a["top"]] == [t["model"] for t in c["top"]]
        assert b["p_not_retrieved"] > 0
        total = sum(t["probability"] for t in b["top"])
        assert total + b["p_unknown"] + b["p_not_retrieved"] <= 1.0 + 1e-9
        if b["probability"] is not None and a["decision"] == b["decision"]:
            assert b["probability"] <= a["probability"] + 1e-9  # a lower bound: conservative
    assert s_ref.index_info()["entries"] == "references"
    assert s_ref.index_info()["n_entries"] == 160


def test_search_beam_widens_for_million_entry_galleries():
    """Measured: efSearch 128 gives recall@5 0.977 at 1M entries, 256 gives 0.997."""
    from fpattr.index import HNSW_EF_SEARCH, HNSW_EF_SEARCH_LARGE, default_ef_search

    assert default_ef_search(100_000) == HNSW_EF_SEARCH == 128
    assert default_ef_search(1_000_000) == HNSW_EF_SEARCH_LARGE == 256
