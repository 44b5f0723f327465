"""`fpattr plugins install/uninstall` run pip in fpattr's own interpreter."""

from __future__ import annotations

import subprocess
import sys

from fpattr.testing import run_cli


def test_install_and_uninstall_call_pip_of_this_interpreter(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert run_cli(["plugins", "install", "-e", "plugins/fpattr-example", "-U"]).exit_code == 0
    assert run_cli(["plugins", "uninstall", "fpattr-example"]).exit_code == 0
    assert calls[0] == [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--upgrade",
        "-e",
        "plugins/fpattr-example",
    ]
    assert calls[1] == [sys.executable, "-m", "pip", "uninstall", "-y", "fpattr-example"]


def test_pip_failure_is_the_exit_code(monkeypatch):
    monkeypatch.setattr(subprocess, "call", lambda cmd: 3)
    assert run_cli(["plugins", "install", "no-such-plugin"]).exit_code == 3


def test_list_json_shape():
    import json

    r = run_cli(["plugins", "list", "--all", "--format", "json"])
    rows = json.loads(r.stdout)
    builtin = {x["name"]: x for x in rows if x["builtin"]}
    assert builtin["fpattr.backbones.builtin"]["provides"]["backbone"][:2] == [
        "default",
        "spectrum",
    ]
    assert all(x["status"] in ("ok", "failed") for x in rows)
