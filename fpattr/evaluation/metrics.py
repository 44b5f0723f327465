"""Metrics for attribution: identification, verification, open set.

Pure numpy, with no tie-breaking surprises: ROC-AUC is the Mann-Whitney
statistic with ties counted as 1/2, EER is interpolated on the ROC, and
TAR@FAR is read at the largest threshold whose FAR does not exceed the target.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
    possible. Returns (pairs (n, 2), same (n,) bool)."""
    labels = np.asarray(labels)
    n = labels.size
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
    cents = np.stack([ref_emb[ref_labels == n].mean(0) for n in names])
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    sims = q_emb @ cents.T
    pred = [names[k] for k in sims.argmax(1)]
    top1 = float(np.mean(np.asarray(pred, dtype=object) == q_labels.astype(object)))
    rng = np.random.default_rng(seed)
    pairs, same = sample_pairs(q_labels, n_pairs, rng)
    ps = np.einsum("ij,ij->i", q_emb[pairs[:, 0]], q_emb[pairs[:, 1]])
    return {
        "top1": top1,
        "macro_f1": macro_f1(q_labels.tolist(), pred, names),
        "roc_auc": roc_auc(ps[same], ps[~same]),
        "eer": eer(ps[same], ps[~same]),
        "tar_at_far_1e-2": tar_at_far(ps[same], ps[~same], 1e-2),
        "n_models": len(names),
        "n_queries": int(q_labels.size),
        "n_pairs": int(len(pairs)),
    }
