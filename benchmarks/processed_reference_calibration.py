"""Processed queries calibrated on processed references: the experiment behind the next step.

    python benchmarks/processed_reference_calibration.py ../shared/data/public-generators \
        --refs 5 --out docs/results/processed_reference_calibration.json

A query that was down-scaled or re-encoded meets references that were not; the policy's
pseudo-queries are made of the clean references, so it calibrates for clean queries and
overstates its certainty on processed ones (docs/benchmarks.md, "Processed queries against
clean references"). Here, per processing (x0.5 bicubic, JPEG 75), the bench is embedded
three times with the shipped extractor (clean; queries processed; everything processed,
for the references' processed copies), and the processed queries are decided against the
clean references under the generator-disjoint protocol of ``fpattr evaluate``:

* ``shipped``: the policy as ``attribute`` uses it today;
* ``processed_references``: the same policy with its pseudo-queries drawn from the
  references' processed copies against their clean centroids
  (``DecisionPolicy(processed_references=...)``, :func:`fpattr.decision.pseudo_queries`).

Nothing is fitted on the queries; the public generators are never used to train or tune
the extractor. ``attribute`` and ``gallery add`` do not yet enrol processed copies of the
references: this measures what doing so would change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from fpattr.backbones.resolve import create_backbone
from fpattr.decision import DecisionPolicy
from fpattr.evaluation import protocol
from fpattr.evaluation.decisions import decision_quality

PROCESSINGS = {"x0.5": {"resize": 0.5}, "jpeg75": {"jpeg": 75}}
FIGURES = ("achieved_far", "precision", "coverage", "accuracy", "ece_pooled", "ece_pooled_floor")


def embed(bench: protocol.Bench, backbone, transform: protocol.Transform):
    """(emb (N, D), usable (N,) bool, views (N,)) of every bench image under ``transform``."""
    paths, _, roles = bench.images()
    cfg = protocol.EvalConfig(transform=transform)
    clean = [p for p, r in zip(paths, roles, strict=True) if r == "ref"]
    (es,), _ = protocol.embed_images(
        paths, [backbone], cfg, clean=clean if transform.queries_only else ()
    )
    usable = es.ok & ~(es.flat if es.flat is not None else np.zeros(len(paths), bool))
    return es.emb, usable, es.views


def figures(res: dict) -> dict:
    mean = res["generator_disjoint"]["mean"]
    out = {"single": {k: mean["single"].get(k) for k in FIGURES}}
    for n, u in mean["sets"].items():
        out[f"sets_{n}"] = {k: u.get(k) for k in FIGURES}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench", type=Path)
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--backbone", default="default")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    t0 = time.monotonic()
    bench = protocol.discover_bench(a.bench, a.refs)
    backbone = create_backbone(a.backbone)
    card = backbone.calibration()
    paths, labels_l, roles_l = bench.images()
    labels = np.asarray(labels_l, dtype=object)
    roles = np.asarray(roles_l)
    names = [m.name for m in bench.models]
    result: dict = {"command": "python " + " ".join(sys.argv), "refs": a.refs, "runs": {}}
    for key, kw in PROCESSINGS.items():
        q_emb, q_ok, q_views = embed(bench, backbone, protocol.Transform(**kw, queries_only=True))
        all_emb, all_ok, _ = embed(bench, backbone, protocol.Transform(**kw))
        # a reference whose processed copy failed is left out of both runs (rows aligned)
        use = q_ok & np.where(roles == "ref", all_ok, True)
        keep = [n for n in names if ((labels == n) & (roles == "ref") & use).any()]
        processed = {n: all_emb[use & (labels == n) & (roles == "ref")] for n in keep}
        runs = {}
        for mode in ("shipped", "processed_references"):

            def policy_for(g, cg, mode=mode, processed=processed, key=key):
                # the references of the gallery at hand (a half, a fold): their processed rows
                pr = None
                if mode == "processed_references":
                    src = cg if cg is not None else g
                    pr = {m: processed[m] for m in src.models}
                return DecisionPolicy(
                    card,
                    g,
                    calibration_gallery=cg,
                    processed_references=pr,
                    processing=key if pr else None,
                )

            res = decision_quality(
                policy_for,
                q_emb[use],
                labels[use],
                roles[use],
                keep,
                views=None if q_views is None else q_views[use],
            )
            runs[mode] = figures(res)
            s = runs[mode]["single"]
            print(
                f"{key:7s} {mode:21s} single: FAR {s['achieved_far']:.4f} precision "
                f"{s['precision']} coverage {s['coverage']:.3f} ECE {s['ece_pooled']:.3f}",
                file=sys.stderr,
            )
        result["runs"][key] = runs
    result["seconds"] = round(time.monotonic() - t0, 1)
    text = json.dumps(result, indent=1) + "\n"
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
