"""The decision policy: one place for calibration, posteriors and decisions."""

from __future__ import annotations

import numpy as np
import pytest

from fpattr.decision import (
    AMBIGUOUS,
    INSUFFICIENT,
    UNKNOWN,
    DecisionPolicy,
    ScoreModel,
    fit_platt,
    pseudo_pairs,
    pseudo_queries,
)
from fpattr.gallery import Gallery

CARD = {
    "centroid": {"a": 20.0, "b": -16.0, "threshold": 0.9, "target_far": 0.01},
    "pair": {"a": 15.0, "b": -11.0, "threshold": 0.85, "target_far": 0.01},
    "n_views": 4,
    "by_views": {"1": {"centroid": {"a": 18.0, "b": -13.0, "threshold": 0.8, "target_far": 0.01}}},
}


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_gallery(n_models=6, n_refs=6, spread=0.5, dim=32, seed=0):
    """Models as directions in embedding space; references scattered around them."""
    rng = np.random.default_rng(seed)
    g = Gallery(backbone={"name": "t", "id": "t", "sha256": "x"})
    centres = _unit(rng.normal(size=(n_models, dim)))
    for k in range(n_models):
        refs = _unit(centres[k] + spread * rng.normal(size=(n_refs, dim)) / np.sqrt(dim))
        g.add(
            f"m{k}", refs, [{"path": f"m{k}/{j}.png", "sha256": f"{k}-{j}"} for j in range(n_refs)]
        )
    return g, centres, rng


def test_score_model_is_monotone_and_separates():
    rng = np.random.default_rng(0)
    g = np.clip(rng.normal(0.85, 0.05, 200), -1, 0.999)
    i = np.clip(rng.normal(0.5, 0.15, 2000), -1, 0.999)
    m = ScoreModel.fit(g, i)
    s = np.linspace(-1, 1, 401)
    llr = m.llr(s)
    assert np.all(np.diff(llr) >= -1e-12)
    assert m.llr(0.9) > 0 > m.llr(0.5)


def test_posterior_sums_to_one_and_names_the_clear_winner():
    g, centres, _ = make_gallery(spread=0.3)
    pol = DecisionPolicy(CARD, g)
    d = pol.attribute(centres[2].astype(np.float32), top_k=6)
    assert d["decision"] == "m2"
    assert abs(sum(t["probability"] for t in d["top"]) + d["p_unknown"] - 1) < 1e-9
    assert d["probability"] == d["top"][0]["probability"] >= 0.5
    assert d["threshold"] is not None and d["target_far"] == 0.01
    assert d["calibration"]["source"] == "gallery+model-card"


def test_below_threshold_is_unknown_with_the_probability_of_unknown():
    g, centres, rng = make_gallery(spread=0.3)
    pol = DecisionPolicy(CARD, g)
    stranger = _unit(rng.normal(size=centres.shape[1])).astype(np.float32)
    d = pol.attribute(stranger, top_k=6)
    assert d["decision"] == UNKNOWN
    assert d["probability"] == d["p_unknown"] and d["probability"] > 0.5
    # every enrolled model's posterior stays below the one stated for "unknown"
    assert max(t["probability"] for t in d["top"]) < d["probability"]


def test_near_tie_is_ambiguous_with_the_probability_of_the_set():
    g, centres, _ = make_gallery(n_models=4, spread=0.3)
    # enrol a twin of m0 under another name: its queries cannot be told apart
    g.add(
        "twin",
        g.models["m0"].embeddings[::-1].copy(),
        [{"path": "t", "sha256": str(k)} for k in range(6)],
    )
    pol = DecisionPolicy(CARD, g)
    d = pol.attribute(centres[0].astype(np.float32), top_k=5)
    assert d["decision"] == AMBIGUOUS
    assert set(d["candidates"]) == {"m0", "twin"}
    by = {t["model"]: t["probability"] for t in d["top"]}
    assert d["probability"] == pytest.approx(by["m0"] + by["twin"])


def test_flat_input_is_insufficient_signal_never_a_match():
    g, centres, _ = make_gallery()
    pol = DecisionPolicy(CARD, g)
    d = pol.attribute(centres[0].astype(np.float32), flat=True)
    assert d["decision"] == INSUFFICIENT and d["probability"] is None
    v = pol.verify(1.0, flat=True)
    assert v["decision"] == INSUFFICIENT and v["probability"] is None


def test_target_far_moves_the_threshold_and_is_reported():
    g, _, _ = make_gallery(n_models=8, n_refs=8)
    strict = DecisionPolicy(None, g, target_far=0.001).calibration()
    loose = DecisionPolicy(None, g, target_far=0.2).calibration()
    assert strict.threshold > loose.threshold
    assert strict.target_far == 0.001 and loose.target_far == 0.2
    assert loose.achieved_far == pytest.approx(0.2, abs=0.05)


def test_user_threshold_acts_and_says_it_was_fitted_for_no_far():
    g, centres, _ = make_gallery()
    pol = DecisionPolicy(CARD, g, threshold=0.999)
    cal = pol.calibration()
    assert cal.threshold == 0.999 and cal.target_far is None and cal.source == "user-threshold"
    assert "accepts" in cal.why
    assert pol.attribute(centres[0].astype(np.float32))["decision"] == UNKNOWN
    assert pol.verify(0.99)["threshold"] == 0.999


def test_card_alone_when_the_gallery_cannot_calibrate_and_by_view_count():
    g, centres, _ = make_gallery(n_models=1)
    pol = DecisionPolicy(CARD, g)
    assert pol.calibration().source == "model-card" and pol.calibration().threshold == 0.9
    one = pol.calibration(views=1)
    assert one.threshold == 0.8 and one.details["card_views"] == 1
    assert pol.calibration(views=9).threshold == 0.9
    assert DecisionPolicy(None, g).calibration() is None
    # --target-far cannot act on the card alone: said, not silent
    other = DecisionPolicy(CARD, g, target_far=0.05).calibration()
    assert other.target_far == 0.01 and any("0.05" in n for n in other.details["notes"])


def test_gallery_weight_grows_with_references():
    few = DecisionPolicy(CARD, make_gallery(n_refs=2)[0]).calibration()
    many = DecisionPolicy(CARD, make_gallery(n_refs=30)[0]).calibration()
    assert 0 < few.gallery_weight < many.gallery_weight < 1


def test_set_calibration_differs_from_single_image():
    g, _, _ = make_gallery(n_refs=10)
    pol = DecisionPolicy(CARD, g)
    single, five = pol.calibration(), pol.calibration(set_size=5)
    assert five.comparison == "set-vs-model" and five.set_size == 5
    assert five.threshold != single.threshold


def test_verify_probability_belongs_to_the_decision():
    g, _, _ = make_gallery(n_refs=8)
    pol = DecisionPolicy(CARD, g)
    for s in np.linspace(-0.5, 1.0, 31):
        d = pol.verify(float(s))
        assert d["probability"] >= 0.5
        if d["decision"] == "same":
            assert d["p_same"] == d["probability"] and s >= d["threshold"]
        elif d["decision"] == "different":
            assert d["p_same"] == pytest.approx(1 - d["probability"]) and s < d["threshold"]
        else:
            assert d["decision"] == "inconclusive" and d["leaning"] in ("same", "different")


def test_pseudo_queries_leave_the_query_out_of_its_centroid():
    g, _, _ = make_gallery(n_models=3, n_refs=4)
    pq = pseudo_queries(g, 1)
    assert len(pq["known"]) == 12 and len(pq["unknown"]) == 12
    sims, t = pq["known"][0]
    e = g.models["m0"].embeddings.astype(np.float64)
    rest = _unit(e[1:].mean(0))
    assert t == 0 and sims[0] == pytest.approx(float(_unit(e[0]) @ rest))
    assert pq["unknown"][0][0].shape == (2,)
    pairs = pseudo_pairs(g, 1, 1)
    assert pairs["genuine"].size == 3 * 6 and pairs["impostor"].size == 3 * 16


def test_platt_shrinks_to_identity_with_few_rows():
    a, b = fit_platt(np.array([0.9, 0.9]), np.array([0, 0]), np.ones(2))
    assert 0.5 < a <= 1.0 and b < 0  # nudged, not overturned
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1, 4000)
    ok = rng.uniform(size=4000) < 0.5  # always 50 %: the map must flatten p
    a, b = fit_platt(p, ok, np.ones(4000))
    assert a < 0.2
