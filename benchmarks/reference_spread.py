"""Are a bench's references representative of its queries? And does it matter?

    python benchmarks/reference_spread.py ../shared/data/public-generators --refs 5 \
        --out docs/results/reference_spread.json

`fpattr evaluate` takes the first N files of each model folder (sorted by name) as the
references. When consecutive files share a batch, prompt or class, the references are
closer to each other than to the model's other images, and everything the decision
policy learns from them (held-out genuine scores, set rescaling) is optimistic. This
script measures, with the shipped extractor and the default views:

* per model, the mean cosine between references, between references and queries, and
  between queries (unit embeddings: the coherence of each group);
* for sets of ``--set-size`` images, the genuine set cosine the policy predicts from the
  references (:func:`fpattr.decision.pseudo_queries`) against the one measured on query
  sets of that size, per model;
* the decision quality (:func:`fpattr.evaluation.decisions.decision_quality`, the
  ``evaluate`` protocols) twice: with the sorted split, and with the references drawn at
  random from each folder (a seeded shuffle of the same images).

Nothing is fitted; the public generators are only measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_default import emit_json  # noqa: E402

from fpattr.backbones.resolve import create_backbone
from fpattr.decision import DecisionPolicy, _coherence, pseudo_queries
from fpattr.evaluation.decisions import decision_quality, make_gallery
from fpattr.evaluation.protocol import EvalConfig, discover_bench, embed_images
from fpattr.views import l2_normalize


def _embed(bench: str, refs: int) -> dict[str, np.ndarray]:
    b = discover_bench(bench, refs)
    paths, labels, roles = b.images()
    es = embed_images(paths, [create_backbone("default")], EvalConfig())[0][0]
    ok = es.ok
    return {
        "emb": es.emb[ok].astype(np.float64),
        "labels": np.array(labels, dtype=object)[ok],
        "roles": np.array(roles)[ok],
        "views": es.views[ok],
    }


def _shuffled(d: dict[str, np.ndarray], refs: int, seed: int) -> dict[str, np.ndarray]:
    """The same images with each model's references drawn at random from its folder."""
    rng = np.random.default_rng(seed)
    roles = d["roles"].copy()
    for m in sorted({str(x) for x, r in zip(d["labels"], roles, strict=True) if r != "real"}):
        idx = np.flatnonzero((d["labels"] == m) & (roles != "real"))
        pick = rng.permutation(idx)
        roles[pick[:refs]] = "ref"
        roles[pick[refs:]] = "query"
    return {**d, "roles": roles}


def spread(d: dict[str, np.ndarray], set_size: int, seed: int) -> dict[str, object]:
    """Per-model coherence of references / queries and predicted vs measured set cosines."""
    emb, lab, roles = d["emb"], d["labels"], d["roles"]
    names = sorted({str(x) for x, r in zip(lab, roles, strict=True) if r == "ref"})
    g = make_gallery(emb[roles == "ref"], lab[roles == "ref"], names)
    gn, cents = g.centroids()
    pq = pseudo_queries(g, set_size, seed=seed)
    rng = np.random.default_rng(seed)
    rows = {}
    for a, m in enumerate(gn):
        r = emb[(roles == "ref") & (lab == m)]
        q = emb[(roles == "query") & (lab == m)]
        row: dict[str, float | None] = {
            "ref_ref": round(_coherence(r), 4),
            "ref_query": round(float((r @ q.T).mean()), 4) if len(q) else None,
            "query_query": round(_coherence(q), 4) if len(q) >= 2 else None,
            "predicted_set_cosine": None,
            "measured_set_cosine": None,
        }
        if len(q) >= set_size:
            pred = [s[a] for s, t in pq["known"] if t == a]
            draws = [rng.choice(len(q), set_size, replace=False) for _ in range(20)]
            meas = [float(l2_normalize(q[i].mean(0)) @ cents[a]) for i in draws]
            row["predicted_set_cosine"] = round(float(np.mean(pred)), 4)
            row["measured_set_cosine"] = round(float(np.mean(meas)), 4)
        rows[m] = row

    def mean(key: str) -> float | None:
        vals = [v[key] for v in rows.values() if v[key] is not None]
        return round(float(np.mean(vals)), 4) if vals else None

    keys = ("ref_ref", "ref_query", "query_query")
    return {
        "per_model": rows,
        "mean": {k: mean(k) for k in (*keys, "predicted_set_cosine", "measured_set_cosine")},
    }


def quality(d: dict[str, np.ndarray], seed: int) -> dict[str, object]:
    """Pooled generator-disjoint and in-gallery ECE / FAR / coverage, as evaluate reports."""
    emb, lab, roles = d["emb"], d["labels"], d["roles"]
    lab = np.array([None if r == "real" else x for x, r in zip(lab, roles, strict=True)], object)
    names = sorted({str(x) for x, r in zip(lab, roles, strict=True) if r == "ref"})
    card = create_backbone("default").calibration()

    def policy_for(gal: object, cal: object) -> DecisionPolicy:
        return DecisionPolicy(card, gal, calibration_gallery=cal, seed=seed)

    res = decision_quality(policy_for, emb, lab, roles, names, views=d["views"], seed=seed)
    out: dict[str, object] = {}
    for proto in ("in_gallery", "generator_disjoint"):
        block = res[proto] if proto == "in_gallery" else res[proto]["mean"]
        units = {"image": block["single"], **{f"set of {k}": v for k, v in block["sets"].items()}}
        units["verify pairs"] = block["pairs"]
        out[proto] = {
            u: {
                k: r.get(k)
                for k in ("achieved_far", "coverage", "precision", "ece_pooled", "ece_pooled_floor")
            }
            for u, r in units.items()
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench")
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--set-size", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    d = _embed(a.bench, a.refs)
    shuffled = _shuffled(d, a.refs, a.seed)
    res = {
        "bench": a.bench,
        "refs": a.refs,
        "set_size": a.set_size,
        "sorted_split": {"spread": spread(d, a.set_size, a.seed), "decisions": quality(d, a.seed)},
        "shuffled_split": {
            "spread": spread(shuffled, a.set_size, a.seed),
            "decisions": quality(shuffled, a.seed),
        },
    }
    res["seconds"] = round(time.perf_counter() - t0, 1)
    for split in ("sorted_split", "shuffled_split"):
        m = res[split]["spread"]["mean"]
        print(split, json.dumps(m), file=sys.stderr)
        for u, r in res[split]["decisions"]["generator_disjoint"].items():
            print(f"  generator-disjoint {u:12s} {json.dumps(r)}", file=sys.stderr)
    emit_json(res, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
