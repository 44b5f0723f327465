"""Decode the next images in background threads while the caller runs inference.

Pillow and numpy release the GIL while decoding, so a small thread pool hides I/O and decode
time. The window of started-but-not-consumed loads is bounded, so memory stays flat however
many inputs there are, and results come back in input order so reports are deterministic.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from fpattr.errors import ImageLoadError
from fpattr.io.loader import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    NotAnImageError,
    SkippedInputError,
    load_image,
)
from fpattr.io.walk import InputItem

__all__ = ["STALL", "iter_loaded"]

Loader = Callable[..., LoadedImage]
Result = LoadedImage | ImageLoadError


#: Decoded pixels the load-ahead window may hold (float32: 1 GiB is ~89 Mpx of RGB).
DEFAULT_MAX_BYTES = 1 << 30

#: Yielded as ``(None, STALL)`` by ``iter_loaded(stall_after=...)`` after a slow read from
#: the source, once everything read is yielded: the caller's moment to hand on what it
#: holds instead of waiting for a full batch.
STALL: Any = object()


def iter_loaded(
    items: Iterable[InputItem],
    *,
    workers: int = 2,
    max_pending: int = 32,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    loader: Loader = load_image,
    stall_after: float | None = None,
) -> Iterator[tuple[InputItem, Result]]:
    """Yield ``(item, LoadedImage or ImageLoadError)`` in input order, loading ahead.

    ``stall_after`` (seconds; with ``workers`` >= 1): loaded results are yielded before
    more inputs are read, and after an input took longer than that to come from ``items``
    everything read is yielded, then ``(None, STALL)``, before the next read. ``items`` is
    read in the caller's thread (a source tied to its thread, such as a database cursor,
    keeps working), so a read that blocks holds back what the caller has not handed on:
    the latency after a pause in the source is one input. An exception raised by ``items``
    comes after the results of the inputs read before it.

    At most ``max_pending`` loads are started and not yet handed to the caller (the one being
    processed included), and no new load starts while the decoded pixels waiting for the
    caller (finished loads, plus the others counted at the mean size seen so far)
    reach ``max_bytes``: a folder of 64-Mpx photos keeps one or two ahead, not 32. Items
    that carry an ``error`` are passed through as ImageLoadError
    without touching the disk (:class:`~fpattr.io.loader.SkippedInputError` for skipped items).
    A :class:`~fpattr.io.loader.NotAnImageError` (skipped) stands only for files found in a
    folder; for a file named explicitly it becomes a plain ImageLoadError (failed).
    ``loader(path, max_pixels=...)`` is called for the rest; any
    exception it raises is returned as ImageLoadError, never raised. ``workers=0`` loads in the
    calling thread (handy for debugging). Closing the generator early cancels queued loads and
    waits only for the ones already running, so no thread outlives it.
    """
    if workers < 0 or max_pending < 1:
        raise ValueError("workers must be >= 0 and max_pending >= 1")
    if workers == 0:
        for item in items:
            yield (
                item,
                _unusable(item) if item.error is not None else _run(loader, item, max_pixels),
            )
        return

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fpattr-load")
    pending: deque[tuple[InputItem, Future[Result] | None]] = deque()
    held = _HeldBytes()
    source = iter(items)
    mean, seen = 0.0, 0  # running mean of the decoded sizes (bytes)
    failure: BaseException | None = None  # raised by the source, after what it gave
    slow = False  # the last input took longer than stall_after to come
    try:
        exhausted = False
        while True:
            while (
                not exhausted
                and len(pending) < max_pending
                # until a size is known, only as many loads as there are workers
                and (len(pending) <= workers if not seen else True)
                and (not pending or held.total(mean) < max_bytes)
            ):
                if stall_after is not None and pending and (slow or _ready(pending[0][1])):
                    # a result is ready, or the last read was slow: hand on what was read
                    # before reading (and perhaps waiting) again
                    break
                started = time.monotonic()
                try:
                    item = next(source, None)
                except Exception as exc:  # noqa: BLE001 - raised once the rest is yielded
                    failure, item = exc, None
                slow = stall_after is not None and time.monotonic() - started > stall_after
                if item is None:
                    exhausted = True
                elif item.error is not None:
                    pending.append((item, None))
                else:
                    future = pool.submit(_run, loader, item, max_pixels)
                    held.track(future)
                    pending.append((item, future))
                if slow:
                    break  # a slow source: hand this one on before waiting for the next
            if not pending:
                if failure is not None:
                    raise failure
                return
            item, future = pending.popleft()
            if future is None:
                yield item, _unusable(item)
            else:
                res = future.result()
                held.taken(future)
                size = _nbytes(res)
                if size:
                    seen += 1
                    mean += (size - mean) / seen
                yield item, res
                del res  # the caller has it: the window must not keep it alive
            if slow and not pending and not exhausted:
                # everything read is handed on and the next read may block: the caller's
                # moment to hand on what it holds
                yield None, STALL  # type: ignore[misc]
    finally:
        for _, future in pending:
            if future is not None:
                future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _ready(future: Future[Result] | None) -> bool:
    """A pending load whose result can be handed on at once."""
    return future is None or future.done()


def _nbytes(res: Result) -> int:
    pixels = getattr(res, "pixels", None)
    return int(getattr(pixels, "nbytes", 0) or 0)


class _HeldBytes:
    """Decoded bytes the window holds or will: finished loads exactly, the others
    (running or queued) at ``mean``, kept up to date by each load's done callback.

    It is checked before every new load; walking the window instead (a lock per future
    of 32) cost the caller's thread ~30 us per image, as much as deciding the image. A
    load counts at ``mean`` until its callback has run (a moment after ``result()`` may
    return), then at its size until the caller takes it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sizes: dict[Future[Result], int] = {}  # finished, not yet taken
        self._taken: set[Future[Result]] = set()  # taken before their callback ran
        self._bytes = 0  # sum of ``_sizes``
        self._running = 0  # tracked, neither finished nor taken

    def track(self, future: Future[Result]) -> None:
        with self._lock:
            self._running += 1
        future.add_done_callback(self._finished)  # runs now if already done

    def _finished(self, future: Future[Result]) -> None:
        ok = not future.cancelled() and future.exception() is None
        size = _nbytes(future.result()) if ok else 0
        with self._lock:
            if future in self._taken:  # the caller has it already
                self._taken.discard(future)
                return
            self._running -= 1
            self._sizes[future] = size
            self._bytes += size

    def taken(self, future: Future[Result]) -> None:
        with self._lock:
            if future in self._sizes:
                self._bytes -= self._sizes.pop(future)
            else:
                self._running -= 1
                self._taken.add(future)

    def total(self, mean: float) -> float:
        with self._lock:
            return self._bytes + self._running * mean


def _unusable(item: InputItem) -> ImageLoadError:
    if item.skipped:
        return SkippedInputError(item.path, item.error or "skipped")
    return ImageLoadError(item.path, item.error or "unusable path")


def _run(loader: Loader, item: InputItem, max_pixels: int) -> Result:
    """Call the loader; turn every failure into a value so one bad file never stops the batch."""
    try:
        return loader(item.path, max_pixels=max_pixels)
    except NotAnImageError as e:
        return e if item.in_folder else ImageLoadError(e.path, e.reason)
    except ImageLoadError as e:
        return e
    except Exception as e:  # a plugin loader broke its contract; still report, don't raise
        detail = " ".join(str(e).split()) or "no details"
        return ImageLoadError(item.path, f"unexpected {type(e).__name__} while loading: {detail}")
