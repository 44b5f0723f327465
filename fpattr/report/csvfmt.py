"""CSV report format: one row per input, for spreadsheets and ``pandas.read_csv``.

Streaming: the header goes out with the first row (or at close for an empty run)
and every row is flushed, so a crash keeps the finished rows.
"""

from __future__ import annotations

import csv
from typing import Any, TextIO

from fpattr.report.base import escape_surrogates, is_verify, number, printable

VERIFY_COLUMNS: tuple[str, ...] = (
    "a",
    "b",
    "similarity",
    "decision",
    "probability",
    "leaning",
    "p_same",
    "threshold",
    "target_far",
    "calibration",
    # inputs read on each side: pooled, flat (no signal), repeats of an image already counted,
    # images also on the other side (left out of this one)
    "a_images",
    "b_images",
    "a_flat",
    "b_flat",
    "a_duplicates",
    "b_duplicates",
    "a_shared",
    "b_shared",
    "a_failed",
    "b_failed",
    "error",
)
#: Decision columns of ``attribute`` between the fixed columns and the top-k.
ATTRIBUTE_DECISION = (
    "decision",
    "probability",
    "leaning",
    "candidates",
    "p_unknown",
    "threshold",
    "target_far",
    "calibration",
)


class RowWriter:
    """``csv.writer`` with ``\\n`` line ends that also quotes a field holding a carriage
    return: with ``lineterminator="\\n"`` the csv module quotes ``\\n`` but not a lone
    ``\\r``, and a file name with one split its record in two for every reader (a row
    holding one is written with every field quoted, which any CSV reader takes).

    To a terminal every text field goes through :func:`fpattr.report.base.printable`:
    a file name or a metadata string holding an escape sequence would otherwise run in
    the analyst's terminal (a break-it pass: ``provenance -f csv`` printed an EXIF
    Software field's raw ESC). To a file or a pipe the fields stay exact (a path must
    read back as the file's name)."""

    def __init__(self, stream: TextIO) -> None:
        self._plain = csv.writer(stream, lineterminator="\n")
        self._quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
        try:
            self._terminal = bool(stream.isatty())
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            self._terminal = False

    def writerow(self, row: list[Any]) -> None:
        # every text cell encodable, whoever built the row: a file name read with
        # surrogateescape crashed a CSV file's UTF-8 encoder (break-it: `analyze predict
        # -o x.csv` of a non-UTF-8 name, exit 70); escaped text is left as it is
        row = [escape_surrogates(v) if isinstance(v, str) else v for v in row]
        if self._terminal:
            row = [printable(v) if isinstance(v, str) else v for v in row]
        cr = any(isinstance(v, str) and "\r" in v for v in row)
        (self._quoted if cr else self._plain).writerow(row)

    def writerows(self, rows: Any) -> None:
        for row in rows:
            self.writerow(list(row))


#: The status of ``attribute --as-set``'s last CSV row, the set's decision (no file's).
SET_STATUS = "set"

#: Provenance columns of ``attribute``, before ``error``, when results carry provenance.
PROVENANCE_COLUMNS = (
    "provenance_claimed_generator",
    "provenance_source_type",
    "provenance_agrees",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: Any) -> str:
    """A text cell as every fpattr CSV writes one: "" for None, :func:`formula_guard`
    applied (:class:`RowWriter` escapes undecodable file-name bytes as ``\\xNN``)."""
    return formula_guard("" if value is None else str(value))


def formula_guard(s: str) -> str:
    """``s`` with a leading quote when a spreadsheet would run it as a formula (it starts
    with ``= + - @``, a tab or a CR: OWASP's CSV injection advice) or when it starts with
    a quote itself. The second case makes the guard reversible: a reader of fpattr's CSV
    (``--files-from``, :func:`unguard`) strips exactly one leading quote and gets the
    exact text back, and a spreadsheet hides one leading quote, so it shows the text too.
    """
    return "'" + s if s.startswith(_FORMULA_START) or s.startswith("'") else s


def unguard(s: str) -> str:
    """Inverse of :func:`formula_guard`."""
    return s[1:] if s.startswith("'") else s


def attribute_columns(top_k: int, provenance: bool = False) -> list[str]:
    """Header for ``attribute``: fixed columns, then model/similarity/probability per rank,
    then (``provenance``) the metadata's claimed generator, source type and agreement."""
    cols = ["path", "sha256", "status", *ATTRIBUTE_DECISION]
    for rank in range(1, top_k + 1):
        cols += [f"top{rank}_model", f"top{rank}_similarity", f"top{rank}_probability"]
    if provenance:
        cols += PROVENANCE_COLUMNS
    # the exact bytes of a name that is not UTF-8 (the path cell shows them as \xNN, which
    # a real name could spell too): --files-from reads this column back, as JSONL's key
    cols += ["error", "path_bytes_hex"]
    return cols


def path_bytes_cell(path: Any) -> str:
    """The hex of a file name's bytes when it is not UTF-8 (``path_bytes_hex``), else ""."""
    from fpattr.report.base import has_surrogates, raw_bytes

    return raw_bytes(path).hex() if isinstance(path, str) and has_surrogates(path) else ""


def _top_k(manifest: dict) -> int | None:
    """The run's ``--top-k``, no more than the gallery's models (``--top-k 100`` with 4
    models wrote 315 columns, almost all empty: break-it)."""
    settings = manifest.get("settings") or {}
    try:
        k = int(settings.get("top_k"))
    except (TypeError, ValueError):
        return None
    gallery = manifest.get("gallery") or {}
    n = gallery.get("n_models")
    if n is None and isinstance(gallery.get("models"), list):
        n = len(gallery["models"])
    if isinstance(n, int) and n > 0:
        k = min(k, n)
    return k if k > 0 else None


def _cal(r: dict) -> str | None:
    """``comparison/source[/set N][/PROCESSING copies]`` of the calibration that decided a
    row (the last part: fitted on the references' processed copies)."""
    cal = r.get("calibration")
    if not isinstance(cal, dict):
        return None
    text = f"{cal.get('comparison')}/{cal.get('source')}"
    if (cal.get("set_size") or 1) > 1:
        text += f"/set {cal.get('set_size')}"
    if cal.get("processing"):
        text += f"/{cal.get('processing')} copies"
    return text


class CsvWriter:
    """Writes rows as results arrive.

    A file name that is not UTF-8 is written with each such byte as ``\\xNN``
    (:func:`~fpattr.report.base.escape_surrogates`); the JSON formats carry the exact
    bytes. ``formula_guard`` (default on) prefixes text cells that start with ``= + - @``
    with a quote (and cells starting with a quote, so that the guard can be undone:
    :func:`formula_guard`), so a crafted file name cannot run a formula when an analyst
    opens the CSV in a spreadsheet; ``--files-from`` reads the exact paths back. Numbers
    are never touched.
    """

    def __init__(
        self, stream: TextIO, manifest: dict, *, formula_guard: bool = True, **_options: Any
    ) -> None:
        self.stream = stream
        self.manifest = manifest
        self.formula_guard = formula_guard
        self.columns: list[str] | None = None
        self.verify = False
        self._k = 0
        self._provenance = False
        self._csv = RowWriter(stream)
        self._closed = False

    def _start(self, first: dict | None) -> None:
        self.verify = is_verify(self.manifest, first)
        if self.verify:
            self.columns = list(VERIFY_COLUMNS)
        else:
            k = _top_k(self.manifest)
            if k is None:  # no setting: size the columns on the first result
                k = max(1, len((first or {}).get("top") or []))
            # the manifest says whether the run reads provenance (the columns stay when no
            # result comes); else a session that reads it adds it to every result
            said = (self.manifest.get("settings") or {}).get("provenance")
            prov = (
                said
                if isinstance(said, bool)
                else isinstance((first or {}).get("provenance"), dict)
            )
            self._k, self._provenance = k, prov
            self.columns = attribute_columns(k, self._provenance)
        self._csv.writerow(self.columns)

    def _text(self, value: Any) -> str:
        # (undecodable name bytes are escaped by RowWriter, for every cell)
        s = "" if value is None else str(value)
        return formula_guard(s) if self.formula_guard else s

    @staticmethod
    def _num(value: Any) -> str:
        f = number(value)
        return "" if f is None else repr(f)

    def _row(self, r: dict) -> list[str]:
        if self.verify:
            return [
                self._text(r.get("a")),
                self._text(r.get("b")),
                self._num(r.get("similarity")),
                self._text(r.get("decision")),
                self._num(r.get("probability")),
                self._text(r.get("leaning")),
                self._num(r.get("p_same")),
                self._num(r.get("threshold")),
                self._num(r.get("target_far")),
                self._text(_cal(r)),
                *(  # counts, written as integers
                    self._text(r.get(f"{side}_{k}"))
                    for k in ("images", "flat", "duplicates", "shared", "failed")
                    for side in "ab"
                ),
                self._text(r.get("error")),
            ]
        k = self._k
        row = [
            self._text(r.get("path")),
            self._text(r.get("sha256")),
            self._text(r.get("status")),
            self._text(r.get("decision")),
            self._num(r.get("probability")),
            self._text(r.get("leaning")),
            self._text("|".join(map(str, r.get("candidates") or []))),
            self._num(r.get("p_unknown")),
            self._num(r.get("threshold")),
            self._num(r.get("target_far")),
            self._text(_cal(r)),
        ]
        top = list(r.get("top") or [])[:k]
        for rank in range(k):
            if rank < len(top):
                t = top[rank] or {}
                row += [
                    self._text(t.get("model")),
                    self._num(t.get("similarity")),
                    self._num(t.get("probability")),
                ]
            else:
                row += ["", "", ""]
        if self._provenance:
            prov = r.get("provenance") if isinstance(r.get("provenance"), dict) else {}
            agree = prov.get("agrees_with_fingerprint")
            row += [
                self._text(prov.get("claimed_generator")),
                self._text(prov.get("digital_source_type")),
                "" if agree is None else ("true" if agree else "false"),
            ]
        row.append(self._text(r.get("error")))
        row.append(path_bytes_cell(r.get("path")))
        return row

    def write(self, result: dict) -> None:
        if self._closed:
            raise RuntimeError("report writer is closed")
        if self.columns is None:
            self._start(result)
        self._csv.writerow(self._row(result))
        self.stream.flush()

    def close(self, summary: dict) -> None:
        if self._closed:
            return
        self._closed = True
        if self.columns is None:
            self._start(None)
        pooled = summary.get("as_set")
        if not self.verify and isinstance(pooled, dict) and pooled:
            # `attribute --as-set`: the set's decision, a last row named "<set>" (as
            # `analyze predict --as-set` writes it); without it the CSV lost the answer.
            # Its status, SET_STATUS, tells it from a file's row (a file may be named
            # "<set>"): --files-from passed it as an input (break-it 28)
            decided = pooled.get("decision") is not None
            row = {**pooled, "path": "<set>", "status": SET_STATUS}
            row["error"] = None if decided else pooled.get("note") or "no set decision"
            self._csv.writerow(self._row(row))
        self.stream.flush()
