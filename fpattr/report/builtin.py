"""Built-in report formats, registered through the same hook third-party plugins use.

Factories import their module on first use so ``import fpattr.report.builtin``
(done by every CLI start) stays cheap.
"""

from __future__ import annotations

from typing import Any, TextIO

from fpattr import hookimpl
from fpattr.hookspecs import Register
from fpattr.report.base import ReportWriter


def table(
    stream: TextIO, manifest: dict, *, thumbnails: bool = False, **options: Any
) -> ReportWriter:
    """Terminal table (``rich``); ``width=`` and ``color=`` options."""
    from fpattr.report.table import TableWriter

    return TableWriter(stream, manifest, **options)


def json_(
    stream: TextIO, manifest: dict, *, thumbnails: bool = False, **options: Any
) -> ReportWriter:
    """One JSON document written at close."""
    from fpattr.report.jsonfmt import JsonWriter

    return JsonWriter(stream, manifest, **options)


def jsonl(
    stream: TextIO, manifest: dict, *, thumbnails: bool = False, **options: Any
) -> ReportWriter:
    """JSON Lines, streamed and flushed per input."""
    from fpattr.report.jsonfmt import JsonlWriter

    return JsonlWriter(stream, manifest, **options)


def csv(
    stream: TextIO, manifest: dict, *, thumbnails: bool = False, **options: Any
) -> ReportWriter:
    """CSV, streamed; ``formula_guard=False`` turns off spreadsheet-formula quoting."""
    from fpattr.report.csvfmt import CsvWriter

    return CsvWriter(stream, manifest, **options)


def html(
    stream: TextIO, manifest: dict, *, thumbnails: bool = False, **options: Any
) -> ReportWriter:
    """Self-contained HTML page with optional thumbnails."""
    from fpattr.report.htmlfmt import HtmlWriter

    return HtmlWriter(stream, manifest, thumbnails=thumbnails, **options)


@hookimpl
def fpattr_register_report_formats(register: Register) -> None:
    register(
        "table",
        table,
        description="readable table for the terminal (rich)",
        streaming=False,
        binary=False,
        extension=".txt",
    )
    register(
        "json",
        json_,
        description="one JSON document: manifest, results, summary",
        streaming=False,
        binary=False,
        extension=".json",
    )
    register(
        "jsonl",
        jsonl,
        description="JSON Lines: manifest, one line per input as it arrives, summary",
        streaming=True,
        binary=False,
        extension=".jsonl",
    )
    register(
        "csv",
        csv,
        description="CSV, one row per input (top-k columns)",
        streaming=True,
        binary=False,
        extension=".csv",
    )
    register(
        "html",
        html,
        description="self-contained HTML report with thumbnails, for case files",
        streaming=False,
        binary=False,
        extension=".html",
    )
