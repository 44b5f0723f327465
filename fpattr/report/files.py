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

import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


def format_for_path(path: str | PathLike[str], *, registry: Registry[Any] | None = None) -> str:
    """The report format implied by ``path``'s suffix (case-insensitive).

    Built-in suffixes win; otherwise a registered format whose ``extension`` meta
    matches is used. Unknown suffixes raise :class:`UsageError` naming the known
    ones, rather than guessing and writing the wrong format.
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
    listed = ", ".join(f"{s} ({f})" for s, f in known.items())
    what = f"suffix {suffix!r}" if suffix else "no suffix"
    raise UsageError(
        f"cannot tell the report format of {str(path)!r} ({what}); use one of {listed}, "
        "or pass the format explicitly"
    )


class _Guarded:
    """Forwards to the writer and remembers whether ``close`` was called."""

    def __init__(self, writer: ReportWriter) -> None:
        self._writer = writer
        self.closed = False

    def write(self, result: dict) -> None:
        self._writer.write(result)

    def close(self, summary: dict) -> None:
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

    from fpattr.io.atomic import atomic_open, check_writable

    target = Path(path)
    check_writable(target, "report")

    if stream and name in LINE_FORMATS and not binary:
        with open(target, "a" if append else "w", encoding="utf-8", newline="\n") as f:
            writer = _Guarded(entry.obj(f, manifest, thumbnails=thumbnails, **options))
            yield writer  # on error the finished lines stay: the file has no summary line
            if not writer.closed:
                raise RuntimeError(f"report writer {name!r} was not closed")
        return

    mode, encoding = ("wb", None) if binary else ("w", "utf-8")
    with atomic_open(target, mode=mode, encoding=encoding) as stream:
        writer = _Guarded(entry.obj(stream, manifest, thumbnails=thumbnails, **options))
        yield writer
        if not writer.closed:
            raise RuntimeError(f"report writer {name!r} was not closed; {target} not written")
