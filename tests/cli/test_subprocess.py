"""The real console script in a subprocess: startup, stdout/stderr split, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fpattr.testing import write_generator_images


def run(*args, env=None, cwd=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fpattr", *map(str, args)],
        capture_output=True,
        text=True,
        env=e,
        cwd=cwd,
        timeout=120,
    )


def test_help_and_version():
    r = run("--help")
    assert r.returncode == 0 and "attribute" in r.stdout and "verify" in r.stdout
    assert run("--version").stdout.startswith("fpattr ")


def test_import_of_cli_does_not_pull_torch_or_onnxruntime():
    code = (
        "import sys, fpattr.cli, fpattr.cli.app as a; a.build_app(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'onnxruntime', 'onnx', 'scipy', 'matplotlib')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_end_to_end_subprocess(tmp_path):
    for gen in ("nearest", "checker"):
        write_generator_images(tmp_path / "refs" / gen, gen, n=4, seed=1)
        write_generator_images(tmp_path / "q", gen, n=2, seed=7, prefix=f"{gen}_")
    (tmp_path / "q" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    env = {"FPATTR_HOME": str(tmp_path / "home")}
    for gen in ("nearest", "checker"):
        r = run("gallery", "add", gen, tmp_path / "refs" / gen, "-b", "spectrum", env=env)
        assert r.returncode == 0, r.stderr
    r = run("attribute", tmp_path / "q", "-b", "spectrum", "-f", "jsonl", env=env)
    assert r.returncode == 1, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["type"] for x in lines][0] == "manifest" and len(lines) == 2 + 5
    broken = [x for x in lines if x.get("path", "").endswith("broken.png")][0]
    assert broken["status"] == "error" and broken["error"]
    assert "Traceback" not in r.stderr


def test_errors_are_one_line_without_traceback(tmp_path):
    r = run("attribute", tmp_path, "-b", "spectrum", "-g", tmp_path / "none")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "fpattr: error" in r.stderr
