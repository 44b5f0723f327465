"""Where the expected calibration error of single images comes from, by kind of answer.

    python benchmarks/decision_breakdown.py runs/realbench --refs 10

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


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    b = embedded_bench(args.bench, args.refs, args.backbone)

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

    def policy_for(gallery: Any, cal_gallery: Any) -> DecisionPolicy:
        return DecisionPolicy(
            b["card"], gallery, target_far=0.01, calibration_gallery=cal_gallery, seed=args.seed
        )

    dq.decision_quality(
        policy_for,
        b["emb"],
        b["labels"],
        b["roles"],
        b["names"],
        views=b["views"],
        n_pairs=2,
        seed=args.seed,
        set_sizes=(),
    )
    groups: dict[tuple[str, bool], list[tuple[float, bool]]] = collections.defaultdict(list)
    for kind, known, p, right in rows:
        groups[(kind, known)].append((p, right))
    print("| answer | source | rows | mean probability shown | right |")
    print("|---|---|---|---|---|")
    for (kind, known), v in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        a = np.asarray(v, dtype=np.float64)
        src = "enrolled" if known else "not enrolled"
        print(f"| {kind} | {src} | {len(v)} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} |")


if __name__ == "__main__":
    main()
