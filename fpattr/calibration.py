"""Score calibration: cosine similarity -> probability, likelihood ratio, threshold.

A raw cosine means different things for different extractors, so every decision
goes through a :class:`Calibration` fitted on *held-out* data: genuine scores
(same model) and impostor scores (different models). Where it comes from is
recorded (``source``): the extractor's model card (fitted on held-out synthetic
models at training time) or the gallery's own references (leave-one-out). The
queries being scored are never used.

The logistic fit uses balanced class weights, so its log-odds are a log
likelihood ratio and ``probability`` is P(same model) under equal priors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

DEFAULT_TARGET_FAR = 0.01


@dataclass(frozen=True)
class Calibration:
    a: float  #: slope of the log-odds in the cosine
    b: float  #: intercept
    threshold: float  #: cosine at the target false-accept rate
    target_far: float
    source: str
    n_genuine: int = 0
    n_impostor: int = 0
    achieved_far: float | None = None  #: false-accept rate of ``threshold`` on the fitting data
    achieved_tar: float | None = None  #: true-accept rate of ``threshold`` on the fitting data

    def llr(self, s: float | np.ndarray) -> Any:
        """Natural-log likelihood ratio of 'same model' vs 'different'."""
        return self.a * np.asarray(s, dtype=np.float64) + self.b

    def probability(self, s: float | np.ndarray) -> Any:
        z = np.clip(self.llr(s), -50, 50)
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in fields})

    @classmethod
    def fit(
        cls,
        genuine: np.ndarray,
        impostor: np.ndarray,
        *,
        target_far: float = DEFAULT_TARGET_FAR,
        source: str,
    ) -> Calibration:
        """Fit from held-out genuine/impostor cosine scores."""
        g = np.asarray(genuine, dtype=np.float64).ravel()
        i = np.asarray(impostor, dtype=np.float64).ravel()
        if g.size < 2 or i.size < 2:
            raise ValueError(
                f"calibration needs >= 2 genuine and >= 2 impostor scores (got {g.size}, {i.size})"
            )
        a, b = _fit_logistic(g, i)
        thr = threshold_at_far(i, target_far)
        return cls(
            a=a,
            b=b,
            threshold=thr,
            target_far=float(target_far),
            source=source,
            n_genuine=int(g.size),
            n_impostor=int(i.size),
            achieved_far=float(np.mean(i >= thr)),
            achieved_tar=float(np.mean(g >= thr)),
        )


#: How far two computations of one cosine may differ (float32 embeddings pooled and
#: normalised on different paths: a few units of float32's 1.2e-7 at 1.0).
SCORE_TOLERANCE = 1e-6


def threshold_at_far(impostor: np.ndarray, target_far: float) -> float:
    """Smallest cosine threshold whose false-accept rate on ``impostor`` <= target.

    With few impostor scores the achievable FAR is coarse (1/n); the threshold is
    then just above the highest impostor score, which is the honest choice.

    "Just above" is :data:`SCORE_TOLERANCE` above: the same comparison scored again on
    another path (a query's float32 embedding, pooled in another order) moves by a few
    float32 units, and a threshold one float64 step above an impostor score let that
    very pair through (``verify`` of two enrolled models' reference folders: "same").
    """
    return _threshold_sorted(
        np.sort(np.asarray(impostor, dtype=np.float64).ravel())[::-1], target_far
    )


def _threshold_sorted(desc: np.ndarray, target_far: float) -> float:
    """:func:`threshold_at_far` of scores already sorted highest first."""
    k = impostors_allowed(desc.size, target_far)
    if k >= desc.size:
        return float(desc[-1])
    return float(desc[k] + SCORE_TOLERANCE)


def impostors_allowed(n: int, target_far: float) -> int:
    """How many of ``n`` held-out impostor scores may lie above a threshold fitted for
    ``target_far``: the conformal quantile, ``floor((n + 1) * target_far) - 1`` (floored at 0).

    A new impostor score exchangeable with the ``n`` exceeds the (k+1)-th highest of them
    with probability ``(k + 1) / (n + 1)`` (Vovk et al., *Algorithmic Learning in a Random
    World*, 2005; Angelopoulos & Bates, *A Gentle Introduction to Conformal Prediction*,
    2021, section 1); the largest ``k`` with that at most ``target_far`` is ``floor((n + 1)
    * target_far) - 1``. The plain empirical quantile (``floor(n * target_far)`` allowed)
    expects up to one impostor more per ``n + 1``: 1.33 % instead of 1 % at n = 300.
    With ``(n + 1) * target_far < 1`` no impostor may lie above (0).
    """
    return max(0, int(math.floor((n + 1) * target_far + 1e-9)) - 1)


#: Bootstrap rounds of :func:`threshold_at_far_clustered`.
CLUSTER_BOOTSTRAP_ROUNDS = 500
#: Highest-ranked impostor scores each bootstrap draw weighs at least (more at large
#: targets: 8 x (n + 1) x target); a draw whose threshold lies below them weighs them all.
CLUSTER_BOOTSTRAP_SCORES = 50_000
#: Levels :func:`threshold_at_far_clustered` may fit at: 10^(-j / 64), an absolute grid
#: (3.7 % apart; 0.1, 0.01 and 0.001 are on it), from the target down to 1/8 of it.
LEVELS_PER_DECADE = 64
LOWEST_LEVEL_FRACTION = 1 / 8


class ClusteredThreshold(NamedTuple):
    """What :func:`threshold_at_far_clustered` fitted."""

    threshold: float
    level: float  #: the false-accept rate the conformal threshold was fitted at
    plain: float  #: the conformal threshold at the target itself
    #: bootstrap mean false-accept rate on a new generator at ``level`` (None: no bootstrap)
    expected_far: float | None
    #: whether some level reaches the target (False: the lowest level, and it does not)
    reached: bool


def far_levels(target_far: float) -> np.ndarray:
    """The grid levels in [target * :data:`LOWEST_LEVEL_FRACTION`, target], highest first
    (at least one: the highest grid level at or below the target)."""
    top = math.ceil(-math.log10(target_far) * LEVELS_PER_DECADE - 1e-6)
    low = -math.log10(target_far * LOWEST_LEVEL_FRACTION) * LEVELS_PER_DECADE
    j = np.arange(top, max(top, math.floor(low + 1e-6)) + 1)
    return 10.0 ** (-j / LEVELS_PER_DECADE)


def threshold_at_far_clustered(
    impostor: np.ndarray,
    clusters: np.ndarray | None,
    target_far: float,
    *,
    rounds: int = CLUSTER_BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> ClusteredThreshold:
    """Threshold for ``target_far`` on impostor scores that come in clusters (the
    generators they were made from), fitted at a lower level where the plain one would
    accept more than the target of a new generator's scores on average.

    Why: :func:`threshold_at_far`'s guarantee needs exchangeable scores. Scores of one
    generator are not (it resembles an enrolled model or it does not), so the threshold
    rests on a handful of generators, and its error is not symmetric in what it costs: a
    threshold set too low lets through more impostors than one set as much too high
    keeps out.

    Method: a cluster (block) bootstrap calibration of the quantile's level (Beran,
    *Prepivoting to reduce level error of confidence sets*, Biometrika 1987; Davison &
    Hinkley, *Bootstrap Methods and their Application*, 1997, section 3.8 on resampling
    clusters). Clusters are drawn with replacement ``rounds`` times; in each draw the
    conformal threshold at level a is fitted on the drawn clusters' scores, and its
    false-accept rate on a new generator is the mean over all clusters of each one's own
    rate (every generator weighs the same, however many scores it has). The level used
    is the largest of :func:`far_levels` whose mean over the draws is at most the target;
    the threshold is then the conformal one at that level on every score. The grid is
    absolute and the draws depend only on ``seed`` and the clusters, so a stricter
    target never gives a lower threshold. The bootstrap under-states the spread of a
    few clusters: in simulations with 3 to 10 generators the rate on new generators
    falls toward the target without reaching it (tests/core/test_calibration.py).

    ``impostor``: (n,) cosines, n >= 1; ``clusters``: (n,) integer cluster of each score
    (give the same gallery the same numbering: the draws are made on it), or (n, 2) for
    a score between two clusters (a pair of images of two generators: drawn when both
    are; rates then pooled over scores), None: exchangeable scores
    (:func:`threshold_at_far` at the target). Fewer than 3 clusters: the plain threshold.
    Raises ValueError on no scores or mismatched shapes.
    """
    s = np.asarray(impostor, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("no impostor scores")
    order = np.argsort(-s, kind="stable")
    ranked = s[order]  # highest first, sorted once for every threshold below
    plain = _threshold_sorted(ranked, target_far)
    unclustered = ClusteredThreshold(plain, float(target_far), plain, None, True)
    if clusters is None:
        return unclustered
    c = np.asarray(clusters)
    c = c.reshape(-1, 1) if c.ndim == 1 else c
    if c.ndim != 2 or c.shape[0] != s.size:
        raise ValueError(f"clusters {np.shape(clusters)} do not match {s.size} impostor scores")
    ids, inv = np.unique(c, return_inverse=True)
    inv = inv.reshape(c.shape)
    if ids.size < 3:
        return unclustered
    drawn_all = inv[order]
    # a threshold at a level <= target lies among the highest scores: each draw weighs
    # those first, and every score only when its threshold lies below them (exact either
    # way; a sample of the ranks could not resolve small targets, break-it)
    top = min(s.size, max(CLUSTER_BOOTSTRAP_SCORES, math.ceil(8 * (s.size + 1) * target_far)))
    sizes = np.bincount(inv[:, 0], minlength=ids.size) if inv.shape[1] == 1 else None
    levels = far_levels(target_far)
    rng = np.random.default_rng(seed)
    thr = np.empty((int(rounds), levels.size))
    kept = np.ones(int(rounds), bool)

    def weights(count: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        return count[drawn[:, 0]] if drawn.shape[1] == 1 else count[drawn].prod(axis=1)

    for r in range(int(rounds)):
        count = np.bincount(rng.integers(0, ids.size, ids.size), minlength=ids.size)
        if sizes is not None:
            total = int(count @ sizes)
        else:
            total = int(weights(count, drawn_all).sum())
        if total == 0:  # (pairs: no two drawn generators met)
            kept[r] = False
            continue
        allowed = np.maximum(0, np.floor((total + 1) * levels + 1e-9).astype(np.int64) - 1)
        cw = np.cumsum(weights(count, drawn_all[:top]))
        if cw[-1] <= allowed.max() and top < s.size:  # a threshold below the top scores
            cw = np.cumsum(weights(count, drawn_all))
        j = np.minimum(np.searchsorted(cw, allowed, side="right"), cw.size - 1)
        thr[r] = ranked[j] + np.where(cw[j] > allowed, SCORE_TOLERANCE, 0.0)
    if not kept.any():
        return unclustered
    thr = thr[kept]
    # each threshold's rate on a new generator, on every score: the mean of the clusters'
    # own rates (1-D clusters), or the pooled rate ((P, 2): a pair belongs to two)
    uniq, back = np.unique(thr, return_inverse=True)
    if inv.shape[1] == 1:
        # by cluster (a stable integer sort), each one's scores highest first, negated
        grouped = -s[order[np.argsort(drawn_all[:, 0], kind="stable")]]
        ends = np.cumsum(sizes)
        rates = np.zeros(uniq.size)
        for lo, hi in zip(ends - np.diff(ends, prepend=0), ends, strict=True):
            rates += np.searchsorted(grouped[lo:hi], -uniq, side="right") / (hi - lo)
        rates /= ids.size
    else:
        asc = ranked[::-1]
        rates = (s.size - np.searchsorted(asc, uniq, side="left")) / s.size
    mean = rates[back.reshape(thr.shape)].mean(axis=0)
    ok = np.flatnonzero(mean <= target_far + 1e-12)
    k = int(ok[0]) if ok.size else levels.size - 1
    level = float(levels[k])
    return ClusteredThreshold(
        _threshold_sorted(ranked, level), level, plain, float(mean[k]), bool(ok.size)
    )


def _fit_logistic(g: np.ndarray, i: np.ndarray, iters: int = 100) -> tuple[float, float]:
    """Weighted logistic regression by Newton's method with a weak ridge prior.

    Balanced weights (each class sums to 1) make the fitted log-odds an LLR. The
    ridge keeps the slope finite when the classes are perfectly separated, which
    is common with small galleries; the slope is also forced to be >= 0 so the
    probability is monotonic in the similarity.
    """
    x = np.concatenate([g, i])
    y = np.concatenate([np.ones_like(g), np.zeros_like(i)])
    w = np.concatenate([np.full(g.size, 0.5 / g.size), np.full(i.size, 0.5 / i.size)])
    scale = max(float(np.std(x)), 1e-6)
    xs = (x - x.mean()) / scale
    theta = np.zeros(2)
    ridge = 1e-3
    design = np.stack([xs, np.ones_like(xs)], axis=1)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -50, 50)))
        grad = design.T @ (w * (p - y)) + ridge * np.array([theta[0], 0.0])
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + ridge * np.diag([1.0, 1e-9])
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    slope = max(theta[0], 0.0) / scale
    intercept = theta[1] - max(theta[0], 0.0) * x.mean() / scale
    return float(slope), float(intercept)


def uncalibrated(threshold: float) -> Calibration:
    """A user-given threshold with no probability model (reported as such)."""
    return Calibration(
        a=0.0, b=0.0, threshold=float(threshold), target_far=float("nan"), source="user-threshold"
    )


def card_scores(
    emb: np.ndarray,
    labels: np.ndarray,
    which: np.ndarray,
    refs: int,
    *,
    centred: bool = False,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Genuine/impostor cosines of held-out models, the way attribute and verify score them.

    ``emb`` (N, D) raw fingerprints of the held-out models' images, ``labels`` (N,) their
    model, ``which`` (N,) the image's index within its model: the first ``refs`` of each
    model are its references (the gallery), the rest its queries. ``centred``: scores in
    the gallery-centred space (:mod:`fpattr.scorespace`), centred on these models' mean.
    Returns {"centroid": (query-vs-own-centroid, query-vs-other-centroids), "pair":
    (same-model image pairs, different-model pairs)}, float arrays.
    """
    from fpattr.scorespace import ScoreSpace
    from fpattr.views import l2_normalize

    labels = np.asarray(labels)
    is_ref = np.asarray(which) < refs
    names = np.unique(labels)

    def centroids(e: np.ndarray) -> np.ndarray:
        return l2_normalize(np.stack([e[is_ref & (labels == n)].mean(0) for n in names]))

    emb = l2_normalize(np.asarray(emb, np.float32))
    cents = centroids(emb)
    if centred:  # centred on these models' mean, then centroids of the projected images
        emb = ScoreSpace(cents.mean(0).astype(np.float32)).project(emb)
        cents = centroids(emb)
    q, ql = emb[~is_ref], labels[~is_ref]
    s = q @ cents.T
    own = ql[:, None] == names[None, :]
    pair = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    iu = np.triu_indices(len(emb), 1)
    return {"centroid": (s[own], s[~own]), "pair": (pair[iu][same[iu]], pair[iu][~same[iu]])}


def fit_card(
    embed: Any,
    labels: np.ndarray,
    which: np.ndarray,
    *,
    refs: int,
    n_views: int,
    target_far: float = DEFAULT_TARGET_FAR,
    source: str = "held-out synthetic models",
) -> dict[str, Any]:
    """A model card's ``calibration``: the raw space at ``n_views`` views per image and,
    under ``by_views``, at one view (what a small image gives), and the same in the
    gallery-centred space under ``centred`` (:mod:`fpattr.scorespace`).

    ``embed(views) -> (N, D)`` fingerprints of the held-out models' images at that view
    count, rows matching ``labels`` and ``which`` (see :func:`card_scores`).
    """
    by = {v: embed(v) for v in ([n_views, 1] if n_views > 1 else [n_views])}

    def fit(views: int, centred: bool) -> dict[str, Any]:
        scores = card_scores(by[views], labels, which, refs, centred=centred)
        return {
            kind: Calibration.fit(g, i, target_far=target_far, source=source).to_dict()
            for kind, (g, i) in scores.items()
        }

    def space(centred: bool) -> dict[str, Any]:
        out: dict[str, Any] = {**fit(n_views, centred), "n_views": n_views}
        if n_views > 1:
            out["by_views"] = {"1": fit(1, centred)}
        return out

    return {**space(False), "centred": space(True)}
