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
  *skipped* rows and ``--as-set``'s set row (status ``set``) passed over.

A results file re-runs the inputs of its run: its ``ok`` and ``error`` records (a failure
is tried again). A *skipped* record is a path the run's walk left out on purpose (a
non-image, a hidden file, a symbolic link back into a folder already searched, a pipe),
so it is not an input: listed, it would be one, named explicitly (a link ``loop -> .``
walked again, every image twice; a text file failed). Only lines of an fpattr results
file (``"type": "result"``; the CSV's three columns) are read that way: a manifest of
one's own is read whole.
- anything else (``-``: standard input): one path per line, read as bytes so names that
  are not UTF-8 survive exactly, or NUL-separated (``find -print0``: told by the first
  separator in the stream); empty lines and a leading UTF-8 byte-order mark are passed
  over.

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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from fpattr.errors import UsageError
from fpattr.io.jsonlines import json_objects
from fpattr.report.base import from_bytes_hex

__all__ = ["iter_path_list", "read_path_list"]


def read_path_list(source: str | os.PathLike[str]) -> list[str]:
    """The paths listed in ``source`` (see the module docstring), in file order."""
    return list(iter_path_list(source))


def iter_path_list(source: str | os.PathLike[str]) -> Iterator[str]:
    """The paths listed in ``source``, read as they are asked for: a list piped from a
    slow producer (``find ... | fpattr attribute --files-from -``) feeds a run line by
    line, and a list of millions of paths is never held whole.

    ``source`` is opened now: an unreadable one raises :class:`UsageError` before any
    work. A bad line (a JSONL line that is not an object, a row with no path) raises
    :class:`UsageError` when it is reached.
    """
    name = os.fspath(source)
    try:
        stream: BinaryIO = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot read --files-from {name!r}: {exc.strerror or exc}") from exc
    return _read(name, stream, close=name != "-")


def _read(name: str, stream: BinaryIO, *, close: bool) -> Iterator[str]:
    try:
        suffix = Path(name).suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            yield from _from_jsonl(name, stream)
        elif suffix == ".csv":
            yield from _from_csv(name, stream)
        else:
            yield from _from_text(name, stream)
    except OSError as exc:
        raise UsageError(f"cannot read --files-from {name!r}: {exc.strerror or exc}") from exc
    finally:
        if close:
            stream.close()


#: A UTF-8 byte-order mark, which Windows editors put at the start of a text file.
_BOM = b"\xef\xbb\xbf"


def _records(stream: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """(record, separator) of a path list as the bytes arrive: records end at b"\n", or
    at b"\0" when the first separator in the stream is a NUL (``find -print0``, ``xargs
    -0``: later names may then hold newlines). Told by the first separator, not by what
    one read returned, so the answer never depends on how the bytes arrive (review 28); a
    NUL list whose first name holds a newline is refused at its first NUL (usage error)."""
    read = getattr(stream, "read1", stream.read)  # what has arrived, without waiting for more
    sep: bytes | None = None
    buf = b""
    while chunk := read(1 << 16):
        buf += chunk
        if sep is None:
            nl, nul = buf.find(b"\n"), buf.find(b"\0")
            if nl < 0 and nul < 0:
                continue
            sep = b"\0" if nul >= 0 and (nl < 0 or nul < nl) else b"\n"
        *done, buf = buf.split(sep)
        for rec in done:
            yield rec, sep
    if buf:
        yield buf, sep or b"\n"


def _from_text(name: str, stream: BinaryIO) -> Iterator[str]:
    """One path per line, read as bytes so names that are not UTF-8 survive exactly; or
    NUL-separated (``find -print0``). A line ends at b"\n" only: "\r" and other bytes may
    be part of a name (a CRLF file: stripped). An empty line is passed over: "" would be
    Path(""), the current folder. A leading UTF-8 BOM is dropped (it broke the first path,
    unseen; break-it 28)."""
    for i, (rec, sep) in enumerate(_records(stream), 1):
        if i == 1:
            rec = rec.removeprefix(_BOM)
        if sep == b"\n":
            rec = rec.removesuffix(b"\r")
            if b"\0" in rec:  # (an internal error, exit 70, before)
                raise UsageError(
                    f"--files-from {name!r} line {i} holds a NUL byte: a list is one path "
                    "per line, or NUL-separated throughout (find -print0)"
                )
        if rec:
            yield os.fsdecode(rec)


#: The status of a result the run left out on purpose (never an input again).
_SKIPPED = "skipped"


def _from_jsonl(name: str, lines: Iterable[bytes]) -> Iterator[str]:
    bad = lambda i: f"--files-from {name!r} line {i}: not a JSON object"  # noqa: E731
    for i, obj in json_objects(lines, bad):
        kind = obj.get("type")
        if kind in ("manifest", "summary"):
            continue  # an fpattr results file: only its result lines name inputs
        if kind == "result" and obj.get("status") == _SKIPPED:
            continue  # left out by the run's walk on purpose (module docstring)
        exact = from_bytes_hex(obj.get("path_bytes_hex"))  # (not hex: the path field says it)
        if exact is not None:
            yield exact
            continue
        path = obj.get("path")
        if not isinstance(path, str) or not path:
            raise UsageError(f'--files-from {name!r} line {i}: no "path"')
        yield path


def _from_csv(name: str, stream: BinaryIO) -> Iterator[str]:
    # utf-8-sig: spreadsheets write a BOM; surrogateescape keeps undecodable names exact
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.DictReader(text)
    if "path" not in (reader.fieldnames or []):
        raise UsageError(f'--files-from {name!r}: no "path" column in its header')
    # an fpattr results CSV (attribute, provenance) quotes paths a spreadsheet would run
    # as formulas: its guard is undone so that every path reads back exactly
    from fpattr.report.csvfmt import SET_STATUS, unguard

    fpattr_csv = {"path", "sha256", "status"} <= set(reader.fieldnames or [])
    for row in reader:
        if fpattr_csv and row.get("status") in (_SKIPPED, SET_STATUS):
            continue  # left out by the run's walk on purpose, or --as-set's set row
        path = row.get("path")
        # a name that is not UTF-8: its exact bytes (the path cell shows \xNN)
        exact = from_bytes_hex(row.get("path_bytes_hex"))
        if exact is not None:
            yield exact
            continue
        if fpattr_csv and path:
            path = unguard(path)
        if not path:
            raise UsageError(f"--files-from {name!r} line {reader.line_num}: empty path")
        yield path
