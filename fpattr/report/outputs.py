"""Fan results out to their destinations: stdout or ``--output``, and an HTML report.

:class:`Outputs` is what ``fpattr attribute`` and ``fpattr verify`` write through; the
formats themselves are plugins (:func:`fpattr.plugins.report_formats`). Heavy or
plugin-loading imports stay inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fpattr.errors import UsageError


def check_format(fmt: str) -> str:
    """``fmt`` if it is a registered report format, else a :class:`UsageError`."""
    from fpattr.plugins import report_formats

    if fmt not in report_formats():
        raise UsageError(
            f"unknown format {fmt!r}; available: {', '.join(report_formats().names())}"
        )
    return fmt


def output_format(fmt: str, output: Path | None) -> str:
    """The format ``--output`` is written in: ``--format``, or the suffix when it was left
    at ``table`` and the suffix names another format."""
    from fpattr.report.files import format_for_path

    if output is None or fmt != "table" or output.suffix in ("", ".txt") or str(output) == "-":
        return fmt
    return format_for_path(output)


def check_output_paths(*paths: Path | None) -> None:
    """:class:`UsageError` (exit 2) now, before any work, unless every given output path can
    be written (folder exists and is a folder, not read-only, the path is not a folder)."""
    from fpattr.io.atomic import check_writable

    for path in paths:
        if path is not None:
            check_writable(path, "output")


class Outputs:
    """Fans results out to stdout (or --output) and an optional HTML report.

    Files are written atomically, except a line format (jsonl) given as ``--output``: it is
    streamed to its destination record by record, so an interrupted run keeps every finished
    record, and ``append=True`` continues such a file (``attribute --resume``).
    """

    def __init__(
        self,
        fmt: str,
        output: Path | None,
        report: Path | None,
        manifest: dict[str, Any],
        *,
        append: bool = False,
        started: float | None = None,
    ) -> None:
        import time

        from fpattr.plugins import report_formats
        from fpattr.report.files import format_for_path, open_report

        # ``started`` (time.monotonic()): when the work began, if before these outputs
        self._started = time.monotonic() if started is None else started
        self._stack = ExitStack()
        self.writers: list[Any] = []
        self._appended: Any = None
        reg = report_formats()
        check_format(fmt)
        check_output_paths(output, report)  # all of them before any file is opened
        if output is not None:
            ofmt = output_format(fmt, output)
            writer = self._stack.enter_context(
                open_report(
                    output,
                    ofmt,
                    manifest,
                    registry=reg,
                    thumbnails=ofmt == "html",
                    stream=True,
                    append=append,
                )
            )
            self.writers.append(writer)
            if append:
                self._appended = writer
        else:
            self.writers.append(reg.get(fmt)(sys.stdout, manifest))
        if report is not None:
            self.writers.append(
                self._stack.enter_context(
                    open_report(
                        report, format_for_path(report), manifest, registry=reg, thumbnails=True
                    )
                )
            )
        self.thumbnails = report is not None or (
            output is not None and output.suffix in (".html", ".htm")
        )

    def write(self, result: dict[str, Any]) -> None:
        for w in self.writers:
            w.write(result)

    def replay(self, result: dict[str, Any]) -> None:
        """A result kept from the file being resumed: to every output but that file."""
        for w in self.writers:
            if w is not self._appended:
                w.write(result)

    def close(self, summary: dict[str, Any]) -> None:
        from fpattr.report.manifest import finish_summary

        summary = finish_summary(summary, self._started)
        for w in self.writers:
            w.close(summary)
        self._stack.close()

    def abort(self, exc: BaseException) -> None:
        """Discard file outputs (no half-written report) and re-raise."""
        self._stack.__exit__(type(exc), exc, exc.__traceback__)
