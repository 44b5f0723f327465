"""The decode-and-embed loop: load -> views -> backbone, streaming.

:class:`fpattr.session.Session` is the inference API built on it (gallery matching and
decisions through :mod:`fpattr.decision`).

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
from fpattr.calibration import DEFAULT_TARGET_FAR
from fpattr.errors import ImageLoadError
from fpattr.io.loader import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from fpattr.io.prefetch import iter_loaded
from fpattr.io.walk import InputItem, iter_inputs
from fpattr.views import ViewBatcher

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
    prior_unknown: float = 0.5  # prior probability that a query's source is not enrolled
    min_probability: float = 0.5  # posterior needed to name one model
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
    effective_views: int = 0  # views' worth of distinct pixels (a 65-px image: 1)
    flat: bool = False  # every view is flat: no fingerprint evidence
    error: str | None = None
    thumbnail: str | None = None
    skipped: bool = False  # left out on purpose (``error`` says why): not a failure

    @property
    def path(self) -> str:
        return str(self.item.path)


def _display(image: LoadedImage) -> np.ndarray:
    """Pixels as a viewer shows them: the EXIF orientation applied (thumbnails only)."""
    from fpattr.io.loader import oriented

    return oriented(image.pixels, image.orientation)  # orientation 1: the pixels as they are


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

    ``include_skipped``: also yield the inputs left out on purpose (non-images found in a
    folder, hidden entries) as :class:`Embedded` with ``skipped=True`` and the reason in
    ``error``. Off by default so that callers which count every ``error`` as a failure keep
    working; :class:`fpattr.session.Session` turns it on.
    """

    def __init__(
        self,
        backbone: Backbone,
        settings: Settings | None = None,
        *,
        loader: Callable[..., LoadedImage] | None = None,
        include_skipped: bool = False,
    ) -> None:
        self.backbone = backbone
        self.settings = settings or Settings()
        self.n_views = int(self.settings.views or backbone.default_views)
        self.batch_views = int(self.settings.batch_size or backbone.batch_size)
        self.loader = loader or load_image
        self.include_skipped = include_skipped

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
                    skipped = bool(getattr(res, "skipped", False))
                    if skipped and not self.include_skipped:
                        continue
                    e = Embedded(item, None, None, error=res.reason, skipped=skipped)
                    pending.append((key, e))
                else:
                    info = batcher.add(key, res.pixels)
                    if info is None:  # no views of this image: "views: ..."
                        _, error = batcher.pop(key)
                        pending.append((key, Embedded(item, res, None, error=error)))
                        continue
                    thumb = None
                    if s.thumbnails:  # metadata is applied for display only
                        thumb = thumbnail_uri(_display(res))
                    res.pixels = None  # type: ignore[assignment]  # free memory early
                    e = Embedded(
                        item,
                        res,
                        None,
                        info["n_views"],
                        info["padded"],
                        effective_views=int(info.get("effective_views", info["n_views"])),
                        flat=info.get("flat_views", 0) >= info["n_views"],
                        thumbnail=thumb,
                    )
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


@dataclass
class RunStats:
    """Running counts for the summary (constant memory).

    ``n_inputs`` counts the inputs that were tried (processed + failed); skipped inputs
    (non-images found in a folder, hidden entries) are counted in ``n_skipped`` only, so
    ``n_failed = n_inputs - n_ok``.
    """

    started: float = field(default_factory=time.monotonic)
    n_inputs: int = 0
    n_ok: int = 0
    n_skipped: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    emb_sum: np.ndarray | None = None  # sum of the pooled (non-flat) embeddings
    n_pooled: int = 0
    n_duplicates: int = 0  # pooled files whose content was already pooled
    pooled_sha: set[str] = field(default_factory=set)
    min_views: int | None = None  # the least evidence among the pooled images

    def add_embedding(
        self, embedding: np.ndarray, views: int | None, sha256: str | None = None
    ) -> None:
        """Pool one image into the run's set embedding (``--as-set``); a file whose content
        (sha256) was already pooled is one piece of evidence, counted in ``n_duplicates``."""
        if sha256 is not None:
            if sha256 in self.pooled_sha:
                self.n_duplicates += 1
                return
            self.pooled_sha.add(sha256)
        self.emb_sum = embedding if self.emb_sum is None else self.emb_sum + embedding
        self.n_pooled += 1
        if views is not None:
            self.min_views = views if self.min_views is None else min(self.min_views, views)

    def summary(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        secs = time.monotonic() - self.started
        return {
            "n_inputs": self.n_inputs,
            "n_ok": self.n_ok,
            "n_failed": self.n_inputs - self.n_ok,
            "n_skipped": self.n_skipped,
            "decisions": dict(sorted(self.decisions.items(), key=lambda kv: -kv[1])),
            "seconds": round(secs, 3),
            "images_per_second": round(self.n_ok / secs, 2) if secs > 0 else None,
            **(extra or {}),
        }
