"""Views: the crops a backbone sees of one image.

Crops are taken at native resolution and never resized: resampling would
overwrite exactly the high-frequency traces that identify a generator. An
image smaller than the view size is reflect-padded (and the report says so).

Not every input carries a fingerprint: :func:`effective_views` says how many
views' worth of distinct pixels an image has, and :func:`view_signal` measures
how much high-frequency content (where the generator's traces live) each view
holds; a view under :data:`FLAT_SIGNAL` is flat (solid colour, smooth gradient).

Images -> views -> backbone -> one pooled embedding per image, batching views across
images: :class:`ViewBatcher`, shared by the inference pipeline
(:class:`fpattr.pipeline.Embedder`) and the evaluation protocol
(:func:`fpattr.evaluation.protocol.embed_images`), so an image is embedded the same way
everywhere: its views are queued behind those of the images before it, sent to
``backbone.embed`` in one batch once enough are pending, and pooled per image as
L2 per view -> mean -> L2 (:func:`l2_normalize`, the one L2 normaliser of the package).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

from fpattr.signal import BINOMIAL5, residual, to_gray

if TYPE_CHECKING:  # backbones stay out of this module's imports (they import it)
    from fpattr.backbones.base import Backbone

STRATEGIES = ("grid", "center")

#: Residual std (8-bit units, see :func:`view_signal`) under which a view is *flat*: it holds
#: (next to) no high-frequency content for a generator's trace to live in.
#:
#: Measured on 64 px views (luma residual std x 255, 2 px border excluded): solid colours,
#: a 1x1 image reflect-padded and smooth float gradients: 0.0; the same gradients quantised
#: to 8 bits: up to 0.31 (median 0.14); uniform noise of amplitude 2/255: 0.67; photo crops:
#: median 4-10. The line sits far below the smoothest *generated* images measured: the
#: bundled demo VAE's samples measure 0.38-0.75 and the extractor still identifies them at
#: cosine 0.97, so smoothness is not absence of fingerprint. Only (near-)constant views are
#: flat; an 8-bit gradient counts as (weak) signal and is left to the calibration.
FLAT_SIGNAL = 0.1

#: Residual pixels this close to a view's edge are left out of :func:`view_signal`: there the
#: 5-tap low-pass reads reflect padding, which turns a linear ramp into a kink.
_EDGE = 2


def _positions(length: int, size: int, n: int) -> list[int]:
    """n evenly spread start offsets of a window of `size` inside `length`."""
    if length <= size or n <= 1:
        return [max(0, (length - size) // 2)]
    return sorted({round(i * (length - size) / (n - 1)) for i in range(n)})


def grid_shape(n_views: int) -> tuple[int, int]:
    """Rows x cols of crops for a requested view count (1, 4, 9, 16 ...: squares)."""
    side = max(1, int(round(np.sqrt(n_views))))
    return side, side


def pad_to(pixels: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
    """Reflect-pad (H, W, 3) up to at least size x size; returns (array, padded?)."""
    h, w = pixels.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if not ph and not pw:
        return pixels, False
    pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
    return np.pad(pixels, pad, mode="reflect"), True  # numpy reflects repeatedly if needed


def effective_views(height: int, width: int, size: int, n_views: int) -> int:
    """How many views' worth of distinct pixels an ``height`` x ``width`` image (pixels) has.

    ``min(n_views, max(1, (height // size) * (width // size)))`` for ``size`` x ``size``
    views: the number of non-overlapping view-sized tiles, at least 1 and at most the
    ``n_views`` taken. The grid spreads its views evenly, so on an image smaller than
    ``n_views`` tiles they overlap (a 65 px image gives 4 views that share 63 of their 64
    rows), and a padded image's views repeat its pixels; overlapping crops of a small image
    are not independent evidence, so this, not the view count, is how many votes it carries.
    E.g. with 64 px views: 65 x 65 -> 1, 128 x 128 -> 4 (n_views=4), 32 x 32 (padded) -> 1.
    """
    if size < 1:
        raise ValueError(f"view size must be >= 1, got {size}")
    tiles = (max(0, int(height)) // size) * (max(0, int(width)) // size)
    return int(min(n_views, max(1, tiles)))


#: The most views :func:`view_grid` gives an image when the count follows its size (a
#: 4 x 4 grid): a 256 px image then carries all of its 64 px tiles, at 4x the inference cost
#: of the 4-view default; larger images are sampled by the same 16 crops spread evenly.
MAX_AUTO_VIEWS = 16


#: How a gallery records that its references' views followed their size (the rule of
#: :func:`view_grid` with :data:`MAX_AUTO_VIEWS`); a fixed count is recorded as its number.
BY_SIZE_RULE = f"by-size-{MAX_AUTO_VIEWS}"


def view_rule(fixed: int | None) -> str:
    """The label of the view rule a run uses: ``fixed`` views (``--views N``) or
    :data:`BY_SIZE_RULE`. Galleries store it with every reference so that references and
    queries can be checked to be cropped alike (:meth:`fpattr.session.Session.view_notes`)."""
    return str(int(fixed)) if fixed else BY_SIZE_RULE


def view_grid(
    height: int, width: int, size: int, base: int, cap: int = MAX_AUTO_VIEWS
) -> tuple[int, int]:
    """Rows x cols of crops for an ``height`` x ``width`` image when they follow its size.

    Along each side, the number of whole ``size``-pixel tiles it holds, at least the side of
    the ``base`` grid (the backbone's default views, the count its card was calibrated at)
    and at most the side of the ``cap`` grid: more pixels give more independent crops to
    pool, as far as the image has them. Issue 10, item 3: the view count chosen by the
    image size. E.g. 64 px views, base 4: 128 x 128 -> 2 x 2, 192 x 256 -> 3 x 4,
    256 x 256 -> 4 x 4, 1024 x 1024 -> 4 x 4, 64 x 4000 -> 2 x 4 (one row of crops fits:
    4 views), 65 x 65 -> 2 x 2 (overlapping; :func:`effective_views` says 1).
    """
    if size < 1:
        raise ValueError(f"view size must be >= 1, got {size}")
    lo = grid_shape(max(1, int(base)))[0]
    hi = max(lo, grid_shape(max(1, int(cap)))[0])
    rows = min(hi, max(lo, max(0, int(height)) // size))
    cols = min(hi, max(lo, max(0, int(width)) // size))
    return rows, cols


def view_signal(views: np.ndarray) -> np.ndarray:
    """High-frequency content of each view: (V, S, S, 3) float in [0, 1] -> (V,) float64.

    The standard deviation, in 8-bit units (x 255), of the noise residual of the view's luma
    (:func:`fpattr.signal.to_gray`, then :func:`fpattr.signal.residual`: the image minus its
    binomial low-pass), leaving out a 2 px border where the low-pass reads padding (views of
    8 px or less are measured whole). Generator fingerprints live in that residual,
    so a view whose value is under :data:`FLAT_SIGNAL` (a solid colour, a padded 1x1 image, a
    smooth gradient even after 8-bit quantisation) carries no trace to attribute.
    """
    views = np.asarray(views)
    if views.ndim != 4 or views.shape[-1] != 3:
        raise ValueError(f"views must be (V, S, S, 3), got shape {views.shape}")
    gray = to_gray(views.astype(np.float32, copy=False))
    if min(gray.shape[1:]) > 4 * _EDGE:
        r = _interior_residual(gray)
    else:
        r = residual(gray)
    return r.reshape(r.shape[0], -1).astype(np.float64).std(axis=1) * 255.0


def _interior_residual(gray: np.ndarray) -> np.ndarray:
    """``residual(gray)[:, E:-E, E:-E]`` (E = :data:`_EDGE`), bit for bit, without padding.

    Inside the border the low-pass never reads the reflect padding, so the padded image
    and the values of the border are not needed: the same float32 products are summed in
    the same order as :func:`fpattr.signal.lowpass`. The flat check runs on every view of
    every image, in the decode threads that share the cores with inference.
    """
    taps = len(BINOMIAL5)
    assert _EDGE == taps // 2  # the border left out is exactly what the padding reaches
    h, w = gray.shape[-2:]
    h_in, w_in = h - taps + 1, w - taps + 1
    acc = np.zeros(gray.shape[:-1] + (w_in,), dtype=np.float32)
    tmp = np.empty_like(acc)  # each product into one buffer: no temporary per tap
    for i, k in enumerate(BINOMIAL5):  # along W, every row (the next pass needs them)
        acc += np.multiply(gray[..., i : i + w_in], k, out=tmp)
    out = np.zeros(gray.shape[:-2] + (h_in, w_in), dtype=np.float32)
    tmp = tmp[..., :h_in, :]
    for i, k in enumerate(BINOMIAL5):  # along H
        out += np.multiply(acc[..., i : i + h_in, :], k, out=tmp)
    return np.subtract(gray[..., _EDGE:-_EDGE, _EDGE:-_EDGE], out, out=out)


def all_flat(info: dict) -> bool:
    """Whether every view :func:`make_views` made of an image is flat (its ``info``): the
    image carries no fingerprint evidence."""
    return info.get("flat_views", 0) >= info["n_views"]


def make_views(
    pixels: np.ndarray,
    size: int,
    n_views: int = 4,
    strategy: str = "grid",
    *,
    by_size: bool = False,
) -> tuple[np.ndarray, dict]:
    """Crops of an (H, W, 3) float32 image -> ((V, size, size, 3) float32, info).

    ``grid`` spreads up to ``n_views`` crops evenly over the image (rounded to a
    square grid, fewer when the image is small so crops do not repeat);
    ``center`` takes one central crop. ``by_size``: ``n_views`` is the least, and the
    grid follows the image's size (:func:`view_grid`). ``info`` records what was done:

    * ``n_views`` (int): crops returned, V; ``padded`` (bool): the image was reflect-padded;
    * ``effective_views`` (int): :func:`effective_views` of the image as given (before
      padding), capped at V: how many of the V views are independent evidence;
    * ``signal`` (list of V floats): :func:`view_signal` of each view, 8-bit units;
    * ``flat_views`` (int): how many of them are under :data:`FLAT_SIGNAL`.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown view strategy {strategy!r}; expected one of {STRATEGIES}")
    height, width = pixels.shape[:2]
    pixels, padded = pad_to(pixels, size)
    h, w = pixels.shape[:2]
    if strategy == "center":
        rows, cols = 1, 1
    elif by_size:
        rows, cols = view_grid(height, width, size, n_views)
    else:
        rows, cols = grid_shape(n_views)
    ys, xs = _positions(h, size, rows), _positions(w, size, cols)
    views = np.stack([pixels[y : y + size, x : x + size] for y in ys for x in xs])
    views = np.ascontiguousarray(views, dtype=np.float32)
    signal = view_signal(views)
    info = {
        "n_views": int(views.shape[0]),
        "padded": padded,
        "effective_views": effective_views(height, width, size, int(views.shape[0])),
        "signal": [float(s) for s in signal],
        "flat_views": int(np.count_nonzero(signal < FLAT_SIGNAL)),
    }
    return views, info


def backbone_views(
    pixels: np.ndarray, backbone: Backbone, n_views: int | None = None, strategy: str = "grid"
) -> tuple[np.ndarray, dict]:
    """:func:`make_views` as ``backbone`` sees an image: ``n_views`` crops when given (the
    user's ``--views``), else the backbone's default views at least and more as the image's
    size allows (:func:`view_grid`). The one place that rule lives: the pipeline's decode
    threads and :class:`ViewBatcher` both call it."""
    return make_views(
        pixels,
        backbone.input_size,
        int(n_views or backbone.default_views),
        strategy,
        by_size=not n_views,
    )


class EmbeddingShapeError(ValueError):
    """A backbone returned something other than one row of its dimension per view."""


def _check_embedded(backbone: Backbone, emb: np.ndarray, n: int) -> None:
    """Raise :class:`EmbeddingShapeError` unless ``emb`` is a numeric (n, D) array: rows
    are sliced by position, so a plugin backbone that returned one row short scored every
    image of the batch with another's rows, silently, and a 1-D array ended in an internal
    error (break-it 27b). The message names the backbone and the plugin that ships it."""
    if emb.ndim == 2 and emb.shape[0] == n and np.issubdtype(emb.dtype, np.number):
        return
    from fpattr.plugins import plugin_of

    plugin = plugin_of(backbone)
    who = ""
    if plugin is not None:
        who = f" (plugin {plugin.name!r}" + (
            f", {plugin.distribution})" if plugin.distribution else ")"
        )
    raise EmbeddingShapeError(
        f"backbone {getattr(backbone, 'name', type(backbone).__name__)!r}{who} returned an "
        f"array of shape {emb.shape} and dtype {emb.dtype} for {n} views, not ({n}, D): a "
        "bug in the backbone"
    )


def l2_normalize(x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Rows (or a vector) scaled to unit L2 norm; all-zero rows stay zero.

    The package's one L2 normaliser (norm along the last axis, floored at 1e-12); the
    dtype is kept (float32 in, float32 out). ``out=x`` normalises in place (large arrays).
    """
    return np.divide(x, np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12), out=out)


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
        self.n_views = n_views  # None: by the image's size (:func:`backbone_views`)
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
            views, info = backbone_views(pixels, self.backbone, self.n_views, self.strategy)
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop the batch
            self.errors[key] = f"views: {exc}"
            info = None
        else:
            self.add_views(key, views)
        self.seconds += time.perf_counter() - t0
        return info

    def add_views(self, key: Hashable, views: np.ndarray) -> None:
        """Queue views already made by :func:`backbone_views` with this batcher's count and
        strategy (the pipeline makes them in its decode threads)."""
        self.pending.append((key, views))
        self.n_pending += len(views)

    def flush(self) -> None:
        """Embed all pending views in one backbone call and pool them per image."""
        if not self.pending:
            return
        t0 = time.perf_counter()
        pending, self.pending, self.n_pending = self.pending, [], 0
        n = sum(len(v) for _, v in pending)
        try:
            emb = np.asarray(self.backbone.embed(np.concatenate([v for _, v in pending])))
            _check_embedded(self.backbone, emb, n)
        except Exception as exc:  # noqa: BLE001 - report per image, keep going
            for k, _ in pending:
                self.errors[k] = f"backbone failed: {type(exc).__name__}: {exc}"
        else:
            start = 0
            for k, v in pending:
                rows = emb[start : start + len(v)]
                start += len(v)
                # (an all-zero row adds nothing to the pooled direction; an image whose rows
                # are all zero pools to zero: the Embedder calls it flat, no evidence)
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
