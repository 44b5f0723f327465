"""The gallery-centred score space: what is subtracted, when, and that a model left out
of calibration also leaves the centre."""

from __future__ import annotations

import numpy as np
import pytest

from fpattr.calibration import card_scores
from fpattr.decision import DecisionPolicy, pseudo_queries
from fpattr.gallery import Gallery
from fpattr.scorespace import CENTRED_KEY, ScoreSpace, gallery_centre

RAW = {
    "centroid": {"a": 20.0, "b": -16.0, "threshold": 0.9, "target_far": 0.01},
    "pair": {"a": 15.0, "b": -11.0, "threshold": 0.85, "target_far": 0.01},
    "n_views": 4,
}
CENTRED = {
    "centroid": {"a": 8.0, "b": -3.0, "threshold": 0.5, "target_far": 0.01},
    "pair": {"a": 7.0, "b": -2.5, "threshold": 0.45, "target_far": 0.01},
    "n_views": 4,
}
CARD = {**RAW, CENTRED_KEY: CENTRED}


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def gallery(n_models=5, n_refs=6, common=3.0, dim=24, seed=0):
    """Models sharing a large common direction (as every real extractor's fingerprints
    do), each with its own direction and reference noise."""
    rng = np.random.default_rng(seed)
    g = Gallery(backbone={"name": "t", "id": "t", "sha256": "x"})
    shared = _unit(rng.normal(size=dim))
    for k in range(n_models):
        own = _unit(rng.normal(size=dim))
        refs = _unit(common * shared + own + 0.3 * rng.normal(size=(n_refs, dim)))
        g.add(f"m{k}", refs, [{"path": f"{k}/{j}", "sha256": f"{k}-{j}"} for j in range(n_refs)])
    return g, shared, rng


def test_centre_is_the_mean_of_unit_centroids_each_model_weighing_the_same():
    g, _, _ = gallery(n_models=5)
    # a model with many more references must not pull the centre toward it
    g.models["m0"].embeddings = np.concatenate([g.models["m0"].embeddings] * 5)
    cents = [_unit(m.embeddings.astype(np.float64).mean(0)) for m in g.models.values()]
    np.testing.assert_allclose(gallery_centre(g), np.mean(cents, 0), atol=1e-6)


def test_few_models_or_no_centred_card_is_the_raw_space():
    for n in (1, 2, 4):  # two centred centroids are exactly opposite: no centre below 5
        g, _, _ = gallery(n_models=n)
        assert gallery_centre(g) is None and not ScoreSpace.for_gallery(CARD, g).centred
    g2, _, _ = gallery(n_models=5)
    assert not ScoreSpace.for_gallery(RAW, g2).centred  # the backbone did not opt in
    assert not ScoreSpace.for_gallery(None, g2).centred
    sp = ScoreSpace.for_gallery(CARD, g2)
    assert sp.centred and sp.card(CARD) is CENTRED
    assert CENTRED_KEY not in ScoreSpace(None).card(CARD)


def test_projection_removes_the_shared_direction_and_keeps_unit_norm():
    g, shared, rng = gallery()
    sp = ScoreSpace.for_gallery(CARD, g)
    x = g.models["m1"].embeddings
    p = sp.project(x)
    assert p.shape == x.shape and p.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
    assert abs(float(np.mean(p @ shared))) < abs(float(np.mean(x @ shared))) / 3
    one = sp.project(x[0])
    assert one.shape == x[0].shape and np.allclose(one, p[0], atol=1e-6)
    # impostor cosines crowd near the top in the raw space, not in the centred one
    a, b = g.models["m0"].embeddings, g.models["m1"].embeddings
    assert float(np.mean(a @ b.T)) > 0.7
    assert float(np.mean(sp.project(a) @ sp.project(b).T)) < 0.3


def test_without_drops_one_centroid_from_the_centre():
    g, _, _ = gallery(n_models=6)
    sp = ScoreSpace.for_gallery(CARD, g)
    rest = Gallery(backbone=g.backbone, models={k: m for k, m in g.models.items() if k != "m2"})
    c2 = _unit(g.models["m2"].embeddings.astype(np.float64).mean(0))
    np.testing.assert_allclose(sp.without(c2, 6).centre, gallery_centre(rest), atol=1e-5)
    five, _, _ = gallery(n_models=5)
    sp5 = ScoreSpace.for_gallery(CARD, five)
    assert sp5.without(c2, 5) is sp5  # four left have no centred space of their own


def test_policy_scores_in_the_space_and_left_out_models_leave_the_centre():
    g, _, _ = gallery(n_models=6)
    pol = DecisionPolicy(CARD, g)
    assert pol.space.centred and pol.info()["score_space"]["kind"] == "gallery-centred"
    assert pol.card is CENTRED
    q = g.models["m3"].embeddings[0]
    d = pol.attribute(q)
    names, cents = pol.gallery_centroids()
    sims = cents @ pol.project(q)
    assert [t["similarity"] for t in d["top"]] == pytest.approx(sorted(sims, reverse=True)[:3])
    # the unknown rows of m0: scored as a generator outside the gallery of m1..m5 would be
    pq = pseudo_queries(g, 1, space=pol.space, n_models=6)
    rest = Gallery(backbone=g.backbone, models={k: m for k, m in g.models.items() if k != "m0"})
    sp = ScoreSpace(gallery_centre(rest))
    rc = np.stack([_unit(sp.project(m.embeddings).mean(0)) for m in rest.models.values()])
    first = pq["unknown"][0]
    assert first[1] == 0
    np.testing.assert_allclose(first[0], rc @ sp.project(g.models["m0"].embeddings[0]), atol=1e-5)
    # and they differ from what the full gallery's centre gives (the leak this avoids)
    leaky = pseudo_queries(pol.gallery, 1)["unknown"][0][0]
    assert not np.allclose(leaky, first[0], atol=1e-3)


def test_card_scores_centred_separate_better_on_a_crowded_zoo():
    rng = np.random.default_rng(1)
    shared, dim = _unit(rng.normal(size=16)), 16
    emb, labels, which = [], [], []
    for k in range(8):
        own = _unit(rng.normal(size=dim))
        x = _unit(4 * shared + own + 0.4 * rng.normal(size=(10, dim)))
        emb.append(x)
        labels += [f"m{k}"] * 10
        which += list(range(10))
    emb = np.concatenate(emb)
    raw = card_scores(emb, np.array(labels), np.array(which), 5)
    cen = card_scores(emb, np.array(labels), np.array(which), 5, centred=True)

    def gap(s):
        g, i = s["centroid"]
        return (g.mean() - i.mean()) / np.sqrt(0.5 * (g.var() + i.var()))

    assert gap(cen) > gap(raw)
    assert len(cen["pair"][0]) == 8 * 45 and len(cen["pair"][1]) == 80 * 79 // 2 - 8 * 45
