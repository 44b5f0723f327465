"""`--files-from`: input paths from a list or a manifest (fpattr.io.pathlist)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys

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


def test_skipped_results_are_not_inputs_again(tmp_path):
    """break-it: re-running a results file listed what its walk skipped (a ``loop -> .``
    link was walked again, every image twice; a text file failed): skipped records and
    rows are passed over, failed ones tried again; a manifest of one's own is read whole."""
    f = tmp_path / "results.jsonl"
    lines = [
        {"type": "manifest", "command": "attribute"},
        {"type": "result", "path": "f/a.png", "status": "ok"},
        {"type": "result", "path": "f/bad.png", "status": "error"},
        {"type": "result", "path": "f/loop", "status": "skipped"},
        {"type": "result", "path": "f/notes.txt", "status": "skipped"},
        {"path": "own.png", "status": "skipped"},  # not an fpattr result line
        {"type": "summary", "n_inputs": 2},
    ]
    f.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    assert read_path_list(f) == ["f/a.png", "f/bad.png", "own.png"]
    c = tmp_path / "results.csv"
    c.write_text(
        "path,sha256,status,decision\nf/a.png,ab,ok,x\nf/loop,,skipped,\nf/bad.png,,error,\n",
        encoding="utf-8",
    )
    assert read_path_list(c) == ["f/a.png", "f/bad.png"]
    own = tmp_path / "own.csv"
    own.write_text("path,status\na.png,skipped\n", encoding="utf-8")
    assert read_path_list(own) == ["a.png"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_results_file_reruns_the_same_inputs(tmp_path, monkeypatch):
    from fpattr.testing import write_generator_images

    monkeypatch.chdir(tmp_path)
    write_generator_images(tmp_path / "refs", "checker", n=3, size=64, seed=0)
    r = run_cli(["gallery", "add", "checker", "refs", "-g", "g", "-b", "spectrum", "-q"])
    assert r.exit_code == 0, r.output
    write_generator_images(tmp_path / "f", "checker", n=3, size=64, seed=5)
    (tmp_path / "f" / "notes.txt").write_text("notes\n", encoding="utf-8")
    (tmp_path / "f" / "loop").symlink_to(".", target_is_directory=True)
    common = ["-g", "g", "-b", "spectrum", "-q"]
    r = run_cli(["attribute", "f", *common, "-o", "first.jsonl"])
    assert r.exit_code == 0, r.output
    r = run_cli(["attribute", "--files-from", "first.jsonl", *common, "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    first = [json.loads(x) for x in (tmp_path / "first.jsonl").read_text().splitlines()]
    ok = [x["path"] for x in first if x.get("status") == "ok"]
    assert [x["path"] for x in d["results"]] == ok and len(ok) == 3
    assert d["summary"]["n_inputs"] == 3 and d["summary"]["n_failed"] == 0


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


def test_fpattr_csv_paths_read_back_exactly(tmp_path, monkeypatch):
    # break-it finding: attribute's CSV quotes names a spreadsheet would run as formulas
    # ('=x.png), and --files-from then asked for a file "'=x.png" that does not exist
    from PIL import Image

    from fpattr.report.csvfmt import formula_guard, unguard
    from fpattr.testing import generator_image, write_generator_images

    names = ["=HYPERLINK(x).png", "+cmd.png", "-1.png", "@sum.png", "'quoted.png", "plain.png"]
    for s in names:
        assert unguard(formula_guard(s)) == s
    d = tmp_path / "q"
    d.mkdir()
    for k, n in enumerate(names):
        Image.fromarray(generator_image("nearest", size=64, seed=k)).save(d / n)
    write_generator_images(tmp_path / "refs", "nearest", n=3, size=64, seed=50)
    monkeypatch.setenv("FPATTR_HOME", str(tmp_path / "home"))
    assert run_cli(["gallery", "add", "m", tmp_path / "refs", "-q"]).exit_code == 0
    monkeypatch.chdir(d)
    out = tmp_path / "a.csv"
    r = run_cli(["attribute", ".", "-q", "-o", out])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "'=HYPERLINK(x).png" in text and "''quoted.png" in text  # guarded for spreadsheets
    assert sorted(os.path.basename(p) for p in read_path_list(out)) == sorted(names)
    again = run_cli(["attribute", "--files-from", out, "-q", "-f", "jsonl"])
    assert again.exit_code == 0, again.output
    rows = [json.loads(x) for x in again.stdout.splitlines() if '"result"' in x]
    assert sorted(os.path.basename(x["path"]) for x in rows) == sorted(names)
    assert all(x["status"] == "ok" for x in rows)


@pytest.mark.skipif(sys.platform != "linux", reason="names that are not UTF-8: Linux")
def test_fpattr_csv_keeps_names_that_are_not_utf8(tmp_path, monkeypatch):
    # break-it 27: the CSV showed b"caf\xe9.png" as "caf\xe9.png" (4 ASCII characters), so
    # --files-from looked for that name; with a file of that literal name beside it, both
    # rows read the literal one and the real file was silently left out
    from PIL import Image

    from fpattr.testing import generator_image, write_generator_images

    d = tmp_path / "q"
    d.mkdir()
    latin = os.path.join(os.fsencode(d), b"caf\xe9.png")
    Image.fromarray(generator_image("nearest", size=64, seed=1)).save(os.fsdecode(latin))
    Image.fromarray(generator_image("nearest", size=64, seed=2)).save(d / "caf\\xe9.png")
    write_generator_images(tmp_path / "refs", "nearest", n=3, size=64, seed=50)
    monkeypatch.setenv("FPATTR_HOME", str(tmp_path / "home"))
    assert run_cli(["gallery", "add", "m", tmp_path / "refs", "-q"]).exit_code == 0
    out = tmp_path / "a.csv"
    assert run_cli(["attribute", d, "-q", "-o", out]).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    # both names show as "caf\xe9.png" in the path cell; the hex tells them apart
    assert len({r["path"] for r in rows}) == 1
    assert sorted(r["path_bytes_hex"] for r in rows) == ["", latin.hex()]
    back = read_path_list(out)
    assert sorted(os.fsencode(p) for p in back) == sorted(
        [latin, os.path.join(os.fsencode(d), b"caf\\xe9.png")]
    )
    again = run_cli(["attribute", "--files-from", out, "-q", "-f", "jsonl"])
    assert again.exit_code == 0, again.output
    res = [json.loads(x) for x in again.stdout.splitlines() if '"result"' in x]
    assert len({x["sha256"] for x in res}) == 2 and all(x["status"] == "ok" for x in res)


def test_a_piped_list_is_answered_as_it_comes(tmp_path, monkeypatch):
    # the list was read whole before the first result: `find ... | fpattr attribute
    # --files-from -` answered nothing until find ended, and held every path. Results now
    # come as the paths do (one input behind a pause); the run's records are the same
    import select
    import subprocess
    import time

    from fpattr.testing import write_generator_images

    write_generator_images(tmp_path / "refs", "nearest", n=3, size=64, seed=50)
    write_generator_images(tmp_path / "q", "nearest", n=5, size=64, seed=1)
    monkeypatch.setenv("FPATTR_HOME", str(tmp_path / "home"))
    assert run_cli(["gallery", "add", "m", tmp_path / "refs", "-q"]).exit_code == 0
    queries = sorted(str(p) for p in (tmp_path / "q").glob("*.png"))
    cmd = [sys.executable, "-m", "fpattr", "attribute", "--files-from", "-", "-f", "jsonl", "-q"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    early = []
    try:
        for q in queries:  # a slow producer: a path every 0.6 s
            proc.stdin.write(q.encode() + b"\n")
            proc.stdin.flush()
            time.sleep(0.6)
            while select.select([proc.stdout], [], [], 0)[0]:
                early.append(json.loads(proc.stdout.readline()))
        # every input (but perhaps the last, one input behind) is answered while the
        # list is still open (a loaded machine: up to 60 s)
        deadline = time.monotonic() + 60
        while sum(x["type"] == "result" for x in early) < len(queries) - 1:
            assert time.monotonic() < deadline, early
            if select.select([proc.stdout], [], [], 0.2)[0]:
                early.append(json.loads(proc.stdout.readline()))
        early = [x for x in early if x["type"] == "result"]
        assert [x["path"] for x in early] == queries[: len(early)]
        proc.stdin.close()
        rest = [json.loads(x) for x in proc.stdout.read().splitlines()]
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait()
    results = early + [x for x in rest if x["type"] == "result"]
    assert [x["path"] for x in results] == queries and proc.returncode == 0
    assert rest[-1]["type"] == "summary" and rest[-1]["n_inputs"] == len(queries)


def test_a_bad_line_met_while_streaming_keeps_the_results_before_it(tmp_path, monkeypatch):
    # read as the run goes, a bad manifest line is met after the inputs before it were
    # answered: exit 2 with the reason, their records kept whole, and --resume completes
    # the run once the line is fixed
    from fpattr.testing import write_generator_images

    write_generator_images(tmp_path / "refs", "nearest", n=3, size=64, seed=50)
    qs = write_generator_images(tmp_path / "q", "nearest", n=3, size=64, seed=1)
    monkeypatch.setenv("FPATTR_HOME", str(tmp_path / "home"))
    assert run_cli(["gallery", "add", "m", tmp_path / "refs", "-q"]).exit_code == 0
    good = [json.dumps({"path": str(p)}) for p in qs]
    lst, out = tmp_path / "list.jsonl", tmp_path / "out.jsonl"
    lst.write_text("\n".join([*good[:2], "not json", good[2]]) + "\n", encoding="utf-8")
    r = run_cli(["attribute", "--files-from", lst, "-q", "-o", out])
    assert r.exit_code == 2 and "line 3: not a JSON object" in r.stderr, r.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["type"] for x in lines] == ["manifest", "result", "result"]
    lst.write_text("\n".join(good) + "\n", encoding="utf-8")
    r = run_cli(["attribute", "--files-from", lst, "-q", "-o", out, "--resume"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(x["path"] for x in lines if x["type"] == "result") == sorted(map(str, qs))
    assert lines[-1]["type"] == "summary"


def test_nul_separated_lists_a_bom_and_a_stray_nul(tmp_path):
    # break-it 28: `find -print0 | fpattr attribute --files-from -` was an internal error
    # (exit 70); a BOM broke the first path, unseen
    f = tmp_path / "list0"
    f.write_bytes(b"b.png\0we\nird.png\0\0caf\xe9.png\0")  # a later name holds a newline
    assert read_path_list(f) == ["b.png", "we\nird.png", os.fsdecode(b"caf\xe9.png")]
    # told by the first separator, however the bytes arrive (review 28): a newline list
    # with a stray NUL is refused whether it is read whole or byte by byte
    from fpattr.io.pathlist import _from_text

    data = b"a.png\nb\0c.png\nd.png\n"

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.left = data

        def readable(self) -> bool:
            return True

        def read1(self, n: int = -1) -> bytes:
            out, self.left = self.left[:1], self.left[1:]
            return out

    for stream in (io.BytesIO(data), Trickle()):
        with pytest.raises(UsageError, match="line 2 holds a NUL byte"):
            list(_from_text("x", stream))
    f.write_bytes(b"\xef\xbb\xbfa.png\r\nb.png\n")
    assert read_path_list(f) == ["a.png", "b.png"]
    f.write_bytes(b"a.png\n" * 40000 + b"b\0c.png\n")  # a NUL past the first bytes read
    with pytest.raises(UsageError, match="line 40001 holds a NUL byte"):
        read_path_list(f)


def test_a_path_holding_a_nul_fails_as_an_input_not_as_the_run(tmp_path):
    from fpattr.io.walk import NUL_IN_PATH, iter_inputs

    assert [i.error for i in iter_inputs(["a\0b"])] == [NUL_IN_PATH]
    from fpattr.testing import write_generator_images

    g = tmp_path / "g"
    for gen in ("checker", "nearest"):
        refs = write_generator_images(tmp_path / gen, gen, n=2, size=64)
        assert run_cli(["gallery", "add", gen, *refs, "-g", g, "-b", "spectrum"]).exit_code == 0
    listed = tmp_path / "in.jsonl"
    listed.write_text(json.dumps({"path": "a\0b.png"}) + "\n", encoding="utf-8")
    r = run_cli(["attribute", "--files-from", listed, "-g", g, "-b", "spectrum", "-f", "jsonl"])
    assert r.exit_code == 2, r.output  # nothing processed; not an internal error (70)
    rec = next(json.loads(x) for x in r.stdout.splitlines() if '"result"' in x)
    assert rec["error"] == NUL_IN_PATH
