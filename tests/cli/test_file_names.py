"""File names that are not UTF-8 (a Latin-1 byte on a Linux file system) through every
writer and the terminal: scored, shown as ``caf\\xe9.png``, kept exactly in JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fpattr.testing import run_cli

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or sys.getfilesystemencoding().lower() not in ("utf-8", "utf8"),
    reason="needs a file system that takes any bytes in names, read as UTF-8",
)

RAW = b"caf\xe9.png"
SHOWN = "caf\\xe9.png"  # what a reader sees: the byte escaped, nothing replaced


@pytest.fixture
def latin(enrolled: dict[str, Path]) -> dict[str, Path]:
    """The enrolled world plus a query folder holding ``b"caf\\xe9.png"`` and ``ok.png``."""
    q = enrolled["root"] / "latin"
    q.mkdir()
    src = sorted(enrolled["queries"].glob("checker_*.png"))
    (q / os.fsdecode(RAW)).write_bytes(src[0].read_bytes())
    (q / "ok.png").write_bytes(src[1].read_bytes())
    assert RAW in os.listdir(os.fsencode(q))
    enrolled["latin"] = q
    enrolled["cafe"] = q / os.fsdecode(RAW)
    return enrolled


def _fpattr(*args: object, cwd: Path, strict: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict" if strict else "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "fpattr", *map(str, args)],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _attr(w: dict[str, Path], *extra: object) -> list[object]:
    return ["attribute", w["latin"], "-g", w["gallery"], "--backbone", "spectrum", "-q", *extra]


def _verify(w: dict[str, Path], *extra: object) -> list[object]:
    return [
        "verify",
        w["cafe"],
        w["latin"] / "ok.png",
        "-g",
        w["gallery"],
        "--backbone",
        "spectrum",
        "-q",
        *extra,
    ]


def _cafe_row(rows: list[dict], key: str = "path") -> dict:
    (row,) = [r for r in rows if str(r.get(key, "")).endswith(SHOWN)]
    return row


def test_attribute_files_json_csv_html(latin):
    root = latin["root"]
    r = run_cli(_attr(latin, "-o", root / "r.json", "--report", root / "r.html"))
    assert r.exit_code == 0, r.output
    doc = json.loads((root / "r.json").read_text(encoding="utf-8"))
    row = _cafe_row(doc["results"])
    assert row["status"] == "ok" and row["decision"]
    assert bytes.fromhex(row["path_bytes_hex"]) == os.fsencode(latin["cafe"])  # lossless
    ok = [x for x in doc["results"] if x["path"].endswith("ok.png")]
    assert ok and "path_bytes_hex" not in ok[0]  # only where the name is not UTF-8
    page = (root / "r.html").read_text(encoding="utf-8")
    assert SHOWN in page and "\ufffd" not in page

    r = run_cli(_attr(latin, "-o", root / "r.csv"))
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO((root / "r.csv").read_text(encoding="utf-8"))))
    assert _cafe_row(rows)["status"] == "ok"


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_attribute_strict_utf8_stdout(latin, fmt):
    p = _fpattr(*_attr(latin, "-f", fmt), cwd=latin["root"])
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")
    out = p.stdout.decode("utf-8")  # strict: valid UTF-8
    assert "internal error" not in p.stderr.decode("utf-8", "replace")
    assert SHOWN in (out if fmt in ("table", "csv") else out.replace("\\\\", "\\"))
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.splitlines()]
        row = _cafe_row([x for x in rows if x["type"] == "result"])
        assert bytes.fromhex(row["path_bytes_hex"]) == os.fsencode(latin["cafe"])
    if fmt == "json":
        row = _cafe_row(json.loads(out)["results"])
        assert bytes.fromhex(row["path_bytes_hex"]) == os.fsencode(latin["cafe"])
    if fmt == "csv":
        assert _cafe_row(list(csv.DictReader(io.StringIO(out))))["status"] == "ok"


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_verify_strict_utf8_stdout(latin, fmt):
    p = _fpattr(*_verify(latin, "-f", fmt), cwd=latin["root"])
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")
    out = p.stdout.decode("utf-8")
    assert SHOWN in (out if fmt in ("table", "csv") else out.replace("\\\\", "\\"))
    if fmt == "json":
        (row,) = json.loads(out)["results"]
        assert row["a"].endswith(SHOWN) and row["decision"]
        assert bytes.fromhex(row["a_bytes_hex"]) == os.fsencode(latin["cafe"])
        assert "b_bytes_hex" not in row


def test_verify_files_json_csv_html(latin):
    root = latin["root"]
    r = run_cli(_verify(latin, "-o", root / "v.json", "--report", root / "v.html"))
    assert r.exit_code == 0, r.output
    (row,) = json.loads((root / "v.json").read_text(encoding="utf-8"))["results"]
    assert row["a"].endswith(SHOWN)
    assert bytes.fromhex(row["a_bytes_hex"]) == os.fsencode(latin["cafe"])
    assert SHOWN in (root / "v.html").read_text(encoding="utf-8")
    r = run_cli(_verify(latin, "-o", root / "v.csv"))
    assert r.exit_code == 0, r.output
    (row,) = list(csv.DictReader(io.StringIO((root / "v.csv").read_text(encoding="utf-8"))))
    assert row["a"].endswith(SHOWN) and row["decision"]


@pytest.mark.parametrize("suffix", ["csv", "json", "jsonl", "txt"])
def test_analyze_predict_files_take_a_latin1_name(latin, suffix):
    out = latin["root"] / f"a.{suffix}"
    r = _fpattr("analyze", "predict", latin["latin"], "-q", "-o", out, cwd=latin["root"])
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    text = out.read_text(encoding="utf-8")
    assert SHOWN in text or json.dumps(SHOWN)[1:-1] in text
    if suffix == "csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert sum(row["path"].endswith(SHOWN) for row in rows) == 1


def test_terminal_table_is_readable_without_strict_mode(latin):
    p = _fpattr(*_attr(latin), cwd=latin["root"], strict=False)
    assert p.returncode == 0
    out = p.stdout.decode("utf-8")
    assert SHOWN in out and "\ufffd" not in out


def test_verify_names_a_skipped_latin1_file_literally(latin):
    """A folder side with a corrupt file named ``[bold]bad\\xe9.png``: the table, the
    HTML report and stderr name it, escaped, markup printed literally."""
    root = latin["root"]
    side = root / "side"
    side.mkdir()
    (side / "ok.png").write_bytes((latin["latin"] / "ok.png").read_bytes())
    (side / os.fsdecode(b"[bold]bad\xe9.png")).write_bytes(b"not an image")
    p = _fpattr(
        "verify", side, latin["cafe"], "-g", latin["gallery"], "--backbone", "spectrum",
        "--report", root / "s.html", cwd=root,
    )  # fmt: skip
    assert p.returncode == 1, p.stderr
    out, err = p.stdout.decode("utf-8"), p.stderr.decode("utf-8").replace("\n", "")
    assert "skipped" in out and "[bold]bad\\xe9.png" in out
    assert "[bold]bad\\xe9.png" in err and "\\udce9" not in err
    page = (root / "s.html").read_text(encoding="utf-8")
    assert "[bold]bad\\xe9.png</code>" in page


def test_a_narrow_stdout_encoding_prints_escapes_not_a_crash(tmp_path):
    """A latin-1 or ascii terminal cannot encode an emoji file name: escaped, exit 0."""
    import os
    import subprocess
    import sys

    from fpattr.testing import write_generator_images

    write_generator_images(tmp_path / "refs" / "a", "checker", n=3, size=64, seed=0)
    write_generator_images(tmp_path / "refs" / "b", "nearest", n=3, size=64, seed=0)
    write_generator_images(tmp_path / "q", "checker", n=1, size=64, seed=5, prefix="\U0001f600_")
    g = tmp_path / "g"
    for m in ("a", "b"):
        assert (
            run_cli(
                ["gallery", "add", m, tmp_path / "refs" / m, "-g", g, "-b", "spectrum"]
            ).exit_code
            == 0
        )
    for enc, fmt in (("latin-1:strict", "csv"), ("ascii:strict", "table")):
        env = {**os.environ, "PYTHONIOENCODING": enc}
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                "from fpattr.cli import main; main()",
                "attribute",
                str(tmp_path / "q"),
                "-g",
                str(g),
                "-b",
                "spectrum",
                "-f",
                fmt,
                "-q",
            ],
            capture_output=True,
            env=env,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        assert b"\\U0001f600" in r.stdout
