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

import argparse
import collections
from pathlib import Path
from typing import Any

import numpy as np

import fpattr.evaluation.decisions as dq
from fpattr.backbones.resolve import create_backbone
from fpattr.decision import DecisionPolicy
from fpattr.evaluation.protocol import EvalConfig, discover_bench, embed_images


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("bench", type=Path)
    ap.add_argument("--refs", type=int, default=10)
    ap.add_argument("--backbone", default="default")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    bench = discover_bench(args.bench, args.refs)
    paths, labels, roles = bench.images()
    bb = create_backbone(args.backbone)
    es = embed_images(paths, [bb], EvalConfig(refs=args.refs))[0][0]
    ok = es.ok
    lab = np.asarray(labels, dtype=object)[ok]
    names = sorted(m.name for m in bench.models)
    card = bb.calibration()

    rows: list[tuple[str, bool, float, bool]] = []
    add = dq._Rows.add

    def record(self: Any, d: dict[str, Any], truth: str | None) -> None:
        dec = d["decision"]
        if dec is not None and dec != dq.INSUFFICIENT and d["probability"] is not None:
            kind = "named" if dq.names_a_model(dec) else dec
            if dec == dq.INCONCLUSIVE:
                ok = d["leaning"] == (dq.UNKNOWN if truth is None else truth)
                kind += " -> " + ("unknown" if d["leaning"] == dq.UNKNOWN else "a model")
            elif truth is None:
                ok = dec == dq.UNKNOWN
            elif dec not in (dq.UNKNOWN, dq.AMBIGUOUS):
                ok = dec == truth
            else:
                ok = dec == dq.AMBIGUOUS and truth in d["candidates"]
            rows.append((kind, truth is not None, float(d["probability"]), bool(ok)))
        add(self, d, truth)

    dq._Rows.add = record  # type: ignore[method-assign]

    def policy_for(gallery: Any, cal_gallery: Any) -> DecisionPolicy:
        return DecisionPolicy(
            card, gallery, target_far=0.01, calibration_gallery=cal_gallery, seed=args.seed
        )

    dq.decision_quality(
        policy_for,
        es.emb[ok],
        lab,
        np.asarray(roles)[ok],
        names,
        views=None if es.views is None else es.views[ok],
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
