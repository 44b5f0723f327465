"""The clustered threshold's bootstrap, in-bag (shipped) against out-of-bag (tried, not
adopted): the false-accept rate each achieves on generators not enrolled
(docs/benchmarks.md, "Where the false accepts come from").

    python benchmarks/threshold_oob.py runs/realbench --refs 10
    python benchmarks/threshold_oob.py ../shared/data/public-generators --refs 5 --set-size 5

:func:`fpattr.calibration.threshold_at_far_clustered` measures each bootstrap draw's
threshold on every generator, the drawn ones included; the out-of-bag variant measures it
only on the generators the draw left out (Efron, JASA 1983, the leave-one-out bootstrap),
which does not reward a threshold for fitting the generators it was fitted on; the .632
variant weighs it with the apparent rate (Efron & Tibshirani, JASA 1997). All pick
the largest grid level whose mean rate is at most the target. On the generator-disjoint
halves of ``fpattr evaluate`` (10 splits, seed 0) this prints, per variant, the FAR of
the queries of enrolled models against the other enrolled models, of each enrolled model's
queries left out (against a gallery of the rest, calibrated without it) and of the other
half's queries, with the mean expected FAR the fit reports.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from unseen_far import bench_parser, embedded_bench

import fpattr.decision as decision
from fpattr import calibration as C
from fpattr.evaluation.decisions import generator_halves, make_gallery
from fpattr.views import l2_normalize


def threshold_oob(
    impostor: np.ndarray,
    clusters: np.ndarray | None,
    target_far: float,
    *,
    rounds: int = C.CLUSTER_BOOTSTRAP_ROUNDS,
    seed: int = 0,
    oob_weight: float = 1.0,
) -> C.ClusteredThreshold:
    """:func:`fpattr.calibration.threshold_at_far_clustered` with each draw's threshold
    measured on the clusters it left out only (1-D clusters; others: the shipped one).
    ``oob_weight`` 0.632: Efron's .632 estimate, that much of the out-of-bag rate and the
    rest of the apparent one (the full-sample threshold at the level, on every cluster)."""
    s = np.asarray(impostor, np.float64).ravel()
    c = None if clusters is None else np.asarray(clusters)
    if c is None or c.ndim != 1 or np.unique(c).size < 3:
        return C.threshold_at_far_clustered(s, clusters, target_far, rounds=rounds, seed=seed)
    order = np.argsort(-s, kind="stable")
    ranked = s[order]
    plain = C._threshold_sorted(ranked, target_far)
    ids, inv = np.unique(c, return_inverse=True)
    k_all = ids.size
    sizes = np.bincount(inv, minlength=k_all)
    drawn_all = inv[order]
    levels = C.far_levels(target_far)
    per = [np.sort(s[inv == k]) for k in range(k_all)]

    def rate(thr: np.ndarray, clusters: Any) -> np.ndarray:  # each cluster's, summed
        return sum(
            (per[k].size - np.searchsorted(per[k], thr, side="left")) / per[k].size
            for k in clusters
        )

    full = np.array([C._threshold_sorted(ranked, float(a)) for a in levels])
    apparent = rate(full, range(k_all)) / k_all
    rng = np.random.default_rng(seed)
    num, den = np.zeros(levels.size), 0
    for _ in range(int(rounds)):
        count = np.bincount(rng.integers(0, k_all, k_all), minlength=k_all)
        out = np.flatnonzero(count == 0)
        if out.size == 0:
            continue
        allowed = np.maximum(
            0, np.floor((int(count @ sizes) + 1) * levels + 1e-9).astype(np.int64) - 1
        )
        cw = np.cumsum(count[drawn_all])
        j = np.minimum(np.searchsorted(cw, allowed, side="right"), cw.size - 1)
        thr = ranked[j] + np.where(cw[j] > allowed, C.SCORE_TOLERANCE, 0.0)
        num += rate(thr, out)
        den += out.size
    mean = oob_weight * num / max(den, 1) + (1 - oob_weight) * apparent
    ok = np.flatnonzero(mean <= target_far + 1e-12)
    k = int(ok[0]) if ok.size else levels.size - 1
    level = float(levels[k])
    return C.ClusteredThreshold(
        C._threshold_sorted(ranked, level), level, plain, float(mean[k]), bool(ok.size)
    )


def far_on_new_generators(b: dict[str, Any], set_size: int, splits: int) -> dict[str, float]:
    emb, lab, roles = b["emb"], np.asarray(b["labels"], object), b["roles"]
    ref, query = roles == "ref", roles == "query"
    rng = np.random.default_rng(0)

    def policy(sub: list[str]) -> decision.DecisionPolicy:
        m = ref & np.isin(lab, sub)
        return decision.DecisionPolicy(b["card"], make_gallery(emb[m], lab[m], sub), seed=0)

    def units(idx: np.ndarray) -> list[np.ndarray]:
        if set_size == 1:
            return [idx[k : k + 1] for k in range(idx.size)]
        p = rng.permutation(idx)
        return [p[k : k + set_size] for k in range(0, p.size - set_size + 1, set_size)]

    counts = {k: [0, 0] for k in ("enrolled", "left out", "other half")}
    expected = []

    def score(pol: decision.DecisionPolicy, name: str, key: str, drop: str | None) -> None:
        names, cents = pol.gallery_centroids()
        thr = pol.calibration("image-vs-model", set_size=set_size).threshold
        for gi in units(np.flatnonzero(query & (lab == name))):
            s = cents @ l2_normalize(pol.project(emb[gi]).mean(0))
            s = np.array([x for n, x in zip(names, s, strict=True) if n != drop])
            counts[key][0] += int(np.sum(s >= thr))
            counts[key][1] += s.size

    for enrolled, unseen in generator_halves(b["names"], splits, 0):
        pol = policy(enrolled)
        expected.append(
            pol.calibration("image-vs-model", set_size=set_size).details.get(
                "expected_far_new_generator", np.nan
            )
        )
        for n in enrolled:
            score(pol, n, "enrolled", n)
            score(policy([x for x in enrolled if x != n]), n, "left out", None)
        for n in unseen:
            score(pol, n, "other half", None)
    out = {k: a / max(n, 1) for k, (a, n) in counts.items()}
    return {**out, "expected": float(np.nanmean(expected))}


def main() -> None:
    ap: argparse.ArgumentParser = bench_parser(__doc__)
    ap.add_argument("--set-size", type=int, default=1)
    ap.add_argument("--splits", type=int, default=10)
    args = ap.parse_args()
    b = embedded_bench(args.bench, args.refs, args.backbone)
    shipped: Callable[..., C.ClusteredThreshold] = decision.threshold_at_far_clustered
    print(f"{args.bench}, {args.refs} refs, units of {args.set_size}, {args.splits} splits")
    print("variant       FAR enrolled  FAR left out  FAR other half  expected")
    variants = (
        ("in-bag", shipped),
        ("out-of-bag", threshold_oob),
        (".632", partial(threshold_oob, oob_weight=0.632)),
    )
    for name, fn in variants:
        decision.threshold_at_far_clustered = fn  # the policy's one call site
        try:
            r = far_on_new_generators(b, args.set_size, args.splits)
        finally:
            decision.threshold_at_far_clustered = shipped
        print(
            f"{name:<12}  {r['enrolled']:12.4f}  {r['left out']:12.4f}  "
            f"{r['other half']:14.4f}  {r['expected']:8.4f}"
        )


if __name__ == "__main__":
    main()
