"""Every writer takes a file name that is not UTF-8 (read with surrogateescape) and
writes valid UTF-8: the byte shown as ``\\xNN``, the exact bytes kept in JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest

from fpattr.report import builtin
from fpattr.report.base import dumps, escape_surrogates, printable, raw_bytes, to_jsonable

NAME = "imgs/caf\udce9.png"  # b"imgs/caf\xe9.png" as os.fsdecode gives it on Linux
SHOWN = "imgs/caf\\xe9.png"

FACTORIES = [builtin.table, builtin.json_, builtin.jsonl, builtin.csv, builtin.html]


def test_escape_surrogates_and_raw_bytes():
    assert escape_surrogates(NAME) == SHOWN
    assert escape_surrogates("plain é ✓") == "plain é ✓"
    assert escape_surrogates("x\ud800y") == "x\\ud800y"  # a surrogate no byte made
    assert raw_bytes(NAME) == b"imgs/caf\xe9.png"
    assert printable(NAME) == SHOWN
    assert printable("a\nb\udcff") == "a\\nb\\xff"


def test_to_jsonable_adds_the_exact_bytes_beside_an_escaped_name():
    doc = to_jsonable({"path": NAME, "ok": "x.png", "failed": [{"path": NAME}], NAME: 1})
    assert doc["path"] == SHOWN
    assert bytes.fromhex(doc["path_bytes_hex"]) == b"imgs/caf\xe9.png"
    assert "ok_bytes_hex" not in doc
    assert doc["failed"] == [{"path": SHOWN, "path_bytes_hex": "696d67732f636166e92e706e67"}]
    assert doc[SHOWN] == 1
    text = dumps({"path": NAME, "raw": b"caf\xe9"})
    text.encode("utf-8")  # strict UTF-8
    assert json.loads(text)["raw"] == "caf\\xe9"
    assert json.loads(text)["raw_bytes_hex"] == "636166e9"


class StrictStream(io.StringIO):
    """A text stream that, like a strict UTF-8 stdout, refuses what UTF-8 cannot encode."""

    def write(self, s: str) -> int:
        s.encode("utf-8")
        return super().write(s)


def _run(factory, manifest, results, summary, **options) -> str:
    buf = StrictStream()
    writer = factory(buf, manifest, **options)
    for r in results:
        writer.write(r)
    writer.close(summary)
    return buf.getvalue()


@pytest.mark.parametrize("factory", FACTORIES)
def test_attribute_writers_take_a_latin1_name(factory, manifest, results, summary):
    results[0]["path"] = NAME
    results[3]["path"] = "imgs/\udce9t\udce9.jpg"
    results[3]["error"] = "imgs/\udce9t\udce9.jpg: cannot decode image"
    out = _run(factory, manifest, results, summary, thumbnails=True)
    if factory in (builtin.json_, builtin.jsonl):
        if factory is builtin.json_:
            rows = json.loads(out)["results"]
        else:
            rows = [json.loads(line) for line in out.splitlines()][1:-1]
        assert rows[0]["path"] == SHOWN
        assert bytes.fromhex(rows[0]["path_bytes_hex"]) == b"imgs/caf\xe9.png"
        assert rows[3]["path"] == "imgs/\\xe9t\\xe9.jpg"
        assert bytes.fromhex(rows[3]["path_bytes_hex"]) == b"imgs/\xe9t\xe9.jpg"
        assert "path_bytes_hex" not in rows[1]
    elif factory is builtin.csv:
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows[0]["path"] == SHOWN and rows[0]["decision"] == "sdxl"
        assert rows[3]["error"] == "imgs/\\xe9t\\xe9.jpg: cannot decode image"
    else:
        assert SHOWN in out and "imgs/\\xe9t\\xe9.jpg" in out
    assert "\ufffd" not in out


@pytest.mark.parametrize("factory", FACTORIES)
def test_verify_writers_take_a_latin1_name(
    factory, verify_manifest, verify_results, verify_summary
):
    verify_results[0]["a"] = NAME
    verify_results[1]["b"] = NAME
    out = _run(factory, verify_manifest, verify_results, verify_summary, thumbnails=True)
    if factory is builtin.json_:
        rows = json.loads(out)["results"]
        assert rows[0]["a"] == SHOWN and rows[1]["b"] == SHOWN
        assert bytes.fromhex(rows[0]["a_bytes_hex"]) == b"imgs/caf\xe9.png"
    elif factory is builtin.csv:
        rows = list(csv.DictReader(io.StringIO(out)))
        assert rows[0]["a"] == SHOWN and rows[1]["b"] == SHOWN
    elif factory is builtin.table:
        assert SHOWN in out
    elif factory is builtin.html:
        assert out.count(SHOWN) >= 2


def test_model_names_that_are_not_utf8(manifest, results, summary):
    """A gallery model named from a Latin-1 folder name reaches every writer too."""
    results[0]["top"][0]["model"] = "mod\udce8le"
    results[0]["decision"] = "mod\udce8le"
    summary["decisions"] = {"mod\udce8le": 1}
    for factory in FACTORIES:
        out = _run(factory, manifest, results, summary)
        assert "mod\\xe8le" in out.replace("\\\\", "\\"), factory


def test_csv_quotes_a_carriage_return_in_a_name(manifest, results, summary):
    # break-it finding: with "\n" line ends the csv module quoted "\n" but not a lone "\r",
    # so a file named "tab\there\r.png" split its record in two for every reader
    name = "xss/tab\there\r.png"
    results[0]["path"] = name
    out = _run(builtin.csv, manifest, results, summary)
    rows = list(csv.reader(io.StringIO(out, newline=""), strict=True))
    assert len({len(r) for r in rows}) == 1 and len(rows) == len(results) + 1
    assert rows[1][0] == name
    plain = _run(builtin.csv, manifest, results[1:], summary)
    assert '"' not in plain.splitlines()[1]  # other rows keep minimal quoting


def test_every_csv_writer_quotes_a_carriage_return():
    from fpattr.report.csvfmt import RowWriter

    buf = io.StringIO()
    w = RowWriter(buf)
    w.writerows([["a\rb", 1, None], ["c", "d\ne", 2.5]])
    assert list(csv.reader(io.StringIO(buf.getvalue(), newline=""), strict=True)) == [
        ["a\rb", "1", ""],
        ["c", "d\ne", "2.5"],
    ]
    assert buf.getvalue().endswith('"d\ne",2.5\n')


def test_every_csv_writer_escapes_an_undecodable_name(tmp_path):
    # a row built by any command (break-it: `analyze predict -o x.csv` built its own cells
    # and crashed the file's UTF-8 encoder on a Latin-1 name, exit 70)
    from fpattr.report.csvfmt import RowWriter

    out = tmp_path / "x.csv"
    with out.open("w", encoding="utf-8", errors="strict", newline="") as f:
        RowWriter(f).writerow(["caf\udce9.png", 1])
    assert out.read_text(encoding="utf-8") == "caf\\xe9.png,1\n"


def test_printable_escapes_bidirectional_controls():
    # break-it finding: the table printed U+202E raw, so "evil\u202egnp.exe" read "evilexe.png"
    assert printable("evil\u202egnp.exe") == "evil\\u202egnp.exe"
    for c in ("\u061c", "\u200e", "\u200f", "\u202a", "\u202d", "\u2066", "\u2069"):
        assert printable(f"a{c}b") == f"a\\u{ord(c):04x}b"
    assert printable("café ⟨ok⟩ 画像.png") == "café ⟨ok⟩ 画像.png"  # other text untouched
