"""Reference gap: references that resemble each other more than the queries resemble them."""

from __future__ import annotations

import numpy as np
import pytest

from fpattr.decision import DecisionPolicy
from fpattr.evaluation.decisions import REFERENCE_GAP_WARN, reference_gap


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _bench(batch: bool, n_models: int = 4, seed: int = 0):
    """Per model 6 references and 12 queries around one centre; with ``batch`` the
    references share an extra offset (one figure, one prompt) the queries lack."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(n_models, 32)))
    refs, rl, qs, ql = [], [], [], []
    for k, c in enumerate(centres):
        offset = 0.8 * _unit(rng.normal(size=32)) if batch else 0.0
        refs.append(_unit(c + offset + 0.15 * rng.normal(size=(6, 32))))
        qs.append(
            _unit(c + _unit(rng.normal(size=(12, 32))) * 0.8 + 0.15 * rng.normal(size=(12, 32)))
        )
        rl += [f"m{k}"] * 6
        ql += [f"m{k}"] * 12
    names = [f"m{k}" for k in range(n_models)]
    return (
        np.concatenate(refs),
        np.array(rl, dtype=object),
        np.concatenate(qs),
        np.array(ql, dtype=object),
        names,
    )


def _policy(gallery, cal_gallery):
    return DecisionPolicy(None, gallery, calibration_gallery=cal_gallery)


def test_references_from_one_batch_are_flagged() -> None:
    out = reference_gap(_policy, *_bench(batch=True))
    assert out["warn"] and out["gap"] > 0.2
    assert set(out["per_model"]) == {"m0", "m1", "m2", "m3"}
    for v in out["per_model"].values():  # each model's own figures, gap = refs - queries
        assert v["gap"] == pytest.approx(v["references"] - v["queries"], abs=2e-4)
        assert v["references"] > v["queries"]


def test_references_drawn_like_the_queries_are_not_flagged() -> None:
    rng = np.random.default_rng(1)
    centres = _unit(rng.normal(size=(4, 32)))
    emb = np.concatenate([_unit(c + 0.8 * _unit(rng.normal(size=(18, 32)))) for c in centres])
    lab = np.repeat(np.array([f"m{k}" for k in range(4)], dtype=object), 18)
    is_ref = np.tile(np.arange(18) < 6, 4)
    out = reference_gap(
        _policy, emb[is_ref], lab[is_ref], emb[~is_ref], lab[~is_ref], [f"m{k}" for k in range(4)]
    )
    assert abs(out["gap"]) < REFERENCE_GAP_WARN and not out["warn"]


def test_a_model_without_queries_is_left_out() -> None:
    r, rl, q, ql, names = _bench(batch=False)
    keep = ql != "m3"
    out = reference_gap(_policy, r, rl, q[keep], ql[keep], names)
    assert "m3" not in out["per_model"] and len(out["per_model"]) == 3
