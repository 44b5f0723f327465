"""`fpattr plugins install/uninstall` run pip in fpattr's own interpreter."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from fpattr.testing import run_cli


@pytest.fixture
def fake_plugins(monkeypatch):
    """Two installed plugins whose entry-point names differ from their distributions,
    whatever is really installed; none is loaded (FPATTR_LOAD_PLUGINS='')."""
    from fpattr import plugins

    eps = [
        SimpleNamespace(name="taesd", dist=SimpleNamespace(name="fpattr-taesd", version="0.1")),
        SimpleNamespace(name="example", dist=SimpleNamespace(name="fpattr_example", version="1")),
    ]
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group=None: eps)
    monkeypatch.setenv("FPATTR_LOAD_PLUGINS", "")


def test_install_and_uninstall_call_pip_of_this_interpreter(monkeypatch, fake_plugins):
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
    assert calls[1] == [sys.executable, "-m", "pip", "uninstall", "-y", "fpattr_example"]


def test_uninstall_maps_plugin_names_to_their_distributions(monkeypatch, fake_plugins):
    """`plugins list` shows entry-point names (taesd); pip knows distributions
    (fpattr-taesd): pip given `taesd` skipped it, exited 0 and left the plugin."""
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert run_cli(["plugins", "uninstall", "taesd"]).exit_code == 0
    assert calls[-1][-2:] == ["-y", "fpattr-taesd"]
    assert run_cli(["plugins", "uninstall", "taesd", "FPATTR_TAESD", "example"]).exit_code == 0
    assert calls[-1][-3:] == ["-y", "fpattr-taesd", "fpattr_example"]


@pytest.mark.parametrize("name", ["no-such-plugin", "fpattr", "fpattr.backbones.builtin"])
def test_uninstall_refuses_names_that_are_not_installed_plugins(monkeypatch, fake_plugins, name):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    r = run_cli(["plugins", "uninstall", "taesd", name])
    assert r.exit_code == 2, r.output
    assert calls == []  # nothing uninstalled, not even the known one
    assert repr(name) in r.stderr
    if name.startswith("fpattr."):
        assert "built into fpattr" in r.stderr
    else:
        known = "installed plugins (distribution): example (fpattr_example), taesd (fpattr-taesd)"
        assert known in r.stderr


def test_list_table_shows_the_distribution(monkeypatch):
    from fpattr.plugins import PluginHost, PluginInfo, set_host

    host = PluginHost(load_entry_points=False)
    host.plugins["taesd"] = PluginInfo(
        name="taesd",
        module="fpattr_taesd",
        builtin=False,
        version="0.1.0",
        distribution="fpattr-taesd",
        error="import: ImportError: needs fpattr[train]",
    )
    set_host(host)
    r = run_cli(["plugins", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stdout.splitlines() if "taesd" in x)
    assert "fpattr-taesd" in line and "0.1.0" in line
    assert "fpattr[train]" in line  # an error's brackets are not eaten as markup


def test_pip_failure_is_the_exit_code(monkeypatch):
    monkeypatch.setattr(subprocess, "call", lambda cmd: 3)
    assert run_cli(["plugins", "install", "no-such-plugin"]).exit_code == 3


def test_list_json_shape():
    import json

    r = run_cli(["plugins", "list", "--all", "--format", "json"])
    rows = json.loads(r.stdout)
    builtin = {x["name"]: x for x in rows if x["builtin"]}
    provided = builtin["fpattr.backbones.builtin"]["provides"]["backbone"]
    assert provided[0] == "default"  # listed in registration order, the default first
    assert {"default-int8", "spectrum", "onnx"} <= set(provided)
    assert all(x["status"] in ("ok", "failed") for x in rows)
