"""Metric functions on hand-made cases, bench discovery, transforms, embedding parity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fpattr.backbones.resolve import create_backbone
from fpattr.errors import UsageError
from fpattr.evaluation import metrics
from fpattr.evaluation.protocol import (
    _LOOSE_IMAGE,
    EvalConfig,
    Transform,
    discover_bench,
    embed_images,
    evaluate,
)
from fpattr.pipeline import Embedder


def test_auroc_perfect_and_chance():
    assert metrics.roc_auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert metrics.roc_auc(np.array([0.1, 0.2]), np.array([0.9, 0.8])) == 0.0
    same = np.array([0.3, 0.5, 0.7])
    assert metrics.roc_auc(same, same) == pytest.approx(0.5)
    assert np.isnan(metrics.roc_auc(np.array([]), same))


def test_oscr_perfect_and_wrong():
    known, unknown = np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2])
    assert metrics.oscr(known, np.ones(3, bool), unknown) == pytest.approx(1.0)
    assert metrics.oscr(known, np.zeros(3, bool), unknown) == pytest.approx(0.0)
    half = metrics.oscr(known[:2], np.array([True, False]), unknown)
    assert half == pytest.approx(0.5)


def test_lomo_fold_count():
    assert metrics.lomo_folds(["a"]) == []
    folds = metrics.lomo_folds(["a", "b", "c"])
    assert [h for h, _ in folds] == ["a", "b", "c"]
    assert all(h not in kept and len(kept) == 2 for h, kept in folds)


def _separable(n_models: int = 3, per: int = 4, dim: int = 8, seed: int = 0):
    """Models on orthogonal axes plus small noise: every method must be perfect."""
    rng = np.random.default_rng(seed)
    emb, lab = [], []
    for m in range(n_models):
        x = np.zeros((per, dim))
        x[:, m] = 1.0
        x += rng.normal(0, 0.01, x.shape)
        emb.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        lab += [f"m{m}"] * per
    return np.concatenate(emb), np.asarray(lab, dtype=object)


def test_open_set_lomo_on_separable_models():
    ref, ref_lab = _separable(seed=1)
    q, q_lab = _separable(seed=2)
    real = np.zeros((2, 8))
    real[:, -1] = 1.0  # on an axis no model uses
    out = metrics.open_set_lomo(ref, ref_lab, q, q_lab, real)
    assert out["n_folds"] == 3 and len(out["per_fold"]) == 3
    assert out["auroc"] == pytest.approx(1.0) and out["oscr"] == pytest.approx(1.0)
    assert all(f["n_known"] == 8 and f["n_unknown"] == 4 + 2 for f in out["per_fold"])


def test_centroids_and_pair_scores():
    emb, lab = _separable(per=5)
    cents = metrics.centroids(emb, lab, ["m0", "m1", "m2"])
    assert np.allclose(np.linalg.norm(cents, axis=1), 1.0)
    g1, i1 = metrics.pair_scores(emb, lab, 100, seed=3)
    g2, i2 = metrics.pair_scores(emb, lab, 100, seed=3)
    assert g1.size == i1.size == 50 and np.array_equal(g1, g2) and np.array_equal(i1, i2)
    assert g1.min() > i1.max()  # separable: genuine pairs always score higher


def test_attribution_metrics_unchanged_contract():
    ref, ref_lab = _separable(seed=1)
    q, q_lab = _separable(seed=2)
    out = metrics.attribution_metrics(ref, ref_lab, q, q_lab, n_pairs=200)
    # 200 asked, capped at the 12 queries' 66 distinct pairs
    assert out["top1"] == 1.0 and out["roc_auc"] == 1.0 and out["n_pairs"] == 66
    assert set(out) == {
        "top1",
        "macro_f1",
        "roc_auc",
        "eer",
        "tar_at_far_1e-2",
        "n_models",
        "n_queries",
        "n_pairs",
    }


def test_discover_bench_split_and_skips(bench: Path):
    (bench / "loose.png").write_bytes((bench / "nearest" / "000.png").read_bytes())
    b = discover_bench(bench, 3)
    assert [m.name for m in b.models] == ["bilinear", "checker-a", "checker-b", "nearest"]
    near = b.models[-1]
    assert [p.name for p in near.refs] == ["000.png", "001.png", "002.png"]
    assert len(near.queries) == 5 and len(b.real) == 6
    assert [s["model"] for s in b.skipped] == ["tiny"] and "fewer than 4" in b.skipped[0]["reason"]
    assert b.ignored_files == [{"path": "loose.png", "reason": _LOOSE_IMAGE}]
    assert [s["model"] for s in discover_bench(bench, 3, min_queries=6).skipped] == [
        "bilinear",
        "checker-a",
        "checker-b",
        "nearest",
        "tiny",
    ]
    with pytest.raises(UsageError):
        discover_bench(bench / "missing", 3)


def test_discover_bench_decides_images_by_content_and_names_every_file_left_out(bench: Path):
    # break-it: PNGs without a suffix were not counted (the folder was skipped as too
    # small) and a text file vanished, while `gallery add` enrols the same files
    near = bench / "nearest"
    for f in sorted(near.glob("*.png"))[4:]:
        f.rename(f.with_suffix(""))
    (near / "notes.txt").write_text("analyst notes")
    (near / "zz_notes").write_text("no suffix either")
    (near / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (bench / "README").write_text("bench notes")
    b = discover_bench(bench, 3)
    m = next(m for m in b.models if m.name == "nearest")
    names = [p.name for p in m.refs + m.queries]
    assert names == ["000.png", "001.png", "002.png", "003.png", "004", "005", "006", "007"]
    assert [p.name for p in m.refs] == ["000.png", "001.png", "002.png"]  # sorted by name
    assert b.ignored_files == [
        {"path": "README", "reason": "not an image by its content: text"},
        {"path": str(Path("nearest") / ".DS_Store"), "reason": "hidden (name starts with '.')"},
        {"path": str(Path("nearest") / "notes.txt"), "reason": "not an image by its content: text"},
        {"path": str(Path("nearest") / "zz_notes"), "reason": "not an image by its content: text"},
    ]
    assert b.info()["ignored_files"] == b.ignored_files


def test_random_reference_choice_is_seeded_per_model_and_keeps_every_file(bench: Path):
    first = {m.name: m for m in discover_bench(bench, 3).models}
    a = {m.name: m for m in discover_bench(bench, 3, ref_choice="random", seed=1).models}
    again = {m.name: m for m in discover_bench(bench, 3, ref_choice="random", seed=1).models}
    other = {m.name: m for m in discover_bench(bench, 3, ref_choice="random", seed=2).models}
    for name, m in a.items():
        assert len(m.refs) == 3 and not set(m.refs) & set(m.queries)
        assert sorted(m.refs + m.queries) == sorted(first[name].refs + first[name].queries)
        assert m.refs == sorted(m.refs) and m.queries == sorted(m.queries)
        assert m.refs == again[name].refs  # reproducible from the seed
    assert any(a[n].refs != first[n].refs for n in a)  # 8 files: C(8, 3) = 56 draws each
    assert any(a[n].refs != other[n].refs for n in a)
    # a model's draw does not depend on the other folders of the bench
    shutil.rmtree(bench / "bilinear")
    fewer = {m.name: m for m in discover_bench(bench, 3, ref_choice="random", seed=1).models}
    assert all(fewer[n].refs == a[n].refs for n in fewer)
    with pytest.raises(UsageError, match="--ref-choice"):
        discover_bench(bench, 3, ref_choice="last")


def test_transform():
    rng = np.random.default_rng(0)
    px = rng.random((40, 60, 3)).astype(np.float32)
    assert Transform()(px) is px and not Transform().active
    assert Transform(resize=0.5)(px).shape == (20, 30, 3)
    assert Transform(resize=0.5, crop=16)(px).shape == (16, 16, 3)
    j = Transform(jpeg=50)(px)
    assert j.shape == px.shape and j.dtype == np.float32 and 0.01 < np.abs(j - px).mean() < 0.5
    with pytest.raises(ValueError, match="smaller than --crop"):
        Transform(crop=64)(px)
    with pytest.raises(UsageError):
        Transform(jpeg=0)


def test_embeddings_match_the_pipeline_embedder(bench_master: Path):
    """The evaluate loop (with its transform hook) pools exactly like fpattr.pipeline."""
    paths = sorted((bench_master / "checker-a").glob("*.png"))[:5]
    bb = create_backbone("spectrum")
    (es,), _ = embed_images(paths, [bb], EvalConfig(batch_size=3))
    ref = np.stack([e.embedding for e in Embedder(bb).embed_paths(paths)])
    assert es.ok.all() and np.allclose(es.emb, ref, atol=1e-6)


def test_queries_only_degradation_leaves_the_references_clean(bench_master: Path):
    """--degrade-queries-only: the paths given as clean embed as in a clean run, the others
    as in a degraded one (refs enrolled clean, queries met as processed copies)."""
    paths = sorted((bench_master / "checker-a").glob("*.png"))[:4]
    bb = create_backbone("spectrum")
    cfg = EvalConfig(transform=Transform(resize=0.5, queries_only=True))
    (mixed,), _ = embed_images(paths, [bb], cfg, clean=paths[:2])
    (clean,), _ = embed_images(paths, [bb], EvalConfig())
    (degraded,), _ = embed_images(paths, [bb], EvalConfig(transform=Transform(resize=0.5)))
    assert np.array_equal(mixed.emb[:2], clean.emb[:2])
    assert np.array_equal(mixed.emb[2:], degraded.emb[2:])
    assert not np.allclose(clean.emb[2:], degraded.emb[2:], atol=1e-3)
    assert cfg.transform.to_dict()["applied_to"] == "queries"
    assert Transform(jpeg=90).to_dict()["applied_to"] == "every image"
    with pytest.raises(UsageError, match="needs --resize, --crop or --jpeg"):
        Transform(queries_only=True)


def test_evaluate_needs_two_models(bench: Path):
    b = discover_bench(bench, 3)
    b.models = b.models[:1]
    with pytest.raises(UsageError, match="need >= 2"):
        evaluate(b, [create_backbone("spectrum")], EvalConfig(refs=3))
