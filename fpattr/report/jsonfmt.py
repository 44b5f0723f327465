"""JSON and JSON Lines report formats.

``json`` writes one document at close (tools that want a single object: ``jq``,
notebooks); ``jsonl`` streams one line per input and flushes it, so a consumer can
follow a long run and a crash still leaves every finished result on disk.
Each line is written with one ``write`` and flushed, so a reader never sees half a
record from a graceful stop; :func:`read_jsonl` reads such a file back for
``attribute --resume`` (an incomplete last line, from a hard kill, is dropped).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TextIO

from fpattr.report.base import PRIVATE_RESULT_KEYS, dumps, strip_result, to_jsonable


class JsonWriter:
    """One JSON object: the manifest's keys, then ``results``, then ``summary``.

    Only the (stripped, converted) result dicts are held until close; the document
    is written in pieces so no second copy of the whole report is built as a string.
    """

    def __init__(self, stream: TextIO, manifest: dict, **_options: Any) -> None:
        self.stream = stream
        self.manifest = to_jsonable(manifest)
        self.results: list[Any] = []
        self._closed = False

    def write(self, result: dict) -> None:
        if self._closed:
            raise RuntimeError("report writer is closed")
        self.results.append(to_jsonable(strip_result(result)))

    def close(self, summary: dict) -> None:
        if self._closed:
            return
        self._closed = True
        out = self.stream
        head = {k: v for k, v in self.manifest.items() if k not in ("results", "summary")}
        body = dumps(head, indent=2)
        out.write(body[:-1].rstrip() + ("," if head else ""))  # reopen the object
        out.write('\n  "results": [')
        for i, result in enumerate(self.results):
            out.write("," if i else "")
            out.write("\n    " + dumps(result, compact=False))
        out.write("\n  ]," if self.results else "],")
        out.write('\n  "summary": ' + dumps(summary, indent=2).replace("\n", "\n  ") + "\n}\n")
        out.flush()
        self.results = []


class JsonlWriter:
    """Manifest line, one ``result`` line per input (flushed), then a summary line."""

    def __init__(self, stream: TextIO, manifest: dict, **_options: Any) -> None:
        self.stream = stream
        self._closed = False
        self._line({"type": "manifest", **{k: v for k, v in manifest.items() if k != "type"}})

    def _line(self, obj: dict) -> None:
        self.stream.write(dumps(obj) + "\n")  # one write per record: never half a line
        self.stream.flush()

    def write(self, result: dict) -> None:
        if self._closed:
            raise RuntimeError("report writer is closed")
        # one copy (not strip, pop, merge): the same keys, in the same order
        record: dict[str, Any] = {"type": "result"}
        for k, v in result.items():
            if k not in PRIVATE_RESULT_KEYS and k != "type":
                record[k] = v
        self._line(record)

    def close(self, summary: dict) -> None:
        if self._closed:
            return
        self._closed = True
        self._line({"type": "summary", **{k: v for k, v in summary.items() if k != "type"}})


@dataclass
class JsonlContent:
    """A JSON Lines report read back: its complete lines, in order."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    partial_tail: bool = False  #: the last line was incomplete (a hard kill) and is left out

    @property
    def manifests(self) -> list[dict[str, Any]]:
        return [x for x in self.lines if x.get("type") == "manifest"]

    @property
    def results(self) -> list[dict[str, Any]]:
        return [x for x in self.lines if x.get("type") == "result"]

    @property
    def summaries(self) -> list[dict[str, Any]]:
        return [x for x in self.lines if x.get("type") == "summary"]


def read_jsonl(path: str | os.PathLike[str]) -> JsonlContent:
    """Every complete line of a ``jsonl`` report (an empty file has none).

    A last line without its newline, or that does not parse, is what a hard kill leaves:
    it is reported in ``partial_tail`` and left out. Any other line that is not a JSON
    object raises :class:`fpattr.errors.UsageError`: the file is not a fpattr report.
    """
    from fpattr.io.jsonlines import json_objects

    content = JsonlContent()
    with open(path, "rb") as f:
        raw = f.read().split(b"\n")
    tail = raw.pop()  # b"" when the file ends with a newline
    if tail.strip():
        content.partial_tail = True
    bad = lambda i: (  # noqa: E731
        f"{os.fspath(path)!r} line {i} is not a JSON object: not a fpattr jsonl report"
    )
    content.lines.extend(obj for _, obj in json_objects(raw, bad))
    return content
