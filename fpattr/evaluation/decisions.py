"""Decision quality under the policy ``attribute`` and ``verify`` use (design.md, Decisions).

Threshold-free figures (ROC-AUC, top-1) say how well an extractor ranks; these say what
an analyst gets: of the answers that name a model, how many are right (precision), how
many queries get a name at all (coverage), how often a model that is *not* enrolled is
named anyway (unseen-model named rate, leave-one-model-out) or a real photo is (real
named rate), the false-accept rate actually achieved at the threshold fitted for the
target, and whether the printed probabilities mean what they say (expected calibration
error, ECE, with the reliability table behind it).

Every row is decided by :class:`fpattr.decision.DecisionPolicy` from the references
alone. Two protocols:

* ``in-gallery``: the policy calibrates on the references of the models it matches
  against, exactly as ``attribute`` does with the user's gallery;
* ``generator-disjoint``: the generators are split in two halves; the calibration is
  fitted on the references of one half and the other half is measured, both ways.

Rows of the ECE: every query once with its model enrolled (correct when the decision
names it, or lists it among "ambiguous" candidates), every query once with its model
left out (correct when "unknown"), and every real photo (correct when "unknown"):
half the rows come from unknown sources, matching the policy's default prior of
"unknown" (0.5). The probability of a row is that of the decision it states.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fpattr.decision import (
    AMBIGUOUS,
    INCONCLUSIVE,
    INSUFFICIENT,
    UNKNOWN,
    DecisionPolicy,
    names_a_model,
)
from fpattr.evaluation import DISJOINT_SPLITS
from fpattr.gallery import Gallery, GalleryModel
from fpattr.views import l2_normalize

ECE_BINS = 10
SET_SIZES = (3, 5, 10)

PolicyFactory = Callable[[Gallery, Gallery | None], DecisionPolicy]


def make_gallery(emb: np.ndarray, labels: np.ndarray, names: list[str]) -> Gallery:
    """An in-memory gallery of ``names`` from reference embeddings (N, D) and labels (N,)."""
    g = Gallery(backbone={})
    for n in names:
        e = np.asarray(emb[labels == n], np.float32)
        g.models[n] = GalleryModel(n, e, [{"path": None, "sha256": None}] * len(e))
    return g


class _Rows:
    """Accumulates decided rows: (probability, correct, kind) plus the counters."""

    def __init__(self) -> None:
        self.prob: list[float] = []
        self.correct: list[bool] = []
        self.source_known: list[bool] = []
        self.known = {
            "n": 0,
            "named": 0,
            "named_correct": 0,
            "ambiguous": 0,
            "inconclusive": 0,
            "correct": 0,
        }
        self.unseen = {"n": 0, "named": 0}
        self.real = {"n": 0, "named": 0}
        # impostor comparisons (a query against a model that did not make it), by kind:
        # an enrolled query against the other enrolled models, a query of a generator not
        # enrolled (left out, or the other half's) and a real photo against every model
        self.impostor = {"n": 0, "accepted": 0}
        self.impostor_unseen = {"n": 0, "accepted": 0}
        self.impostor_real = {"n": 0, "accepted": 0}
        self.insufficient = 0
        # per generator not enrolled (left out, or the other half's): how often its
        # queries were named, as which model, and its impostor comparisons accepted
        self.look: dict[str, dict[str, Any]] = {}

    def add(self, d: dict[str, Any], truth: str | None) -> None:
        """One decision; ``truth`` None = the source is not enrolled."""
        dec = d["decision"]
        if dec is None:
            return
        if dec == INSUFFICIENT:
            self.insufficient += 1
            return
        if dec == INCONCLUSIVE:  # right when it leans the right way
            ok = d["leaning"] == (UNKNOWN if truth is None else truth)
        elif truth is None:
            ok = dec == UNKNOWN
        elif dec not in (UNKNOWN, AMBIGUOUS):
            ok = dec == truth
        else:
            ok = dec == AMBIGUOUS and truth in d["candidates"]
        if d["probability"] is not None:
            self.prob.append(float(d["probability"]))
            self.correct.append(bool(ok))
            self.source_known.append(truth is not None)
        return None

    def known_row(self, d: dict[str, Any], truth: str, sims: np.ndarray, names: list[str]) -> None:
        self.add(d, truth)
        dec = d["decision"]
        k = self.known
        k["n"] += 1
        if names_a_model(dec):
            k["named"] += 1
            k["named_correct"] += dec == truth
            k["correct"] += dec == truth
        elif dec == AMBIGUOUS:
            k["ambiguous"] += 1
        elif dec == INCONCLUSIVE:
            k["inconclusive"] += 1
        if d["threshold"] is not None:
            wrong = np.asarray([s for n, s in zip(names, sims, strict=False) if n != truth])
            self.impostor["n"] += wrong.size
            self.impostor["accepted"] += int(np.sum(wrong >= d["threshold"]))

    def unknown_row(
        self,
        d: dict[str, Any],
        bucket: dict[str, int],
        sims: np.ndarray | None = None,
        source: str | None = None,
    ) -> None:
        """A query whose source is not enrolled; ``source``: the generator not enrolled
        that made it (None: a real photo), counted in :func:`look_alikes`."""
        self.add(d, None)
        bucket["n"] += 1
        named = names_a_model(d["decision"])
        bucket["named"] += named
        accepted = n = 0
        if sims is not None and d["threshold"] is not None:
            imp = self.impostor_real if bucket is self.real else self.impostor_unseen
            n = int(np.size(sims))
            accepted = int(np.sum(np.asarray(sims) >= d["threshold"]))
            imp["n"] += n
            imp["accepted"] += accepted
        if source is not None:
            _count_look(self.look, source, named, d["decision"], accepted, n)

    def summary(self) -> dict[str, Any]:
        k = self.known
        prob, corr = np.asarray(self.prob), np.asarray(self.correct, bool)
        # rows weighted so that known and unknown sources each carry half, the policy's
        # prior of unknown, whatever the number of leave-out and unseen rows
        known = np.asarray(self.source_known, bool)
        w = np.where(known, 0.5 / max(known.sum(), 1), 0.5 / max((~known).sum(), 1))
        if not known.any() or known.all():
            w = np.ones(known.size)
        ece, bins = reliability(prob, corr, weight=w)
        imps = (self.impostor, self.impostor_unseen, self.impostor_real)
        return {
            "_rows": (prob, corr, w / max(w.sum(), 1e-12)),
            "_look": self.look,
            "accuracy": _ratio(k["correct"], k["n"]),
            "coverage": _ratio(k["named"], k["n"]),
            "precision": _ratio(k["named_correct"], k["named"]),
            "ambiguous_rate": _ratio(k["ambiguous"], k["n"]),
            "inconclusive_rate": _ratio(k["inconclusive"], k["n"]),
            "unseen_named_rate": _ratio(self.unseen["named"], self.unseen["n"]),
            "real_named_rate": _ratio(self.real["named"], self.real["n"]),
            "achieved_far": _ratio(sum(x["accepted"] for x in imps), sum(x["n"] for x in imps)),
            "far_enrolled": _ratio(self.impostor["accepted"], self.impostor["n"]),
            "far_unseen": _ratio(self.impostor_unseen["accepted"], self.impostor_unseen["n"]),
            "far_real": _ratio(self.impostor_real["accepted"], self.impostor_real["n"]),
            "ece": ece,
            "ece_floor": ece_floor(prob, w),
            "n_known": k["n"],
            "n_named": k["named"],
            "n_unseen": self.unseen["n"],
            "n_real": self.real["n"],
            "n_impostor_comparisons": sum(x["n"] for x in imps),
            "n_insufficient": self.insufficient,
            "reliability": bins,
        }


def _ratio(a: float, b: float) -> float | None:
    return round(float(a) / b, 4) if b else None


def reliability(
    prob: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS, weight: np.ndarray | None = None
) -> tuple[Any, list]:
    """Expected calibration error over ``bins`` equal-width bins and the table behind it.

    ECE = sum over bins of (weight in bin / total weight) * |accuracy in bin - mean
    probability in bin| (Guo et al., ICML 2017; rows weighted by ``weight``, default 1).
    Returns (ece or None without rows, [{"lo", "hi", "n", "weight", "confidence",
    "accuracy"}] for non-empty bins).
    """
    prob = np.asarray(prob, np.float64)
    correct = np.asarray(correct, np.float64)
    if prob.size == 0:
        return None, []
    w = np.ones(prob.size) if weight is None else np.asarray(weight, np.float64)
    w = w / w.sum()
    idx = np.clip((prob * bins).astype(int), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        sel = idx == b
        if not sel.any():
            continue
        conf = float(np.average(prob[sel], weights=w[sel]))
        acc = float(np.average(correct[sel], weights=w[sel]))
        ece += w[sel].sum() * abs(acc - conf)
        table.append(
            {
                "lo": b / bins,
                "hi": (b + 1) / bins,
                "n": int(sel.sum()),
                # the bin's share of the weight (rows are weighted: known and unknown
                # sources half each), what its gap counts for in the ECE
                "weight": round(float(w[sel].sum()), 4),
                "confidence": round(conf, 4),
                "accuracy": round(acc, 4),
            }
        )
    return round(float(ece), 4), table


def _sets(idx: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Disjoint random sets of ``size`` from ``idx`` (each query used at most once)."""
    perm = rng.permutation(idx)
    return [perm[k : k + size] for k in range(0, len(perm) - size + 1, size)]


def decide_queries(
    policy_for: PolicyFactory,
    ref_emb: np.ndarray,
    ref_lab: np.ndarray,
    q_emb: np.ndarray,
    q_lab: np.ndarray,
    names: list[str],
    *,
    real_emb: np.ndarray | None = None,
    q_views: np.ndarray | None = None,
    real_views: np.ndarray | None = None,
    calibration_names: list[str] | None = None,
    cal_emb: tuple[np.ndarray, np.ndarray] | None = None,
    unseen_emb: np.ndarray | None = None,
    unseen_lab: np.ndarray | None = None,
    set_size: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Decision metrics of single queries (``set_size`` 1) or pooled sets of queries.

    ``policy_for(gallery, calibration_gallery)`` builds the policy; with
    ``calibration_names``/``cal_emb`` the calibration gallery is those other models'
    references (calibration transfer), else the matched gallery itself. ``unseen_emb``/
    ``unseen_lab``: queries of generators outside the gallery (the other half of a
    generator-disjoint split), decided as unknowns beside the leave-one-model-out ones.
    """
    rng = np.random.default_rng(seed)
    rows = _Rows()
    cal_gallery = (
        make_gallery(cal_emb[0], cal_emb[1], calibration_names) if calibration_names else None
    )

    def units(
        q_lab: np.ndarray = q_lab, q_views: Any = q_views
    ) -> list[tuple[np.ndarray, str, int | None]]:
        """(row indices, label, views) of each query unit (an image or a pooled set)."""
        out = []
        for n in sorted(set(q_lab.tolist())):
            idx = np.flatnonzero(q_lab == n)
            groups = (
                [idx[k : k + 1] for k in range(len(idx))]
                if set_size == 1
                else _sets(idx, set_size, rng)
            )
            for gi in groups:
                v = None if q_views is None else int(q_views[gi].min())
                out.append((gi, n, v))
        return out

    def pooled(pol: DecisionPolicy, emb: np.ndarray, gi: np.ndarray) -> np.ndarray:
        # a unit pools its images in the policy's score space, as attribute --as-set does
        return l2_normalize(pol.project(emb[gi]).mean(0))

    queries = units()
    full = make_gallery(ref_emb, ref_lab, names)
    pol = policy_for(full, cal_gallery)
    gnames, cents = pol.gallery_centroids()
    for gi, truth, v in queries:
        sims = cents @ pooled(pol, q_emb, gi)
        d = pol.decide_scores(sims, gnames, set_size=set_size, views=v)
        rows.known_row(d, truth, sims, gnames)
    if real_emb is not None and len(real_emb) and set_size == 1:
        for k, e in enumerate(pol.project(real_emb)):
            v = None if real_views is None else int(real_views[k])
            sims = cents @ e
            rows.unknown_row(pol.decide_scores(sims, gnames, views=v), rows.real, sims)
    if unseen_emb is not None and len(unseen_emb):
        for gi, source, v in units(unseen_lab, None):
            sims = cents @ pooled(pol, unseen_emb, gi)
            rows.unknown_row(
                pol.decide_scores(sims, gnames, set_size=set_size, views=v),
                rows.unseen,
                sims,
                source,
            )
    for h in names:  # leave one model out: its queries come from an unseen model
        rest = [n for n in names if n != h]
        if len(rest) < 2:
            continue
        g = make_gallery(ref_emb, ref_lab, rest)
        pol_h = policy_for(g, cal_gallery)
        rn, rc = pol_h.gallery_centroids()
        for gi, truth, v in queries:
            if truth == h:
                sims = rc @ pooled(pol_h, q_emb, gi)
                d = pol_h.decide_scores(sims, rn, set_size=set_size, views=v)
                rows.unknown_row(d, rows.unseen, sims, h)
    out = rows.summary()
    cal = pol.calibration("image-vs-model", set_size=set_size)
    out["threshold"] = None if cal is None else round(cal.threshold, 4)
    out["calibration_source"] = None if cal is None else cal.source
    out["n_units"] = len(queries)
    return out


def decide_pairs(
    policy: DecisionPolicy,
    q_emb: np.ndarray,
    q_lab: np.ndarray,
    n_pairs: int,
    seed: int = 0,
    q_views: np.ndarray | None = None,
) -> dict[str, Any]:
    """Verify decisions on balanced single-image pairs of queries."""
    from fpattr.evaluation.metrics import sample_pairs

    pairs, same = sample_pairs(np.asarray(q_lab), n_pairs, np.random.default_rng(seed))
    prob, corr = [], []
    n_same = n_same_ok = n_imp = n_imp_acc = n_diff = n_inconclusive = 0
    thr = None
    q_emb = policy.project(q_emb)
    for (a, b), genuine in zip(pairs, same, strict=False):
        s = float(q_emb[a] @ q_emb[b])
        v = None if q_views is None else int(min(q_views[a], q_views[b]))
        d = policy.verify(s, views=v)
        if d["decision"] is None:
            continue
        thr = d["threshold"]
        dec = d["decision"]
        if not genuine:
            n_imp += 1
            n_imp_acc += s >= d["threshold"]
        if dec == "same":
            n_same += 1
            n_same_ok += bool(genuine)
        elif dec == "different":
            n_diff += 1
        else:
            n_inconclusive += 1
        if d["probability"] is not None and dec != INSUFFICIENT:
            lean = d["leaning"] or dec
            prob.append(d["probability"])
            corr.append((lean == "same") == bool(genuine))
    ece, bins = reliability(np.asarray(prob), np.asarray(corr, bool))
    n = len(pairs)
    w = np.full(len(prob), 1.0 / max(len(prob), 1))
    return {
        "_rows": (np.asarray(prob, np.float64), np.asarray(corr, bool), w),
        "n_pairs": int(n),
        "threshold": None if thr is None else round(float(thr), 4),
        "achieved_far": _ratio(n_imp_acc, n_imp),
        "precision": _ratio(n_same_ok, n_same),
        # as for queries (known ones that get a name): genuine pairs answered "same"; a
        # "same" given to an impostor pair is a false accept, not coverage
        "coverage": _ratio(n_same_ok, int(same.sum())),
        "same_rate_genuine": _ratio(n_same_ok, int(same.sum())),
        "inconclusive_rate": _ratio(n_inconclusive, n),
        "ece": ece,
        "ece_floor": ece_floor(np.asarray(prob, np.float64), w),
        "reliability": bins,
    }


def ece_floor(prob: np.ndarray, weight: np.ndarray, draws: int = 50, seed: int = 0) -> Any:
    """The ECE a perfectly calibrated predictor would *measure* on these rows: outcomes
    drawn as Bernoulli(prob), averaged over ``draws``. ECE is biased upward on finite
    samples (empty-ish bins carry noise), so a measured ECE is only meaningful against it.
    """
    prob = np.asarray(prob, np.float64)
    if prob.size == 0:
        return None
    rng = np.random.default_rng(seed)
    vals = [reliability(prob, rng.random(prob.size) < prob, weight=weight)[0] for _ in range(draws)]
    return round(float(np.mean(vals)), 4)


def _pool_rows(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """One reliability over every fold's rows, each fold weighing the same: the calibration
    of the protocol's probabilities, without the per-fold small-sample bias."""
    rows = [b["_rows"] for b in blocks if b.get("_rows") is not None and len(b["_rows"][0])]
    if not rows:
        return {"ece_pooled": None, "ece_pooled_floor": None, "reliability_pooled": []}
    p = np.concatenate([r[0] for r in rows])
    c = np.concatenate([r[1] for r in rows])
    w = np.concatenate([r[2] / len(rows) for r in rows])
    ece, table = reliability(p, c, weight=w)
    return {"ece_pooled": ece, "ece_pooled_floor": ece_floor(p, w), "reliability_pooled": table}


def _new_look() -> dict[str, Any]:
    """One generator's look-alike counts (:func:`_count_look`, :func:`look_alikes`)."""
    return {"queries": 0, "named": 0, "named_as": {}, "accepted": 0, "comparisons": 0}


def _count_look(
    look: dict[str, dict[str, Any]],
    source: str,
    named: bool,
    decision: str | None,
    accepted: int,
    comparisons: int,
) -> None:
    u = look.setdefault(source, _new_look())
    u["queries"] += 1
    u["accepted"] += accepted
    u["comparisons"] += comparisons
    if named:
        u["named"] += 1
        u["named_as"][decision] = u["named_as"].get(decision, 0) + 1


def look_alikes(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per generator not enrolled, over the blocks (folds) that left it out: how often
    its queries were named as an enrolled model (``named_rate``), which model most often
    (``named_as``, with its share of the named ones), and the share of its impostor
    comparisons at or above the threshold (``far``); highest named rate first, then
    highest ``far``. Where the false accepts of a protocol come from: a generator that
    copies an enrolled one's design passes for it, and no threshold that accepts that
    model's own images keeps it out."""
    total: dict[str, dict[str, Any]] = {}
    for b in blocks:
        for g, u in (b.get("_look") or {}).items():
            t = total.setdefault(g, _new_look())
            for k in ("queries", "named", "accepted", "comparisons"):
                t[k] += u[k]
            for m, c in u["named_as"].items():
                t["named_as"][m] = t["named_as"].get(m, 0) + c
    out = []
    for g, t in total.items():
        top = max(sorted(t["named_as"]), key=lambda m: t["named_as"][m], default=None)
        out.append(
            {
                "generator": g,
                "queries": t["queries"],
                "named_rate": _ratio(t["named"], t["queries"]),
                "named_as": top,
                "named_as_share": _ratio(t["named_as"][top], t["named"]) if top else None,
                "far": _ratio(t["accepted"], t["comparisons"]),
            }
        )
    return sorted(out, key=lambda r: (-(r["named_rate"] or 0), -(r["far"] or 0), r["generator"]))


def _strip_rows(x: Any) -> Any:
    """Drop the private ``_rows`` arrays and ``_look`` counts from a result tree (the
    first are not JSON, the second are summed into ``look_alikes``)."""
    if isinstance(x, dict):
        return {k: _strip_rows(v) for k, v in x.items() if k not in ("_rows", "_look")}
    if isinstance(x, list):
        return [_strip_rows(v) for v in x]
    return x


#: Held-out genuine cosine of the references above that of the queries beyond which
#: evaluate warns that the calibration fitted on the references is optimistic.
REFERENCE_GAP_WARN = 0.02


def reference_gap(
    policy_for: PolicyFactory,
    ref_emb: np.ndarray,
    ref_lab: np.ndarray,
    q_emb: np.ndarray,
    q_lab: np.ndarray,
    names: list[str],
) -> dict[str, Any]:
    """How much more the references resemble each other than the queries resemble them.

    The policy calibrates on the references alone (leave-one-out genuine scores); when
    they come from one batch (cut from one figure, one prompt, one seed range) they
    resemble each other more than the model's other images resemble them, and every
    genuine probability fitted on them is optimistic. Per model: the mean held-out
    genuine cosine of the references (:meth:`DecisionPolicy.held_out_genuine`) and the
    mean cosine of its queries with its centroid, in the policy's score space; ``gap``
    is the first minus the second, pooled as the mean over models.
    Returns ``{"gap", "per_model": {m: {"references", "queries", "gap"}}, "warn"}``.
    """
    pol = policy_for(make_gallery(ref_emb, ref_lab, names), None)
    held = pol.held_out_genuine()
    gnames, cents = pol.gallery_centroids()
    proj = pol.project(q_emb) if len(q_emb) else np.zeros((0, cents.shape[1]))
    per: dict[str, dict[str, float]] = {}
    for m in names:
        sel = q_lab == m
        if m not in held or not sel.any():
            continue
        q = float(np.mean(proj[sel] @ cents[gnames.index(m)]))
        per[m] = {
            "references": round(held[m], 4),
            "queries": round(q, 4),
            "gap": round(held[m] - q, 4),
        }
    gap = round(float(np.mean([v["gap"] for v in per.values()])), 4) if per else None
    return {"gap": gap, "per_model": per, "warn": gap is not None and gap > REFERENCE_GAP_WARN}


def generator_halves(
    names: list[str], splits: int, seed: int
) -> Iterator[tuple[list[str], list[str]]]:
    """(enrolled, unseen) model names of the generator-disjoint folds: ``splits`` seeded
    random halves of ``names``, each half enrolled once while the other is unseen.

    The splits are distinct: a draw that repeats an earlier split is drawn again, and a
    bench with fewer distinct ways to halve its models than ``splits`` gets each of them
    once (4 models have 3: a repeated split weighed twice in the mean, and 1,000 splits
    of 4 models ran for minutes repeating 3, break-it).
    """
    m = len(names)
    distinct = math.comb(m, m // 2) // (2 if m % 2 == 0 else 1) if m >= 2 else 0
    rng = np.random.default_rng(seed)
    seen: set[tuple[str, ...]] = set()
    while len(seen) < min(splits, distinct):
        perm = [names[k] for k in rng.permutation(m)]
        half_a, half_b = sorted(perm[: m // 2]), sorted(perm[m // 2 :])
        # a split is its pair of halves; with an odd count the smaller half names it
        key = tuple(half_a if m % 2 else min(half_a, half_b))
        if key in seen:
            continue
        seen.add(key)
        yield half_b, half_a
        yield half_a, half_b


def decision_quality(
    policy_for: PolicyFactory,
    emb: np.ndarray,
    labels: np.ndarray,
    roles: np.ndarray,
    names: list[str],
    *,
    views: np.ndarray | None = None,
    n_pairs: int = 4000,
    seed: int = 0,
    set_sizes: tuple[int, ...] = SET_SIZES,
    splits: int = DISJOINT_SPLITS,
) -> dict[str, Any]:
    """Every protocol's decision metrics for one backbone's embeddings of a bench.

    ``emb`` (N, D) L2-normalised; ``labels`` (N,) model name (or None for real photos);
    ``roles`` (N,) "ref" / "query" / "real"; ``views`` (N,) effective views or None.
    """
    labels = np.asarray(labels, dtype=object)
    roles = np.asarray(roles)
    is_ref = (roles == "ref") & np.isin(labels, names)
    is_q = (roles == "query") & np.isin(labels, names)
    is_real = roles == "real"
    ref_emb, ref_lab = emb[is_ref], labels[is_ref]
    q_emb, q_lab = emb[is_q], labels[is_q]
    v_q = None if views is None else views[is_q]
    v_real = None if views is None else views[is_real]

    def block(
        sub: list[str], cal_sub: list[str] | None = None, other: list[str] | None = None
    ) -> dict[str, Any]:
        rs, qs = np.isin(ref_lab, sub), np.isin(q_lab, sub)
        cal = None
        if cal_sub:
            cs = np.isin(ref_lab, cal_sub)
            cal = (ref_emb[cs], ref_lab[cs])
        unseen = {}
        if other:
            os_ = np.isin(q_lab, other)
            unseen = {"unseen_emb": q_emb[os_], "unseen_lab": q_lab[os_]}
        common = {"calibration_names": cal_sub, "cal_emb": cal, "seed": seed, **unseen}
        # the gallery half and its queries, shared by every unit (indexed once)
        base = (policy_for, ref_emb[rs], ref_lab[rs], q_emb[qs], q_lab[qs], sub)
        res: dict[str, Any] = {
            "single": decide_queries(
                *base,
                real_emb=emb[is_real],
                q_views=None if v_q is None else v_q[qs],
                real_views=v_real,
                **common,
            ),
            "sets": {},
        }
        for n in set_sizes:
            r = decide_queries(*base, set_size=n, **common)
            if r["n_units"]:
                res["sets"][str(n)] = r
        pol = policy_for(
            make_gallery(ref_emb[rs], ref_lab[rs], sub),
            make_gallery(*cal, cal_sub) if cal else None,
        )
        cal_in_force = pol.calibration("image-vs-model")
        # what the fit says of itself (a threshold that cannot reach the target FAR on so
        # few impostor scores): said by gallery calibrate, unsaid here (break-it 28b)
        res["calibration_notes"] = list(
            (cal_in_force.details if cal_in_force else {}).get("notes", [])
        )
        res["pairs"] = decide_pairs(
            pol,
            q_emb[qs],
            q_lab[qs],
            n_pairs,
            seed=seed,
            q_views=None if v_q is None else v_q[qs],
        )
        return res

    out: dict[str, Any] = {"in_gallery": block(names), "notes": []}
    out["notes"] += [f"in-gallery calibration: {n}" for n in out["in_gallery"]["calibration_notes"]]
    out["reference_gap"] = reference_gap(policy_for, ref_emb, ref_lab, q_emb, q_lab, names)
    if out["reference_gap"]["warn"]:
        out["notes"].append(
            "the references resemble each other more than the queries resemble them (mean "
            f"held-out genuine cosine {out['reference_gap']['gap']:+.3f} above the queries'): "
            "the calibration fitted on them is optimistic; references from one batch (one "
            "figure, prompt or seed range) do this, references drawn like the queries do not"
            " (largest: "
            + ", ".join(
                f"{m} {v['gap']:+.3f}"
                for m, v in sorted(
                    out["reference_gap"]["per_model"].items(), key=lambda kv: -kv[1]["gap"]
                )[:3]
            )
            + ")"
        )
    missing = [n for n in set_sizes if str(n) not in out["in_gallery"]["sets"]]
    if missing:
        out["notes"].append(
            f"no sets of {', '.join(map(str, missing))}: no model has that many queries"
        )
    if len(names) < 4:
        out["notes"].append(
            "generator-disjoint and calibration-transfer protocols need >= 4 models "
            f"(this bench has {len(names)})"
        )
    else:
        folds, transfer = [], []
        for enrolled, unseen in generator_halves(names, splits, seed):
            folds.append({"enrolled": enrolled, "unseen": unseen, **block(enrolled, other=unseen)})
            transfer.append(
                {"calibrated_on": unseen, "measured_on": enrolled, **block(enrolled, unseen)}
            )
        done = len(folds) // 2  # distinct splits: fewer than asked on a small bench
        out["generator_disjoint"] = {"splits": done, "folds": folds, "mean": _mean_folds(folds)}
        out["calibration_transfer"] = {
            "splits": done,
            "folds": transfer,
            "mean": _mean_folds(transfer),
        }
    ig = out["in_gallery"]
    for unit in [ig["single"], ig["pairs"], *ig["sets"].values()]:
        unit["ece_pooled"], unit["ece_pooled_floor"] = unit["ece"], unit.get("ece_floor")
    ig["single"]["look_alikes"] = look_alikes([ig["single"]])
    return _strip_rows(out)


#: The headline figures of a decision block (also the keys of evaluate's ``decisions``).
HEADLINE_KEYS = (
    "accuracy",
    "coverage",
    "precision",
    "ambiguous_rate",
    "inconclusive_rate",
    "unseen_named_rate",
    "real_named_rate",
    "achieved_far",
    "ece",
)


def _mean_folds(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Unweighted mean over folds of each headline figure (None where a fold has none)."""

    def mean(vals: list[Any]) -> float | None:
        v = [x for x in vals if x is not None]
        return round(float(np.mean(v)), 4) if v else None

    keys = (*HEADLINE_KEYS, "ece_floor", "far_enrolled", "far_unseen", "far_real")
    out: dict[str, Any] = {
        "single": {k: mean([f["single"][k] for f in folds]) for k in keys}
        | _pool_rows([f["single"] for f in folds])
        | {"look_alikes": look_alikes([f["single"] for f in folds])}
    }
    out["sets"] = {
        n: {k: mean([f["sets"][n][k] for f in folds if n in f["sets"]]) for k in keys}
        | _pool_rows([f["sets"][n] for f in folds if n in f["sets"]])
        for n in folds[0]["sets"]
    }
    out["pairs"] = {
        k: mean([f["pairs"][k] for f in folds])
        for k in ("achieved_far", "precision", "coverage", "inconclusive_rate", "ece", "ece_floor")
    } | _pool_rows([f["pairs"] for f in folds])
    return out
