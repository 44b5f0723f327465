"""Where the expected calibration error of single images comes from, by kind of answer.

    python benchmarks/decision_breakdown.py runs/realbench --refs 10
    python benchmarks/decision_breakdown.py runs/realbench --refs 10 --disjoint

Replays `fpattr evaluate`'s decision-quality protocols (the same policy, seed and folds:
in-gallery, generator-disjoint and calibration transfer) on one benchmark's single images
and groups every decided row by the answer given (a model named, unknown, ambiguous,
inconclusive leaning to a model or to unknown) and whether its source was enrolled:
how many rows, the mean probability shown and how often the answer was right. A group
whose mean probability is far from its accuracy is where the ECE comes from.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
from unseen_far import bench_parser, embedded_bench

import fpattr.evaluation.decisions as dq
from fpattr.decision import DecisionPolicy


def answer(d: dict[str, Any]) -> str:
    """The kind of answer a decision gives (inconclusive ones by the way they lean)."""
    dec = d["decision"]
    if dec == dq.INCONCLUSIVE:
        return dec + " -> " + ("unknown" if d["leaning"] == dq.UNKNOWN else "a model")
    return "named" if dq.names_a_model(dec) else dec


def _single_rows(
    policy_for: Any, b: dict[str, Any], seed: int, disjoint: bool
) -> list[tuple[str, bool, float, bool, float]]:
    """(answer, source enrolled, probability shown, right, weight) of every decided
    single-image row: every protocol's (weight 1), or with ``disjoint`` the
    generator-disjoint folds' only, each row weighted as that protocol's pooled ECE weighs
    it (known and unknown sources half and half in each fold, folds alike)."""
    rows: list[tuple[str, bool, float, bool]] = []
    add = dq._Rows.add

    def record(self: Any, d: dict[str, Any], truth: str | None) -> None:
        # the row as the protocol scores it (its probability, verdict and source), with
        # the kind of answer beside it
        n = len(self.prob)
        add(self, d, truth)
        if len(self.prob) > n:
            rows.append((answer(d), self.source_known[-1], self.prob[-1], self.correct[-1]))

    dq._Rows.add = record  # type: ignore[method-assign]
    try:
        if not disjoint:
            dq.decision_quality(
                policy_for,
                b["emb"],
                b["labels"],
                b["roles"],
                b["names"],
                views=b["views"],
                n_pairs=2,
                seed=seed,
                set_sizes=(),
            )
            return [(*r, 1.0) for r in rows]
        emb, views = b["emb"], b["views"]
        labels, roles = np.asarray(b["labels"], object), np.asarray(b["roles"])
        is_ref = (roles == "ref") & np.isin(labels, b["names"])
        is_q = (roles == "query") & np.isin(labels, b["names"])
        ref, ref_lab, q, q_lab = emb[is_ref], labels[is_ref], emb[is_q], labels[is_q]
        q_views = None if views is None else views[is_q]
        real = roles == "real"
        out: list[tuple[str, bool, float, bool, float]] = []
        for enrolled, unseen in dq.generator_halves(b["names"], 3, seed):
            rows.clear()
            rs, qs, other = (
                np.isin(ref_lab, enrolled),
                np.isin(q_lab, enrolled),
                np.isin(q_lab, unseen),
            )
            dq.decide_queries(
                policy_for,
                ref[rs],
                ref_lab[rs],
                q[qs],
                q_lab[qs],
                enrolled,
                real_emb=emb[real],
                q_views=None if q_views is None else q_views[qs],
                real_views=None if views is None else views[real],
                calibration_names=None,
                cal_emb=None,
                seed=seed,
                unseen_emb=q[other],
                unseen_lab=q_lab[other],
            )
            known = np.array([r[1] for r in rows], bool)
            w = np.where(known, 0.5 / max(known.sum(), 1), 0.5 / max((~known).sum(), 1))
            out += [(*r, float(wi)) for r, wi in zip(rows, w, strict=True)]
        return out
    finally:
        dq._Rows.add = add  # type: ignore[method-assign]


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument(
        "--disjoint",
        action="store_true",
        help="the generator-disjoint folds only, weighted as their pooled ECE, with the "
        "reliability bins and the answers that fill them",
    )
    args = ap.parse_args()
    b = embedded_bench(args.bench, args.refs, args.backbone)

    def policy_for(gallery: Any, cal_gallery: Any) -> DecisionPolicy:
        return DecisionPolicy(
            b["card"], gallery, target_far=0.01, calibration_gallery=cal_gallery, seed=args.seed
        )

    rows = _single_rows(policy_for, b, args.seed, args.disjoint)
    total = sum(r[4] for r in rows) or 1.0
    groups: dict[tuple[str, bool], list[tuple[float, bool, float]]] = collections.defaultdict(list)
    for kind, known, p, right, w in rows:
        groups[(kind, known)].append((p, right, w))
    print("| answer | source | rows | weight | mean probability shown | right |")
    print("|---|---|---|---|---|---|")
    for (kind, known), v in sorted(groups.items(), key=lambda kv: -sum(x[2] for x in kv[1])):
        a = np.asarray(v, dtype=np.float64)
        src = "enrolled" if known else "not enrolled"
        print(
            f"| {kind} | {src} | {len(v)} | {a[:, 2].sum() / total:.3f} "
            f"| {np.average(a[:, 0], weights=a[:, 2]):.3f} "
            f"| {np.average(a[:, 1], weights=a[:, 2]):.3f} |"
        )
    if not args.disjoint:
        return
    prob = np.array([r[2] for r in rows])
    right = np.array([r[3] for r in rows], np.float64)
    weight = np.array([r[4] for r in rows])
    ece, _ = dq.reliability(prob, right, weight=weight)
    print(f"\npooled ECE {ece} (as evaluate reports it)\n")
    print("| bin | weight | shown | right | commonest answers (source) |")
    print("|---|---|---|---|---|")
    idx = np.clip((prob * 10).astype(int), 0, 9)
    for k in range(10):
        sel = idx == k
        if not sel.any():
            continue
        common = collections.Counter(
            f"{r[0]} ({'enrolled' if r[1] else 'not enrolled'})"
            for r, s in zip(rows, sel, strict=True)
            if s
        ).most_common(3)
        print(
            f"| {k / 10:.1f}-{(k + 1) / 10:.1f} | {weight[sel].sum() / total:.3f} "
            f"| {np.average(prob[sel], weights=weight[sel]):.3f} "
            f"| {np.average(right[sel], weights=weight[sel]):.3f} "
            f"| {', '.join(f'{a} {n}' for a, n in common)} |"
        )


if __name__ == "__main__":
    main()
