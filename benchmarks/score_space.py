"""Raw cosine vs the gallery-centred score space (fpattr.scorespace), by gallery size.

    python benchmarks/score_space.py --zoo runs/v2pilot/zoo --real runs/realbench \
        --public ../shared/data/public-generators

Embeds held-out synthetic models (a zoo the shipped extractor never trained on: 5
references per model, the rest queries), the project's real-generator benchmark (10
references) and the public generators (5 references) with the shipped extractor, then
for galleries of 2, 3, 5, 10 and all models (20 seeded draws each) prints top-1 and pair
ROC-AUC of the queries raw and centred on the gallery's mean; then, on all models, a
whitening fitted on the synthetic models (within-class covariance, LDA), the
alternative that was measured and dropped. Nothing here is fitted on a benchmark.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fpattr.backbones.resolve import create_backbone
from fpattr.evaluation.metrics import roc_auc
from fpattr.evaluation.protocol import EvalConfig, discover_bench, embed_images
from fpattr.views import l2_normalize as unit


def embed(paths: list, name: str = "default") -> np.ndarray:
    es = embed_images(paths, [create_backbone(name)], EvalConfig(views=None))[0][0]
    return unit(es.emb), es.ok


def zoo_set(zoo: Path, refs: int = 5):
    paths, labels, roles = [], [], []
    for d in sorted(p for p in zoo.iterdir() if p.is_dir()):
        ims = sorted(d.glob("*.png"))
        paths += ims
        labels += [d.name] * len(ims)
        roles += ["ref"] * refs + ["query"] * (len(ims) - refs)
    return paths, np.asarray(labels), np.asarray(roles)


def bench_set(root: Path, refs: int):
    paths, labels, roles = discover_bench(root, refs).images()
    return paths, np.asarray(labels, dtype=object).astype(str), np.asarray(roles)


def score(e, lab, rol, transform):
    x = unit(transform(e))
    ref = rol == "ref"
    names = sorted(set(lab[ref]))
    cents = unit(np.stack([x[ref & (lab == m)].mean(0) for m in names]))
    q, ql = x[rol == "query"], lab[rol == "query"]
    top1 = float(np.mean(np.asarray(names)[np.argmax(q @ cents.T, 1)] == ql))
    s = q @ q.T
    iu = np.triu_indices(len(q), 1)
    same = (ql[:, None] == ql[None, :])[iu]
    return top1, roc_auc(s[iu][same], s[iu][~same])


def centred(e, lab, rol):
    ref = rol == "ref"
    c = np.mean([unit(e[ref & (lab == m)].mean(0)) for m in sorted(set(lab[ref]))], 0)
    return lambda x: x - c


def whitening(e, lab, kind: str, k: int = 64, lam: float = 1e-2):
    mu = e.mean(0)
    names = np.unique(lab)
    means = np.stack([e[lab == m].mean(0) for m in names])
    within = np.concatenate([e[lab == m] - means[i] for i, m in enumerate(names)])
    sw = within.T @ within / len(within)
    sw += lam * np.trace(sw) / len(sw) * np.eye(len(sw))
    ev, u = np.linalg.eigh(sw)
    wi = u @ np.diag(ev**-0.5) @ u.T
    if kind == "wccn":
        return lambda x: (x - mu) @ wi
    sb = (means - mu).T @ (means - mu) / len(means)
    _, v = np.linalg.eigh(wi @ sb @ wi)
    p = wi @ v[:, ::-1][:, :k]
    return lambda x: (x - mu) @ p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", type=Path, required=True)
    ap.add_argument("--real", type=Path)
    ap.add_argument("--public", type=Path)
    args = ap.parse_args()
    sets = {"synthetic": zoo_set(args.zoo)}
    if args.real:
        sets["real"] = bench_set(args.real, 10)
    if args.public:
        sets["public"] = bench_set(args.public, 5)
    data = {}
    for k, (paths, lab, rol) in sets.items():
        e, ok = embed(paths)
        data[k] = (e[ok], lab[ok], rol[ok])
    rng = np.random.default_rng(0)
    print("bench models  raw top-1/AUC  centred top-1/AUC  (mean of draws)")
    for k, (e, lab, rol) in data.items():
        models = np.unique(lab[rol == "ref"])
        for n in (2, 3, 5, 10, len(models)):
            if n > len(models):
                continue
            rows = []
            for _ in range(20 if n < len(models) else 1):
                keep = np.isin(lab, rng.choice(models, n, replace=False))
                sub = (e[keep], lab[keep], rol[keep])
                rows.append([*score(*sub, lambda x: x), *score(*sub, centred(*sub))])
            r = np.mean(rows, 0)
            print(f"{k:9s} {n:4d}   {r[0]:.3f}/{r[1]:.3f}      {r[2]:.3f}/{r[3]:.3f}")
    es, ls = data["synthetic"][0], data["synthetic"][1]
    print("whitening fitted on the synthetic models, all models of each benchmark:")
    for name, t in [("wccn", whitening(es, ls, "wccn"))] + [
        (f"lda{k}", whitening(es, ls, "lda", k)) for k in (32, 64, 128)
    ]:
        cells = [f"{b} %.3f/%.3f" % score(*data[b], t) for b in data if b != "synthetic"]
        print(f"  {name:7s} " + "  ".join(cells))


if __name__ == "__main__":
    main()
