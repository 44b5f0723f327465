"""Images -> views -> backbone -> one pooled embedding per image, batching views across images.

Shared by the inference pipeline (:class:`fpattr.pipeline.Embedder`) and the evaluation
protocol (:func:`fpattr.evaluation.protocol.embed_images`), so an image is embedded the
same way everywhere: its views are queued behind those of the images before it, sent to
``backbone.embed`` in one batch once enough are pending, and pooled per image as
L2 per view -> mean -> L2.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

import numpy as np

from fpattr.backbones.base import Backbone
from fpattr.views import make_views


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows (or a vector) scaled to unit L2 norm; all-zero rows stay zero."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class ViewBatcher:
    """Views of consecutive images, batched for one backbone and pooled per image.

    ``add(key, pixels)`` queues an image's views; once ``full``, the caller calls
    ``flush()``, which embeds every pending view in one ``backbone.embed`` call. Each
    key then has either ``out[key]``, its (D,) embedding (L2 per view, mean, L2), or
    ``errors[key]``: ``"views: ..."`` when no views could be made of the image, or
    ``"backbone failed: Type: message"`` for every key of a batch whose call raised.
    ``pop(key)`` takes a key's result out (streaming callers keep memory flat);
    ``seconds`` is the time spent making views and in the backbone.

    Views whose embedding is not finite (an extractor can divide by zero on a perfectly
    flat crop, which carries no fingerprint anyway) are left out of the pooling and
    counted in ``dropped[key]``; an image with no finite view gets an error instead of
    a NaN embedding, which would poison every centroid and comparison it touches.
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        n_views: int | None = None,
        batch_views: int | None = None,
        strategy: str = "grid",
    ) -> None:
        self.backbone = backbone
        self.n_views = int(n_views or backbone.default_views)
        self.batch_views = int(batch_views or backbone.batch_size)
        self.strategy = strategy
        self.pending: list[tuple[Hashable, np.ndarray]] = []
        self.n_pending = 0
        self.out: dict[Hashable, np.ndarray] = {}
        self.errors: dict[Hashable, str] = {}
        self.dropped: dict[Hashable, int] = {}
        self.seconds = 0.0

    @property
    def full(self) -> bool:
        """Enough views are pending for one batch."""
        return self.n_pending >= self.batch_views

    def add(self, key: Hashable, pixels: np.ndarray) -> dict[str, Any] | None:
        """Queue the views of one (H, W, 3) image; ``make_views``' info, or None on error.

        On error (an image too odd for views) ``errors[key]`` says why; one odd image
        never stops the others.
        """
        t0 = time.perf_counter()
        try:
            views, info = make_views(pixels, self.backbone.input_size, self.n_views, self.strategy)
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop the batch
            self.errors[key] = f"views: {exc}"
            info = None
        else:
            self.pending.append((key, views))
            self.n_pending += len(views)
        self.seconds += time.perf_counter() - t0
        return info

    def flush(self) -> None:
        """Embed all pending views in one backbone call and pool them per image."""
        if not self.pending:
            return
        t0 = time.perf_counter()
        pending, self.pending, self.n_pending = self.pending, [], 0
        try:
            emb = np.asarray(self.backbone.embed(np.concatenate([v for _, v in pending])))
        except Exception as exc:  # noqa: BLE001 - report per image, keep going
            for k, _ in pending:
                self.errors[k] = f"backbone failed: {type(exc).__name__}: {exc}"
        else:
            start = 0
            for k, v in pending:
                rows = emb[start : start + len(v)]
                start += len(v)
                finite = np.isfinite(rows).all(axis=1)
                if not finite.all():
                    if not finite.any():
                        self.errors[k] = (
                            "backbone returned non-finite values for every view "
                            "(a flat image carries no fingerprint)"
                        )
                        continue
                    self.dropped[k] = int((~finite).sum())
                    rows = rows[finite]
                self.out[k] = l2_normalize(l2_normalize(rows).mean(axis=0))
        self.seconds += time.perf_counter() - t0

    def pop(self, key: Hashable) -> tuple[np.ndarray | None, str | None]:
        """Remove and return ``(embedding, error)`` of a key (both None if it has neither)."""
        self.dropped.pop(key, None)
        return self.out.pop(key, None), self.errors.pop(key, None)
