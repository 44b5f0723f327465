"""Within-class covariance normalisation (WCCN) fitted on the gallery's own references,
after the gallery centring: measured and not adopted (docs/benchmarks.md, "Gallery-centred
scores").

    python benchmarks/gallery_wccn.py runs/realbench --refs 10
    python benchmarks/gallery_wccn.py ../shared/data/public-generators --refs 5

Speaker verification scores centred embeddings after WCCN (Hatch, Kajarekar & Stolcke,
ICSLP 2006): x -> l2(W (l2(x) - c)), W = S^(-1/2), S the within-model covariance of the
enrolled references, shrunk toward a scaled identity by alpha (the references are far
fewer than the dimensions). Prints top-1 (nearest centroid) and pair ROC-AUC (20,000
seeded query pairs) of the benchmark's queries, centred only and with WCCN at a grid of
alpha and at the Ledoit-Wolf alpha (Ledoit & Wolf, J. Multivariate Analysis 2004): the
data-driven choice, since picking alpha from these figures would tune on the benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from unseen_far import bench_parser, embedded_bench

from fpattr.evaluation.metrics import roc_auc
from fpattr.views import l2_normalize as unit

GRID = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def within_deviations(refs: dict[str, np.ndarray], centre: np.ndarray) -> np.ndarray:
    """(N, D) centred references minus their model's mean."""
    return np.concatenate([unit(v - centre) - unit(v - centre).mean(0) for v in refs.values()])


def ledoit_wolf_alpha(x: np.ndarray) -> float:
    """Shrinkage toward trace(S)/D x I minimising the expected Frobenius error of S."""
    n, d = x.shape
    s = x.T @ x / n
    mu = np.trace(s) / d
    d2 = float(np.sum((s - mu * np.eye(d)) ** 2))
    b2 = (float(np.sum(np.sum(x**2, 1) ** 2)) / n - float(np.sum(s**2))) / n
    return min(1.0, max(0.0, b2 / d2))


def gallery(b: dict) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(unit embeddings, each model's references, the gallery centre) of a bench."""
    e, lab, roles = unit(b["emb"].astype(np.float64)), b["labels"], b["roles"]
    refs = {m: e[(lab == m) & (roles == "ref")] for m in b["names"]}
    refs = {m: v for m, v in refs.items() if len(v)}
    return e, refs, np.mean([unit(v.mean(0)) for v in refs.values()], 0)


def scores(b: dict, alpha: float | None) -> tuple[float, float]:
    """(top-1, pair ROC-AUC) of the queries, centred (alpha None) or with WCCN at alpha."""
    e, refs, centre = gallery(b)
    lab, roles = b["labels"], b["roles"]
    w = np.eye(e.shape[1])
    if alpha is not None:
        x = within_deviations(refs, centre)
        s = x.T @ x / len(x)
        s = (1 - alpha) * s + alpha * np.trace(s) / s.shape[0] * np.eye(s.shape[0])
        val, vec = np.linalg.eigh(s)
        w = vec @ np.diag(val**-0.5) @ vec.T

    def space(v: np.ndarray) -> np.ndarray:
        return unit(unit(v - centre) @ w)

    models = list(refs)
    cents = unit(np.stack([space(refs[m]).mean(0) for m in models]))
    q = (roles == "query") & np.isin(lab, models)
    qe, ql = space(e[q]), lab[q]
    top1 = float(np.mean(np.asarray(models)[(qe @ cents.T).argmax(1)] == ql))
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(qe), 20000), rng.integers(0, len(qe), 20000)
    i, j = i[i != j], j[i != j]
    same = ql[i] == ql[j]
    sc = np.sum(qe[i] * qe[j], 1)
    return top1, roc_auc(sc[same], sc[~same])


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    b = embedded_bench(Path(args.bench), args.refs, args.backbone)
    print("| scores | alpha | top-1 | pair ROC-AUC |\n|---|---|---|---|")
    top1, auc = scores(b, None)
    print(f"| centred | - | {top1:.3f} | {auc:.3f} |")
    _, refs, centre = gallery(b)
    lw = ledoit_wolf_alpha(within_deviations(refs, centre))
    for a, label in [*((a, "centred + WCCN") for a in GRID), (lw, "centred + WCCN, Ledoit-Wolf")]:
        top1, auc = scores(b, a)
        print(f"| {label} | {a:.2f} | {top1:.3f} | {auc:.3f} |")


if __name__ == "__main__":
    main()
