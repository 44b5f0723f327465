"""Interrupted `attribute -o FILE.jsonl` keeps every finished record; `--resume` completes it.

Real subprocesses (`python -m fpattr`) killed with SIGINT / SIGTERM mid-run, then resumed:
the file must hold only complete lines, no temp file may be left, and the resumed file must
list every input exactly once with one summary at its end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fpattr.testing import run_cli, write_generator_images

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

GENS = ("nearest", "bilinear", "checker")
N_PER_GEN = 67  # 201 inputs
# slow enough per image (~10 ms) that the run is surely caught mid-way
SLOW = ["-b", "spectrum", "--batch-size", "1", "--workers", "1", "--views", "16", "-q"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("interrupt")
    for gen in GENS:
        write_generator_images(root / "refs" / gen, gen, n=3, size=64, seed=0)
        write_generator_images(
            root / "queries", gen, n=N_PER_GEN, size=128, seed=100, prefix=f"{gen}_"
        )
    for gen in GENS:
        r = run_cli(
            ["gallery", "add", gen, root / "refs" / gen, "-g", root / "gallery", "-b", "spectrum"]
        )
        assert r.exit_code == 0, r.output
    return {"root": root, "queries": root / "queries", "gallery": root / "gallery"}


def _inputs(world) -> set[str]:
    return {str(p) for p in world["queries"].iterdir()}


def _lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the last line is incomplete"
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def _n_results(path: Path) -> int:
    try:
        return path.read_bytes().count(b'{"type":"result"')
    except FileNotFoundError:
        return 0


def _attribute(world, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fpattr",
        "attribute",
        str(world["queries"]),
        "-g",
        str(world["gallery"]),
        "-o",
        str(out),
        *SLOW,
        *extra,
    ]


def _interrupt(
    cmd: list[str], signum: int, ready: Any, check: Any = None
) -> subprocess.CompletedProcess:
    """Run ``cmd``, send ``signum`` once ``ready()`` holds (``check()`` is asserted just
    before: what must hold mid-run), and return the finished process."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if check is not None:
            check()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _after_results(out: Path, n: int = 4) -> Any:
    return lambda: _n_results(out) >= n


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_interrupted_run_keeps_records_and_resumes(world, tmp_path, signum, code):
    out = tmp_path / "results.jsonl"
    p = _interrupt(_attribute(world, out), signum, _after_results(out))
    assert p.returncode == code, p.stderr.decode()
    assert "interrupted" in p.stderr.decode()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["results.jsonl"]  # no temp file

    lines = _lines(out)  # every line complete and valid JSON
    kinds = [x["type"] for x in lines]
    assert kinds[0] == "manifest" and set(kinds[1:]) == {"result"}  # no summary: incomplete
    done = [x["path"] for x in lines[1:]]
    assert 4 <= len(done) < len(_inputs(world)) and len(set(done)) == len(done)
    assert all(len(x["sha256"]) == 64 and x["status"] == "ok" for x in lines[1:])

    r = subprocess.run(_attribute(world, out, "--resume"), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["results.jsonl"]
    lines = _lines(out)
    kinds = [x["type"] for x in lines]
    assert kinds.count("manifest") == 2 and kinds.count("summary") == 1
    assert kinds[-1] == "summary"
    paths = [x["path"] for x in lines if x["type"] == "result"]
    assert sorted(paths) == sorted(_inputs(world))  # every input exactly once
    assert paths[: len(done)] == done  # the kept records first
    resumed = [x for x in lines if x["type"] == "manifest"][1]["resumed"]
    assert resumed == {
        "kept": len(done),
        "redone": 0,
        "dropped_partial_line": False,
        "dropped_not_inputs": 0,
    }
    summary = lines[-1]
    assert summary["n_inputs"] == len(_inputs(world)) == summary["n_ok"]
    assert sum(summary["decisions"].values()) == len(_inputs(world))
    assert summary["resumed"] == {
        "runs": 2,
        "kept": len(done),
        "redone": 0,
        "new": len(_inputs(world)) - len(done),
    }


def test_sigterm_leaves_no_temp_file_of_atomic_outputs(world, tmp_path):
    """--report is written whole or not at all, and its temp file is only created at close:
    mid-run there is none, and after SIGTERM only the streamed jsonl is left."""
    out, rep = tmp_path / "r.jsonl", tmp_path / "r.html"

    def no_temp_file() -> None:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]  # no .r.html.tmp-*

    cmd = _attribute(world, out, "--report", str(rep))
    p = _interrupt(cmd, signal.SIGTERM, _after_results(out), no_temp_file)
    assert p.returncode == 143, p.stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]  # no half report


@pytest.mark.parametrize("suffix", ["json", "csv"])
def test_an_interrupted_whole_file_output_says_nothing_was_written(world, tmp_path, suffix):
    # break-it: the exit-code table promised "finished records are kept" whatever the
    # format; a JSON or CSV file is written whole at the end, so an interrupted run leaves
    # none (never a partial report that reads as complete), and now says so, under -q too
    out = tmp_path / f"r.{suffix}"
    rep = tmp_path / "r.html"  # the report is named too (break-it 28: it went unsaid)
    t0 = time.monotonic()  # start-up, then a few of the ~3 s of slow inputs
    cmd = _attribute(world, out, "--report", str(rep))
    p = _interrupt(cmd, signal.SIGINT, lambda: time.monotonic() - t0 > 1.0)
    assert p.returncode == 130, p.stderr.decode()
    stderr = p.stderr
    said = " ".join(stderr.decode().split())
    assert f"nothing written to {out}" in said and "-o FILE.jsonl streams" in said
    assert f"nothing written to {rep}" in said
    assert list(tmp_path.iterdir()) == []


def test_resume_drops_results_that_are_no_longer_inputs(small, tmp_path):
    """A deleted input's result is dropped on --resume (with a note), and n_inputs counts
    only the current inputs; results of another folder are dropped too, never merged."""
    out = tmp_path / "r.jsonl"
    assert _run(small, out).exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")  # interrupted: 5 results
    gone = json.loads(lines[1])["path"]
    os.unlink(gone)
    r = _run(small, out, "--resume", quiet=False)
    assert r.exit_code == 0, r.output
    note = " ".join(r.stderr.split())  # the console wraps long lines
    assert "1 result(s) dropped: their paths are not among the current inputs" in note
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    paths = [x["path"] for x in got if x["type"] == "result"]
    assert gone not in paths
    assert sorted(paths) == sorted(str(p) for p in small["queries"].iterdir())
    assert got[-1]["n_inputs"] == 8 and got[-1]["resumed"]["kept"] == 4
    assert [x.get("resumed") for x in got if x["type"] == "manifest"][1]["dropped_not_inputs"] == 1

    # another folder altogether: none of the file's results is for a current input, a
    # typo far likelier than a wish to drop them all (break-it: every result was dropped,
    # exit 0): refused as other options are, the file untouched
    other = tmp_path / "other"
    write_generator_images(other, "checker", n=2, size=64, seed=91)
    before = out.read_bytes()
    args = ["attribute", other, "-g", small["gallery"], "-o", out, "-b", "spectrum", "--resume"]
    r = run_cli(args)
    assert r.exit_code == 2, r.output
    assert "none of its 8 result(s) is for one of the current inputs" in " ".join(r.stderr.split())
    assert out.read_bytes() == before
    r = run_cli(args[:-1])  # without --resume: a fresh run over it
    assert r.exit_code == 0, r.output
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(x["path"] for x in got if x["type"] == "result") == sorted(
        str(p) for p in other.iterdir()
    )


def test_a_path_given_again_is_one_input_fresh_or_resumed(small, tmp_path):
    # break-it: a fresh run wrote a record per repetition (5 for 3 files), --resume of the
    # same command kept one per path (3): the two must agree
    one = sorted(small["queries"].iterdir())[0]
    out = tmp_path / "r.jsonl"
    args = ["attribute", one, one, small["queries"], "-g", small["gallery"], "-b", "spectrum"]
    r = run_cli([*args, "-o", out, "-q"])
    assert r.exit_code == 0, r.output
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    paths = [x["path"] for x in got if x["type"] == "result"]
    assert sorted(paths) == sorted(str(p) for p in small["queries"].iterdir())
    assert got[-1]["n_inputs"] == len(paths) == 9 and got[-1]["n_repeated"] == 2
    r = run_cli([*args, "-o", out, "-q", "--resume"])
    assert r.exit_code == 0, r.output
    again = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["path"] for x in again if x["type"] == "result"] == paths
    assert again[-1]["n_inputs"] == 9 and again[-1]["n_repeated"] == 2
    r = run_cli(args)
    assert "2 path(s) given again: attributed once" in " ".join(r.stdout.split())


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_one_file_under_other_spellings_is_one_input_fresh_or_resumed(small, tmp_path, monkeypatch):
    # break-it: ./q was de-duplicated, but $PWD/q, q/../q/x.png and a folder reached again
    # through a link (loop -> .) were attributed again (7 records for 3 files)
    monkeypatch.chdir(small["root"])
    (small["queries"] / "loop").symlink_to(".", target_is_directory=True)
    one = sorted(p.name for p in small["queries"].glob("*.png"))[0]
    spellings = ["queries", "./queries", str(small["queries"]), f"queries/../queries/{one}"]
    out = tmp_path / "r.jsonl"
    args = ["attribute", *spellings, "queries/loop", "-g", small["gallery"], "-b", "spectrum"]
    r = run_cli([*args, "-o", out, "-q"])
    assert r.exit_code == 0, r.output
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    results = [x for x in got if x["type"] == "result"]
    ok = [x["path"] for x in results if x["status"] == "ok"]
    # each file once, under the spelling first given
    assert ok == sorted(os.path.join("queries", p.name) for p in small["queries"].glob("*.png"))
    assert [x["path"] for x in results if x["status"] == "skipped"] == [
        os.path.join("queries", "loop")
    ]
    # ./queries, $PWD/queries and queries/loop: 9 images and the loop link each; the ../ file
    assert got[-1]["n_inputs"] == 9 and got[-1]["n_repeated"] == 3 * (9 + 1) + 1
    r = run_cli([*args, "-o", out, "-q", "--resume"])  # records still matched by path
    assert r.exit_code == 0, r.output
    again = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    # the skipped link is redone (written last), the 9 images kept
    lines = [x for x in again if x["type"] == "result"]
    assert len(lines) == len(results)
    assert {x["path"]: x for x in lines} == {x["path"]: x for x in results}
    assert again[-1]["n_inputs"] == 9 and again[-1]["resumed"]["kept"] == 9
    assert again[-1]["n_repeated"] == 3 * (9 + 1) + 1


def test_output_files_inside_the_scanned_folder_are_not_inputs(small):
    """-o and --report inside the folder being scanned: not among the results, also on
    --resume (and their temp files neither)."""
    q = small["queries"]
    out, rep = q / "r.jsonl", q / "r.html"
    args = ["attribute", q, "-g", small["gallery"], "-o", out, "--report", rep, "-b", "spectrum"]
    r = run_cli(args)
    assert r.exit_code == 0, r.output
    images = {str(p) for p in q.iterdir() if p.suffix == ".png"}
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {x["path"] for x in got if x["type"] == "result"} == images
    assert got[-1]["n_inputs"] == 9 and got[-1].get("n_skipped", 0) == 0
    assert rep.exists() and not [p for p in q.iterdir() if ".tmp-" in p.name]
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    r = run_cli([*args, "--resume"])
    assert r.exit_code == 0, r.output
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {x["path"] for x in got if x["type"] == "result"} == images
    assert got[-1]["n_inputs"] == 9


def _run(world, out: Path, *extra, quiet: bool = True) -> object:
    args = ["attribute", world["queries"], "-g", world["gallery"], "-o", out, "-b", "spectrum"]
    return run_cli([*args, *extra, *(["-q"] if quiet else [])])


@pytest.fixture
def small(tmp_path) -> dict[str, Path]:
    for gen in GENS:
        write_generator_images(tmp_path / "refs" / gen, gen, n=3, size=64, seed=0)
        write_generator_images(tmp_path / "queries", gen, n=3, size=64, seed=7, prefix=f"{gen}_")
        r = run_cli(
            ["gallery", "add", gen, tmp_path / "refs" / gen, "-g", tmp_path / "g", "-b", "spectrum"]
        )
        assert r.exit_code == 0, r.output
    return {"queries": tmp_path / "queries", "gallery": tmp_path / "g", "root": tmp_path}


def test_resume_redoes_changed_inputs_and_drops_a_partial_line(small, tmp_path):
    out = tmp_path / "r.jsonl"
    assert _run(small, out).exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 11  # manifest, 9 results, summary
    # an interrupted file: 5 results kept, then half a line (a hard kill)
    out.write_text("\n".join(lines[:6]) + "\n" + lines[6][:40], encoding="utf-8")
    changed = json.loads(lines[2])["path"]  # its image changes: its record must be redone
    (new,) = write_generator_images(tmp_path / "new", "checker", n=1, size=64, seed=55)
    new.replace(changed)

    r = _run(small, out, "--resume", quiet=False)
    assert r.exit_code == 0, r.output
    assert "1 to redo" in r.stderr and "incomplete last line was dropped" in r.stderr
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    results = [x for x in got if x["type"] == "result"]
    assert sorted(x["path"] for x in results) == sorted(str(p) for p in small["queries"].iterdir())
    kept = [json.loads(x) for x in lines[1:6] if json.loads(x)["path"] != changed]
    assert results[:4] == kept  # the kept records first, unchanged
    assert changed in [x["path"] for x in results[4:]]  # redone, after them
    assert got[-1]["type"] == "summary" and got[-1]["n_inputs"] == 9
    # kept + redone + new = the 9 inputs (the redone one was also counted as new)
    assert got[-1]["resumed"] == {"runs": 2, "kept": 4, "redone": 1, "new": 4}
    assert [x.get("resumed") for x in got if x["type"] == "manifest"][1] == {
        "kept": 4,
        "redone": 1,
        "dropped_partial_line": True,
        "dropped_not_inputs": 0,
    }
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["r.jsonl"]


def test_resume_of_a_finished_file_keeps_one_summary(small, tmp_path):
    out = tmp_path / "r.jsonl"
    assert _run(small, out, "-f", "jsonl").exit_code == 0
    r = _run(small, out, "--resume")
    assert r.exit_code == 0, r.output
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["type"] for x in got].count("summary") == 1 and got[-1]["type"] == "summary"
    assert got[-1]["n_inputs"] == 9 and got[-1]["resumed"]["kept"] == 9
    assert got[-1]["resumed"]["new"] == 0


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="names must be bytes")
def test_resume_matches_names_that_are_not_utf8(small, tmp_path):
    (img,) = write_generator_images(tmp_path / "x", "checker", n=1, size=64, seed=3)
    odd = os.path.join(os.fsencode(small["queries"]), b"caf\xe9.png")
    os.rename(img, odd)
    out = tmp_path / "r.jsonl"
    assert _run(small, out).exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # interrupted at the end
    r = _run(small, out, "--resume")
    assert r.exit_code == 0, r.output
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    results = [x for x in got if x["type"] == "result"]
    assert len(results) == 10 and got[-1]["resumed"]["kept"] == 10
    assert got[-1]["resumed"]["new"] == 0 and got[-1]["n_inputs"] == 10


def test_resume_keeps_the_status_of_folder_items(small, tmp_path):
    """Inputs left to do are passed as the walk found them: a non-image found in a folder
    stays 'skipped' (named explicitly it would fail), and the exit code stays 0."""
    (small["queries"] / "notes.txt").write_text("not an image", encoding="utf-8")
    out = tmp_path / "r.jsonl"
    first = _run(small, out)
    assert first.exit_code == 0, first.output
    lines = out.read_text(encoding="utf-8").splitlines()
    status = {json.loads(x)["path"]: json.loads(x)["status"] for x in lines[1:-1]}
    out.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")  # interrupted early
    r = _run(small, out, "--resume")
    assert r.exit_code == first.exit_code, r.output
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {x["path"]: x["status"] for x in got if x["type"] == "result"} == status
    assert got[-1]["n_inputs"] == json.loads(lines[-1])["n_inputs"]
    assert got[-1]["n_failed"] == json.loads(lines[-1])["n_failed"]


def test_resume_without_a_file_is_a_plain_run(small, tmp_path):
    out = tmp_path / "new.jsonl"
    assert _run(small, out, "--resume").exit_code == 0
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["type"] for x in got].count("result") == 9 and "resumed" not in got[-1]


def test_resume_refuses_other_settings_formats_and_files(small, tmp_path):
    out = tmp_path / "r.jsonl"
    assert _run(small, out).exit_code == 0
    before = out.read_bytes()
    r = _run(small, out, "--resume", "--top-k", "2")
    assert r.exit_code == 2 and "top_k 3 -> 2" in r.stderr, r.output
    r = _run(small, tmp_path / "r.json", "--resume")
    assert r.exit_code == 2 and "jsonl" in r.stderr
    r = _run(small, out, "--resume", "--as-set")
    assert r.exit_code == 2 and "--as-set" in r.stderr
    other = tmp_path / "other.jsonl"
    other.write_text('{"type": "something"}\n', encoding="utf-8")
    r = _run(small, other, "--resume")
    assert r.exit_code == 2 and "not the jsonl output of fpattr attribute" in r.stderr
    assert out.read_bytes() == before


def test_uninterrupted_holds_a_signal_until_the_record_is_written():
    from fpattr.errors import Interrupted
    from fpattr.io.atomic import graceful_signals, uninterrupted

    written = []
    before = signal.getsignal(signal.SIGTERM)
    with graceful_signals():
        with pytest.raises(Interrupted) as info:
            with uninterrupted():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
                written.append("whole record")
    assert written == ["whole record"] and info.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX only")
def test_sighup_unwinds_like_ctrl_c(tmp_path):
    from fpattr.errors import ExitCode, Interrupted
    from fpattr.io.atomic import atomic_open, graceful_signals

    # under nohup SIGHUP is ignored and graceful_signals rightly leaves it so: start from
    # the default disposition whatever the test runner inherited
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        _hangup_in_a_write(tmp_path, ExitCode, Interrupted, atomic_open, graceful_signals)
    finally:
        signal.signal(signal.SIGHUP, previous)


def _hangup_in_a_write(tmp_path, ExitCode, Interrupted, atomic_open, graceful_signals):  # noqa: N803
    with graceful_signals(), pytest.raises(Interrupted) as info:
        with atomic_open(tmp_path / "report.csv") as f:
            f.write("half a report")
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(1)  # the handler raises before this ends
    assert info.value.exit_code == ExitCode.HANGUP == 129 and info.value.signal_name == "SIGHUP"
    assert list(tmp_path.iterdir()) == []  # no .report.csv.tmp-*


def test_an_output_another_run_is_writing_is_refused(small, tmp_path):
    # break-it 28: two `--resume -o r.jsonl` at once both appended the leftovers: every
    # remaining input twice in the file. A run holds its outputs; a second one is exit 2.
    import threading

    from fpattr.io.atomic import claim_output

    out = tmp_path / "r.jsonl"
    assert _run(small, out).exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")  # 3 results kept
    (tmp_path / "alias.jsonl").symlink_to(out)
    other = threading.Event()
    release = threading.Event()

    def hold() -> None:  # another run holding the file, as a thread of its own
        with claim_output(out):
            other.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert other.wait(10)
        for name in (out, tmp_path / "alias.jsonl"):
            for extra in (["--resume"], []):
                r = _run(small, name, *extra)
                assert r.exit_code == 2 and "being written by another fpattr run" in r.stderr
        assert out.read_text(encoding="utf-8").splitlines() == lines[:4]  # untouched
    finally:
        release.set()
        t.join()
    assert _run(small, out, "--resume").exit_code == 0
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    paths = [x["path"] for x in got if x["type"] == "result"]
    assert len(paths) == len(set(paths)) == 9
