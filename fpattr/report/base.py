"""The report-writer contract and the helpers every built-in format shares.

A format is a factory registered through ``fpattr_register_report_formats``::

    register(name, factory, description=..., streaming=bool, binary=False, extension=".json")

``factory(stream, manifest, *, thumbnails=False, **options) -> ReportWriter``. The
pipeline calls ``write(result)`` once per input as results arrive, then
``close(summary)`` once. Factories must accept and ignore options they do not know,
so the CLI can pass the same options to every format.

Result and summary dicts are plain data (see docs/user-guide.md), but they may
carry numpy scalars and NaN from the pipeline: :func:`to_jsonable` and
:func:`dumps` make them valid, portable JSON so a report never dies at the end of
a long run.

File names need not be valid UTF-8 on Linux: Python hands them over with each
undecodable byte as a lone surrogate (``surrogateescape``), which no UTF-8 stream
accepts. Every writer therefore shows such a byte as ``\\xNN`` (``caf\\xe9.png``,
see :func:`escape_surrogates`); the JSON formats also keep the exact name: a string
field ``key`` holding such bytes gets a sibling ``key_bytes_hex`` with the hex of
its bytes (``os.fsencode``), so ``bytes.fromhex(r["path_bytes_hex"])`` opens the file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, Protocol, TextIO, runtime_checkable

#: Keys the pipeline puts in results for the HTML report only; never written elsewhere.
PRIVATE_RESULT_KEYS: frozenset[str] = frozenset({"thumbnail"})


@runtime_checkable
class ReportWriter(Protocol):
    """Receives results as they stream in, then the run summary."""

    def write(self, result: dict) -> None: ...  # called once per input as results stream in

    def close(self, summary: dict) -> None: ...  # called once at the end


class ReportFactory(Protocol):
    """What a report format registers: builds a writer bound to an open stream."""

    def __call__(
        self, stream: TextIO, manifest: dict, *, thumbnails: bool = False, **options: Any
    ) -> ReportWriter: ...


def strip_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``result`` without pipeline-private keys (the thumbnail).

    Thumbnails are large base64 blobs meant for the HTML report; machine formats
    must stay small and must not leak image content.
    """
    return {k: v for k, v in result.items() if k not in PRIVATE_RESULT_KEYS}


def is_verify(manifest: Mapping[str, Any], result: Mapping[str, Any] | None = None) -> bool:
    """Whether a report is about ``verify`` pairs rather than attributed images."""
    command = manifest.get("command")
    if command:
        return command == "verify"
    return result is not None and "a" in result and "b" in result


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` hook: numpy scalars/arrays, paths, dates, sets.

    Anything else becomes ``str(obj)``: losing a type is better than losing the
    whole report after hours of work.
    """
    if type(obj).__module__ == "numpy":
        if getattr(obj, "ndim", 0) > 0:  # array: element-wise, keeps float32 short
            return [json_default(x) for x in obj]
        if _is_short_float(obj):
            return _short_float(obj)
        if hasattr(obj, "item"):
            return to_jsonable(obj.item())
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted((to_jsonable(v) for v in obj), key=repr)
    if isinstance(obj, bytes):
        return escape_surrogates(obj.decode("utf-8", errors="surrogateescape"))
    return str(obj)


def _is_short_float(obj: Any) -> bool:
    dtype = getattr(obj, "dtype", None)
    return dtype is not None and dtype.kind == "f" and dtype.itemsize < 8


def _short_float(obj: Any) -> float | None:
    """A float32/float16 as the float its shortest repr names (0.91, not 0.910000026)."""
    f = float(str(obj))
    return f if math.isfinite(f) else None


def to_jsonable(obj: Any) -> Any:
    """A deep copy of ``obj`` made of JSON types, with NaN/inf as ``None``.

    ``json.dumps`` would write ``NaN``, which is not JSON and breaks ``jq`` and
    most non-Python parsers; numpy float32/int64 are not serializable at all.
    """
    # Fast paths for the exact built-in types a result is made of (every result of a run
    # passes here): the same values as the general branches below, fewer checks. An ASCII
    # string holds no surrogate.
    t = type(obj)
    if t is str:
        return obj if obj.isascii() else escape_surrogates(obj)
    if t is float:
        return obj if math.isfinite(obj) else None
    if t is dict:
        return _dict_jsonable(obj)
    if t is list:
        return [to_jsonable(v) for v in obj]
    if obj is None or t is bool or t is int:  # bool has no subclasses: every bool ends here
        return obj
    if isinstance(obj, str):
        return escape_surrogates(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return _dict_jsonable(obj)
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return to_jsonable(json_default(obj))


def _dict_jsonable(obj: Mapping[Any, Any]) -> dict[str, Any]:
    """:func:`to_jsonable` of a mapping: keys as text, a ``key_bytes_hex`` sibling for a
    string value holding undecodable bytes."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if type(k) is str and k.isascii():
            key = k
        else:
            key = escape_surrogates(str(k))
        tv = type(v)
        if tv is str and v.isascii():  # the common case: no surrogates, nothing to add
            out[key] = v
            continue
        if tv is float or tv is int or tv is bool or v is None:
            out[key] = v if tv is not float or math.isfinite(v) else None
            continue
        if isinstance(v, bytes):
            v = v.decode("utf-8", errors="surrogateescape")
        out[key] = to_jsonable(v)
        if isinstance(v, str) and has_surrogates(v) and f"{key}_bytes_hex" not in obj:
            out[f"{key}_bytes_hex"] = raw_bytes(v).hex()
    return out


def dumps(obj: Any, *, indent: int | None = None, compact: bool = True) -> str:
    """Strict JSON (no NaN), UTF-8 friendly (``ensure_ascii=False``).

    ``compact`` drops the spaces after ``,`` and ``:`` on one-line output.
    """
    if indent is not None:
        separators = (",", ": ")
    else:
        separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(
        to_jsonable(obj),
        ensure_ascii=False,
        allow_nan=False,
        indent=indent,
        default=json_default,
        separators=separators,
    )


def number(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (missing, NaN, not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(str(value)) if _is_short_float(value) else float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# C0/C1 controls, lone surrogates (bytes not UTF-8), and the bidirectional controls a
# crafted name uses to display reversed (U+202E: "evil\u202egnp.exe" shows as "evilexe.png")
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds lone surrogates (bytes of a name that is not UTF-8)."""
    return _SURROGATE.search(text) is not None


def _surrogate_escape(c: str) -> str:
    o = ord(c)
    return f"\\x{o - 0xDC00:02x}" if 0xDC80 <= o <= 0xDCFF else f"\\u{o:04x}"


def fmt_rate(x: float | None) -> str:
    """A rate (false-accept, named...) as a percentage that never reads 0 when it is not:
    two decimals from 0.01 % up, else two significant digits (``--target-far 0.000001``
    was shown as "FAR 0.00%", break-it); "-" for None."""
    if x is None:
        return "-"
    pct = float(x) * 100.0
    if pct == 0 or abs(pct) >= 0.01 or not math.isfinite(pct):
        return f"{pct:.2f}%"
    return f"{pct:.{-math.floor(math.log10(abs(pct))) + 1}f}%"


def escape_surrogates(text: str) -> str:
    """``text`` encodable as UTF-8: an undecodable byte (``surrogateescape``) as ``\\xNN``.

    ``"caf\\udce9.png"`` (the Latin-1 name ``b"caf\\xe9.png"`` as Python reads it
    from a UTF-8 file system) becomes ``caf\\xe9.png``; any other lone surrogate
    becomes ``\\udNNN``. Valid text is returned unchanged.
    """
    if not has_surrogates(text):
        return text
    return _SURROGATE.sub(lambda m: _surrogate_escape(m.group(0)), text)


def from_bytes_hex(value: Any) -> str | None:
    """The exact name a ``*_bytes_hex`` field (or CSV cell) holds, as Python names files
    (``os.fsdecode``); None when it is missing, empty or not hex (the escaped text field
    then says the name). The reverse of the sibling :func:`to_jsonable` writes."""
    import os

    if not isinstance(value, str) or not value:
        return None
    try:
        return os.fsdecode(bytes.fromhex(value))
    except ValueError:
        return None


def raw_bytes(text: str) -> bytes:
    """The exact bytes behind ``text`` (a name read with ``surrogateescape``)."""
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte produced: keep it as UTF-16 code unit
        return text.encode("utf-8", errors="surrogatepass")


def printable(text: Any) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x1b``).

    File names may contain newlines or terminal escape sequences; printed raw they
    would break table rows or let a crafted name rewrite the analyst's terminal.
    Bytes that are not UTF-8 show as ``\\xNN`` (:func:`escape_surrogates`), so the
    text can go to any UTF-8 stream, strict or not.
    """
    s = "" if text is None else str(text)

    def esc(m: re.Match[str]) -> str:
        c = m.group(0)
        if "\ud800" <= c <= "\udfff":
            return _surrogate_escape(c)
        if ord(c) > 0xFF:  # a bidirectional control
            return f"\\u{ord(c):04x}"
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, f"\\x{ord(c):02x}")

    return _CONTROL.sub(esc, s)


def left_out(result: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(label, rich style, "path: reason")`` for each input a verify result's folder sides
    left out: its failed inputs ("failed", red) and its skipped non-images ("skipped",
    yellow), names and reasons printable whatever their bytes."""
    out = []
    for key, label, style, why in (
        ("failed", "failed", "red", "error"),
        ("skipped", "skipped", "yellow", "reason"),
    ):
        for f in result.get(key) or []:
            if isinstance(f, Mapping):
                out.append((label, style, f"{printable(f.get('path'))}: {printable(f.get(why))}"))
    return out


def fmt_score(value: Any, digits: int = 2) -> str:
    """A score for people: fixed decimals, an em dash when missing."""
    f = number(value)
    return "\u2014" if f is None else f"{f:.{digits}f}"
