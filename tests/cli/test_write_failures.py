"""Results that cannot be written end the run with exit 74 and one clear line, never 0 or 70.

A full disk (ENOSPC), an I/O error, or stdout on a full device: the message names the
destination ("cannot write results to X: No space left on device"); a streamed jsonl file
is cut back to its last complete record; a closed pipe on stdout stops quietly.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fpattr.report import files
from fpattr.report.outputs import EXIT_OUTPUT_LOST
from fpattr.testing import run_cli, write_generator_images

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX devices and pipes")


def _args(enrolled, *extra) -> list:
    return ["attribute", enrolled["queries"], "-g", enrolled["gallery"], "-b", "spectrum", *extra]


@pytest.fixture
def full_device(tmp_path) -> Path:
    """A private /dev/full (writes fail with ENOSPC); needs root to create the node."""
    node = tmp_path / "dev" / "full"
    node.parent.mkdir()
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with open(node, "wb", buffering=0) as f:
            f.write(b"x")
    except PermissionError:
        pytest.skip("cannot create a device node here (not root)")
    except OSError as e:
        if e.errno != errno.ENOSPC:
            pytest.skip(f"no working full device: {e}")
    return node


def test_exit_code_is_dedicated():
    assert EXIT_OUTPUT_LOST == 74  # EX_IOERR: not 0, 1 (some failed), 2 (usage), 70 (bug)


def test_jsonl_disk_full_mid_run_leaves_no_partial_line(enrolled, tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    calls = {"n": 0}
    real = files._os_write

    def flaky(fd, data):
        calls["n"] += 1
        if calls["n"] == 4:  # manifest, 2 results, then the disk fills mid-record
            real(fd, bytes(data[:5]))  # '{"typ' reaches the disk, as on a real full disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(files, "_os_write", flaky)
    r = run_cli(_args(enrolled, "-o", out, "-q"))
    assert r.exit_code == EXIT_OUTPUT_LOST, r.output
    assert f"cannot write results to {out}: No space left on device" in r.stderr
    assert "internal error" not in r.stderr
    data = out.read_bytes()
    assert data.endswith(b"\n")
    lines = [json.loads(x) for x in data.decode().splitlines()]
    assert [x["type"] for x in lines] == ["manifest", "result", "result"]

    monkeypatch.setattr(files, "_os_write", real)  # the truncated file resumes cleanly
    r = run_cli(_args(enrolled, "-o", out, "-q", "--resume"))
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert lines[-1]["type"] == "summary" and lines[-1]["n_inputs"] == 9


def test_eio_on_the_report_is_exit_74_and_no_file(enrolled, tmp_path, monkeypatch):
    rep = tmp_path / "r.html"
    real_start = files._LateFile.start

    def start(self):
        real_start(self)
        real_write = self._file.write

        def write(data):
            real_write(data)
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        self._file.write = write

    monkeypatch.setattr(files._LateFile, "start", start)
    r = run_cli(_args(enrolled, "--report", rep, "-q", "-f", "json"))
    assert r.exit_code == EXIT_OUTPUT_LOST, r.output
    assert f"cannot write results to {rep}: Input/output error" in r.stderr
    assert list(tmp_path.glob("*r.html*")) == []  # neither the report nor its temp file


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "table"])
def test_output_to_a_full_device(enrolled, full_device, fmt):
    r = run_cli(_args(enrolled, "-f", fmt, "-o", full_device, "-q"))
    assert r.exit_code == EXIT_OUTPUT_LOST, r.output
    msg = f"cannot write results to {full_device}: No space left on device"
    assert msg in " ".join(r.stderr.split())
    assert stat.S_ISCHR(os.stat(full_device).st_mode)  # the device is written, not replaced


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "table"])
def test_stdout_on_a_full_device(enrolled, full_device, fmt):
    cmd = [sys.executable, "-m", "fpattr", *map(str, _args(enrolled, "-f", fmt, "-q"))]
    with open(full_device, "w") as stdout:
        r = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == EXIT_OUTPUT_LOST, err
    assert "cannot write results to" in err and "No space left on device" in err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_closed_pipe_on_stdout_stops_quietly(enrolled):
    cmd = [sys.executable, "-m", "fpattr", *map(str, _args(enrolled, "-f", "jsonl", "-q"))]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left (`| head -1` after its line)
    try:
        r = subprocess.run(cmd, stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    err = r.stderr.decode()
    # 128 + SIGPIPE like a Unix tool the signal stops; it was 1, "some inputs failed"
    assert r.returncode == 141, err
    assert err.strip() == "", err  # quietly, like other Unix tools


def test_atomic_formats_create_their_temp_file_only_at_close(tmp_path):
    """csv rows (and json/html content) are held until close: a killed run leaves no temp."""
    out = tmp_path / "r.csv"
    with files.open_report(out, None, {"command": "attribute"}) as w:
        for i in range(3):
            w.write({"path": f"{i}.png", "status": "ok", "top": []})
        assert list(tmp_path.iterdir()) == []
        w.close({"n_inputs": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]
    assert out.read_text(encoding="utf-8").count("\n") == 4


def test_walk_leaves_out_the_run_outputs_and_their_temp_files(tmp_path):
    from fpattr.io.walk import iter_inputs

    (img,) = write_generator_images(tmp_path, "checker", n=1, size=32, seed=1)
    for name in ("r.jsonl", ".r.html.tmp-abc123", "keep.txt"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    got = {
        p.path.name
        for p in iter_inputs([tmp_path], exclude=[tmp_path / "r.jsonl", tmp_path / "r.html"])
    }
    assert got == {img.name, "keep.txt"}


@pytest.mark.parametrize(
    "cmd",
    [["gallery", "list"], ["doctor"], ["plugins", "list"], ["--version"], ["gallery", "export"]],
)
def test_every_command_on_a_full_device_is_exit_74(enrolled, full_device, cmd, tmp_path):
    # break-it 27: 70 "internal error" from gallery list / doctor / plugins list on a full
    # stdout, a traceback and exit 1 from --version; an export to a full device was 70 too
    args = [*cmd, "-g", str(enrolled["gallery"])] if cmd[0] == "gallery" else cmd
    if cmd == ["gallery", "export"]:
        args = ["gallery", "export", str(full_device), "-g", str(enrolled["gallery"])]
    full = [sys.executable, "-m", "fpattr", *map(str, args)]
    with open(full_device, "w") as stdout:
        r = subprocess.run(full, stdout=stdout, stderr=subprocess.PIPE, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == EXIT_OUTPUT_LOST, err
    assert "No space left on device" in err and "cannot write" in err
    assert "internal error" not in err and "Traceback" not in err and "Exception ignored" not in err


def test_analyze_predict_checks_its_output_before_any_work(enrolled, tmp_path):
    # break-it 27: analyze predict -o on an input image replaced it with the JSON (exit 0),
    # and -o into a missing folder failed after the work with 70 "internal error"
    img = sorted(Path(enrolled["queries"]).rglob("*.png"))[0]
    before = img.read_bytes()
    r = run_cli(["analyze", "predict", enrolled["queries"], "-q", "-f", "json", "-o", img])
    assert r.exit_code == 2 and "is one of the inputs" in r.stderr, r.output
    assert img.read_bytes() == before
    r = run_cli(["analyze", "predict", img, "-q", "-o", tmp_path / "missing" / "out.json"])
    assert r.exit_code == 2 and "not found" in r.stderr and "internal error" not in r.stderr
