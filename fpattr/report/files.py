"""Opening report files: format from the suffix, atomic writes, streamed line records.

A report is evidence: a run that fails halfway must not leave a truncated file
that looks complete, so files go through :func:`fpattr.io.atomic.atomic_open`
(temp file + ``os.replace`` on success, removed on error).

The one exception is a line-record format (``jsonl``) opened with ``stream=True``
(what ``fpattr attribute -o results.jsonl`` does): each finished record is written
whole and flushed to the destination itself, so an interrupted or crashed run keeps
every finished record, a file without its ``summary`` line says it is incomplete,
and ``--resume`` can continue it (``append=True``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from os import PathLike
from pathlib import Path
from typing import Any

from fpattr.errors import UsageError
from fpattr.registry import Registry
from fpattr.report.base import ReportWriter

#: Suffix -> built-in format. Plugin formats add theirs through ``extension=`` meta.
SUFFIX_FORMATS: dict[str, str] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".txt": "table",
}

#: Formats made of self-contained lines, which can be streamed to their destination and
#: appended to (``open_report(stream=True, append=...)``).
LINE_FORMATS: frozenset[str] = frozenset({"jsonl"})


def format_for_path(
    path: str | PathLike[str],
    *,
    registry: Registry[Any] | None = None,
    default: str | None = None,
) -> str:
    """The report format implied by ``path``'s suffix (case-insensitive).

    Built-in suffixes win; otherwise a registered format whose ``extension`` meta
    matches is used. Unknown suffixes raise :class:`UsageError` naming the known
    ones, rather than guessing and writing the wrong format; or give ``default`` when
    one is given (the caller's documented choice for such paths).
    """
    suffix = Path(path).suffix.lower()
    if suffix in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffix]
    known = dict(SUFFIX_FORMATS)
    if registry is not None:
        for entry in registry:
            ext = str(entry.meta.get("extension") or "").lower()
            if ext and ext not in known:
                known[ext] = entry.name
        if suffix in known:
            return known[suffix]
    if default is not None:
        return default
    listed = ", ".join(f"{s} ({f})" for s, f in known.items())
    what = f"suffix {suffix!r}" if suffix else "no suffix"
    raise UsageError(
        f"cannot tell the report format of {str(path)!r} ({what}); use one of {listed}, "
        "or pass the format explicitly"
    )


class _Guarded:
    """Forwards to the writer and remembers whether ``close`` was called."""

    def __init__(self, writer: ReportWriter, stream: Any = None) -> None:
        self._writer = writer
        self._stream = stream
        self.closed = False

    def write(self, result: dict) -> None:
        self._writer.write(result)

    def close(self, summary: dict) -> None:
        if isinstance(self._stream, _LateFile):
            self._stream.start()  # the temp file is created now, not at start-up
        self._writer.close(summary)
        self.closed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


@contextmanager
def open_report(
    path: str | PathLike[str],
    fmt_name: str | None,
    manifest: dict,
    *,
    registry: Registry[Any] | None = None,
    thumbnails: bool = False,
    stream: bool = False,
    append: bool = False,
    **options: Any,
) -> Iterator[ReportWriter]:
    """Open ``path`` atomically and yield a writer of format ``fmt_name``.

    ``fmt_name=None`` infers the format from the suffix; ``path="-"`` writes to
    stdout (not atomic). The caller must call ``writer.close(summary)`` inside the
    block: leaving it without closing is treated as a failure and nothing is kept,
    since e.g. a JSON report only writes its content at close. ``registry``
    defaults to the process-wide report-format registry; ``options`` go to the
    factory (unknown ones are ignored by the built-ins).

    ``stream=True`` with a line format (:data:`LINE_FORMATS`) writes to ``path``
    itself instead of a temp file, truncating it (or appending with ``append=True``):
    finished records survive an interruption. Other formats ignore ``stream``.
    The path is checked for writability first (:func:`fpattr.io.atomic.check_writable`).
    """
    if registry is None:
        from fpattr.plugins import report_formats

        registry = report_formats()
    name = fmt_name or format_for_path(path, registry=registry)
    entry = registry.entry(name)  # RegistryError with suggestions if unknown
    binary = bool(entry.meta.get("binary", False))

    if str(path) == "-":
        stream: Any = sys.stdout.buffer if binary else sys.stdout
        writer = _Guarded(entry.obj(stream, manifest, thumbnails=thumbnails, **options))
        yield writer
        if not writer.closed:
            raise RuntimeError(f"report writer {name!r} was not closed")
        return

    from fpattr.io.atomic import check_writable

    target = Path(path)
    check_writable(target, "report")

    if stream and name in LINE_FORMATS and not binary:
        with _RecordFile(target, append=append) as f:
            writer = _Guarded(entry.obj(f, manifest, thumbnails=thumbnails, **options))
            yield writer  # on error the finished lines stay: the file has no summary line
            if not writer.closed:
                raise RuntimeError(f"report writer {name!r} was not closed")
        return

    mode, encoding = ("wb", None) if binary else ("w", "utf-8")
    late = _LateFile(target, mode, encoding)
    try:
        writer = _Guarded(entry.obj(late, manifest, thumbnails=thumbnails, **options), late)
        yield writer
        if not writer.closed:
            raise RuntimeError(f"report writer {name!r} was not closed; {target} not written")
    except BaseException as exc:
        late.discard(exc)
        raise
    late.commit()


def _os_write(fd: int, data: bytes) -> int:
    """``os.write`` (a seam for tests that simulate a full disk)."""
    return os.write(fd, data)


class _RecordFile:
    """A text stream onto a streamed line-record file that never leaves half a record.

    Each ``write`` is one whole record. If it fails (ENOSPC, EIO, ...) the file is cut back
    to the end of the last complete record before the error goes on, so the file still
    ends with a newline and ``--resume`` can continue it.
    """

    def __init__(self, target: Path, *, append: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self.name = str(target)
        self._fd = os.open(target, flags, 0o666)
        self._good = os.fstat(self._fd).st_size if append else 0
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "surrogateescape")
        view = memoryview(data)
        try:
            while view:
                n = _os_write(self._fd, view)
                view = view[n:]
        except BaseException:
            with suppress(OSError):
                os.ftruncate(self._fd, self._good)
            raise
        self._good += len(data)
        return len(text)

    def flush(self) -> None:
        pass  # every write went to the file itself

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> _RecordFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LateFile:
    """A stream for a file written atomically whose temp file is created as late as
    possible: what a writer writes before closing (e.g. streamed CSV rows) is held in
    memory, and the temp file (``.<name>.tmp-*``) is only created when the writer closes
    (:meth:`start`), so a killed run leaves no temp file behind."""

    def __init__(self, target: Path, mode: str, encoding: str | None) -> None:
        import io

        self.name = str(target)
        self._target = target
        self._mode = mode
        self._encoding = encoding
        self._held: Any = io.BytesIO() if mode == "wb" else io.StringIO()
        self._cm: Any = None
        self._file: Any = None

    def start(self) -> None:
        """Create the temp file and write what was held; later writes go straight to it."""
        if self._cm is not None:
            return
        from fpattr.io.atomic import atomic_open

        self._cm = atomic_open(self._target, mode=self._mode, encoding=self._encoding)
        self._file = self._cm.__enter__()
        held, self._held = self._held.getvalue(), None
        if held:
            self._file.write(held)

    def write(self, data: Any) -> int:
        if self._file is None:
            return self._held.write(data)
        return self._file.write(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def isatty(self) -> bool:
        return False

    def commit(self) -> None:
        self.start()
        self._cm.__exit__(None, None, None)

    def discard(self, exc: BaseException) -> None:
        self._held = None
        if self._cm is not None:
            with suppress(BaseException):
                self._cm.__exit__(type(exc), exc, exc.__traceback__)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self.start()
        return getattr(self._file, name)
