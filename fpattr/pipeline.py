"""The inference pipeline: load -> views -> backbone -> gallery -> calibration.

Everything streams: images are decoded in a small thread pool ahead of the
backbone, views of consecutive images are batched together, and each result is
yielded as soon as its batch is done, so memory stays flat for any number of
inputs. Only per-input result dicts (no pixels) leave this module.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fpattr.backbones.base import Backbone
from fpattr.calibration import DEFAULT_TARGET_FAR, Calibration
from fpattr.embedding import ViewBatcher
from fpattr.embedding import l2_normalize as _l2
from fpattr.errors import ImageLoadError
from fpattr.gallery import Gallery
from fpattr.io.loader import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from fpattr.io.prefetch import iter_loaded
from fpattr.io.walk import InputItem, iter_inputs

THUMB_SIDE = 96


@dataclass
class Settings:
    """Knobs recorded verbatim in every report's manifest."""

    top_k: int = 3
    views: int | None = None  # None -> backbone default
    view_strategy: str = "grid"
    batch_size: int | None = None  # views per inference batch; None -> backbone default
    workers: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS
    target_far: float = DEFAULT_TARGET_FAR
    threshold: float | None = None  # user override of the calibrated threshold
    thumbnails: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "thumbnails"}


@dataclass
class Embedded:
    """One input after the backbone: embedding or error, plus metadata."""

    item: InputItem
    image: LoadedImage | None
    embedding: np.ndarray | None  # (D,) L2-normalised mean over views
    n_views: int = 0  # views pooled into the embedding
    padded: bool = False
    dropped_views: int = 0  # views left out: non-finite backbone output (flat crops)
    error: str | None = None
    thumbnail: str | None = None

    @property
    def path(self) -> str:
        return str(self.item.path)


def thumbnail_uri(pixels: np.ndarray, side: int = THUMB_SIDE) -> str:
    from PIL import Image

    img = Image.fromarray(np.clip(pixels * 255 + 0.5, 0, 255).astype(np.uint8))
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Embedder:
    """Streams files through views and a backbone, batching views across images.

    ``loader`` (default :func:`fpattr.io.loader.load_image`) is called as
    ``loader(path, max_pixels=...)`` in the decode threads; wrap it to transform the
    pixels before the views (the evaluation protocol's degradations, for instance).
    """

    def __init__(
        self,
        backbone: Backbone,
        settings: Settings | None = None,
        *,
        loader: Callable[..., LoadedImage] | None = None,
    ) -> None:
        self.backbone = backbone
        self.settings = settings or Settings()
        self.n_views = int(self.settings.views or backbone.default_views)
        self.batch_views = int(self.settings.batch_size or backbone.batch_size)
        self.loader = loader or load_image

    def embed_paths(self, paths: Iterable[Any]) -> Iterator[Embedded]:
        return self.embed_items(iter_inputs(paths))

    def embed_items(self, items: Iterable[InputItem]) -> Iterator[Embedded]:
        s = self.settings
        batcher = ViewBatcher(
            self.backbone,
            n_views=self.n_views,
            batch_views=self.batch_views,
            strategy=s.view_strategy,
        )
        pending: list[tuple[int, Embedded]] = []  # in input order, errors included
        loaded = iter_loaded(items, workers=s.workers, max_pixels=s.max_pixels, loader=self.loader)
        try:
            for key, (item, res) in enumerate(loaded):
                if isinstance(res, ImageLoadError):
                    pending.append((key, Embedded(item, None, None, error=res.reason)))
                else:
                    info = batcher.add(key, res.pixels)
                    if info is None:  # no views of this image: "views: ..."
                        _, error = batcher.pop(key)
                        pending.append((key, Embedded(item, res, None, error=error)))
                        continue
                    thumb = thumbnail_uri(res.pixels) if s.thumbnails else None
                    res.pixels = None  # type: ignore[assignment]  # free memory early
                    e = Embedded(item, res, None, info["n_views"], info["padded"], thumbnail=thumb)
                    pending.append((key, e))
                if batcher.full:
                    yield from self._flush(batcher, pending)
                    pending = []
            yield from self._flush(batcher, pending)
        finally:
            loaded.close()

    @staticmethod
    def _flush(batcher: ViewBatcher, pending: list[tuple[int, Embedded]]) -> Iterator[Embedded]:
        batcher.flush()
        for key, e in pending:
            dropped = batcher.dropped.get(key, 0)
            if dropped:
                e.n_views -= dropped
                e.dropped_views = dropped
            embedding, error = batcher.pop(key)
            if embedding is not None:
                e.embedding = embedding
            if error is not None:
                e.error = error
            yield e


def choose_calibration(
    backbone: Backbone,
    gallery: Gallery | None,
    kind: str,
    *,
    target_far: float = DEFAULT_TARGET_FAR,
    threshold: float | None = None,
) -> tuple[Calibration | None, dict[str, Any]]:
    """Pick the calibration for ``kind`` ("centroid": image vs model, "pair": image vs image).

    Order: the extractor's model card (fitted on held-out synthetic models), then
    the gallery's own references by leave-one-out, else none. A user threshold
    overrides the decision threshold but keeps the probability model.
    """
    cal: Calibration | None = None
    note = ""
    card = backbone.calibration() or {}
    if kind in card:
        cal = Calibration.from_dict({**card[kind], "source": "model-card"})
    elif gallery is not None and len(gallery.models) >= 2:
        g, i = gallery.loo_scores() if kind == "centroid" else gallery.loo_pair_scores()
        if g.size >= 2 and i.size >= 2:
            cal = Calibration.fit(g, i, target_far=target_far, source="gallery-leave-one-out")
        else:
            note = "too few references for leave-one-out calibration (need >= 2 per model)"
    else:
        note = "no calibration in the model card and fewer than 2 models in the gallery"
    if threshold is not None:
        if cal is None:
            cal = Calibration(0.0, 0.0, float(threshold), float("nan"), "user-threshold")
        else:
            cal = Calibration(
                **{
                    **cal.to_dict(),
                    "threshold": float(threshold),
                    "source": cal.source + "+user-threshold",
                }
            )
    info = cal.to_dict() if cal else {"source": "none", "note": note}
    info["kind"] = kind
    if cal is not None and cal.a == 0.0:
        info["note"] = "no probability model: probabilities are not reported"
    return cal, info


@dataclass
class ViewCalibrations:
    """Model-card calibrations fitted with fewer views per image than the default.

    A small image gives one view (64 px) instead of four, so less evidence is averaged
    and genuine scores are lower: a threshold fitted at four views turns most of them
    into "unknown". The card's ``by_views`` entries were fitted on the same held-out
    calibration models at that view count.
    """

    default_views: int
    by_views: dict[int, Calibration]

    def pick(self, cal: Calibration | None, n_views: int) -> tuple[Calibration | None, int | None]:
        """(calibration for an input of ``n_views`` views, its view count or None = default)."""
        if cal is None or not self.by_views or n_views >= self.default_views:
            return cal, None
        k = max([k for k in self.by_views if k <= n_views] or [min(self.by_views)])
        return self.by_views[k], k

    def info(self) -> dict[str, Any]:
        return {str(k): c.to_dict() for k, c in sorted(self.by_views.items())}


def view_calibrations(
    backbone: Backbone, kind: str, cal: Calibration | None
) -> ViewCalibrations | None:
    """The card's per-view-count calibrations for ``kind``, when ``cal`` is the card's own
    (a gallery leave-one-out fit already reflects the gallery's image sizes, and a user
    threshold applies to every input)."""
    if cal is None or cal.source != "model-card":
        return None
    card = backbone.calibration() or {}
    by = {
        int(k): Calibration.from_dict({**v[kind], "source": f"model-card ({k} view)"})
        for k, v in (card.get("by_views") or {}).items()
        if isinstance(v, dict) and kind in v
    }
    if not by:
        return None
    return ViewCalibrations(int(card.get("n_views", backbone.default_views)), by)


def _prob(cal: Calibration | None, s: float) -> float | None:
    if cal is None or cal.a == 0.0:
        return None
    return float(cal.probability(s))


def _image_info(e: Embedded) -> dict[str, Any] | None:
    if e.image is None:
        return None
    info = e.image.info()
    info.pop("path", None)
    info.pop("sha256", None)
    if e.padded:
        info["conversions"] = [*info.get("conversions", []), "reflect-padded to the view size"]
    if e.dropped_views:
        info["conversions"] = [
            *info.get("conversions", []),
            f"{e.dropped_views} flat view(s) left out (non-finite backbone output)",
        ]
    return info


def match(
    embedding: np.ndarray, gallery: Gallery, cal: Calibration | None, top_k: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Top-k models for one embedding and the decision (model, "unknown" or None)."""
    names, sims = gallery.similarities(embedding[None])
    sims = sims[0]
    order = np.argsort(-sims)[:top_k]
    top = [
        {"model": names[k], "similarity": float(sims[k]), "probability": _prob(cal, sims[k])}
        for k in order
    ]
    if cal is None:
        return top, None
    decision = top[0]["model"] if top and top[0]["similarity"] >= cal.threshold else "unknown"
    return top, decision


@dataclass
class RunStats:
    """Running counts for the summary (constant memory)."""

    started: float = field(default_factory=time.monotonic)
    n_inputs: int = 0
    n_ok: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    emb_sum: np.ndarray | None = None

    def summary(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        secs = time.monotonic() - self.started
        return {
            "n_inputs": self.n_inputs,
            "n_ok": self.n_ok,
            "n_failed": self.n_inputs - self.n_ok,
            "decisions": dict(sorted(self.decisions.items(), key=lambda kv: -kv[1])),
            "seconds": round(secs, 3),
            "images_per_second": round(self.n_ok / secs, 2) if secs > 0 else None,
            **(extra or {}),
        }


def attribute(
    paths: Iterable[Any],
    backbone: Backbone,
    gallery: Gallery,
    cal: Calibration | None,
    settings: Settings,
    stats: RunStats,
    views_cal: ViewCalibrations | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield one result dict per input (see docs/user-guide.md for the schema).

    With ``views_cal``, an input with fewer views than the calibration's default is
    decided with the calibration fitted at its view count (``calibration_views``).
    """
    gallery.check_backbone(backbone.info())
    for e in Embedder(backbone, settings).embed_paths(paths):
        stats.n_inputs += 1
        res: dict[str, Any] = {
            "path": e.path,
            "sha256": e.image.sha256 if e.image else None,
            "status": "error" if e.error else "ok",
            "error": e.error,
            "image": _image_info(e),
            "n_views": e.n_views,
            "top": [],
            "decision": None,
            "thumbnail": e.thumbnail,
        }
        if e.embedding is not None and not e.error:
            stats.n_ok += 1
            c, k = views_cal.pick(cal, e.n_views) if views_cal else (cal, None)
            if k is not None:
                res["calibration_views"] = k
            res["top"], res["decision"] = match(e.embedding, gallery, c, settings.top_k)
            key = res["decision"] or "undecided"
            stats.decisions[key] = stats.decisions.get(key, 0) + 1
            stats.emb_sum = e.embedding if stats.emb_sum is None else stats.emb_sum + e.embedding
        yield res


def as_set_decision(
    stats: RunStats, gallery: Gallery, cal: Calibration | None, top_k: int
) -> dict[str, Any] | None:
    """One decision for all good inputs, assumed to come from one source."""
    if stats.emb_sum is None:
        return None
    top, decision = match(_l2(stats.emb_sum), gallery, cal, top_k)
    return {"n_images": stats.n_ok, "top": top, "decision": decision}


def embed_one_side(embedder: Embedder, path: Any) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Embedding of one verify side (a file, or the mean over a folder's images)."""
    total: np.ndarray | None = None
    n_ok, failed, shas, views = 0, [], [], []
    for e in embedder.embed_paths([path]):
        if e.embedding is None or e.error:
            failed.append({"path": e.path, "error": e.error})
            continue
        n_ok += 1
        views.append(e.n_views)
        shas.append(e.image.sha256 if e.image else None)
        total = e.embedding if total is None else total + e.embedding
    info = {
        "path": str(path),
        "n_images": n_ok,
        "failed": failed,
        "sha256": shas[0] if n_ok == 1 else None,
        "n_views": min(views) if views else 0,
    }
    return (_l2(total) if total is not None else None), info


def verify(a: Any, b: Any, backbone: Backbone, settings: Settings, cal_for: Any) -> dict[str, Any]:
    """Same model or not for two files/folders. ``cal_for(kind)`` supplies calibration.

    Two single images are scored with the card's calibration fitted at the smaller of
    their view counts (as ``attribute`` does per image); folders with the default.
    """
    emb = Embedder(backbone, settings)
    ea, ia = embed_one_side(emb, a)
    eb, ib = embed_one_side(emb, b)
    single = ia["n_images"] == 1 and ib["n_images"] == 1
    kind = "pair" if single else "centroid"
    cal, cal_info = cal_for(kind)
    views_cal = view_calibrations(backbone, kind, cal) if single else None
    if views_cal is not None:
        picked, k = views_cal.pick(cal, min(ia["n_views"], ib["n_views"]))
        if k is not None:
            cal, cal_info = picked, {**picked.to_dict(), "kind": kind, "views": k}
    res: dict[str, Any] = {
        "a": str(a),
        "b": str(b),
        "a_sha256": ia["sha256"],
        "b_sha256": ib["sha256"],
        "a_images": ia["n_images"],
        "b_images": ib["n_images"],
        "failed": ia["failed"] + ib["failed"],
        "status": "ok",
        "error": None,
        "similarity": None,
        "probability": None,
        "threshold": cal.threshold if cal else None,
        "decision": None,
        "calibration_kind": kind,
    }
    if ea is None or eb is None:
        side = "A" if ea is None else "B"
        res["status"] = "error"
        res["error"] = f"{side} has no usable image" + (
            f" ({res['failed'][0]['error']})" if res["failed"] else ""
        )
        return res | {"calibration": cal_info}
    s = float(ea @ eb)
    res["similarity"] = s
    res["probability"] = _prob(cal, s)
    if cal is not None:
        res["decision"] = "same" if s >= cal.threshold else "different"
    return res | {"calibration": cal_info}
