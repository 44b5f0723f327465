"""`--files-from`: input paths from a list or a manifest (fpattr.io.pathlist)."""

from __future__ import annotations

import io
import json
import os

import pytest

from fpattr.errors import UsageError
from fpattr.io.pathlist import read_path_list
from fpattr.testing import run_cli


def test_text_list_keeps_names_exactly(tmp_path):
    """One path per line, as bytes: CRLF endings stripped, empty lines passed over, a name
    that is not UTF-8 and one with spaces kept exactly."""
    f = tmp_path / "list.txt"
    f.write_bytes(b"a.png\r\n\n  spaced name.png\ncaf\xe9.png\nsub/dir\n")
    want = ["a.png", "  spaced name.png", os.fsdecode(b"caf\xe9.png"), "sub/dir"]
    assert read_path_list(f) == want


def test_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"x.png\ny.png\n")))
    assert read_path_list("-") == ["x.png", "y.png"]


def test_jsonl_manifest_and_fpattr_results(tmp_path):
    """A results file is a manifest: manifest/summary lines passed over, the exact bytes
    of a name from path_bytes_hex."""
    f = tmp_path / "results.jsonl"
    lines = [
        {"type": "manifest", "command": "attribute"},
        {"type": "result", "path": "a.png"},
        {"type": "result", "path": "caf\\xe9.png", "path_bytes_hex": b"caf\xe9.png".hex()},
        {"path": "b.png", "label": "x"},
        {"type": "summary", "n_inputs": 3},
    ]
    f.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    assert read_path_list(f) == ["a.png", os.fsdecode(b"caf\xe9.png"), "b.png"]


def test_csv_manifest(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text('\ufeffid,path\n1,a.png\n2,"with, comma.png"\n', encoding="utf-8")
    assert read_path_list(f) == ["a.png", "with, comma.png"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.csv", "id,file\n1,a.png\n", 'no "path" column'),
        ("m.csv", 'path\na.png\n""\n', "line 3: empty path"),
        ("m.jsonl", '{"path": "a.png"}\nnot json\n', "line 2: not a JSON object"),
        ("m.jsonl", '{"file": "a.png"}\n', 'line 1: no "path"'),
    ],
)
def test_bad_manifests_are_usage_errors(tmp_path, name, content, message):
    f = tmp_path / name
    f.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        read_path_list(f)


def test_cli_needs_inputs_and_a_readable_list(tmp_path):
    r = run_cli(["attribute", "-b", "spectrum", "-g", tmp_path])
    assert r.exit_code == 2 and "--files-from" in r.stderr
    r = run_cli(["attribute", "--files-from", tmp_path / "nope.txt", "-b", "spectrum"])
    assert r.exit_code == 2 and "cannot read --files-from" in r.stderr


def test_empty_crlf_line_is_not_the_current_folder(tmp_path):
    """A blank line of a CRLF list ("\r\n") is empty, not a path "" (Path("") is ".")."""
    f = tmp_path / "list.txt"
    f.write_bytes(b"a.png\r\n\r\nb.png\r\n\r\n")
    assert read_path_list(f) == ["a.png", "b.png"]
