"""Writers for ``fpattr provenance`` rows: a terminal table and CSV (JSON and JSON Lines
use the generic writers of :mod:`fpattr.report.jsonfmt`)."""

from __future__ import annotations

from typing import Any, TextIO

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fpattr.report.base import printable
from fpattr.report.csvfmt import RowWriter, text_cell
from fpattr.report.table import DEFAULT_WIDTH, shorten_left

#: Formats ``fpattr provenance`` writes.
FORMATS = ("table", "json", "jsonl", "csv")
#: Output suffixes ``fpattr provenance -o`` understands, and the format of each.
SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".txt": "table"}

CSV_COLUMNS = (
    "path",
    "sha256",
    "status",
    "claimed_generator",
    "digital_source_type",
    "c2pa_checked",
    "c2pa_validation_state",
    "c2pa_signature_valid",
    "c2pa_signer_trusted",
    "c2pa_signer",
    "c2pa_issuer",
    "c2pa_claim_generator",
    "png_text_format",
    "exif_software",
    "xmp_creator_tool",
    "notes",
    "metadata_errors",
    "error",
)


def c2pa_word(c2: Any) -> str:
    """The C2PA verdict in a few words: not checked, none, trusted, signed (untrusted), INVALID."""
    if not isinstance(c2, dict):
        return "none"
    if not c2.get("checked"):
        return "present, not checked" if c2.get("present") else "not checked"
    if not c2.get("validation_state"):
        return "unreadable"
    if not c2.get("signature_valid") or c2.get("validation_failures"):
        codes = [str(f).split(":", 1)[0] for f in c2.get("validation_failures") or []]
        word = "INVALID" + (f" ({', '.join(dict.fromkeys(codes))})" if codes else "")
        if c2.get("signer_trusted"):
            word += ", signer trusted"  # said apart: the signer is not what failed
        return word
    return "trusted" if c2.get("signer_trusted") else "signed, signer not trusted"


class ProvenanceTableWriter:
    """Rows collected and rendered as one table and a summary at close."""

    def __init__(self, stream: TextIO, manifest: dict, *, width: int | None = None) -> None:
        isatty = getattr(stream, "isatty", lambda: False)()
        if width is None and not isatty:
            import os

            cols = os.environ.get("COLUMNS", "")
            width = int(cols) if cols.isdigit() and int(cols) >= 40 else DEFAULT_WIDTH
        self.console = Console(file=stream, width=width, highlight=False, soft_wrap=False)
        self.rows: list[dict] = []

    def write(self, row: dict) -> None:
        self.rows.append(row)

    def close(self, summary: dict) -> None:
        parts: list[Any] = []
        if self.rows:
            width = self.console.width
            path_w = max(12, min(40, width // 3))
            table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, leading=1)
            table.add_column("Path", width=path_w, overflow="fold")
            table.add_column("Claimed generator / source type", ratio=2, overflow="fold")
            table.add_column("C2PA", ratio=1, overflow="fold")
            for r in self.rows:
                path = Text(shorten_left(printable(r.get("path")), path_w))
                if r.get("status") != "ok":
                    style = "red" if r.get("status") == "error" else "yellow"
                    path.stylize(style)
                    word = "failed" if r.get("status") == "error" else "skipped"
                    table.add_row(path, Text(f"{word}: {printable(r.get('error'))}", style=style))
                    continue
                claim = Text(printable(r.get("claimed_generator") or "\u2014"))
                if r.get("claims_disagree"):
                    others = [c for c in r.get("claims") or [] if c != r.get("claimed_generator")]
                    also = f": also {'; '.join(printable(c) for c in others[:3])}" if others else ""
                    claim.append(f"\nmetadata sources disagree{also}", style="yellow")
                if r.get("digital_source_type"):
                    dst = str(r["digital_source_type"]).rstrip("/").rsplit("/", 1)[-1]
                    claim.append(f"\n{printable(dst)}", style="cyan")
                for e in r.get("errors") or []:
                    claim.append(f"\n! {printable(e)}", style="red")
                c2 = r.get("c2pa")
                c2_text = Text(c2pa_word(c2))
                if isinstance(c2, dict) and c2.get("signer"):
                    c2_text.append(f"\nby {printable(c2.get('signer'))}", style="dim")
                table.add_row(path, claim, c2_text)
            parts.append(table)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        counts = f"{summary.get('n_inputs', 0)} inputs, {summary.get('n_ok', 0)} read"
        counts += f", {summary.get('n_failed', 0)} failed"
        if summary.get("n_skipped"):
            counts += f", {summary['n_skipped']} skipped (not images)"
        grid.add_row("Inputs", counts)
        grid.add_row(
            "Claims",
            f"{summary.get('n_claims', 0)} name a generator, {summary.get('n_c2pa', 0)} "
            f"carry C2PA, {summary.get('n_metadata_errors', 0)} with malformed metadata",
        )
        if summary.get("c2pa_note"):
            grid.add_row("C2PA", Text(printable(summary["c2pa_note"]), style="yellow"))
        parts.append(Panel(grid, title="Provenance", title_align="left", expand=False))
        self.console.print(Group(*parts))
        self.console.file.flush()


class ProvenanceCsvWriter:
    """One flat row per file, streamed; text cells that a spreadsheet would run as a
    formula get a leading quote."""

    def __init__(self, stream: TextIO, manifest: dict) -> None:
        self.stream = stream
        self._csv = RowWriter(stream)
        self._csv.writerow(CSV_COLUMNS)

    def _text(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return text_cell(value)

    def _meta(self, value: Any) -> str:
        # strings read from the file's metadata are display text, never identifiers: their
        # control characters are shown as escapes wherever the CSV goes
        return self._text(None if value is None else printable(value))

    def write(self, r: dict) -> None:
        c2 = r.get("c2pa") if isinstance(r.get("c2pa"), dict) else {}
        m = self._meta
        cells = [
            self._text(r.get("path")),
            self._text(r.get("sha256")),
            self._text(r.get("status")),
            m(r.get("claimed_generator")),
            m(r.get("digital_source_type")),
            self._text(c2.get("checked") if c2 else (None if r.get("status") != "ok" else True)),
            m(c2.get("validation_state")),
            self._text(c2.get("signature_valid")),
            self._text(c2.get("signer_trusted")),
            m(c2.get("signer")),
            m(c2.get("issuer")),
            m(c2.get("claim_generator")),
            m((r.get("png_text") or {}).get("format")),
            m((r.get("exif") or {}).get("Software")),
            m((r.get("xmp") or {}).get("CreatorTool")),
            m(" | ".join(r.get("notes") or [])),
            m(" | ".join(r.get("errors") or [])),
            self._text(r.get("error")),
        ]
        self._csv.writerow(cells)
        self.stream.flush()

    def close(self, summary: dict) -> None:
        self.stream.flush()


def provenance_writer(fmt: str, stream: TextIO, manifest: dict) -> Any:
    """The writer for ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "table":
        return ProvenanceTableWriter(stream, manifest)
    if fmt == "csv":
        return ProvenanceCsvWriter(stream, manifest)
    from fpattr.report.jsonfmt import JsonlWriter, JsonWriter

    return (JsonWriter if fmt == "json" else JsonlWriter)(stream, manifest)
