"""ECE on the generator-disjoint protocol: pooled over folds, against its noise floor."""

from __future__ import annotations

import numpy as np

from fpattr.evaluation.decisions import _pool_rows, _strip_rows, ece_floor, reliability


def test_floor_of_a_calibrated_predictor_shrinks_with_rows() -> None:
    rng = np.random.default_rng(0)
    small = rng.uniform(0.5, 1.0, 50)
    large = rng.uniform(0.5, 1.0, 5000)
    f_small = ece_floor(small, np.ones(small.size))
    f_large = ece_floor(large, np.ones(large.size))
    assert f_large < 0.02 < f_small  # 50 rows cannot measure calibration to 0.02
    assert ece_floor(np.zeros(0), np.zeros(0)) is None


def test_pooling_weighs_folds_equally_and_matches_a_single_fold() -> None:
    p = np.array([0.9, 0.9, 0.6, 0.6])
    c = np.array([True, True, False, True])
    w = np.full(4, 0.25)
    one = _pool_rows([{"_rows": (p, c, w)}])
    assert one["ece_pooled"] == reliability(p, c, weight=w)[0]
    # a fold of 4 rows and a fold of 400 rows weigh the same in the pooled reliability
    big = (np.full(400, 0.9), np.ones(400, bool), np.full(400, 1 / 400))
    pooled = _pool_rows([{"_rows": (p, c, w)}, {"_rows": big}])
    # bin 0.9: fold A (weight 0.5 * 0.5) right, fold B (0.5) right -> |1 - 0.9| = 0.1 over 0.75;
    # bin 0.6: fold A's two rows (0.25 weight) half right -> |0.5 - 0.6| = 0.1
    assert abs(pooled["ece_pooled"] - 0.1) < 1e-9
    assert _pool_rows([])["ece_pooled"] is None


def test_private_rows_never_reach_the_output() -> None:
    tree = {"a": {"_rows": (1, 2, 3), "ece": 0.1}, "b": [{"_rows": 0, "x": 1}]}
    assert _strip_rows(tree) == {"a": {"ece": 0.1}, "b": [{"x": 1}]}


def test_pair_coverage_counts_genuine_pairs_answered_same_only() -> None:
    # a policy that answers "same" to every pair: coverage 1 (every genuine pair), precision
    # the genuine share, FAR 1; it used to count the impostor "same" answers in coverage too
    from fpattr.evaluation.decisions import decide_pairs

    class Always:
        def project(self, x):  # the raw space
            return x

        def verify(self, s: float, *, views=None):
            return {"decision": "same", "probability": 0.9, "leaning": None, "threshold": -1.0}

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lab = np.repeat(np.array(["a", "b", "c", "d"]), 10)
    r = decide_pairs(Always(), emb, lab, 200, seed=0)
    assert r["coverage"] == 1.0 and r["achieved_far"] == 1.0
    assert 0.3 < r["precision"] < 0.7  # balanced pairs


def test_far_counts_every_impostor_comparison_not_only_the_enrolled_ones() -> None:
    # a query of a generator that is not enrolled, scoring above the threshold with an
    # enrolled model, is a false accept as much as a known query matching another model;
    # the achieved FAR used to count only the second kind
    from fpattr.evaluation.decisions import _Rows

    def dec(name: str) -> dict:
        return {
            "decision": name,
            "probability": 0.7,
            "threshold": 0.5,
            "leaning": None,
            "candidates": [],
        }

    rows = _Rows()
    rows.known_row(dec("a"), "a", np.array([0.9, 0.2, 0.1]), ["a", "b", "c"])  # 0 of 2
    rows.unknown_row(dec("b"), rows.unseen, np.array([0.1, 0.6, 0.55]))  # 2 of 3
    rows.unknown_row(dec("unknown"), rows.real, np.array([0.1, 0.2, 0.3]))  # 0 of 3
    s = rows.summary()
    assert s["far_enrolled"] == 0.0
    assert s["far_unseen"] == round(2 / 3, 4)
    assert s["far_real"] == 0.0
    assert s["achieved_far"] == round(2 / 8, 4)
    assert s["n_impostor_comparisons"] == 8


def test_look_alikes_sum_over_folds_and_name_the_commonest_model() -> None:
    from fpattr.evaluation.decisions import look_alikes

    fold_a = {
        "_look": {
            "g1": {
                "queries": 4,
                "named": 2,
                "named_as": {"m1": 2},
                "accepted": 3,
                "comparisons": 12,
            }
        }
    }
    fold_b = {
        "_look": {
            "g1": {
                "queries": 6,
                "named": 3,
                "named_as": {"m2": 1, "m1": 2},
                "accepted": 1,
                "comparisons": 18,
            },
            "g2": {"queries": 10, "named": 0, "named_as": {}, "accepted": 0, "comparisons": 30},
        }
    }
    rows = look_alikes([fold_a, fold_b, {"single": 1}])
    assert rows == [
        {
            "generator": "g1",
            "queries": 10,
            "named_rate": 0.5,
            "named_as": "m1",
            "named_as_share": 0.8,
            "far": round(4 / 30, 4),
        },
        {
            "generator": "g2",
            "queries": 10,
            "named_rate": 0.0,
            "named_as": None,
            "named_as_share": None,
            "far": 0.0,
        },
    ]
    assert _strip_rows({"x": fold_b}) == {"x": {}}


def test_a_twin_not_enrolled_passes_for_its_twin() -> None:
    # six generators in 16-D: "a2" copies "a"'s fingerprint (another seed of one design),
    # the others are far apart. Left out, a2's queries are named as "a", and the
    # generators with no twin are not named
    from fpattr.decision import DecisionPolicy
    from fpattr.evaluation.decisions import decision_quality

    rng = np.random.default_rng(0)
    dirs = np.linalg.qr(rng.normal(size=(16, 16)))[0][:5]
    centre = {"a": dirs[0], "a2": dirs[0], "b": dirs[1], "c": dirs[2], "d": dirs[3], "e": dirs[4]}
    emb, lab, roles = [], [], []
    for name, c in centre.items():
        for role, n in (("ref", 6), ("query", 10)):
            x = c + 0.15 * rng.normal(size=(n, 16))
            emb.append(x / np.linalg.norm(x, axis=1, keepdims=True))
            lab += [name] * n
            roles += [role] * n
    r = decision_quality(
        lambda g, cal: DecisionPolicy(None, g, calibration_gallery=cal, seed=0),
        np.concatenate(emb),
        np.asarray(lab, object),
        np.asarray(roles),
        list(centre),
        set_sizes=(),
        splits=3,
        n_pairs=50,
    )
    rows = {x["generator"]: x for x in r["generator_disjoint"]["mean"]["single"]["look_alikes"]}
    assert set(rows) == set(centre)
    assert rows["a2"]["named_as"] == "a" and rows["a"]["named_as"] == "a2"
    assert rows["a2"]["named_rate"] > 0.3 and rows["a2"]["far"] > 0.05
    for lone in "bcde":
        assert rows[lone]["named_rate"] == 0.0
    # every unseen query is counted once per fold that left its generator out
    gd = r["generator_disjoint"]
    assert sum(x["queries"] for x in rows.values()) == sum(
        f["single"]["n_unseen"] for f in gd["folds"]
    )
    top = r["generator_disjoint"]["mean"]["single"]["look_alikes"][0]["generator"]
    assert top in ("a", "a2")
    ig = {x["generator"]: x for x in r["in_gallery"]["single"]["look_alikes"]}
    assert ig["a2"]["named_as"] == "a"


def test_the_table_names_the_look_alikes() -> None:
    from fpattr.evaluation.report import LOOK_ALIKES_SHOWN, look_alike_phrase

    rows = [
        {
            "generator": f"g{k}",
            "queries": 10,
            "named_rate": 0.5 - k / 100,
            "named_as": "m",
            "named_as_share": 1.0,
            "far": 0.1234,
        }
        for k in range(LOOK_ALIKES_SHOWN + 2)
    ]
    rows.append({**rows[0], "generator": "never", "named_rate": 0.0, "named_as": None})
    run = {"decisions": {"protocols": {"generator_disjoint": {"mean": {"single": {}}}}}}
    assert look_alike_phrase(run) == ""
    run["decisions"]["protocols"]["generator_disjoint"]["mean"]["single"]["look_alikes"] = rows
    text = look_alike_phrase(run)
    assert text.startswith("generators not enrolled that pass for enrolled ones")
    assert "g0 named in 50.0% of its queries (100% as m), FAR 12.34%" in text
    assert "never" not in text and f"g{LOOK_ALIKES_SHOWN}" not in text
    assert text.endswith("; 2 more in the JSON")


def test_reliability_bins_carry_their_weight() -> None:
    # the docstring promised a "weight" per bin that the table did not have (break-it 27)
    p = np.array([0.95, 0.95, 0.55, 0.55])
    c = np.array([True, False, True, True])
    ece, table = reliability(p, c, weight=np.array([3.0, 1.0, 2.0, 2.0]))
    assert [b["weight"] for b in table] == [0.5, 0.5]
    assert [b["n"] for b in table] == [2, 2]
    # bin 0.5-0.6: right twice (weight 0.5, gap 0.45); bin 0.9-1.0: 3/4 right (gap 0.2)
    assert ece == round(0.5 * 0.45 + 0.5 * 0.2, 4)
