"""The space fingerprints are compared in: the gallery's mean fingerprint subtracted.

Every fingerprint an extractor makes shares a large common part (what any image through
that network looks like), so raw cosines between any two sources sit high and close
together. Subtracting the mean of the enrolled models' centroids before the cosine
(mean normalisation, as speaker and face verification centre embeddings on a cohort
before cosine scoring) leaves what tells the enrolled models apart:

    project(x) = l2(l2(x) - c),   c = mean over enrolled models m of centroid_m

where ``centroid_m`` is the L2-normalised mean of model m's references, so every model
weighs the same however many references it has. The centre comes from the gallery's
references only (never from the queries scored), is recomputed whenever the gallery
changes, and is only used where its calibration exists: a backbone opts in by shipping a
card calibration fitted in this space (``calibration["centred"]``, fitted on held-out
synthetic models centred on *their* gallery's mean). A gallery of fewer than
:data:`MIN_MODELS` models has no centre: it is scored in the raw space with the raw card.

Measured (docs/benchmarks.md, "Gallery-centred scores"): with the shipped extractor,
top-1 and pair ROC-AUC rise on held-out synthetic models, the project's real-generator
benchmark and the public generators; the rise is largest where the raw cosines crowd
together most.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fpattr.views import l2_normalize

#: The card key holding calibrations fitted in the centred space.
CENTRED_KEY = "centred"
#: Fewest enrolled models with which the gallery has a centre. With few models the
#: centred centroids are pushed apart (pairwise cosine about -1/(M-1): exactly opposite
#: for two), so the gallery's own impostor scores no longer stand for a generator outside
#: it (found by the break-it pass: a 2-model gallery named neither model nor "unknown"
#: for unenrolled generators, and a 3-model gallery's verify threshold fell to 0).
MIN_MODELS = 5


def gallery_centre(gallery: Any) -> np.ndarray | None:
    """(D,) float32 mean of the gallery's model centroids, or None below
    :data:`MIN_MODELS` models."""
    models = list(getattr(gallery, "models", {}).values()) if gallery is not None else []
    if len(models) < MIN_MODELS:
        return None
    cents = np.stack([l2_normalize(np.asarray(m.embeddings, np.float64).mean(0)) for m in models])
    return cents.mean(0).astype(np.float32)


@dataclass(frozen=True)
class ScoreSpace:
    """Where cosines are taken: ``centre`` None is the raw space (L2 only)."""

    centre: np.ndarray | None = None

    @classmethod
    def for_gallery(cls, card: dict[str, Any] | None, gallery: Any) -> ScoreSpace:
        """The space a backbone's ``card`` (its ``calibration()`` dict) and a gallery call
        for: centred when the card has a centred calibration and the gallery a centre."""
        if not card or CENTRED_KEY not in card:
            return cls(None)
        return cls(gallery_centre(gallery))

    @property
    def centred(self) -> bool:
        return self.centre is not None

    def project(self, x: Any) -> np.ndarray:
        """Fingerprints (D,) or (N, D) -> unit vectors of the same shape (float32) in this
        space. Raw embeddings only: projecting twice subtracts the centre twice."""
        x = l2_normalize(np.asarray(x, np.float32))
        if self.centre is None:
            return x
        return l2_normalize(x - self.centre).astype(np.float32, copy=False)

    def without(self, centroid: np.ndarray, n_models: int) -> ScoreSpace:
        """The space of this gallery of ``n_models`` models with one model, whose raw unit
        ``centroid`` is (D,), left out: its centre drops that centroid. With fewer than
        :data:`MIN_MODELS` left there is no such centred space: this one is kept."""
        if self.centre is None or n_models - 1 < MIN_MODELS:
            return self
        c = (n_models * self.centre.astype(np.float64) - centroid) / (n_models - 1)
        return ScoreSpace(c.astype(np.float32))

    def card(self, card: dict[str, Any] | None) -> dict[str, Any] | None:
        """The part of ``card`` calibrated for this space."""
        if not card:
            return card
        if self.centred:
            return card[CENTRED_KEY]
        return {k: v for k, v in card.items() if k != CENTRED_KEY}

    def gallery(self, gallery: Any) -> Any:
        """``gallery`` with every reference projected (the same object in the raw space;
        an in-memory copy otherwise, sharing names, refs and metadata)."""
        if gallery is None or not self.centred:
            return gallery
        from fpattr.gallery import Gallery, GalleryModel

        out = Gallery(backbone=dict(gallery.backbone))
        for name, m in gallery.models.items():
            out.models[name] = GalleryModel(
                name, self.project(m.embeddings), m.refs, m.created, m.meta
            )
        return out

    def info(self) -> dict[str, Any]:
        """What reports record about the space."""
        if not self.centred:
            return {"kind": "raw", "method": "cosine of L2-normalised fingerprints"}
        return {
            "kind": "gallery-centred",
            "method": "cosine after subtracting the mean of the enrolled models' centroids",
            "centre_norm": round(float(np.linalg.norm(self.centre)), 4),
        }
