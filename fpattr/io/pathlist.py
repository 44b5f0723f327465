"""``fpattr attribute --files-from FILE``: input paths listed in a file or a manifest.

What the file holds is told by its name:

- ``*.jsonl`` / ``*.ndjson``: a manifest, one JSON object per line with a ``path``
  (``path_bytes_hex`` when present: the name's exact bytes). An fpattr results file is one:
  its ``manifest`` and ``summary`` lines are passed over, and so are its *skipped* results.
- ``*.csv``: a manifest with a header row naming a ``path`` column (``path_bytes_hex``
  when present and not empty: the name's exact bytes, as attribute's CSV writes for a
  name that is not UTF-8). An fpattr results CSV (columns ``path``, ``sha256``,
  ``status``) has its spreadsheet-formula guard undone
  (:func:`fpattr.report.csvfmt.unguard`), so its paths read back exactly, and its
  *skipped* rows passed over.

A results file re-runs the inputs of its run: its ``ok`` and ``error`` records (a failure
is tried again). A *skipped* record is a path the run's walk left out on purpose (a
non-image, a hidden file, a symbolic link back into a folder already searched, a pipe),
so it is not an input: listed, it would be one, named explicitly (a link ``loop -> .``
walked again, every image twice; a text file failed). Only lines of an fpattr results
file (``"type": "result"``; the CSV's three columns) are read that way: a manifest of
one's own is read whole.
- anything else (``-``: standard input): one path per line, read as bytes so names that
  are not UTF-8 survive exactly; empty lines are passed over.

Relative paths are relative to the current directory, as paths typed on the command line
are (and as ``tar -T`` and ``xargs`` read them). Each listed path is an input exactly as if
it were given on the command line (a folder is walked; a file that is not an image fails
with its reason), so the walker decides what every listed entry is.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

from fpattr.errors import UsageError
from fpattr.io.jsonlines import json_objects

__all__ = ["read_path_list"]


def read_path_list(source: str | os.PathLike[str]) -> list[str]:
    """The paths listed in ``source`` (see the module docstring), in file order."""
    name = os.fspath(source)
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise UsageError(f"cannot read --files-from {name!r}: {exc.strerror or exc}") from exc
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _from_jsonl(name, data)
    if suffix == ".csv":
        return _from_csv(name, data)
    # split on b"\n" only: "\r" and other bytes may be part of a name (a CRLF file: stripped).
    # An empty line is passed over after the strip: "" would be Path(""), the current folder
    lines = (line.removesuffix(b"\r") for line in data.split(b"\n"))
    return [os.fsdecode(line) for line in lines if line]


#: The status of a result the run left out on purpose (never an input again).
_SKIPPED = "skipped"


def _from_jsonl(name: str, data: bytes) -> list[str]:
    out: list[str] = []
    bad = lambda i: f"--files-from {name!r} line {i}: not a JSON object"  # noqa: E731
    for i, obj in json_objects(data.split(b"\n"), bad):
        kind = obj.get("type")
        if kind in ("manifest", "summary"):
            continue  # an fpattr results file: only its result lines name inputs
        if kind == "result" and obj.get("status") == _SKIPPED:
            continue  # left out by the run's walk on purpose (module docstring)
        raw = obj.get("path_bytes_hex")
        if isinstance(raw, str):
            try:
                out.append(os.fsdecode(bytes.fromhex(raw)))
                continue
            except ValueError:
                pass  # not hex: the path field says it
        path = obj.get("path")
        if not isinstance(path, str) or not path:
            raise UsageError(f'--files-from {name!r} line {i}: no "path"')
        out.append(path)
    return out


def _from_csv(name: str, data: bytes) -> list[str]:
    # utf-8-sig: spreadsheets write a BOM; surrogateescape keeps undecodable names exact
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if "path" not in (reader.fieldnames or []):
        raise UsageError(f'--files-from {name!r}: no "path" column in its header')
    # an fpattr results CSV (attribute, provenance) quotes paths a spreadsheet would run
    # as formulas: its guard is undone so that every path reads back exactly
    from fpattr.report.csvfmt import unguard

    fpattr_csv = {"path", "sha256", "status"} <= set(reader.fieldnames or [])
    out: list[str] = []
    for row in reader:
        if fpattr_csv and row.get("status") == _SKIPPED:
            continue  # left out by the run's walk on purpose (module docstring)
        path = row.get("path")
        raw = row.get("path_bytes_hex")
        if raw:  # a name that is not UTF-8: its exact bytes (the path cell shows \xNN)
            try:
                out.append(os.fsdecode(bytes.fromhex(raw)))
                continue
            except ValueError:
                pass  # not hex: the path cell says it
        if fpattr_csv and path:
            path = unguard(path)
        if not path:
            raise UsageError(f"--files-from {name!r} line {reader.line_num}: empty path")
        out.append(path)
    return out
