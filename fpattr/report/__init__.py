"""Report layer: turn streamed results into table/JSON/JSONL/CSV/HTML reports.

Formats are plugins (``fpattr_register_report_formats``); see :mod:`fpattr.report.base`
for the writer contract, :mod:`fpattr.report.files` to open report files
atomically and :mod:`fpattr.report.manifest` for the run manifest.
"""

from __future__ import annotations

from fpattr.report.base import ReportFactory, ReportWriter

__all__ = ["ReportFactory", "ReportWriter"]
