"""The run behind ``fpattr provenance``: rows to stdout or a file, a summary, the exit code."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from fpattr.errors import UsageError


def _manifest(paths: list[Path], trust_source: str | None, c2pa: bool) -> dict[str, Any]:
    import fpattr
    from fpattr.report.manifest import SCHEMA, utc_now_iso

    c2pa_info: dict[str, Any] = {"available": c2pa}
    if c2pa:
        from importlib.metadata import version

        with contextlib.suppress(Exception):
            c2pa_info["version"] = version("c2pa-python")
    return {
        "schema": SCHEMA,
        "command": "provenance",
        "tool": {"name": "fpattr", "version": fpattr.__version__},
        "started": utc_now_iso(),
        "settings": {"inputs": [str(p) for p in paths], "c2pa_trust_list": trust_source},
        "c2pa": c2pa_info,
    }


def run(
    paths: list[Path],
    *,
    fmt: str = "table",
    output: Path | None = None,
    trust_anchors: Path | None = None,
    console: Any = None,
) -> int:
    """Write one row per input in ``fmt``; returns the exit code (0 / 1 / 2)."""
    import os

    from rich.markup import escape

    from fpattr.cli.common import exit_code, print_error
    from fpattr.io.atomic import atomic_open
    from fpattr.provenance import c2pa_check
    from fpattr.provenance.batch import Counts, provenance_rows
    from fpattr.report.manifest import finish_summary
    from fpattr.report.outputs import check_output_paths, flush_stdout, write_error
    from fpattr.report.provenance import FORMATS, SUFFIXES, provenance_writer

    started = time.monotonic()
    if output is not None and str(output) != "-" and fmt == "table" and output.suffix:
        # only the formats provenance writes: the shared suffix table also lists .html
        suffix = output.suffix.lower()
        fmt = SUFFIXES.get(suffix, "")
        if fmt not in FORMATS:
            listed = ", ".join(f"{s} ({f})" for s, f in SUFFIXES.items())
            raise UsageError(
                f"cannot tell the provenance format of {str(output)!r} (suffix {suffix!r}); "
                f"use one of {listed}, or pass --format ({', '.join(FORMATS)})"
            )
    if fmt not in FORMATS:
        raise UsageError(f"provenance writes {', '.join(FORMATS)}, not {fmt!r}")
    if output is not None:
        # as attribute/verify/evaluate: an output that is one of the inputs is refused before
        # anything is read (a break-it pass: `-o` naming an input image replaced it by CSV)
        check_output_paths(output, inputs=paths)
    pem, source = None, None
    if trust_anchors is not None:
        try:
            with open(trust_anchors, encoding="ascii", errors="replace") as f:
                pem = f.read(1 << 20)
        except OSError as exc:
            raise UsageError(f"--trust-anchors {trust_anchors}: {exc.strerror or exc}") from None
        if "BEGIN CERTIFICATE" not in pem:
            raise UsageError(f"--trust-anchors {trust_anchors}: no PEM certificate in it")
        source = str(trust_anchors)
    else:
        source = os.environ.get(c2pa_check.TRUST_ENV) or None
    has_c2pa = c2pa_check.available()
    manifest = _manifest(paths, source, has_c2pa)
    counts = Counts()
    to_file = output is not None and str(output) != "-"
    dest = str(output) if to_file else "stdout"
    try:
        # the commit (close, rename) is inside too: a full disk then is the same one-line
        # error as a failed row, never an internal error
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(atomic_open(output)) if to_file else sys.stdout
            writer = provenance_writer(fmt, stream, manifest)
            rows = provenance_rows(
                paths,
                counts,
                exclude=[output] if to_file else [],
                trust_anchors=pem,
                trust_source=source,
            )
            for row in rows:
                writer.write(row)
            summary = finish_summary(counts.summary(), started)
            if not has_c2pa:
                summary["c2pa_note"] = c2pa_check.NOT_CHECKED
            writer.close(summary)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise write_error(dest, exc) from exc
    if not to_file:
        flush_stdout()
    if console is not None:
        if not has_c2pa:
            # escaped: "[provenance]" in the text would be read as rich markup and vanish
            console.print(f"[yellow]note:[/] {escape(c2pa_check.NOT_CHECKED)}", highlight=False)
        if counts.n_inputs == 0:  # the reason for exit 2: said under -q too
            print_error(console, "[red]no images found[/]")
    return exit_code(counts.n_inputs, counts.n_ok)
