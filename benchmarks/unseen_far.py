"""Which generators not enrolled pass for which enrolled ones (the "FAR unseen" column).

    python benchmarks/unseen_far.py runs/realbench --refs 10 --out docs/results/unseen_far_real.json

The generator-disjoint protocol of ``fpattr evaluate`` (the same seed, splits and policy:
random halves, one half enrolled from its references, the other half's queries unseen):
for every unseen generator, the share of its comparisons with the enrolled models that
reach the threshold in force, the enrolled models it is taken for, and how many of its
queries the policy names (and as which model). Prints a table, writes the figures as
JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

import numpy as np

from fpattr.backbones.resolve import create_backbone
from fpattr.decision import DecisionPolicy, names_a_model
from fpattr.evaluation.decisions import generator_halves, make_gallery
from fpattr.evaluation.protocol import EvalConfig, discover_bench, embed_images


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """The arguments every per-bench diagnostic takes: the bench, --refs, --backbone,
    --seed (the decision-quality protocol's)."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("bench", type=Path)
    ap.add_argument("--refs", type=int, default=10)
    ap.add_argument("--backbone", default="default")
    ap.add_argument("--seed", type=int, default=0)
    return ap


def embedded_bench(bench_dir: Path, refs: int, backbone: str) -> dict[str, Any]:
    """The bench's images embedded once, as ``fpattr evaluate`` embeds them (failed images
    left out): ``emb`` (N, D), ``labels`` (N,) model or None, ``roles`` (N,), ``views``
    (N,) or None, ``names`` (sorted models), ``card`` (the backbone's calibration)."""
    bench = discover_bench(bench_dir, refs)
    paths, labels, roles = bench.images()
    bb = create_backbone(backbone)
    es = embed_images(paths, [bb], EvalConfig(refs=refs))[0][0]
    ok = es.ok
    return {
        "emb": es.emb[ok],
        "labels": np.asarray(labels, dtype=object)[ok],
        "roles": np.asarray(roles)[ok],
        "views": None if es.views is None else es.views[ok],
        "names": sorted(m.name for m in bench.models),
        "card": bb.calibration(),
    }


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    b = embedded_bench(args.bench, args.refs, args.backbone)
    emb, lab, rol, names, card = b["emb"], b["labels"], b["roles"], b["names"], b["card"]

    accepted: collections.Counter[tuple[str, str]] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    named: collections.Counter[tuple[str, str]] = collections.Counter()
    queries: collections.Counter[str] = collections.Counter()
    for enrolled, unseen in generator_halves(names, args.splits, args.seed):
        rs = (rol == "ref") & np.isin(lab, enrolled)
        pol = DecisionPolicy(card, make_gallery(emb[rs], lab[rs], enrolled), seed=args.seed)
        gnames, cents = pol.gallery_centroids()
        thr = pol.calibration().threshold
        for u in unseen:
            sims = pol.project(emb[(rol == "query") & (lab == u)]) @ cents.T
            total[u] += sims.size
            for k, n in enumerate(gnames):
                accepted[(u, n)] += int(np.sum(sims[:, k] >= thr))
            for row in sims:  # the decision attribute would give each query
                queries[u] += 1
                d = pol.decide_scores(row, gnames)
                if names_a_model(d["decision"]):
                    named[(u, d["decision"])] += 1
    rows = []
    for u in names:
        hits = {n: c for (uu, n), c in accepted.items() if uu == u and c}
        names_given = {n: c for (uu, n), c in named.items() if uu == u and c}
        rows.append(
            {
                "generator": u,
                "comparisons": total[u],
                "far_unseen": round(sum(hits.values()) / max(total[u], 1), 4),
                "taken_for": dict(sorted(hits.items(), key=lambda kv: -kv[1])),
                "queries": queries[u],
                "named": sum(names_given.values()),
                "named_as": dict(sorted(names_given.items(), key=lambda kv: -kv[1])),
            }
        )
    for r in sorted(rows, key=lambda r: -r["far_unseen"]):
        top = ", ".join(f"{n} {c}" for n, c in list(r["taken_for"].items())[:3])
        as_ = ", ".join(f"{n} {c}" for n, c in list(r["named_as"].items())[:3]) or "-"
        print(
            f"{r['generator']:30s} {r['far_unseen']:.3f}  {top}  | named {r['named']}/"
            f"{r['queries']}: {as_}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "command": "python benchmarks/unseen_far.py",
            "bench": str(args.bench),
            "refs": args.refs,
            "splits": args.splits,
            "seed": args.seed,
            "rows": rows,
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
