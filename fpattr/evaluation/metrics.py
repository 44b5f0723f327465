"""Metrics for attribution: identification, verification, open set.

Pure numpy, with no tie-breaking surprises: ROC-AUC is the Mann-Whitney
statistic with ties counted as 1/2, EER is interpolated on the ROC, and
TAR@FAR is read at the largest threshold whose FAR does not exceed the target.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fpattr.views import l2_normalize


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct threshold, from strict to lax, starting at (0, 0)."""
    g = np.asarray(genuine, np.float64).ravel()
    i = np.asarray(impostor, np.float64).ravel()
    scores = np.concatenate([g, i])
    labels = np.concatenate([np.ones(g.size), np.zeros(i.size)])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    distinct = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tp = np.cumsum(labels)[distinct]
    fp = np.cumsum(1 - labels)[distinct]
    tar = np.r_[0.0, tp / max(g.size, 1)]
    far = np.r_[0.0, fp / max(i.size, 1)]
    return far, tar


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    g = np.asarray(genuine, np.float64).ravel()
    i = np.asarray(impostor, np.float64).ravel()
    if g.size == 0 or i.size == 0:
        return float("nan")
    allv = np.concatenate([g, i])
    ranks = _rankdata(allv)
    return float((ranks[: g.size].sum() - g.size * (g.size + 1) / 2) / (g.size * i.size))


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties share their mean rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(x.size, np.float64)
    start = 0
    for end in np.r_[np.nonzero(np.diff(xs))[0] + 1, xs.size]:
        ranks[order[start:end]] = (start + end + 1) / 2.0
        start = end
    return ranks


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    far, tar = roc_curve(genuine, impostor)
    frr = 1 - tar
    k = int(np.argmax(far >= frr))
    if k == 0:
        return float(far[0])
    # interpolate between k-1 and k where (far - frr) changes sign
    d0, d1 = far[k - 1] - frr[k - 1], far[k] - frr[k]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(far[k - 1] + t * (far[k] - far[k - 1]))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, target: float) -> float:
    far, tar = roc_curve(genuine, impostor)
    ok = far <= target + 1e-12
    return float(tar[ok].max()) if ok.any() else 0.0


def macro_f1(y_true: list[Any], y_pred: list[Any], labels: list[Any] | None = None) -> float:
    labels = labels if labels is not None else sorted(set(y_true))
    yt, yp = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    f1s = []
    for c in labels:
        tp = np.sum((yt == c) & (yp == c))
        fp = np.sum((yt != c) & (yp == c))
        fn = np.sum((yt == c) & (yp != c))
        denom = 2 * tp + fp + fn
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s)) if f1s else float("nan")


def confusion(y_true: list[Any], y_pred: list[Any], labels: list[Any]) -> np.ndarray:
    idx = {c: k for k, c in enumerate(labels)}
    m = np.zeros((len(labels), len(labels) + 1), np.int64)  # last column: predicted outside
    for t, p in zip(y_true, y_pred, strict=True):
        m[idx[t], idx.get(p, len(labels))] += 1
    return m


def oscr(
    known_correct_scores: np.ndarray, known_correct: np.ndarray, unknown_scores: np.ndarray
) -> float:
    """Open-set classification rate (Dhamija et al. 2018): area under CCR vs FPR.

    ``known_correct_scores``: max score of each known-class query; ``known_correct``:
    whether its top-1 was right; ``unknown_scores``: max score of each unknown query.
    """
    ks = np.asarray(known_correct_scores, np.float64)
    kc = np.asarray(known_correct, bool)
    us = np.asarray(unknown_scores, np.float64)
    if ks.size == 0 or us.size == 0:
        return float("nan")
    thr = np.unique(np.concatenate([ks, us]))[::-1]
    ccr = np.array([np.mean(kc & (ks >= t)) for t in thr])
    fpr = np.array([np.mean(us >= t) for t in thr])
    ccr, fpr = np.r_[0.0, ccr, ccr[-1]], np.r_[0.0, fpr, 1.0]
    return float(np.trapezoid(ccr, fpr))


def sample_pairs(
    labels: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced genuine/impostor index pairs (i, j), i != j, without replacement where
    possible. Returns (pairs (n, 2), same (n,) bool).

    ``n_pairs`` is capped at the number of distinct unordered pairs the labels allow
    (n (n - 1) / 2): ``--pairs 1000000`` on 18 images drew a million repeats, 5.5 GB of
    pair embeddings, and ran out of memory as an internal error (break-it 28b)."""
    labels = np.asarray(labels)
    n = labels.size
    n_pairs = min(int(n_pairs), n * (n - 1) // 2)
    by_label: dict[Any, np.ndarray] = {}
    for k, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(k)  # type: ignore[union-attr]
    by_label = {k: np.asarray(v) for k, v in by_label.items() if len(v) >= 2}
    half = n_pairs // 2
    gen = []
    keys = list(by_label)
    if keys:
        for _ in range(half):
            members = by_label[keys[rng.integers(len(keys))]]
            a, b = rng.choice(members, 2, replace=False)
            gen.append((a, b))
    imp = []
    while len(imp) < n_pairs - len(gen) and len(set(labels.tolist())) > 1:
        a, b = rng.integers(n, size=2)
        if labels[a] != labels[b]:
            imp.append((a, b))
    pairs = np.array(gen + imp, dtype=np.int64).reshape(-1, 2)
    same = np.r_[np.ones(len(gen), bool), np.zeros(len(imp), bool)]
    return pairs, same


def attribution_metrics(
    ref_emb: np.ndarray,
    ref_labels: np.ndarray,
    q_emb: np.ndarray,
    q_labels: np.ndarray,
    *,
    n_pairs: int = 10000,
    seed: int = 0,
) -> dict[str, Any]:
    """Closed-set identification (nearest centroid) + single-image pair verification."""
    names = sorted(set(ref_labels.tolist()))
    cents = centroids(ref_emb, ref_labels, names)
    sims = q_emb @ cents.T
    pred = [names[k] for k in sims.argmax(1)]
    top1 = float(np.mean(np.asarray(pred, dtype=object) == q_labels.astype(object)))
    gen, imp = pair_scores(q_emb, q_labels, n_pairs, seed=seed)
    return {
        "top1": top1,
        "macro_f1": macro_f1(q_labels.tolist(), pred, names),
        "roc_auc": roc_auc(gen, imp),
        "eer": eer(gen, imp),
        "tar_at_far_1e-2": tar_at_far(gen, imp, 1e-2),
        "n_models": len(names),
        "n_queries": int(q_labels.size),
        "n_pairs": int(gen.size + imp.size),
    }


def centroids(emb: np.ndarray, labels: np.ndarray, names: list[Any]) -> np.ndarray:
    """(len(names), D) L2-normalised mean embedding per name: the gallery entry of a model."""
    labels = np.asarray(labels, dtype=object)
    cents = np.stack([np.asarray(emb)[labels == n].mean(0) for n in names]).astype(np.float64)
    return l2_normalize(cents)


def pair_scores(
    emb: np.ndarray, labels: np.ndarray, n_pairs: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of single image vs single image pairs, balanced genuine/impostor.

    Pairs come from :func:`sample_pairs` with ``default_rng(seed)``, so a run is
    reproducible and two backbones scored on the same images see the same pairs.
    Returns (genuine scores, impostor scores).
    """
    pairs, same = sample_pairs(np.asarray(labels), n_pairs, np.random.default_rng(seed))
    return score_pairs(emb, pairs, same)


def score_pairs(
    emb: np.ndarray, pairs: np.ndarray, same: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) cosines of the (P, 2) index ``pairs`` of :func:`sample_pairs`."""
    emb = np.asarray(emb)
    ps = np.einsum("ij,ij->i", emb[pairs[:, 0]], emb[pairs[:, 1]])
    return ps[same], ps[~same]


def distinct_pairs(pairs: np.ndarray) -> int:
    """How many distinct (unordered) pairs are among the (P, 2) index ``pairs``: fewer
    than P when the queries allow fewer (pairs then repeat)."""
    if not len(pairs):
        return 0
    return int(len(np.unique(np.sort(np.asarray(pairs), axis=1), axis=0)))


def open_set_scores(
    cents: np.ndarray,
    names: list[Any],
    q_emb: np.ndarray,
    q_labels: np.ndarray,
    unknown_emb: np.ndarray,
) -> dict[str, Any]:
    """Known-vs-unknown scoring against one gallery: max cosine, threshold-free.

    ``q_emb``/``q_labels``: queries of models in the gallery (known); ``unknown_emb``:
    queries whose source is not in it. AUROC = P(known max score > unknown max score);
    OSCR also needs the known queries' top-1 to be right.
    """
    d = cents.shape[1]
    ks = np.asarray(q_emb, np.float64).reshape(-1, d) @ cents.T
    us = np.asarray(unknown_emb, np.float64).reshape(-1, d) @ cents.T
    k_max = ks.max(1) if ks.size else np.zeros(0)
    u_max = us.max(1) if us.size else np.zeros(0)
    pred = np.asarray(names, dtype=object)[ks.argmax(1)] if ks.size else np.zeros(0, object)
    correct = pred == np.asarray(q_labels, dtype=object)
    return {
        "auroc": roc_auc(k_max, u_max),
        "oscr": oscr(k_max, correct, u_max),
        "n_known": int(k_max.size),
        "n_unknown": int(u_max.size),
    }


def lomo_folds(names: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Leave-one-model-out folds: (held-out model, models kept in the gallery).

    Needs >= 2 models, since a fold must keep at least one known model; else no folds.
    """
    names = list(names)
    if len(names) < 2:
        return []
    return [(m, [n for n in names if n != m]) for m in names]


def open_set_lomo(
    ref_emb: np.ndarray,
    ref_labels: np.ndarray,
    q_emb: np.ndarray,
    q_labels: np.ndarray,
    extra_unknown: np.ndarray | None = None,
) -> dict[str, Any]:
    """Open-set figures averaged over leave-one-model-out folds.

    In each fold one model leaves the gallery and its queries (plus ``extra_unknown``,
    e.g. real photos) are the unknowns; the other models' queries are the knowns.
    The held-out model's references are not used in that fold. No threshold is fitted.
    """
    ref_labels = np.asarray(ref_labels, dtype=object)
    q_labels = np.asarray(q_labels, dtype=object)
    d = np.asarray(ref_emb).shape[1]
    extra = np.zeros((0, d)) if extra_unknown is None else np.asarray(extra_unknown).reshape(-1, d)
    per_fold = []
    for held, kept in lomo_folds(sorted(set(ref_labels.tolist()))):
        cents = centroids(ref_emb, ref_labels, kept)
        known = np.isin(q_labels, np.asarray(kept, dtype=object))
        unknown = np.concatenate([np.asarray(q_emb)[q_labels == held], extra])
        fold = open_set_scores(cents, kept, np.asarray(q_emb)[known], q_labels[known], unknown)
        per_fold.append({"held_out": held, **fold})
    return {
        "auroc": _nanmean([f["auroc"] for f in per_fold]),
        "oscr": _nanmean([f["oscr"] for f in per_fold]),
        "n_folds": len(per_fold),
        "per_fold": per_fold,
    }


def _nanmean(values: list[float]) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
