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
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fpattr.backbones.base import Backbone
from fpattr.calibration import DEFAULT_TARGET_FAR
from fpattr.errors import ImageLoadError
from fpattr.io.loader import DEFAULT_MAX_PIXELS, LoadedImage, load_image
from fpattr.io.prefetch import STALL, iter_loaded
from fpattr.io.walk import InputItem, iter_inputs
from fpattr.views import ViewBatcher, all_flat, backbone_views

THUMB_SIDE = 96

#: Intra-op threads of an ONNX Runtime backbone by default (``--backbone-opt threads=N``
#: overrides it): one per batch, with one batch in flight per core (:func:`inference_lanes`).
#: Measured on 2 cores (960 PNGs of 128 px, 4 views of 64 px; docs/performance.md): lanes
#: took ``fpattr attribute`` from 196 images/s (1 ONNX Runtime thread, the other core left
#: to decoding: 0.41 of inference alone) to 0.70-0.78 of inference alone. Lanes need no
#: barrier between threads, so a decode thread that takes a core delays one batch instead
#: of stalling both threads of one. The rest of the gap is CPU on saturated cores: the
#: decode thread's work (load 0.34 ms an image of which libpng ~0.25, views and their flat
#: check 0.17, metadata 0.02, run alone) costs 0.77-0.96 ms beside inference on the other
#: core (shared cache and memory bandwidth), the caller's thread 0.15-0.26. Letting each
#: lane decode its own batch instead (no separate decoding thread, no time-slicing) changed
#: nothing measurable (6 interleaved rounds: best 363 vs 367 images/s, median 348 vs 354).
ONNX_THREADS = 1
#: CPUs this process may use for inference lanes; None: :func:`available_cpus`. A Ray actor
#: sets its share of the node (fpattr.engine_ray), so actors x lanes fit the node's cores.
PROCESS_CPUS: int | None = None


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (``taskset``,
    a container's cpuset), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this OS (macOS, Windows)
        return max(1, os.cpu_count() or 1)


#: CPUs per decoding thread by default (:func:`decode_workers`). Loading a 128 px PNG and
#: making its views costs ~0.2 of its inference CPU, so one decoding thread feeds the
#: inference lanes of about 4 cores. More threads than that only contend: on 2 cores two
#: decoding threads used 1.02-1.03 ms of CPU per image where one used 0.84-0.87 (the same
#: images and pipeline, every other thread unchanged; on one core both cost 0.82-0.84).
CPUS_PER_DECODE_WORKER = 4


def decode_workers(cpus: int | None = None) -> int:
    """Decoding threads by default: one per :data:`CPUS_PER_DECODE_WORKER` CPUs, at least
    one (``cpus``: :data:`PROCESS_CPUS`, else :func:`available_cpus`). ``--workers N``
    overrides it."""
    return max(1, (cpus or PROCESS_CPUS or available_cpus()) // CPUS_PER_DECODE_WORKER)


def open_backbone(name: str | None = "auto", **options: Any) -> Backbone:
    """A registered backbone by name, an ONNX one with :data:`ONNX_THREADS` intra-op threads
    unless ``threads=`` is given: the one default the CLI and :meth:`Session.open` share.

    Raises :class:`fpattr.errors.BackboneError` as ``create_backbone`` does.
    """
    from fpattr.backbones.onnx import is_onnx_backbone
    from fpattr.backbones.resolve import create_backbone, resolve_backbone_name

    real = resolve_backbone_name(name)
    if is_onnx_backbone(real):
        options.setdefault("threads", ONNX_THREADS)
    return create_backbone(real, **options)


def inference_lanes(backbone: Backbone, cpus: int | None = None) -> int:
    """Batches :class:`Embedder` runs through ``backbone`` at once, each in its own thread.

    An ONNX Runtime backbone on the CPU with ``threads`` intra-op threads gets
    ``cpus // threads`` lanes (at least one; ``cpus``: :data:`PROCESS_CPUS`, else
    :func:`available_cpus`): ``InferenceSession.run`` may be called from several threads at once.
    Every other backbone gets one lane: a plugin's backbone need not be thread-safe, ORT's
    default of 0 threads already takes every core, and a GPU provider runs one batch at a
    time (not measured yet: no GPU here).
    """
    from fpattr.backbones.onnx import OnnxBackbone

    if not isinstance(backbone, OnnxBackbone) or backbone.threads < 1:
        return 1
    if any(p != "CPUExecutionProvider" for p in backbone.active_providers):
        return 1
    return max(1, (cpus or PROCESS_CPUS or available_cpus()) // backbone.threads)


@dataclass
class Settings:
    """Knobs recorded verbatim in every report's manifest."""

    top_k: int = 3
    views: int | None = None  # None -> by the image's size, at least the backbone default
    view_strategy: str = "grid"
    batch_size: int | None = None  # views per inference batch; None -> backbone default
    workers: int | None = None  # decoding threads; None -> decode_workers()
    max_pixels: int = DEFAULT_MAX_PIXELS
    target_far: float = DEFAULT_TARGET_FAR
    threshold: float | None = None  # user override of the calibrated threshold
    prior_unknown: float = 0.5  # prior probability that a query's source is not enrolled
    min_probability: float = 0.5  # posterior needed to name one model
    thumbnails: bool = False

    def __post_init__(self) -> None:
        # the CLI's options are range-checked; the Python API's settings are checked here
        # (views=-3 gave images with no view and no decision, a numpy warning, no error)
        for name, low in (("views", 1), ("batch_size", 1), ("workers", 0)):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < low):
                raise ValueError(f"Settings.{name} must be None or an integer >= {low}, not {v!r}")
        for name in ("top_k", "max_pixels"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Settings.{name} must be an integer >= 1, not {v!r}")

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
    metadata: Any = None  # what ``Embedder(metadata=...)`` read of the file, if asked

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


@dataclass(eq=False)
class _Prepared:
    """What a decode thread hands the batching loop: the image (pixels dropped), its views
    and what else is read per file off the main thread (thumbnail, metadata)."""

    image: LoadedImage
    views: np.ndarray | None
    info: dict[str, Any] | None
    error: str | None = None  # "views: ..." when no views could be made
    thumbnail: str | None = None
    metadata: Any = None

    @property
    def pixels(self) -> np.ndarray | None:
        # what the load-ahead window holds for this file (its byte cap reads ``pixels``)
        return self.views


#: The most inputs one batch answers for (views or not) before it is handed on.
MAX_PENDING_ANSWERS = 256
#: After an input took longer than this to come (seconds), the results of everything read
#: are handed on (a partial batch) before the next read: results stream when the inputs
#: come slowly (an API caller's generator, a slow disk), one input behind.
STALL_SECONDS = 0.25


class Embedder:
    """Streams files through views and a backbone, batching views across images.

    ``loader`` (default :func:`fpattr.io.loader.load_image`) is called as
    ``loader(path, max_pixels=...)`` in the decode threads; wrap it to transform the
    pixels before the views (the evaluation protocol's degradations, for instance).

    ``include_skipped``: also yield the inputs left out on purpose (non-images found in a
    folder, hidden entries) as :class:`Embedded` with ``skipped=True`` and the reason in
    ``error``. Off by default so that callers which count every ``error`` as a failure keep
    working; :class:`fpattr.session.Session` turns it on.

    ``metadata``: called as ``metadata(path)`` in the decode threads for every decoded
    file; its result is :attr:`Embedded.metadata` (None if it raised). The session reads
    provenance this way, beside the decode instead of after the decision.

    Where the time goes (why the loop is shaped so): the decode threads load, make the
    views (and thumbnails, metadata) of the next images; inference threads (one per lane,
    :func:`inference_lanes`) run the backbone on full batches while the caller decides and
    writes the results of the batches before them. The caller's thread only batches and
    pools, so its per-image Python work overlaps inference instead of adding to it.
    """

    def __init__(
        self,
        backbone: Backbone,
        settings: Settings | None = None,
        *,
        loader: Callable[..., LoadedImage] | None = None,
        include_skipped: bool = False,
        metadata: Callable[[str], Any] | None = None,
    ) -> None:
        self.backbone = backbone
        self.settings = settings or Settings()
        self.batch_views = int(self.settings.batch_size or backbone.batch_size)
        self.loader = loader or load_image
        self.include_skipped = include_skipped
        self.metadata = metadata

    def embed_paths(self, paths: Iterable[Any]) -> Iterator[Embedded]:
        return self.embed_items(iter_inputs(paths))

    def _prepare(self, path: Any, *, max_pixels: int) -> _Prepared:
        """Decode thread: load, views, thumbnail, metadata (loader errors propagate)."""
        res = self.loader(path, max_pixels=max_pixels)
        s = self.settings
        views: np.ndarray | None = None
        info: dict[str, Any] | None = None
        error = thumb = meta = None
        try:
            views, info = backbone_views(res.pixels, self.backbone, s.views, s.view_strategy)
        except Exception as exc:  # noqa: BLE001 - one odd image must not stop the batch
            error = f"views: {exc}"
        if info is not None and s.thumbnails:  # metadata is applied for display only
            thumb = thumbnail_uri(_display(res))
        if self.metadata is not None:
            try:
                meta = self.metadata(res.path)
            except Exception:  # noqa: BLE001 - the caller reads it again, and says why
                meta = None
        res.pixels = None  # type: ignore[assignment]  # free memory early
        return _Prepared(res, views, info, error, thumb, meta)

    def embed_items(self, items: Iterable[InputItem]) -> Iterator[Embedded]:
        s = self.settings
        loaded = iter_loaded(
            items,
            workers=s.workers or decode_workers(),
            max_pixels=s.max_pixels,
            loader=self._prepare,
            stall_after=STALL_SECONDS,
        )
        lanes = inference_lanes(self.backbone)
        # inference threads: batches run while the caller handles the batches before them
        infer = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="fpattr-infer")
        batch = _Batch(self._batcher())
        running: list[tuple[_Batch, Future[None]]] = []  # submitted, oldest first
        failed: list[Exception] = []  # the source's, raised after the inputs before it

        def hand_on() -> None:  # the batch to an inference lane, a new one to fill
            nonlocal batch
            running.append((batch, infer.submit(batch.batcher.flush)))
            batch = _Batch(self._batcher())

        try:
            for key, (item, res) in _until_failure(loaded, failed):
                if res is STALL:  # the next input is slow to come: hand on what is held
                    if batch.pending:
                        hand_on()
                    while running:
                        yield from self._finish(*running.pop(0))
                    continue
                if isinstance(res, ImageLoadError):
                    skipped = bool(getattr(res, "skipped", False))
                    if skipped and not self.include_skipped:
                        continue
                    e = Embedded(item, None, None, error=res.reason, skipped=skipped)
                    batch.pending.append((key, e))
                elif not isinstance(res, _Prepared):  # never: the loader is _prepare
                    raise TypeError(f"unexpected load result {type(res).__name__}")
                elif res.views is None or res.info is None:  # no views of this image
                    e = Embedded(item, res.image, None, error=res.error, metadata=res.metadata)
                    batch.pending.append((key, e))
                else:
                    info = res.info
                    batch.batcher.add_views(key, res.views)
                    e = Embedded(
                        item,
                        res.image,
                        None,
                        info["n_views"],
                        info["padded"],
                        effective_views=int(info.get("effective_views", info["n_views"])),
                        flat=all_flat(info),
                        thumbnail=res.thumbnail,
                        metadata=res.metadata,
                    )
                    batch.pending.append((key, e))
                del res
                # answers without views (failed, skipped inputs) never fill a batch: a
                # folder of them streamed nothing and grew without bound (break-it)
                if batch.batcher.full or len(batch.pending) >= MAX_PENDING_ANSWERS:
                    hand_on()
                    if len(running) > lanes:  # the oldest has run or is running: its turn
                        yield from self._finish(*running.pop(0))
            hand_on()
            while running:
                yield from self._finish(*running.pop(0))
        finally:
            for _, future in running:
                future.cancel()
            infer.shutdown(wait=True)  # a batch already in the backbone ends first
            loaded.close()
        if failed:
            raise failed[0]

    def _batcher(self) -> ViewBatcher:
        return ViewBatcher(
            self.backbone,
            n_views=self.settings.views,
            batch_views=self.batch_views,
            strategy=self.settings.view_strategy,
        )

    @staticmethod
    def _finish(batch: _Batch, future: Future[None]) -> Iterator[Embedded]:
        future.result()  # the batcher reports backbone errors per image; others raise here
        batcher = batch.batcher
        for key, e in batch.pending:
            dropped = batcher.dropped.get(key, 0)
            if dropped:
                e.n_views -= dropped
                e.dropped_views = dropped
            embedding, error = batcher.pop(key)
            if embedding is not None:
                e.embedding = embedding
                # the backbone saw no fingerprint (every row zero: the spectrum backbone on
                # flat views, a plugin's): no evidence, like a flat image; a zero "unit"
                # vector was enrolled and attributed (break-it 27b)
                e.flat = e.flat or not np.any(embedding)
            if error is not None:
                e.error = error
            yield e


def _until_failure(loaded: Iterator[Any], box: list[Exception]) -> Iterator[tuple[int, Any]]:
    """``enumerate(loaded)`` that ends, instead of raising, when ``loaded`` raises (the
    exception goes in ``box``): the caller hands on the inputs read before it, then
    raises it (second break-it pass: a source raising after 5 images lost all 5)."""
    key = 0
    while True:
        try:
            value = next(loaded)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - re-raised by the caller after the rest
            box.append(exc)
            return
        yield key, value
        key += 1


@dataclass(eq=False)
class _Batch:
    """One batch of the loop: its views (in ``batcher``) and every input it answers for,
    errors included, in input order."""

    batcher: ViewBatcher
    pending: list[tuple[int, Embedded]] = field(default_factory=list)


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
    n_repeated: int = 0  # inputs whose path was given or found again: attributed once
    decisions: dict[str, int] = field(default_factory=dict)
    emb_sum: np.ndarray | None = None  # sum of the pooled (non-flat) embeddings
    n_pooled: int = 0
    n_duplicates: int = 0  # pooled files whose content was already pooled
    pooled_sha: set[str] = field(default_factory=set)
    min_views: int | None = None  # the least evidence among the pooled images
    #: how the pooled images look processed against the references (fpattr.processing.
    #: query_processing; None: stored like them) -> count
    processings: dict[str | None, int] = field(default_factory=dict)

    def count_repeat(self, _item: Any) -> None:
        """An input left out because its path came before (``once_per_path``)."""
        self.n_repeated += 1

    def add_embedding(
        self,
        embedding: np.ndarray,
        views: int | None,
        sha256: str | None = None,
        processing: str | None = None,
    ) -> None:
        """Pool one image into the run's set embedding (``--as-set``); a file whose content
        (sha256) was already pooled is one piece of evidence, counted in ``n_duplicates``.
        ``processing``: what :func:`fpattr.processing.query_processing` said of it."""
        if sha256 is not None:
            if sha256 in self.pooled_sha:
                self.n_duplicates += 1
                return
            self.pooled_sha.add(sha256)
        self.emb_sum = embedding if self.emb_sum is None else self.emb_sum + embedding
        self.n_pooled += 1
        self.processings[processing] = self.processings.get(processing, 0) + 1
        if views is not None:
            self.min_views = views if self.min_views is None else min(self.min_views, views)

    def summary(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        secs = time.monotonic() - self.started
        return {
            "n_inputs": self.n_inputs,
            "n_ok": self.n_ok,
            "n_failed": self.n_inputs - self.n_ok,
            "n_skipped": self.n_skipped,
            "n_repeated": self.n_repeated,
            "decisions": dict(sorted(self.decisions.items(), key=lambda kv: -kv[1])),
            "seconds": round(secs, 3),
            "images_per_second": round(self.n_ok / secs, 2) if secs > 0 else None,
            **(extra or {}),
        }
