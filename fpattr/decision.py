"""The decision policy: the one place where similarities become decisions and probabilities.

Every path (``attribute`` per image and ``--as-set``, ``verify`` of files and folders,
``evaluate``, the reports) asks a :class:`DecisionPolicy` for a :class:`FittedCalibration`
suited to the comparison at hand and for the decision. The policy knows:

* the extractor's model card (fitted on held-out *synthetic* models: a prior, never
  the final word on real generators);
* the gallery's own references (the only in-domain data the tool ever sees): held-out
  genuine and impostor scores by leave-one-out, for exactly the comparison being made
  (image vs model, image vs image, set of n vs model, folder vs folder);
* the query's effective evidence (views covering distinct pixels) and set size;
* the user's ``--target-far`` / ``--threshold``.

Method (docs/methods/decision-policy.md):

1. Score model. The similarity ``s`` is mapped to ``phi = -log(1 - s)``, which spreads the
   high-similarity tail where genuine and impostor scores separate; genuine and impostor
   ``phi`` are modelled as Gaussians and the log-likelihood ratio is their log density
   ratio, held constant below its minimum so it never decreases with ``s``.
2. Shrinkage toward the card. ``llr = w * llr_gallery + (1 - w) * llr_card`` with
   ``w = n / (n + n0)``, ``n`` the number of held-out genuine comparisons in the gallery and
   ``n0`` (``PRIOR_STRENGTH``) the card's weight in pseudo-comparisons (log-linear opinion
   pooling). The threshold is pooled with the gallery's weight ``min(1, e)``, ``e`` the
   impostor exceedances the target allows (``(n_impostor + 1) * target_far``, the
   conformal count of :func:`fpattr.calibration.impostors_allowed`): the card only
   fills in while the gallery cannot put one impostor score above the threshold, and
   never lowers it below the gallery's highest held-out impostor score.
3. Posterior. P(model m) is proportional to ``(1 - prior_unknown) / M * LR(s_m)``,
   P(unknown) to ``prior_unknown``: a posterior over the enrolled models and "unknown"
   that sums to 1.
4. Decision. Below the threshold (fitted for the target false-accept rate) the answer is
   "unknown" with P(unknown); above it the top model is named when its posterior is at
   least ``min_probability``, else the answer is "ambiguous" between the top candidates
   with the probability of that set. No fingerprint evidence (every view flat) is
   "insufficient signal", never a match.
5. Display. The probability shown for each kind of decision passes through a logistic
   recalibration fitted on pseudo-queries made of the references (each once known,
   leave-one-out, and once unknown, leave-one-model-out), shrunk toward the identity.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fpattr.calibration import (
    DEFAULT_TARGET_FAR,
    SCORE_TOLERANCE,
    ClusteredThreshold,
    far_levels,
    threshold_at_far_clustered,
)
from fpattr.scorespace import ScoreSpace, gallery_centre
from fpattr.views import l2_normalize

#: Weight of the card's calibration, in held-out genuine comparisons (the gallery's
#: leave-one-out comparisons outweigh it from ~10 references on).
PRIOR_STRENGTH = 10.0
DEFAULT_PRIOR_UNKNOWN = 0.5
DEFAULT_MIN_PROBABILITY = 0.5
#: Pseudo-sets drawn per model and set size when fitting set calibrations.
SET_SAMPLES = 20
INSUFFICIENT = "insufficient signal"
AMBIGUOUS = "ambiguous"
INCONCLUSIVE = "inconclusive"
UNKNOWN = "unknown"
#: Decisions that name no enrolled model.
NOT_A_MODEL = frozenset({UNKNOWN, AMBIGUOUS, INCONCLUSIVE, INSUFFICIENT})
_EPS = 1e-6
#: Largest |log-likelihood ratio| one comparison may claim.
LLR_CAP = 20.0


def names_a_model(decision: str | None) -> bool:
    """Whether a decision names an enrolled model (None: no decision was made)."""
    return decision is not None and decision not in NOT_A_MODEL


def _phi(s: Any) -> np.ndarray:
    """-log(1 - s) of cosines in [-1, 1] (clipped below 1), elementwise float64."""
    return -np.log1p(-np.minimum(np.asarray(s, dtype=np.float64), 1.0 - _EPS))


# --------------------------------------------------------------------------- score models


@dataclass(frozen=True)
class ScoreModel:
    """Log-likelihood ratio of 'same source' vs 'different' as a function of a cosine.

    ``kind="gaussian-phi"``: ``params`` = (mean, sd) of genuine and impostor ``phi``;
    ``kind="logistic"``: ``params`` = (a, b), llr = a * s + b (the model card's form).
    """

    kind: str
    params: tuple[float, ...]

    def llr(self, s: Any) -> np.ndarray:
        """Natural-log LR of cosines ``s`` (any shape) -> float64 array of that shape."""
        s = np.asarray(s, dtype=np.float64)
        if self.kind == "logistic":
            a, b = self.params
            return a * s + b
        mg, sg, mi, si = self.params
        f = _phi(s)
        if sg > si:  # the density ratio has a minimum: hold it constant below (monotone)
            f = np.maximum(f, (mi * sg**2 - mg * si**2) / (sg**2 - si**2))
        elif sg < si:  # it has a maximum: hold it constant above
            f = np.minimum(f, (mi * sg**2 - mg * si**2) / (sg**2 - si**2))
        return (
            -0.5 * ((f - mg) / sg) ** 2 + 0.5 * ((f - mi) / si) ** 2 + math.log(si) - math.log(sg)
        )

    @classmethod
    def fit(cls, genuine: np.ndarray, impostor: np.ndarray) -> ScoreModel | None:
        """Gaussian-phi model from held-out genuine / impostor cosines (>= 2 of each);
        None when genuine scores are not higher than impostor ones on average (the
        references do not separate the models: shared or near-identical references)."""
        g, i = _phi(genuine), _phi(impostor)
        if g.mean() <= i.mean():
            return None
        floor = 0.02  # sd floor: a few identical references must not give infinite LRs
        return cls(
            "gaussian-phi",
            (
                float(g.mean()),
                max(float(g.std(ddof=1)), floor),
                float(i.mean()),
                max(float(i.std(ddof=1)), floor),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "params": [round(p, 6) for p in self.params]}


@dataclass(frozen=True)
class PooledScoreModel:
    """``w * gallery.llr + (1 - w) * prior.llr`` (either may be absent)."""

    gallery: ScoreModel | None
    prior: ScoreModel | None
    weight: float  #: weight of the gallery's model in [0, 1]

    def llr(self, s: Any) -> np.ndarray:
        out = np.zeros(np.shape(s), dtype=np.float64)
        if self.gallery is not None and self.weight > 0:
            out += self.weight * self.gallery.llr(s)
        if self.prior is not None and self.weight < 1:
            out += (1.0 - self.weight) * self.prior.llr(s)
        # no single comparison is worth more than odds of e^20 either way
        return np.clip(out, -LLR_CAP, LLR_CAP)


# --------------------------------------------------------------------------- calibration


@dataclass
class FittedCalibration:
    """What decides one kind of comparison: threshold, LR model and where they came from."""

    comparison: str  #: "image-vs-model", "image-vs-image", "set-vs-model", "set-vs-set"
    threshold: float
    target_far: float | None  #: the false-accept rate the threshold was fitted for
    score: PooledScoreModel | None  #: None: no probability model (user threshold alone)
    source: str  #: "gallery", "model-card", "gallery+model-card", "user-threshold", ...
    why: str
    set_size: int = 1
    views: int | None = None
    n_genuine: int = 0
    n_impostor: int = 0
    gallery_weight: float = 0.0
    achieved_far: float | None = None  #: on the gallery's held-out impostor scores
    details: dict[str, Any] = field(default_factory=dict)
    #: decision kind -> (slope, intercept) on the logit of the raw probability, fitted on
    #: the gallery's pseudo-queries (:meth:`DecisionPolicy._display_maps`); absent: identity
    display: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: per enrolled model, the chance that a query from a generator *not* enrolled scores
    #: against it like one of its own (:func:`resemblance_rate`); caps the LR at 1/beta
    resemblance: float = 0.0
    #: the processing (fpattr.processing.PROCESSINGS) the pseudo-queries went through:
    #: a calibration for queries stored unlike the references; None: for clean queries
    processing: str | None = None

    def displayed(self, kind: str, p: float) -> float:
        """The probability shown for a decision of ``kind`` whose raw probability is ``p``."""
        if kind not in self.display:
            return p
        a, b = self.display[kind]
        x = math.log(max(p, _EPS) / max(1.0 - p, _EPS))
        return 1.0 / (1.0 + math.exp(-float(np.clip(a * x + b, -50, 50))))

    def llr(self, s: Any) -> np.ndarray:
        if self.score is None:
            raise ValueError("this calibration has no probability model")
        llr = self.score.llr(s)
        if self.resemblance > 0:
            # the unknown hypothesis is a mixture: an unseen generator scores like an
            # impostor, or (chance beta) like a sibling of the model, as its own images would
            b = self.resemblance
            llr = llr - np.logaddexp(math.log1p(-b), math.log(b) + llr)
        return llr

    def info(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("score", "details", "display")}
        d["display_maps"] = {k: [round(a, 4), round(b, 4)] for k, (a, b) in self.display.items()}
        d["threshold"] = round(self.threshold, 6)
        d["probabilities"] = self.score is not None
        if self.score is not None:
            d["score_model"] = {
                "gallery": self.score.gallery.to_dict() if self.score.gallery else None,
                "prior": self.score.prior.to_dict() if self.score.prior else None,
                "gallery_weight": round(self.score.weight, 4),
            }
        d.update(self.details)
        return d


def _card_entry(card: dict[str, Any] | None, kind: str, views: int | None) -> dict | None:
    """The card's calibration for ``kind`` ("centroid" | "pair") at ``views`` views."""
    if not card or kind not in card:
        return None
    by = card.get("by_views") or {}
    default_views = int(card.get("n_views", 0) or 0)
    if views is not None and by and views < default_views:
        ks = sorted(int(k) for k in by if isinstance(by[k], dict) and kind in by[k])
        if ks:
            k = max([k for k in ks if k <= views] or [ks[0]])
            return {**by[str(k)][kind], "_views": k}
    return {**card[kind], "_views": default_views or None}


# --------------------------------------------------------------------------- policy


class DecisionPolicy:
    """Turns similarities into decisions and probabilities for one gallery and backbone.

    ``card``: the backbone's ``calibration()`` dict (or None); ``gallery``: the enrolled
    models (or None for verify without a gallery); ``calibration_gallery``: where
    held-out scores are drawn from (default: ``gallery``; the evaluation's calibration-
    transfer protocol passes another half of the generators). Fitted calibrations are
    cached per (comparison, set sizes, views).
    """

    def __init__(
        self,
        card: dict[str, Any] | None,
        gallery: Any = None,
        *,
        target_far: float = DEFAULT_TARGET_FAR,
        threshold: float | None = None,
        prior_unknown: float = DEFAULT_PRIOR_UNKNOWN,
        min_probability: float = DEFAULT_MIN_PROBABILITY,
        prior_strength: float = PRIOR_STRENGTH,
        calibration_gallery: Any = None,
        seed: int = 0,
        processed_references: dict[str, np.ndarray] | None = None,
        processing: str | None = None,
        threshold_floor: DecisionPolicy | None = None,
    ) -> None:
        if not 0 < target_far < 1:
            raise ValueError(f"target false-accept rate must be in (0, 1), not {target_far}")
        if not 0 < prior_unknown < 1:
            raise ValueError(f"prior of unknown must be in (0, 1), not {prior_unknown}")
        if not 0 < min_probability <= 1:
            raise ValueError(f"min probability must be in (0, 1], not {min_probability}")
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise ValueError(f"a cosine threshold must be in [-1, 1], not {threshold}")
        # the space scores are taken in (fpattr.scorespace): the gallery held here and every
        # similarity handed to the policy are in it; callers project with self.project
        self.space = ScoreSpace.for_gallery(card, gallery)
        self.card = self.space.card(card) or None
        self.raw_gallery = gallery
        self.gallery = self.space.gallery(gallery)
        # held-out scores come from the raw calibration gallery and its space: a model left
        # out also leaves the centre (ScoreSpace.without), as a generator never enrolled
        self.cal_space = self.space
        self.raw_cal_gallery = gallery
        if calibration_gallery is not None:
            # another set of generators: centred on its own mean, as a gallery would be
            self.raw_cal_gallery = calibration_gallery
            centre = gallery_centre(calibration_gallery)
            if self.space.centred and centre is not None:
                self.cal_space = ScoreSpace(centre)
        self.cal_gallery = self.cal_space.gallery(self.raw_cal_gallery)
        self.target_far = float(target_far)
        self.user_threshold = None if threshold is None else float(threshold)
        self.prior_unknown = float(prior_unknown)
        self.min_probability = float(min_probability)
        self.prior_strength = float(prior_strength)
        self.seed = seed
        # the calibration gallery's references after the processing the queries went
        # through (name -> (R, D) raw embeddings, rows as the references'): pseudo-queries
        # are then drawn from them, against the clean centroids (pseudo_queries)
        self.processed_references = processed_references
        self.processing = processing
        # the clean policy of the same gallery: a processed calibration's threshold never
        # goes below its threshold for the same comparison. Which processing a query went
        # through is inferred from its file (fpattr.processing.query_processing) and can be
        # wrong; under the higher of the two thresholds the false-accept rate stays at the
        # target whether the query was processed or not (a break-it pass: a 127 x 128 crop
        # of an unseen generator was named on the x0.5 calibration's lower threshold)
        self.threshold_floor = threshold_floor
        self._cache: dict[tuple, FittedCalibration | None] = {}
        self._names: list[str] | None = None
        self._centroids: np.ndarray | None = None

    # -- description -----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Settings and the calibrations fitted so far (for manifests and reports)."""
        return {
            "policy": "fpattr.decision/1",
            "target_far": self.target_far,
            "user_threshold": self.user_threshold,
            "prior_unknown": self.prior_unknown,
            "min_probability": self.min_probability,
            "prior_strength": self.prior_strength,
            "card": bool(self.card),
            "score_space": self.space.info(),
            "calibrations": [c.info() for c in self._cache.values() if c is not None],
        }

    def project(self, embeddings: Any) -> np.ndarray:
        """Raw fingerprints (D,) or (N, D) -> unit vectors in the policy's score space
        (:class:`fpattr.scorespace.ScoreSpace`): every similarity handed to
        :meth:`decide_scores` or :meth:`verify` is a dot product of these."""
        return self.space.project(embeddings)

    # -- calibration -----------------------------------------------------------------------------

    def card_view_counts(self) -> list[int]:
        """View counts below the card's default that it has a calibration for (the ones
        small images are decided with), ascending; empty without a card."""
        if not self.card:
            return []
        default = int(self.card.get("n_views", 0) or 0)
        by = self.card.get("by_views") or {}
        return sorted(int(k) for k in by if isinstance(by[k], dict) and int(k) < default)

    def calibration(
        self,
        comparison: str = "image-vs-model",
        *,
        set_size: int = 1,
        other_size: int = 1,
        views: int | None = None,
    ) -> FittedCalibration | None:
        """The calibration for a comparison, fitted on first use and cached.

        ``comparison``: "image-vs-model" (a query of ``set_size`` images pooled into one
        embedding vs an enrolled model's centroid) or "image-vs-image" (``set_size`` images
        vs ``other_size`` images: two files, or two folders pooled). ``views``: the
        query's effective views (fewer than the extractor's default picks the card's
        calibration fitted at that view count). Returns None when nothing can calibrate
        (no card, fewer than 2 models with 2 references, no user threshold).
        """
        if comparison not in ("image-vs-model", "image-vs-image"):
            raise ValueError(f"unknown comparison {comparison!r}")
        key = (comparison, int(set_size), int(other_size), views)
        if key not in self._cache:
            self._cache[key] = self._fit(comparison, int(set_size), int(other_size), views)
        return self._cache[key]

    def _held_out(self, comparison: str, n: int, m: int) -> dict[str, Any] | None:
        """Held-out genuine/impostor scores (and pseudo-queries) from the calibration gallery."""
        if self.cal_gallery is None or len(self.cal_gallery.models) < 2:
            return None
        gallery, note = _calibration_sample(self.raw_cal_gallery, self.seed)
        if comparison == "image-vs-image":
            held = pseudo_pairs(self.cal_space.gallery(gallery), n, m, seed=self.seed)
            # no clusters: both images of an impostor pair come from new generators, and
            # resampling generators (both sides at once, as threshold_at_far_clustered
            # does for (P, 2) clusters) over-corrects: on the project benchmark
            # (generator-disjoint, 8 models a half) it fitted at 1/8 of the target and
            # accepted 0.03 % of pairs at target 1 %; resampling the pairs of generators
            # instead, 0.20 % (the product weights of a two-way array's bootstrap
            # overstate its variance: McCullagh, Bernoulli 2000)
        else:
            pq = pseudo_queries(
                gallery,
                n,
                seed=self.seed,
                space=self.cal_space,
                n_models=len(self.raw_cal_gallery.models),
                queries_from=self.processed_references,
            )
            if self.processed_references is not None:
                pq["notes"] = [
                    *pq["notes"],
                    f"calibrated for {self.processing or 'processed'} queries: pseudo-queries "
                    "are the references after that processing, against their clean centroids",
                ]
            g = np.array([s[t] for s, t in pq["known"]], np.float64)
            i = np.concatenate([s for s, _ in pq["unknown"]] or [np.zeros(0)])
            # each impostor score's cluster: the generator its query was made from, numbered
            # by name so that the bootstrap's draws do not depend on the enrolment order
            rank = np.argsort(np.argsort(np.asarray(pq["names"], dtype=object)))
            c = [np.full(s.size, rank[t]) for s, t in pq["unknown"]]
            if self.cal_space.centred and n == 1:
                # impostor comparisons are of two kinds that differ once the space is
                # centred: a generator never enrolled (outside the centre, the unknown rows)
                # and another enrolled model (inside it: the known rows' other models).
                # Sets keep the first kind only: their known rows pool fewer references
                # rescaled to n, a rescaling that holds for the model's own direction and
                # inflates its cosines with others (measured: it emptied the public sets of
                # 10); so a set's threshold errs high.
                other = [np.delete(s, t) for s, t in pq["known"]]
                i = np.concatenate([i, *other])
                c += [np.full(s.size - 1, rank[t]) for s, t in pq["known"]]
            clusters = np.concatenate(c or [np.zeros(0, np.int64)])
            held = {**pq, "genuine": g, "impostor": i, "impostor_clusters": clusters}
        if note:
            held["notes"] = [*held.get("notes", []), note]
        return held

    def _pool(
        self,
        g: np.ndarray,
        i: np.ndarray,
        prior: ScoreModel | None,
        prior_thr: float | None,
        clusters: np.ndarray | None = None,
    ) -> tuple[PooledScoreModel, float | None, float, float, ClusteredThreshold | None]:
        """(score model, threshold, gallery weight, threshold weight, the gallery's
        threshold fit) from held-out scores, shrunk toward the card's (``prior``); the
        threshold is the user's when given (no fit)."""
        ok = g.size >= 2 and i.size >= 2
        model = ScoreModel.fit(g, i) if ok else None
        w = 0.0
        if model is not None:
            w = 1.0 if prior is None else g.size / (g.size + self.prior_strength)
        score = PooledScoreModel(model, prior, w)
        if self.user_threshold is not None:
            return score, self.user_threshold, w, 0.0, None
        if not ok:
            return score, prior_thr, w, 0.0, None
        thr, wt, fit = self._threshold(i, prior_thr, self.target_far, clusters)
        return score, thr, w, wt, fit

    def _threshold(
        self,
        i: np.ndarray,
        prior_thr: float | None,
        target: float,
        clusters: np.ndarray | None = None,
    ) -> tuple[float, float, ClusteredThreshold]:
        """(threshold, gallery weight, the gallery's fit) at false-accept rate ``target``
        from >= 2 held-out impostor scores ``i`` (in ``clusters``, the generators they come
        from: :func:`fpattr.calibration.threshold_at_far_clustered`), pooled with the
        card's ``prior_thr`` (None: none)."""
        fit = threshold_at_far_clustered(i, clusters, target, seed=self.seed)
        gal_thr = fit.threshold
        # (n + 1) * target: the conformal count; at 1 the gallery's highest impostor score
        # alone is a threshold whose expected false-accept rate is the target
        exceed = (i.size + 1) * target
        # the card only fills in where the gallery holds too few impostor scores to put
        # even one above the threshold: it is too lenient on real generators to dilute a
        # sufficient in-domain estimate
        wt = 1.0 if prior_thr is None else min(1.0, exceed)
        if prior_thr is not None and prior_thr < gal_thr:
            # ... and it only ever raises the threshold: with fewer than 1 / target
            # impostor scores, the gallery's highest is a lower bound on the threshold
            # for the target (a blend below it accepted 33 % of a small gallery's own
            # held-out impostors while saying "FAR 1 %")
            wt = 1.0
        thr = gal_thr if prior_thr is None else wt * gal_thr + (1 - wt) * prior_thr
        return float(thr), wt, fit

    def _fit(self, comparison: str, n: int, m: int, views: int | None) -> FittedCalibration | None:
        kind = "centroid" if comparison == "image-vs-model" else "pair"
        if n == 1 and m == 1:
            name = comparison
        else:
            name = "set-vs-model" if comparison == "image-vs-model" else "set-vs-set"
        entry = _card_entry(self.card, kind, views)
        prior = ScoreModel("logistic", (float(entry["a"]), float(entry["b"]))) if entry else None
        prior_thr = float(entry["threshold"]) if entry else None
        notes: list[str] = []
        if entry and (n > 1 or m > 1):
            notes.append("the card has no set calibration: its single-image one is the prior")
        held = self._held_out(comparison, n, m)
        g = held["genuine"] if held else np.zeros(0)
        i = held["impostor"] if held else np.zeros(0)
        if held:
            notes.extend(held["notes"])
        gal_ok = g.size >= 2 and i.size >= 2
        clusters = held.get("impostor_clusters") if held else None
        score, thr, w, wt, fit = self._pool(g, i, prior, prior_thr, clusters)
        pooled_thr = thr
        floor = self._floor(comparison, n, m, views)
        raised = floor is not None and thr is not None and floor > thr
        if raised:
            notes.append(
                f"threshold raised from {thr:.4f} to the clean calibration's {floor:.4f}: "
                f"that the query went through {self.processing or 'the processing'} is "
                "inferred from its file and may be wrong, and the higher threshold holds "
                "the false-accept rate at its target either way"
            )
            thr = floor
        if gal_ok and score.gallery is None:
            why_not = (
                f"after {self.processing}, the references no longer score higher against "
                "their own model than against others"
                if self.processed_references is not None
                else "models sharing or copying references?"
            )
            notes.append(
                "the references' genuine scores are not above their impostor scores: the "
                f"gallery cannot calibrate probabilities ({why_not}); "
                + ("the card's calibration alone gives them" if prior else "none are given")
            )
        has_model = score.gallery is not None or score.prior is not None
        details: dict[str, Any] = {"notes": notes}
        if entry and views is not None:
            details["card_views"] = entry.get("_views")
        if fit is not None and fit.expected_far is not None and not raised:
            details["fitted_far_level"] = fit.level
            if wt >= 1.0:  # the gallery's threshold is the one in force (no card blended in)
                details["expected_far_new_generator"] = round(fit.expected_far, 6)
            if fit.level < far_levels(self.target_far)[0]:  # lowered, not just the grid's
                notes.append(
                    f"the gallery's threshold is fitted at FAR {fit.level:.3g}, not "
                    f"{self.target_far:g}: its held-out impostor scores come from a few "
                    "generators each, and at the target it would accept more than "
                    f"{self.target_far:g} of a new generator's on average (cluster bootstrap)"
                )
            if not fit.reached:
                notes.append(
                    f"even at FAR {fit.level:.3g} the cluster bootstrap expects "
                    f"{fit.expected_far:.2%} of a new generator's impostor scores to pass the "
                    "gallery's threshold, above the target: a few generators dominate its "
                    "impostor scores; enrol more models"
                )
        target: float | None = self.target_far
        if self.user_threshold is not None:
            far = float(np.mean(i >= self.user_threshold)) if i.size else None
            why = "--threshold given: the user's threshold, fitted for no false-accept rate"
            if far is not None:
                why += f" (it accepts {far:.2%} of the gallery's held-out impostor scores)"
            source, target = "user-threshold", None
        elif not gal_ok and prior is None:
            return None
        elif not gal_ok:
            source = "model-card"
            why = (
                "too few enrolled models or references for held-out scores (need 2 "
                "models with 2 references): the card's synthetic-model calibration alone, "
                "which overstates certainty on real generators"
            )
            card_far = float(entry.get("target_far", target))  # type: ignore[union-attr]
            if card_far != target:
                notes.append(
                    f"the card's threshold is fitted for FAR {card_far:g}, not the "
                    f"requested {target:g}: enrol >= 2 models with >= 2 references each to "
                    "fit the requested rate"
                )
                target = card_far
        else:
            source = "gallery" if prior is None else "gallery+model-card"
            why = (
                f"held out from the gallery's references ({g.size} genuine, {i.size} "
                "impostor scores)"
            )
            if prior is not None:
                why += (
                    f", shrunk toward the card's synthetic-model calibration (gallery weight "
                    f"{w:.2f} for probabilities, {wt:.2f} for the threshold)"
                )
        level = target if fit is None else fit.level  # (a fit's level is <= the target)
        if gal_ok and level is not None and (i.size + 1) * level < 1 and not raised:
            # with a card the threshold is the blend made by _pool; without one (a gallery
            # bound to a training-free backbone) there is only the gallery to lean on
            if prior_thr is None or (wt >= 1.0 and fit is not None and prior_thr >= fit.threshold):
                leans = (
                    "is just above the gallery's highest impostor score, so the false-accept "
                    "rate it achieves is not measured; enrol more models or references"
                )
            elif wt >= 1.0:
                leans = (
                    "is just above the gallery's highest impostor score (the card's, "
                    f"{prior_thr:.4f}, would accept some of them): the false-accept rate it "
                    "achieves is not measured; enrol more models or references"
                )
            else:
                leans = (
                    f"blends the gallery's highest impostor score (weight {wt:.2f}) with the "
                    f"card's threshold (weight {1 - wt:.2f})"
                )
            notes.append(
                f"{i.size} held-out impostor scores cannot estimate a threshold for FAR "
                f"{level:.3g} (about {math.ceil(1 / level) - 1} are needed): the threshold {leans}"
            )
        cal = FittedCalibration(
            name,
            float(thr),  # type: ignore[arg-type]
            target,
            score if has_model else None,
            source,
            why,
            n,
            views,
            int(g.size),
            int(i.size),
            w,
            achieved_far=float(np.mean(i >= thr)) if i.size else None,
            details=details,
        )
        if cal.score is not None and comparison == "image-vs-model":
            if held:
                # measured at the threshold of the default false-accept rate, whatever the
                # user's --threshold / --target-far: those move the decisions, never the
                # posterior (a stricter threshold used to raise the shown probabilities)
                if not gal_ok:
                    ref_thr = prior_thr
                elif self.target_far == DEFAULT_TARGET_FAR and self.user_threshold is None:
                    ref_thr = pooled_thr  # the same fit: the bootstrap is not run twice
                else:
                    ref_thr = self._threshold(i, prior_thr, DEFAULT_TARGET_FAR, clusters)[0]
                cal.resemblance, details["look_alike"] = resemblance_rate(
                    held, cal.threshold if ref_thr is None else ref_thr
                )
            else:  # a gallery of one model: nothing to leave out, no evidence either way
                cal.resemblance, details["look_alike"] = no_resemblance_evidence(
                    len(self.gallery.models) if self.gallery is not None else 1
                )
        if held and cal.score is not None:
            cal.display = self._display_maps(comparison, cal, held)
        if comparison == "image-vs-model" and self.processed_references is not None:
            cal.processing = self.processing or "processed"
        return cal

    def _floor(self, comparison: str, n: int, m: int, views: int | None) -> float | None:
        """The clean policy's threshold for the same comparison (see ``threshold_floor``);
        None without one, with a user threshold, or when it has no calibration."""
        if self.threshold_floor is None or self.user_threshold is not None:
            return None
        clean = self.threshold_floor.calibration(comparison, set_size=n, other_size=m, views=views)
        return None if clean is None else float(clean.threshold)

    def _display_maps(
        self, comparison: str, cal: FittedCalibration, held: dict[str, Any]
    ) -> dict[str, tuple[float, float]]:
        """Per outcome the posterior leans to (a model or unknown; same or different),
        whichever side of the threshold, a recalibration of the raw probability fitted on held-out
        queries made of the gallery's references (known and unknown weighted by the prior
        of unknown; genuine and impostor pairs equally).

        In-sample with respect to the score model (it was fitted on the same held-out
        scores). Cross-fitting by folds of models was tried and made sets and pairs worse
        on the public generators (docs/methods/decision-policy.md, "How it was chosen").
        """
        rows: dict[str, list[tuple[float, bool, float]]] = {}
        if comparison == "image-vs-model":
            names = held["names"]
            nk, nu = len(held["known"]), len(held["unknown"])
            # the rule of succession behind cal.resemblance counts two models more among
            # those left out, one passing for another and one not: they enter here too, as
            # the named and the unknown rows the gallery produced, so that the map does not
            # undo what the resemblance rate says about generators not enrolled
            m = len(names)
            share = self.prior_unknown * (m / (m + 2) if cal.resemblance > 0 else 1.0)
            named_known: list[float] = []
            unknown_ok: list[float] = []
            for sims, t in held["known"]:
                r = self._raw_decide(sims, names, cal)
                ok = r["lean_members"] is not None and t in r["lean_members"]
                rows.setdefault(r["lean"], []).append(
                    (r["lean_p"], ok, (1 - self.prior_unknown) / nk)
                )
                if r["lean"] == "named":
                    named_known.append(r["lean_p"])
            for sims, t in held["unknown"]:
                rest = names[:t] + names[t + 1 :]
                r = self._raw_decide(sims, rest, cal)
                rows.setdefault(r["lean"], []).append(
                    (r["lean_p"], r["lean"] == "unknown", share / nu)
                )
                if r["lean"] == "unknown":
                    unknown_ok.append(r["lean_p"])
            if cal.resemblance > 0:
                pseudo = self.prior_unknown / (m + 2)
                for kind, ps, ok in (("named", named_known, False), ("unknown", unknown_ok, True)):
                    for p in ps:
                        rows.setdefault(kind, []).append((p, ok, pseudo / len(ps)))
        else:
            for arr, genuine in ((held["genuine"], True), (held["impostor"], False)):
                for sv in arr:
                    r = _raw_verify(float(sv), cal)
                    rows.setdefault(r["leaning"], []).append(
                        (r["p"], (r["leaning"] == "same") == genuine, 0.5 / arr.size)
                    )
        # hierarchical shrinkage: one map for every outcome (toward the identity), then
        # each outcome's own map toward that shared one, so an outcome with few rows
        # inherits the gallery's general over- or under-confidence
        everything = [r for kind, rs in rows.items() if kind is not None for r in rs]
        if len(everything) < 5:
            return {}
        p, ok, wt = (np.asarray(x, np.float64) for x in zip(*everything, strict=True))
        shared = fit_platt(p, ok, wt * len(everything) / wt.sum())
        maps = {}
        for kind, rs in rows.items():
            if kind is None:
                continue
            p, ok, wt = (np.asarray(x, np.float64) for x in zip(*rs, strict=True))
            maps[kind] = fit_platt(p, ok, wt * len(rs) / wt.sum(), center=shared)
        return maps

    def held_out_genuine(self) -> dict[str, float]:
        """Per model, the mean held-out genuine cosine of its references in the score
        space: each reference against the centroid of the others (rescaled to the full
        reference count, as the calibration sees it). What the single-image calibration
        assumes a genuine query scores; :func:`fpattr.evaluation.decisions.reference_gap`
        sets it beside what the queries score. Empty without a gallery of >= 2 models."""
        held = self._held_out("image-vs-model", 1, 1)
        if held is None:
            return {}
        names = held["names"]
        acc: dict[str, list[float]] = {}
        for sims, t in held["known"]:
            acc.setdefault(names[t], []).append(float(sims[t]))
        return {k: float(np.mean(v)) for k, v in acc.items()}

    def enrolment_check(self) -> dict[str, dict[str, Any]]:
        """Per model: how its references fare as queries under leave-one-out.

        Each reference is decided against the gallery with its own model's centroid
        made of the *other* references (the policy's single-image calibration). Returns
        ``{model: {"n_refs", "checkable", "recognised", "unknown", "ambiguous",
        "inconclusive", "confused_with": {other: n}}}``; few recognised references mean
        the model is not distinct enough from the others (or its references are too
        varied) for this extractor. A model with one reference is not checkable.
        """
        out: dict[str, dict[str, Any]] = {}
        if self.gallery is None or len(self.gallery.models) < 2:
            return out
        cal = self.calibration("image-vs-model")
        pq = pseudo_queries(
            self.raw_gallery, 1, seed=self.seed, space=self.space, n_models=len(self.gallery.models)
        )
        names = pq["names"]
        for name in names:
            n = len(self.gallery.models[name].refs)
            out[name] = {
                "n_refs": n,
                "checkable": n >= 2,
                "recognised": 0,
                "unknown": 0,
                "ambiguous": 0,
                "inconclusive": 0,
                "confused_with": {},
            }
        for sims, t in pq["known"]:
            d = self.decide_scores(sims, names, cal=cal)
            row = out[names[t]]
            dec = d["decision"]
            if dec in (UNKNOWN, AMBIGUOUS, INCONCLUSIVE):
                row[dec] += 1
            elif dec == names[t]:
                row["recognised"] += 1
            elif dec is not None:
                row["confused_with"][dec] = row["confused_with"].get(dec, 0) + 1
        return out

    def enrolment_warnings(self, name: str) -> list[str]:
        """What makes model ``name`` hard to attribute in this gallery, in words.

        Near-identical references (mean cosine between them above 0.995) are not
        independent evidence; a model whose centroid is at or above the image-vs-model
        threshold from another model's cannot be told apart from it at that threshold.
        """
        out: list[str] = []
        if self.gallery is None or name not in self.gallery.models:
            return out
        e = np.asarray(self.gallery.models[name].embeddings, np.float64)
        if e.shape[0] >= 2 and _coherence(e) > 0.995:
            out.append(
                f"the references of {name!r} are near-identical (mean cosine "
                f"{_coherence(e):.4f}): they count as one piece of evidence, not {e.shape[0]}"
            )
        cal = self.calibration("image-vs-model")
        names, cents = self.gallery_centroids()
        if cal is None or len(names) < 2:
            return out
        me = names.index(name)
        for k, other in enumerate(names):
            c = float(cents[me] @ cents[k])
            if k != me and c >= cal.threshold:
                out.append(
                    f"{name!r} cannot be told from {other!r} at this threshold (centroid "
                    f"cosine {c:.3f} >= {cal.threshold:.3f}): queries of either will be "
                    "ambiguous or inconclusive, and the pair's look-alike scores, counted "
                    "among the impostors, can raise the threshold for every model"
                )
        return out

    # -- decisions -------------------------------------------------------------------------------

    def gallery_centroids(self) -> tuple[list[str], np.ndarray]:
        """(names, (M, D) centroids) of the gallery in the score space."""
        if self._names is None:
            self._names, self._centroids = self.gallery.centroids()
        return self._names, self._centroids  # type: ignore[return-value]

    def attribute(
        self,
        embedding: np.ndarray,
        *,
        top_k: int = 3,
        set_size: int = 1,
        views: int | None = None,
        flat: bool = False,
    ) -> dict[str, Any]:
        """Decide the source of one raw embedding ((D,) float32, L2-normalised; projected
        here into the policy's score space).

        Returns ``{"decision", "probability", "candidates", "p_unknown", "top",
        "threshold", "target_far", "calibration"}``; ``top`` lists up to ``top_k``
        models with similarity and posterior probability (posteriors over all models
        plus ``p_unknown`` sum to 1). ``flat``: no view carried signal.
        """
        names, sims = self.scores(self.project(embedding))
        return self.decide_scores(
            sims, names, top_k=top_k, set_size=set_size, views=views, flat=flat
        )

    def scores(self, projected: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(names, (M,) cosines) of one (D,) embedding already in the score space (a
        :meth:`project` output) with every enrolled model's centroid.

        Raises ValueError when the gallery is empty."""
        names, cents = self.gallery_centroids()
        if not names:
            raise ValueError("the gallery is empty")
        return names, np.clip(cents @ projected, -1.0, 1.0)

    def decide_scores(
        self,
        sims: np.ndarray,
        names: Sequence[str],
        *,
        top_k: int = 3,
        set_size: int = 1,
        views: int | None = None,
        flat: bool = False,
        cal: FittedCalibration | None = None,
        n_models: int | None = None,
    ) -> dict[str, Any]:
        """:meth:`attribute` from precomputed similarities ((M,) to ``names``' centroids in
        :attr:`gallery`: dot products of :meth:`project` outputs).

        ``n_models``: the gallery's model count when ``sims`` holds only the top candidates
        of a larger gallery (an index search, :mod:`fpattr.index`). The prior stays
        ``1 / n_models`` per model and the models not retrieved get one posterior term,
        ``p_not_retrieved``, at the likelihood ratio of the lowest retrieved similarity:
        an upper bound on their mass (the LR never decreases with the similarity and
        none of them scores higher, exactly so for an exact search). The posteriors
        shown are therefore lower bounds: conservative, never overstated.
        """
        sims = np.asarray(sims, dtype=np.float64)
        cal = cal or self.calibration("image-vs-model", set_size=set_size, views=views)
        order = np.argsort(-sims)
        out: dict[str, Any] = {
            "threshold": cal.threshold if cal else None,
            "target_far": cal.target_far if cal else None,
            "calibration": _cal_ref(cal),
            "candidates": [],
            "p_unknown": None,
            "leaning": None,
        }
        raw = self._raw_decide(sims, names, cal, n_models) if not flat else {"posterior": None}
        post = raw["posterior"]
        if post is not None:
            shown = cal.displayed(raw["lean"], raw["lean_p"])  # type: ignore[union-attr]
            post, out["p_unknown"] = _rescale(post, raw["p_unknown"], raw["lean_members"], shown)
            if n_models is not None:  # what the top candidates and unknown leave
                out["p_not_retrieved"] = max(0.0, 1.0 - float(post.sum()) - out["p_unknown"])
        out["top"] = [
            {
                "model": names[k],
                "similarity": float(sims[k]),
                "probability": None if post is None else float(post[k]),
            }
            for k in order[:top_k]
        ]
        if flat:
            return out | {"decision": INSUFFICIENT, "probability": None}
        if post is None:  # no calibration, or a user threshold without probabilities
            return out | {"decision": raw["decision"], "probability": None}
        # the rule of _raw_decide applied to the probabilities shown, so that the decision
        # and its number agree: a model above the threshold whose shown posterior reaches
        # min_probability is named (a break-it pass found one at 0.578 called inconclusive
        # beside another named at 0.564: the rule had read the raw posterior)
        top, p_u = int(order[0]), out["p_unknown"]
        above = bool(sims[top] >= cal.threshold)  # type: ignore[union-attr]
        if above and post[top] >= self.min_probability and post[top] >= p_u:
            return out | {"decision": names[top], "probability": float(post[top])}
        if not above and p_u >= 0.5:
            return out | {"decision": UNKNOWN, "probability": p_u}
        members, mass = (
            _near_tie(order, sims, post, cal.threshold, self.min_probability)  # type: ignore[union-attr]
            if above
            else ([], 0.0)
        )
        if len(members) >= 2 and mass >= self.min_probability and mass >= p_u:
            return out | {
                "decision": AMBIGUOUS,
                "probability": mass,
                "candidates": [names[k] for k in members],
            }
        # the likelier outcome after recalibration (a near tie can change places); of equal
        # probabilities the higher similarity (the cap above leaves ties)
        best = max((int(k) for k in order), key=lambda k: post[k])
        lean = names[best] if post[best] > p_u else UNKNOWN
        return out | {
            "decision": INCONCLUSIVE,
            "probability": float(max(post[best], p_u)),
            "leaning": lean,
            "candidates": [names[k] for k in members] if len(members) > 1 else [],
        }

    def _raw_decide(
        self,
        sims: np.ndarray,
        names: Sequence[str],
        cal: FittedCalibration | None,
        n_models: int | None = None,
    ) -> dict[str, Any]:
        """The decision rule on uncorrected posteriors (also used to fit display maps).

        ``kind``: "named" | "ambiguous" | "unknown" | "inconclusive" | None (no probability
        model or no calibration); ``members``: indices of the models the decision is about
        (None for unknown, and for an inconclusive answer leaning to unknown). ``lean``,
        ``lean_p``, ``lean_members``: the outcome the posterior favours ("named": its top
        model, or "unknown") whatever the threshold and ``min_probability``, its raw
        probability and models; what the display recalibration is keyed by (a near tie
        shows the sum of its models' recalibrated posteriors).
        """
        res: dict[str, Any] = {
            "posterior": None,
            "p_unknown": None,
            "kind": None,
            "decision": None,
            "members": None,
        }
        if cal is None:
            return res
        order = np.argsort(-sims)
        top = int(order[0])
        above = sims[top] >= cal.threshold
        if cal.score is None:  # a user threshold without any probability model
            return res | {"decision": names[top] if above else UNKNOWN}
        rest = None
        if n_models is not None and n_models > sims.size:
            rest = (n_models - sims.size, float(cal.llr(sims[order[-1]])))
        post, p_u = self.posterior(cal.llr(sims), n_models=n_models, rest=rest)
        res |= {"posterior": post, "p_unknown": p_u}
        # the outcome the posterior leans to, whichever side of the threshold: the display
        # recalibration is keyed by it, so that the threshold moves the decision, never the
        # probability (keyed by the decision, a model just under a strict threshold was
        # shown likelier than one well above it)
        if post[top] > p_u:
            # models tied with the top one (same references enrolled twice) are one outcome:
            # recalibrated together they keep equal probabilities (the map lifted the first
            # only: 0.117 and 0.581 at one similarity, a break-it pass)
            tied = [int(k) for k in order if sims[k] >= sims[top] - SCORE_TOLERANCE]
            lean_p = float(sum(post[k] for k in tied))
            res |= {"lean": "named", "lean_p": lean_p, "lean_members": tied}
        else:
            res |= {"lean": "unknown", "lean_p": p_u, "lean_members": None}
        if not above:
            return res | {"kind": "unknown", "decision": UNKNOWN}
        # never a name "unknown" beats, whatever --min-probability (below 0.5 it named a
        # model at 0.301 beside unknown at 0.319, break-it 27c)
        if post[top] >= self.min_probability and post[top] >= p_u:
            return res | {
                "kind": "named",
                "decision": names[top],
                "members": [top],
            }
        members, mass = _near_tie(order, sims, post, cal.threshold, self.min_probability)
        if len(members) >= 2 and mass >= self.min_probability and mass >= p_u:
            return res | {
                "kind": "ambiguous",
                "decision": AMBIGUOUS,
                "members": members,
            }
        return res | {
            "kind": "inconclusive",
            "decision": INCONCLUSIVE,
            "members": res["lean_members"],
        }

    def posterior(
        self,
        llr: np.ndarray,
        *,
        n_models: int | None = None,
        rest: tuple[int, float] | None = None,
    ) -> tuple[np.ndarray, float]:
        """(M,) LLRs -> (posterior of each model, posterior of unknown); they sum to 1.

        ``n_models``: the gallery's size when ``llr`` covers only some models (default M);
        ``rest``: (count, LLR) of the models not covered, all at that LLR; their mass is
        what the returned posteriors leave below 1.
        """
        llr = np.asarray(llr, dtype=np.float64)
        m = n_models or llr.size
        log_each = math.log((1 - self.prior_unknown) / m)
        parts = [llr + log_each, [math.log(self.prior_unknown)]]
        if rest is not None and rest[0] > 0:
            parts.append([log_each + math.log(rest[0]) + rest[1]])
        z = np.concatenate(parts)
        z -= z.max()
        p = np.exp(z)
        p /= p.sum()
        return p[: llr.size], float(p[llr.size])

    def verify(
        self,
        similarity: float,
        *,
        a_images: int = 1,
        b_images: int = 1,
        views: int | None = None,
        flat: bool = False,
    ) -> dict[str, Any]:
        """Same source or not for two embeddings' cosine ``similarity`` in the score space
        (the dot product of their :meth:`project` outputs; a pooled side: the L2-normalised
        mean of its projected images).

        Files are single images; folders are pooled sets (``a_images``/``b_images``).
        Decision "same" needs the similarity at or above the threshold (fitted for the
        target false-accept rate) and P(same) >= 0.5; "different" needs P(same) < 0.5
        and the similarity below the threshold; otherwise "inconclusive". The
        probability is that of the stated decision ("inconclusive": of the likelier one,
        named in ``leaning``). Prior odds of same vs different are 1.
        """
        n, m = sorted((int(a_images), int(b_images)))
        cal = self.calibration("image-vs-image", set_size=n, other_size=m, views=views)
        out: dict[str, Any] = {
            "threshold": cal.threshold if cal else None,
            "target_far": cal.target_far if cal else None,
            "calibration": _cal_ref(cal),
            "p_same": None,
            "leaning": None,
        }
        if flat:
            return out | {"decision": INSUFFICIENT, "probability": None}
        raw = _raw_verify(similarity, cal)
        if raw["p"] is None:
            return out | {"decision": raw["decision"], "probability": None}
        shown = cal.displayed(raw["leaning"], raw["p"])  # type: ignore[union-attr]
        lean = raw["leaning"]
        p_same = shown if lean == "same" else 1.0 - shown
        out["p_same"] = p_same
        # the rule on the probability shown (as attribute's): same above the threshold
        # with P(same) >= 0.5, different below it with P(different) > 0.5, else
        # inconclusive leaning to the likelier answer
        above = bool(similarity >= cal.threshold)  # type: ignore[union-attr]
        lean = "same" if p_same >= 0.5 else "different"
        decision = lean if above == (lean == "same") else INCONCLUSIVE
        return out | {
            "decision": decision,
            "probability": max(p_same, 1.0 - p_same),
            "leaning": lean if decision == INCONCLUSIVE else None,
        }


def _raw_verify(s: float, cal: FittedCalibration | None) -> dict[str, Any]:
    """Verify's rule on the uncorrected P(same): kind, decision, leaning, raw probability."""
    if cal is None:
        return {"kind": None, "decision": None, "leaning": None, "p": None}
    above = s >= cal.threshold
    if cal.score is None:
        d = "same" if above else "different"
        return {"kind": None, "decision": d, "leaning": d, "p": None}
    p_same = float(1.0 / (1.0 + math.exp(-float(np.clip(cal.llr(s), -50, 50)))))
    lean = "same" if p_same >= 0.5 else "different"
    p = max(p_same, 1.0 - p_same)
    if (above and lean == "same") or (not above and lean == "different"):
        return {"kind": lean, "decision": lean, "leaning": lean, "p": p}
    return {"kind": "inconclusive", "decision": "inconclusive", "leaning": lean, "p": p}


def _rescale(
    post: np.ndarray, p_unknown: float, members: list[int] | None, shown: float
) -> tuple[np.ndarray, float]:
    """Posterior with the decision's outcome set to ``shown`` and the rest scaled to 1 - shown.

    ``members``: the models the decision names (None: the decision is "unknown").
    """
    post = np.asarray(post, np.float64).copy()
    mask = np.zeros(post.size, bool)
    if members is not None:
        mask[members] = True
    inside = p_unknown if members is None else float(post[mask].sum())
    outside = 1.0 - inside
    f_in = shown / inside if inside > 0 else 0.0
    if members is None:
        if outside <= 0:  # no mass outside "unknown": the rest is spread evenly
            return np.full(post.size, (1.0 - shown) / post.size), shown
        return post * ((1.0 - shown) / outside), shown
    post[mask] *= f_in
    if outside <= 1e-300:  # nothing outside the named models: the rest goes to unknown
        post[~mask] = 0.0
        return post, 1.0 - shown
    f_out = (1.0 - shown) / outside
    post[~mask] *= f_out
    return _cap_below(post, mask, p_unknown * f_out)


def _cap_below(post: np.ndarray, mask: np.ndarray, p_unknown: float) -> tuple[np.ndarray, float]:
    """No model outside ``mask`` above the least of the named ones; what a cap takes goes
    to the uncapped outcomes (the other models and unknown) in proportion (water-filling).

    Why: the posterior never decreases with the similarity (the LR does not), and the
    leaning outcome scores highest. A display map that lowers it scales the rest up, and a
    model of lower similarity was then shown likelier than the top one, and an inconclusive
    answer leaned to it (break-it: 0.302 for the second model, 0.287 for the top one).
    """
    cap = float(post[mask].min())
    free = ~mask
    for _ in range(post.size + 1):
        over = free & (post > cap)
        if not over.any():
            break
        excess = float((post[over] - cap).sum())
        post[over] = cap
        free &= ~over
        room = float(post[free].sum()) + p_unknown
        if room <= 1e-300:  # (a zero prior of unknown and every other model capped)
            p_unknown += excess
            break
        scale = 1.0 + excess / room
        post[free] *= scale
        p_unknown *= scale
    return post, p_unknown


def fit_platt(
    p: np.ndarray,
    correct: np.ndarray,
    weight: np.ndarray,
    strength: float = PRIOR_STRENGTH,
    center: tuple[float, float] = (1.0, 0.0),
) -> tuple[float, float]:
    """Logistic recalibration of probabilities: P(correct) = sigmoid(a * logit(p) + b).

    Weighted maximum a posteriori with a Gaussian prior centred on ``center`` (default
    the identity, a = 1, b = 0) worth ``strength`` rows, so a handful of pseudo-queries
    only nudges the raw probabilities (Platt, 1999, with shrinkage).
    """
    x = np.log(np.clip(p, _EPS, 1 - _EPS) / np.clip(1 - p, _EPS, 1))
    y = np.asarray(correct, np.float64)
    w = np.asarray(weight, np.float64)
    w = w * (w.size / max(w.sum(), 1e-12))
    design = np.stack([x, np.ones_like(x)], axis=1)
    lam = strength / 2.0
    prior = np.array(center, np.float64)

    def loss(th: np.ndarray) -> float:
        z = design @ th
        nll = np.sum(w * (np.logaddexp(0.0, z) - y * z))
        return float(nll + lam * np.sum((th - prior) ** 2))

    theta = prior.copy()
    current = loss(theta)
    for _ in range(100):  # damped Newton: halve the step until the loss decreases
        q = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -50, 50)))
        grad = design.T @ (w * (q - y)) + 2 * lam * (theta - prior)
        hess = (design * (w * q * (1 - q))[:, None]).T @ design + 2 * lam * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6 and loss(theta - t * step) > current:
            t /= 2
        theta = theta - t * step
        new = loss(theta)
        if current - new < 1e-12:
            break
        current = new
    return max(float(theta[0]), 0.0), float(theta[1])


def _cal_ref(cal: FittedCalibration | None) -> dict[str, Any] | None:
    """The short calibration reference carried by every result."""
    if cal is None:
        return None
    return {
        "comparison": cal.comparison,
        "source": cal.source,
        "set_size": cal.set_size,
        "views": cal.views,
        "processing": cal.processing,
    }


# --------------------------------------------------------------------------- held-out scores


#: Most models the held-out scores are drawn from: pseudo-queries score every reference
#: against every centroid (cost ~ models^2 x references), so a million-model gallery is
#: calibrated on a seeded sample of this many models.
CALIBRATION_MODELS = 500


def _calibration_sample(gallery: Any, seed: int) -> tuple[Any, str | None]:
    """The gallery itself, or a seeded sample of CALIBRATION_MODELS of its models with a note."""
    names = list(gallery.models)
    if len(names) <= CALIBRATION_MODELS:
        return gallery, None
    from types import SimpleNamespace

    # drawn from the names in sorted order: the enrolment order changes nothing
    ordered = sorted(names)
    drawn = np.random.default_rng(seed).choice(len(names), CALIBRATION_MODELS, replace=False)
    keep = {ordered[k] for k in drawn}
    pick = [k for k, name in enumerate(names) if name in keep]
    sample = SimpleNamespace(models={names[k]: gallery.models[names[k]] for k in pick})
    note = (
        f"held-out scores from a seeded sample of {CALIBRATION_MODELS} of the gallery's "
        f"{len(names)} models (a query meets all of them: with more competitors the top "
        "impostor score runs higher than the sample shows)"
    )
    return sample, note


def pseudo_queries(
    gallery: Any,
    n: int = 1,
    *,
    seed: int = 0,
    space: ScoreSpace | None = None,
    n_models: int | None = None,
    queries_from: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Queries made of a gallery's own references, for image-vs-model calibration.

    ``gallery``: its references as scored (``space`` None), or raw with the centred
    ``space`` of a gallery of ``n_models`` models (``gallery`` may be a sample of it):
    known queries are then scored in that space and each model left out in the space of
    the gallery without it (:meth:`fpattr.scorespace.ScoreSpace.without`), as a generator
    never enrolled meets the gallery.

    For every model and (up to ``SET_SAMPLES``) subsets of ``n`` of its references
    pooled into one embedding: a *known* query, scored against the centroid of the
    model's other references and every other model's centroid (leave-n-out), and an
    *unknown* query, scored against the other models only (leave-one-model-out). A model
    with ``n`` references or fewer gives subsets of ``n_refs - 1`` and ``notes`` says so.
    ``queries_from``: per model, raw embeddings of its references after some processing
    (JPEG, down-scaling; rows in the references' order): the query side of every
    pseudo-query is taken from them, the centroids stay the clean references', as a
    processed query meets a clean gallery. Measured (offline replay, 2026-12-02, public
    generators, generator-disjoint, 5 references): x0.5 queries, ECE of single images
    0.087 -> 0.027 and of sets of 3 / 5 / 10 0.19 / 0.23 / 0.27 -> 0.04 / 0.05 / 0.03,
    precision of named answers 0.59 -> 0.88 (coverage 0.09 -> 0.01); JPEG 75 queries,
    ECE 0.044 -> 0.036 (sets 0.105 / 0.123 / 0.116 -> 0.029 / 0.052 / 0.060), precision
    0.81 -> 0.90 (benchmarks/processed_reference_calibration.py).

    Returns ``{"names", "known": [(sims (M,), truth index)], "unknown": [(sims (M-1,),
    index of the model left out)], "centroid_pairs": (P,) centroid-vs-centroid cosines,
    "reduced": bool, "notes"}``.
    """
    names = list(gallery.models)
    raw = [np.asarray(gallery.models[k].embeddings, np.float64) for k in names]
    centred = space is not None and space.centred
    embs = [space.project(e).astype(np.float64) for e in raw] if centred else raw  # type: ignore[union-attr]
    cents = np.stack([l2_normalize(e.mean(0)) for e in embs]) if names else np.zeros((0, 0))
    if queries_from is not None:
        qraw = [np.asarray(queries_from[k], np.float64) for k in names]
        for k, q, e in zip(names, qraw, raw, strict=True):
            if q.shape != e.shape:
                raise ValueError(f"{k}: processed references {q.shape} != references {e.shape}")
        qembs = [space.project(e).astype(np.float64) for e in qraw] if centred else qraw  # type: ignore[union-attr]
    else:
        qraw, qembs = raw, embs
    known: list[tuple[np.ndarray, int]] = []
    unknown: list[tuple[np.ndarray, int]] = []
    reduced = False
    for a, e in enumerate(embs):
        r = e.shape[0]
        rho = _coherence(e)
        e_out, c_out = qembs[a], cents
        if centred:  # the space of the gallery without model a
            sp = space.without(l2_normalize(raw[a].mean(0)), n_models or len(names))  # type: ignore[union-attr]
            proj = [sp.project(x).astype(np.float64) for x in raw]
            e_out = proj[a] if queries_from is None else sp.project(qraw[a]).astype(np.float64)
            c_out = np.stack([l2_normalize(x.mean(0)) for x in proj])
        # unknown (impostor) queries need no held-out centroid, but pooling all the
        # references leaves one draw per model: they pool all but one (several draws,
        # noisier than a set of n, so the threshold errs high); known ones leave at least
        # half the references for the model's centroid (a single image: all the others).
        # Larger sets are simulated by rescaling to the norm a mean of n would have.
        u = min(n, r - 1) if r > 2 else min(n, r)
        rng = _model_rng(seed, names[a])  # each model's own draws, whatever the order
        for idx in _draws(r, u, rng):
            q = l2_normalize(e_out[idx].mean(0))
            sims = np.clip((c_out @ q) * _set_gain(rho, u, n), -1.0, 1.0)
            unknown.append((np.delete(sims, a), a))
        k = min(n, r - 1) if n == 1 else min(n, max(1, r // 2))
        reduced |= k < n
        if k < 1 or k >= r:  # a model of one reference leaves none for its centroid
            continue
        for idx in _draws(r, k, rng):
            q = l2_normalize(qembs[a][idx].mean(0))
            sims = cents @ q
            # the held-out centroid pools r - k references where the real one pools r:
            # rescaled to r like the query side is to n (the other centroids pool all r)
            sims[a] = q @ l2_normalize(np.delete(e, idx, axis=0).mean(0))
            sims[a] *= _set_gain(rho, r - k, r)
            known.append((np.clip(sims * _set_gain(rho, k, n), -1.0, 1.0), a))
    iu = np.triu_indices(len(names), k=1)
    notes = []
    if reduced:
        notes.append(
            f"some models have {n} references or fewer: held-out sets pool what they allow "
            f"and their cosines are rescaled to sets of {n} (variance of the mean)"
        )
    return {
        "names": names,
        "known": known,
        "unknown": unknown,
        "centroid_pairs": (cents @ cents.T)[iu] if names else np.zeros(0),
        "reduced": reduced,
        "notes": notes,
    }


def resemblance_rate(held: dict[str, Any], threshold: float) -> tuple[float, dict[str, Any]]:
    """Per-model chance beta that a generator not enrolled resembles an enrolled model.

    Estimated from the gallery itself: each enrolled model left out in turn is a
    generator the rest of the gallery has not seen; the share of its held-out queries
    whose best score reaches ``threshold`` is how often it passes for another model.
    Pooled over the M models by the rule of succession ((sum + 1) / (M + 2): a gallery
    with no look-alike pairs still cannot rule them out) and divided among the M - 1
    models each left-out one could resemble. ``held``: :func:`pseudo_queries`' output.
    Returns (beta, details for the calibration's info).
    """
    names = held["names"]
    m = len(names)
    frac = np.zeros(m)
    count = np.zeros(m)
    for sims, t in held["unknown"]:
        count[t] += 1
        frac[t] += float(sims.size > 0 and sims.max() >= threshold)
    seen = count > 0
    per_model = frac[seen] / count[seen]
    rate = (float(per_model.sum()) + 1.0) / (int(seen.sum()) + 2.0)
    beta = rate / max(m - 1, 1)
    return beta, {
        "unseen_named_rate": round(rate, 4),
        "per_model": round(beta, 5),
        "models_resembling_another": int((per_model > 0).sum()),
    }


def no_resemblance_evidence(n_models: int) -> tuple[float, dict[str, Any]]:
    """:func:`resemblance_rate` when no enrolled model can be left out (a gallery of one):
    the rule of succession with no observation, (0 + 1) / (0 + 2) = 0.5, shared among
    the other models (none: all of it). A lone model is then never named above
    P = 2 (1 - prior_unknown) / (2 (1 - prior_unknown) + prior_unknown): 0.67 at the
    default prior."""
    beta = 0.5 / max(n_models - 1, 1)
    return beta, {
        "unseen_named_rate": 0.5,
        "per_model": round(beta, 5),
        "models_resembling_another": None,
        "note": "no model can be left out: the rule of succession with no observation",
    }


def _coherence(e: np.ndarray) -> float:
    """Mean cosine between distinct references of one model: the squared norm of the
    model's mean embedding direction, rho (each embedding is unit-norm)."""
    r = e.shape[0]
    if r < 2:
        return 1.0
    gram = e @ e.T
    return float(np.clip((gram.sum() - np.trace(gram)) / (r * (r - 1)), 0.01, 1.0))


def _near_tie(
    order: np.ndarray, sims: np.ndarray, post: np.ndarray, threshold: float, min_p: float
) -> tuple[list[int], float]:
    """A near tie: the fewest of the top three models, all above the threshold, whose
    posteriors together reach ``min_p`` (fewer while they do not): (indices, their mass)."""
    members, mass = [], 0.0
    for k in order[:3]:
        if sims[k] < threshold:
            break
        members.append(int(k))
        mass += float(post[k])
        if mass >= min_p:
            break
    return members, mass


def _set_gain(rho: float, k: int, n: int) -> float:
    """Factor taking the cosine of a pooled set of ``k`` images to that of ``n`` images.

    The mean of k unit embeddings with coherence rho has expected squared norm
    rho + (1 - rho) / k while its dot product with any fixed direction does not depend
    on k; the cosine therefore grows by sqrt((rho + (1 - rho)/k) / (rho + (1 - rho)/n)).
    """
    if n <= k:
        return 1.0
    return math.sqrt((rho + (1 - rho) / k) / (rho + (1 - rho) / n))


def _model_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator of draws for one model (or one pair of models) from the seed and the
    models' names, so that the draws do not depend on the order the models were enrolled
    in (break-it: sets of 3 got thresholds 0.6815-0.6908 over 5 orders of one gallery)."""
    keys = [zlib.crc32(n.encode("utf-8", "surrogateescape")) for n in names]
    return np.random.default_rng([int(seed), *keys])


def _draws(size: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to SET_SAMPLES distinct k-subsets of range(size) (all of them when few)."""
    if k == 1:
        return [np.array([j]) for j in range(size)]
    if math.comb(size, k) <= SET_SAMPLES:
        from itertools import combinations

        return [np.array(c) for c in combinations(range(size), k)]
    return [rng.choice(size, k, replace=False) for _ in range(SET_SAMPLES)]


def pseudo_pairs(gallery: Any, n: int = 1, m: int = 1, *, seed: int = 0) -> dict[str, Any]:
    """Held-out genuine / impostor cosines of ``n`` pooled references vs ``m`` pooled ones.

    Two files (n = m = 1): every reference pair within a model (genuine) and across
    models (impostor). Folders: disjoint subsets of one model (genuine; sizes reduced
    to what its references allow, and ``notes`` says so) and subsets of two models.
    Returns ``{"names", "genuine", "impostor", "genuine_model" (index of the model of
    each genuine score), "impostor_models" ((P, 2) indices), "notes"}``.
    """
    names = list(gallery.models)
    embs = [np.asarray(gallery.models[k].embeddings, np.float64) for k in names]
    shas = [_content_keys(gallery.models[k], e.shape[0]) for k, e in zip(names, embs, strict=True)]
    sha_sets = [set(keys) for keys in shas]
    genuine: list[float] = []
    impostor: list[float] = []
    g_model: list[int] = []
    i_models: list[tuple[int, int]] = []
    reduced = False
    shared = 0
    for a, e in enumerate(embs):
        r = e.shape[0]
        kn, km = n, m
        if kn + km > r:
            reduced = True
            kn = max(1, min(n, r // 2))
            km = max(1, min(m, r - kn))
        rng = _model_rng(seed, names[a])  # each model's own draws, whatever the order
        if kn + km <= r:
            for idx in _draws(r, kn + km, rng) if kn + km > 2 else _all_pairs(r):
                perm = rng.permutation(idx)
                genuine.append(
                    float(l2_normalize(e[perm[:kn]].mean(0)) @ l2_normalize(e[perm[kn:]].mean(0)))
                )
                g_model.append(a)
        for b, f in enumerate(embs[a + 1 :], start=a + 1):
            # one file enrolled under two models is not an impostor pair: its cosine with
            # itself (1.0) set the verify threshold to 1.0, and no pair could be "same"
            # (break-it); those files are left out of this pair of models' impostor scores
            other = np.array([k not in sha_sets[a] for k in shas[b]], bool)
            mine = np.array([k not in sha_sets[b] for k in shas[a]], bool)
            shared += int((~other).sum())
            if n == 1 and m == 1:
                scores = (e[mine] @ f[other].T).ravel().tolist()
                impostor.extend(scores)
                i_models.extend([(a, b)] * len(scores))
                continue
            ea, fb = e[mine], f[other]
            if not len(ea) or not len(fb):
                continue
            # the pair in name order (its n side first): the same draws in any enrolment order
            x, y = sorted((a, b), key=lambda k: names[k])
            ex, fy = (ea, fb) if x == a else (fb, ea)
            rng = _model_rng(seed, names[x], names[y])
            for _ in range(max(1, SET_SAMPLES // 4)):
                ia = rng.choice(len(ex), min(n, len(ex)), replace=False)
                ib = rng.choice(len(fy), min(m, len(fy)), replace=False)
                impostor.append(float(l2_normalize(ex[ia].mean(0)) @ l2_normalize(fy[ib].mean(0))))
                i_models.append((a, b))
    notes = []
    if reduced:
        notes.append(
            f"some models have fewer than {n + m} references: genuine folder pairs were "
            "drawn at the sizes they allow"
        )
    if shared:
        notes.append(
            f"{shared} reference(s) enrolled under two models (the same sha256) were left "
            "out of the impostor pairs of those models: a file is not its own impostor"
        )
    return {
        "names": names,
        "genuine": np.asarray(genuine, np.float64),
        "impostor": np.asarray(impostor, np.float64),
        "genuine_model": np.asarray(g_model, np.int64),
        "impostor_models": np.asarray(i_models, np.int64).reshape(-1, 2),
        "notes": notes,
    }


def _content_keys(model: Any, n: int) -> list[Any]:
    """Per reference row of ``model``, its sha256, or a key unique to the row where none
    is recorded (evaluate's in-memory galleries), so that only recorded equal content
    ever matches."""
    refs = list(getattr(model, "refs", None) or [])
    keys: list[Any] = [r.get("sha256") if isinstance(r, dict) else None for r in refs[:n]]
    keys += [None] * (n - len(keys))
    return [k if k else ("row", id(model), i) for i, k in enumerate(keys)]


def _all_pairs(r: int) -> list[np.ndarray]:
    iu = np.triu_indices(r, k=1)
    return [np.array([i, j]) for i, j in zip(*iu, strict=False)]
